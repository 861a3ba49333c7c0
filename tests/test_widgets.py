"""The connected widgets driven without a browser: the explorer's patch loading,
random patches, MIDI field, A/B reference with live distances, playback gain, index
range, save refusals and .syx export; the re-synthesis panel's distances, baselines
and "edit in explorer". (Their rendering in JupyterLab: tests/test_browser.py.)"""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest
import soundfile as sf

from fmlib.audio import metrics
from fmlib.datasets.sampler import sample_note
from fmlib.errors import InputError
from fmlib.notebook.widgets import (
    EXPLORER_CLASS,
    audio_bytes,
    hz_to_midi,
    playback_gain,
    player,
    resynthesis_panel,
    synth_explorer,
)
from fmlib.synth import dx7
from fmlib.synth import params as P
from fmlib.synth.engine import render
from fmlib.synth.patch import load_patch, patch_from_dict, patch_from_vector, save_patch

PATCH = {
    "algorithm": "dx7_18",
    "carrier_hz": 330.0,
    "modulators": [
        {"ratio": 1.0, "index": 2.0},
        {"ratio": 2.0, "index": 1.0},
        {"ratio": 3.0, "index": 0.5},
        {"ratio": 1.0, "index": 0.0},
        {"ratio": 1.0, "index": 0.0},
    ],
    "envelope": {"attack_s": 0.01, "decay_s": 0.2, "sustain": 0.7, "release_s": 0.2},
}
SHORT = {"duration_s": 1.0, "note_off_s": 0.7}


def _wav(audio, sr=P.SAMPLE_RATE, subtype="FLOAT") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, audio, sr, format="WAV", subtype=subtype)
    return buf.getvalue()


def _decode(data: bytes) -> np.ndarray:
    audio, _ = sf.read(io.BytesIO(bytes(data)), dtype="float64")
    return audio


@pytest.fixture
def explorer(tmp_path):
    return synth_explorer(patch=PATCH, out_dir=tmp_path, **SHORT)


# --------------------------------------------------------------- playback
def test_playback_scales_loud_notes_down_by_their_peak_and_never_clips():
    t = np.arange(16000) / 16000
    loud = 1.5 * np.sin(2 * np.pi * 220 * t)
    played = _decode(audio_bytes(loud))
    assert np.max(np.abs(played)) == pytest.approx(1.0, abs=1e-3)
    # a scaled copy, not a clipped one: the shape is kept
    np.testing.assert_allclose(played * 1.5, loud, atol=1e-3)
    quiet = 0.5 * np.sin(2 * np.pi * 220 * t)
    np.testing.assert_allclose(_decode(audio_bytes(quiet)), quiet, atol=1e-4)
    assert playback_gain(quiet, loud) == pytest.approx(1 / 1.5)
    assert playback_gain(quiet) == 1.0
    assert _decode(player(loud).data).max() == pytest.approx(1.0, abs=1e-3)


def test_explorer_player_is_not_clipped_for_a_note_above_full_scale(tmp_path):
    # a bright paper-range note that peaks above 1.0 (about 3 in 4 do)
    vector = next(
        v
        for v in (sample_note(7, i) for i in range(50))
        if np.abs(render(patch_from_vector(v), **SHORT)).max() > 1.05
    )
    ex = synth_explorer(patch=patch_from_vector(vector), out_dir=tmp_path, **SHORT)
    peak = float(np.abs(ex.audio).max())
    played = _decode(ex.player.value)
    np.testing.assert_allclose(played * peak, ex.audio, atol=2e-4 * peak)


# --------------------------------------------------------------- controls
def test_explorer_has_its_css_class_and_index_sliders_reach_the_valid_maximum(
    explorer,
):
    assert EXPLORER_CLASS in explorer._dom_classes
    for i in range(1, P.N_MODULATORS + 1):
        s = explorer.sliders[f"index_{i}"]
        assert (s.min, s.max) == (P.INDEX.low, P.INDEX.valid_high)
    explorer.sliders["index_1"].value = 20.0  # above the paper's 8
    patch = explorer.current_patch()
    assert patch.modulators[0].index == 20.0
    np.testing.assert_array_equal(explorer.audio, render(patch, **SHORT))


