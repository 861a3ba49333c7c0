"""Prediction: input preparation, the predictor, the predict command and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from fmlib.cli import main
from fmlib.errors import InputError, MissingFileError
from fmlib.estimate.predict import load_predictor, prepare_audio
from fmlib.synth.engine import render
from fmlib.synth.params import DISCRETE_RATIOS, PARAMS, TARGET_NAMES
from fmlib.synth.patch import load_patch


@pytest.fixture
def model_dir(tiny_model):
    """The session's tiny model (tests/conftest.py); read-only."""
    return tiny_model


def _sine(freq_hz, sample_rate, seconds, channels=1):
    t = np.arange(int(sample_rate * seconds)) / sample_rate
    x = 0.5 * np.sin(2 * np.pi * freq_hz * t)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


def test_prepare_audio_resamples_mixes_and_pads():
    x, changes = prepare_audio(_sine(1000.0, 44_100, 1.5, channels=2), 44_100)
    assert x.shape == (64_000,) and x.dtype == np.float32
    assert changes == [
        "mixed 2 channels down to mono",
        "resampled from 44100 Hz to 16000 Hz",
        "padded with silence from 1.500 s to 4 s",
    ]
    spectrum = np.abs(np.fft.rfft(x[:16_000]))
    assert np.argmax(spectrum) == 1000  # 1 Hz bins: the pitch survives resampling
    assert np.max(np.abs(x[:24_000])) == pytest.approx(0.5, abs=0.01)
    assert np.all(x[24_100:] == 0)


def test_prepare_audio_leaves_model_ready_audio_alone_and_trims():
    a = _sine(440.0, 16_000, 4.0).astype(np.float32)
    x, changes = prepare_audio(a, 16_000)
    assert changes == [] and np.array_equal(x, a)
    x, changes = prepare_audio(_sine(440.0, 16_000, 5.0)[:, None], 16_000)
    assert changes == ["trimmed from 5.000 s to the first 4 s"]
    np.testing.assert_array_equal(x, a)


@pytest.mark.parametrize(
    ("audio", "rate", "match"),
    [
        (np.zeros(0), 16_000, "empty"),
        (np.zeros(64_000), 16_000, "silent"),
        (np.full(10, np.nan), 16_000, "NaN"),
        (np.ones(10), 0, "sample_rate"),
    ],
)
def test_prepare_audio_rejects_bad_audio(audio, rate, match):
    with pytest.raises(InputError, match=match):
        prepare_audio(audio, rate)


def test_predictor_vectors_and_patches(model_dir):
    p = load_predictor(model_dir)
    audio = np.stack([_sine(f, 16_000, 4.0) for f in (220.0, 880.0, 1760.0)])
    raw = p.predict_vectors(audio)
    assert raw.shape == (3, 15) and raw.dtype == np.float64
    # TensorFlow's CPU kernels do not promise bit-equality across batch shapes or
    # thread schedules (1.6e-8 relative seen on an AMD EPYC): compare with a tolerance.
    np.testing.assert_allclose(p.predict_vectors(audio[1]), raw[1:2], rtol=1e-5)
    patches = p.predict_patches(audio)
    assert len(patches) == 3
    for patch in patches:
        v = patch.to_vector()
        for name, value in zip(TARGET_NAMES, v, strict=True):
            assert PARAMS[name].low <= value <= PARAMS[name].high
        assert {m.ratio for m in patch.modulators} <= set(DISCRETE_RATIOS)
    with pytest.raises(InputError, match="64000"):
        p.predict_vectors(np.zeros((1, 100)))


def test_predict_cli_on_a_44k_stereo_wav(model_dir, tmp_path, capsys):
    wav = tmp_path / "in.wav"
    sf.write(wav, _sine(330.0, 44_100, 2.0, channels=2), 44_100)
    out, resynth = tmp_path / "patch.json", tmp_path / "out.wav"
    code = main(
        ["predict", str(model_dir), str(wav), "-o", str(out), "--wav", str(resynth)]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "mixed 2 channels" in printed and "resampled from 44100 Hz" in printed
    assert "padded" in printed and str(out) in printed
    patch = load_patch(out)
    assert json.loads(out.read_text())["algorithm"] == "dx7_18"
    assert {m.ratio for m in patch.modulators} <= set(DISCRETE_RATIOS)
    audio, rate = sf.read(resynth)
    assert rate == 16_000 and audio.shape == (64_000,)


def test_predict_cli_cuts_leading_silence_and_aligns_the_wav(
    model_dir, tmp_path, capsys
):
    wav = tmp_path / "late.wav"
    sf.write(wav, np.r_[np.zeros(4_000), _sine(330.0, 16_000, 2.0)], 16_000)
    out, resynth = tmp_path / "patch.json", tmp_path / "out.wav"
    code = main(
        ["predict", str(model_dir), str(wav), "-o", str(out), "--wav", str(resynth)]
    )
    assert code == 0
    printed = capsys.readouterr().out
    # cut up to 2 ms before the onset; the re-synthesis is delayed as much
    assert "input: cut 0.248 s of silence before the note's onset" in printed
    audio, rate = sf.read(resynth, dtype="float32")
    assert rate == 16_000 and audio.shape == (3_968 + 64_000,)
    assert not audio[:3_968].any()
    np.testing.assert_allclose(audio[3_968:], render(load_patch(out)), atol=1e-4)


def test_predict_cli_bad_inputs_exit_2_without_output(model_dir, tmp_path, capsys):
    good = tmp_path / "good.wav"
    sf.write(good, _sine(330.0, 16_000, 1.0), 16_000)
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio\n")
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros((0, 1)), 16_000)
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(16_000), 16_000)
    not_model = tmp_path / "not-a-model"
    not_model.mkdir()
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "model.json").write_text((model_dir / "model.json").read_text())
    (broken / "model.keras").write_bytes(b"garbage")
    junk_zip = tmp_path / "junk-zip-model"
    junk_zip.mkdir()
    (junk_zip / "model.json").write_text((model_dir / "model.json").read_text())
    import zipfile

    with zipfile.ZipFile(junk_zip / "model.keras", "w") as z:
        z.writestr("config.json", "{}")
    out = tmp_path / "patch.json"
    cases = [
        (model_dir, tmp_path / "missing.wav", "no such audio file"),
        (model_dir, text, "not a readable audio file"),
        (model_dir, empty, "empty"),
        (model_dir, silent, "silent"),
        (tmp_path / "no-model", good, "no such model folder"),
        (not_model, good, "not a model folder"),
        (broken, good, "not a Keras model file"),
        (junk_zip, good, "cannot load the model"),
        (model_dir, tmp_path, "is a folder; expected an audio file"),
    ]
    for model, wav, message in cases:
        assert main(["predict", str(model), str(wav), "-o", str(out)]) == 2, message
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err, err
        assert len(err.strip().splitlines()) == 1
        assert not out.exists()
    assert main(["predict", str(model_dir), str(good), "-o", f"{good}/p.json"]) == 2


def test_load_predictor_errors(tmp_path):
    with pytest.raises(MissingFileError):
        load_predictor(tmp_path / "absent")
    with pytest.raises(InputError, match="not a model folder"):
        load_predictor(tmp_path)