def test_midi_field_and_carrier_slider_stay_in_sync(explorer):
    assert explorer.midi.value == pytest.approx(hz_to_midi(330.0), abs=0.005)
    before = bytes(explorer.player.value)
    explorer.midi.value = 69.0
    assert explorer.sliders["carrier_hz"].value == pytest.approx(440.0)
    assert explorer.current_patch().carrier_hz == pytest.approx(440.0)
    assert bytes(explorer.player.value) != before
    np.testing.assert_array_equal(
        explorer.audio, render(explorer.current_patch(), **SHORT)
    )
    explorer.sliders["carrier_hz"].value = 261.6256
    assert explorer.midi.value == pytest.approx(60.0)


def test_randomize_uses_the_papers_sampler_and_its_seed(explorer):
    image = bytes(explorer.image.value)
    patch = explorer.randomize(seed=11)
    np.testing.assert_allclose(patch.to_vector(), sample_note(11, 0))
    np.testing.assert_array_equal(explorer.audio, render(patch, **SHORT))
    assert bytes(explorer.image.value) != image
    first = explorer.audio.copy()
    explorer.randomize(seed=12)
    assert not np.array_equal(explorer.audio, first)
    explorer.randomize(seed=11)
    np.testing.assert_array_equal(explorer.audio, first)
    # the button draws with the seed field, then advances it
    explorer.seed.value = 3
    explorer.random_button.click()
    np.testing.assert_allclose(explorer.current_patch().to_vector(), sample_note(3, 0))
    assert explorer.seed.value == 4 and "seed 3" in explorer.status.value


def test_set_patch_load_field_upload_and_syx(explorer, tmp_path, upload_entry):
    other = patch_from_dict({**PATCH, "carrier_hz": 550.0, "level": 0.5})
    wav = bytes(explorer.player.value)
    assert explorer.set_patch(other) == other
    assert explorer.midi.value == pytest.approx(hz_to_midi(550.0), abs=0.005)
    assert bytes(explorer.player.value) != wav
    np.testing.assert_array_equal(explorer.audio, render(other, **SHORT))
    # through the path field and the button, as a person would
    path = save_patch({**PATCH, "carrier_hz": 880.0}, tmp_path / "in" / "p.json")
    explorer.patch_path.value = str(path)
    explorer.load_button.click()
    assert explorer.current_patch().carrier_hz == 880.0
    assert explorer.status.value.startswith("loaded")
    # through the upload widget
    data = json.dumps({**PATCH, "carrier_hz": 110.0}).encode()
    explorer.patch_upload.value = (upload_entry("x.json", data),)
    assert explorer.current_patch().carrier_hz == 110.0
    # a DX7 single-voice dump
    voice, _ = dx7.patch_to_voice(PATCH)
    explorer.patch_upload.value = (upload_entry("v.syx", dx7.voice_sysex(voice)),)
    imported = dx7.voice_to_patch(voice)
    assert explorer.current_patch() == imported
    # imported with the exponential curve, the toggle shows it
    assert explorer.curve.value == imported.envelope.curve == "exponential"
    # errors are one line in the status, and change nothing
    before = explorer.current_patch()
    explorer.patch_path.value = str(tmp_path / "missing.json")
    explorer.load_button.click()
    assert explorer.status.value.startswith("error:") and "missing.json" in (
        explorer.status.value
    )
    explorer.patch_upload.value = (upload_entry("bad.json", b'{"carrier_hz": -1}'),)
    assert explorer.status.value.startswith("error: bad.json")
    assert explorer.current_patch() == before


def test_set_patch_clamps_out_of_range_values_and_says_so(explorer):
    explorer.set_patch({**PATCH, "carrier_hz": 9000.0})
    assert explorer.sliders["carrier_hz"].value == pytest.approx(6000.0)
    assert "carrier_hz" in explorer.status.value


# --------------------------------------------------------------- A/B reference
def test_reference_distances_follow_the_metrics_and_update_live(explorer):
    assert explorer.distances is None
    assert explorer.reference_row.children == ()  # no empty player in the page
    target = render(PATCH, **SHORT)
    explorer.load_reference(_wav(target), name="same.wav")
    assert explorer.reference.shape == explorer.audio.shape
    assert explorer.distances == {"fft": 0.0, "stft": 0.0, "logmel": 0.0}
    assert bytes(explorer.player_reference.value[:4]) == b"RIFF"
    assert explorer.player_reference in explorer.reference_row.children
    assert "same.wav" in explorer.distances_html.value
    explorer.sliders["index_1"].value = 6.0  # move away from the reference
    d = explorer.distances
    a, b = explorer.audio, explorer.reference
    assert d["fft"] == pytest.approx(metrics.fft_distance(a, b), rel=1e-4)
    assert d["stft"] == pytest.approx(metrics.stft_distance(a, b), rel=1e-4)
    assert d["logmel"] == pytest.approx(metrics.logmel_distance(a, b), rel=1e-4)
    assert min(d.values()) > 0
    assert f"{d['logmel']:,.1f}" in explorer.distances_html.value
    # A and B share one playback gain: a reference above full scale lowers both
    explorer.load_reference(_wav(1.4 * target), name="loud.wav")
    a, b = explorer.audio, explorer.reference
    gain = playback_gain(a, b)
    assert gain == pytest.approx(1 / np.abs(b).max()) and gain < 0.75
    np.testing.assert_allclose(_decode(explorer.player.value), a * gain, atol=1e-4)
    np.testing.assert_allclose(
        _decode(explorer.player_reference.value), b * gain, atol=1e-4
    )
    # back to the reference's patch: back to zero
    explorer.load_reference(_wav(target), name="same.wav")
    explorer.sliders["index_1"].value = 2.0
    assert explorer.distances["logmel"] == 0.0


def test_reference_is_resampled_mixed_and_cut_to_the_note_length(
    explorer, tmp_path, upload_entry
):
    t = np.arange(44100 * 3) / 44100
    stereo = np.stack([0.9 * np.sin(2 * np.pi * 330 * t)] * 2, axis=1)
    path = tmp_path / "ref.wav"
    sf.write(path, stereo, 44100, subtype="PCM_16")
    explorer.reference_path.value = str(path)
    explorer.reference_button.click()
    assert explorer.status.value.startswith("reference")
    assert explorer.reference.shape == (16000,)
    assert np.abs(explorer.reference).max() == pytest.approx(0.9, abs=0.01)
    explorer.reference_upload.value = (upload_entry("junk.wav", b"junk"),)
    assert explorer.status.value.startswith("error: junk.wav")


# --------------------------------------------------------------- saving
def test_save_refuses_to_overwrite_unless_asked(explorer, tmp_path):
    explorer.name.value = "mine"
    path = explorer.save_patch()
    assert load_patch(path) == explorer.current_patch()
    first = path.read_bytes()
    explorer.sliders["carrier_hz"].value = 500.0
    with pytest.raises(InputError, match="exists; tick 'overwrite'"):
        explorer.save_patch()
    explorer.save_patch_button.click()
    assert explorer.status.value.startswith("error:") and "exists" in (
        explorer.status.value
    )
    assert path.read_bytes() == first
    explorer.overwrite.value = True
    explorer.save_patch_button.click()
    assert explorer.status.value == f"saved {path}"
    assert load_patch(path).carrier_hz == 500.0
    # the WAV: same rule; not normalised
    explorer.overwrite.value = False
    explorer.save_wav_button.click()
    audio, sr = sf.read(tmp_path / "mine.wav", dtype="float32")
    assert sr == P.SAMPLE_RATE
    np.testing.assert_allclose(audio, explorer.audio, atol=1 / 32768 + 1e-7)
    with pytest.raises(InputError, match="exists"):
        explorer.save_wav()
    explorer.name.value = "../escape"
    explorer.save_wav_button.click()
    assert explorer.status.value.startswith("error:")
    assert not (tmp_path.parent / "escape.wav").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.json", "mine.wav"]


def test_export_syx_writes_a_voice_that_parses_back(explorer, tmp_path):
    explorer.name.value = "brass"
    explorer.save_syx_button.click()
    path = tmp_path / "brass.syx"
    assert explorer.status.value == f"saved {path}"
    blob = path.read_bytes()
    assert len(blob) == dx7.VOICE_SYSEX_BYTES
    (voice,) = dx7.parse_sysex(blob)
    assert voice.name.startswith("brass")
    back = dx7.voice_to_patch(voice)
    patch = explorer.current_patch()
    assert abs(1200 * math.log2(back.carrier_hz / patch.carrier_hz)) < 5  # cents
    for m, b in zip(patch.modulators, back.modulators, strict=True):
        assert b.ratio == pytest.approx(m.ratio, rel=0.02)
    with pytest.raises(InputError, match="exists"):
        explorer.export_syx()
    explorer.overwrite.value = True
    assert explorer.export_syx() == path
    explorer.algorithm.value = "serial"
    explorer.save_syx_button.click()
    assert "dx7_18" in explorer.status.value and "error" in explorer.status.value


# --------------------------------------------------------------- panel
def _tone_wav(hz=220.0, sr=22050, seconds=2.0) -> tuple[bytes, np.ndarray]:
    t = np.arange(int(sr * seconds)) / sr
    env = np.minimum(1.0, t / 0.05) * np.exp(-t)
    x = 0.6 * env * np.sin(2 * np.pi * hz * t)
    return _wav(x, sr), x


def test_panel_shows_distances_of_resynthesis_and_baselines(tmp_path, fixed_predictor):
    from fmlib.evaluation.baselines import baselines

    panel = resynthesis_panel(fixed_predictor(PATCH), out_dir=tmp_path)
    assert panel.players.children == ()  # no empty player in the page
    data, _ = _tone_wav(220.0)
    patch = panel.load_bytes(data, name="tone.wav")
    assert patch == patch_from_dict(PATCH)
    assert panel.f0_hz == pytest.approx(220.0, rel=0.01)
    rows = panel.distances
    assert list(rows) == [
        "re-synthesis",
        "baseline: 440 Hz sine",
        "baseline: sine at the estimated f0",
        "baseline: that sine with the note's envelope",
    ]
    x, y = panel.original, panel.resynthesis
    assert rows["re-synthesis"]["logmel"] == pytest.approx(
        metrics.logmel_distance(x, y), rel=1e-4
    )
    base = baselines(x, hz_to_midi(panel.f0_hz))
    assert rows["baseline: 440 Hz sine"]["fft"] == pytest.approx(
        metrics.fft_distance(x, base["sine_440"]), rel=1e-4
    )
    assert rows["baseline: that sine with the note's envelope"]["stft"] == (
        pytest.approx(metrics.stft_distance(x, base["sine_pitch_env"]), rel=1e-4)
    )
    # the enveloped sine at the right pitch is the closest of the baselines here
    assert (
        rows["baseline: that sine with the note's envelope"]["logmel"]
        < (rows["baseline: 440 Hz sine"]["logmel"])
    )
    html = panel.distances_html.value
    assert "estimated f0 220" in html and "no pitch label" in html
    # A/B players share one gain
    assert bytes(panel.player_original.value[:4]) == b"RIFF"


def test_panel_edit_in_explorer_sends_patch_and_reference(tmp_path, fixed_predictor):
    panel = resynthesis_panel(fixed_predictor(PATCH), out_dir=tmp_path)
    with pytest.raises(InputError, match="nothing to edit"):
        panel.edit_in_explorer()
    panel.load_bytes(_tone_wav()[0], name="tone.wav")
    panel.edit_button.click()
    ex = panel.explorer
    assert panel.explorer_box.children == (ex,)
    assert ex.current_patch() == panel.patch
    np.testing.assert_array_equal(ex.reference, panel.original)
    assert ex.distances["logmel"] == pytest.approx(
        panel.distances["re-synthesis"]["logmel"], rel=1e-4
    )
    # a given explorer receives the patch instead
    other = synth_explorer(out_dir=tmp_path)
    panel2 = resynthesis_panel(fixed_predictor(PATCH), explorer=other)
    panel2.load_bytes(_tone_wav()[0])
    assert panel2.edit_in_explorer() is other
    assert other.current_patch() == panel2.patch


def test_panel_save_refuses_to_overwrite_unless_asked(tmp_path, fixed_predictor):
    panel = resynthesis_panel(fixed_predictor(PATCH), out_dir=tmp_path)
    panel.load_bytes(_tone_wav()[0])
    json_path, wav_path = panel.save()
    with pytest.raises(InputError, match="exists"):
        panel.save()
    panel.overwrite.value = True
    assert panel.save() == (json_path, wav_path)


@pytest.mark.slow
def test_panel_uses_match_without_a_model(tmp_path):
    from fmlib.estimate.estimators import MatchEstimator

    panel = resynthesis_panel(out_dir=tmp_path)
    assert isinstance(panel.predictor, MatchEstimator)
    assert "match" in panel.status.value
    note = render(PATCH)
    panel.load_bytes(_wav(note), name="fm.wav")
    rows = panel.distances
    # matching an FM note beats every baseline on the paper's log-mel distance
    assert rows["re-synthesis"]["logmel"] < min(
        d["logmel"] for k, d in rows.items() if k != "re-synthesis"
    )


def test_widget_classes_do_not_shadow_ipywidgets_internals():
    """A method named like one of ipywidgets' own (``Widget._compare``) breaks the
    widget only in a live kernel, where traits are synced through a comm."""
    import ipywidgets as W

    from fmlib.notebook.widgets import ResynthesisPanel, SynthExplorer

    base = set(dir(W.VBox))
    for cls in (SynthExplorer, ResynthesisPanel):
        own = {
            n for n, v in vars(cls).items() if callable(v) and not n.startswith("__")
        }
        assert "_compare_to_baselines" in own or cls is SynthExplorer
        assert not own & base, (cls.__name__, own & base)


def test_curve_toggle_renders_the_exponential_envelope(explorer):
    assert explorer.curve.value == "linear"
    assert explorer.sliders["release_s"].max == pytest.approx(0.8)
    linear = explorer.audio.copy()
    explorer.curve.value = "exponential"
    patch = explorer.current_patch()
    assert patch.envelope.curve == "exponential"
    np.testing.assert_array_equal(explorer.audio, render(patch, **SHORT))
    assert not np.array_equal(explorer.audio, linear)
    # the exponential release reaches 4.8 x the paper's 0.8 s
    assert explorer.sliders["release_s"].max == pytest.approx(3.84)
    long = patch_from_dict(
        {
            **PATCH,
            "envelope": {**PATCH["envelope"], "release_s": 3.0, "curve": "exponential"},
        }
    )
    assert explorer.set_patch(long) == long and explorer.status.value == ""
    # back to linear: the release is clamped onto the paper's range
    explorer.curve.value = "linear"
    assert explorer.current_patch().envelope.release_s == pytest.approx(0.8)
    assert explorer.current_patch().envelope.curve == "linear"
