"""The SoundFont-rendered evaluation set (tinysoundfont + TimGM6mb, a few notes)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fmlib import cli
from fmlib.datasets.nsynth import FAMILIES, load_nsynth, read_note
from fmlib.datasets.soundfont import (
    FAMILY_PROGRAMS,
    PEAK,
    SOURCE_LABEL,
    build_soundfont_set,
)
from fmlib.errors import InputError
from fmlib.evaluation.baselines import midi_to_hz


def test_mapping_covers_the_11_families_once():
    assert sorted(FAMILY_PROGRAMS) == sorted(FAMILIES)
    programs = [p for ps in FAMILY_PROGRAMS.values() for p in ps]
    assert len(programs) == len(set(programs))
    assert all(0 <= p <= 127 for p in programs)


@pytest.fixture(scope="module")
def flute_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("sf") / "set"
    return build_soundfont_set(
        out, renderer="tinysoundfont", per_family=1, families=("flute",), progress=False
    )


def test_layout_label_and_audio(flute_set):
    table = load_nsynth(flute_set)
    assert len(table) == 6  # 1 instrument x 3 pitches x 2 velocities
    assert set(table.instrument_family_str) == {"flute"}
    assert set(table.instrument_source_str) == {"soundfont"}
    assert set(table.source_label) == {SOURCE_LABEL}
    assert all("_soundfont_" in s for s in table.note_str)
    assert "not NSynth" in (flute_set / "README.md").read_text()
    made = json.loads((flute_set / "soundfont_set.json").read_text())
    assert made["label"] == SOURCE_LABEL and made["renderer"] == "tinysoundfont"
    for row in table.itertuples():
        x = read_note(row.path)
        assert x.shape == (64_000,)
        assert np.abs(x).max() == pytest.approx(PEAK, abs=1e-3)
        # the note sounds before note-off (3 s) and has decayed by the end
        rms_on = np.sqrt(np.mean(x[8_000:40_000] ** 2))
        rms_end = np.sqrt(np.mean(x[-1_600:] ** 2))
        assert rms_on > 0.05 and rms_end < 0.2 * rms_on
        # a flute's strongest partial is its fundamental: within a semitone of pitch
        spec = np.abs(np.fft.rfft(x[8_000:40_000] * np.hanning(32_000)))
        f_peak = np.argmax(spec) * 16_000 / 32_000
        cents = 1200 * np.log2(f_peak / midi_to_hz(row.pitch))
        assert abs(cents) < 100, (row.note_str, f_peak)


def test_rerun_resumes_and_is_deterministic(flute_set, tmp_path):
    before = {p.name: p.stat().st_mtime_ns for p in (flute_set / "audio").iterdir()}
    build_soundfont_set(
        flute_set,
        renderer="tinysoundfont",
        per_family=1,
        families=("flute",),
        progress=False,
    )
    after = {p.name: p.stat().st_mtime_ns for p in (flute_set / "audio").iterdir()}
    assert before == after
    other = build_soundfont_set(
        tmp_path / "again",
        renderer="tinysoundfont",
        per_family=1,
        families=("flute",),
        progress=False,
    )
    for name in before:
        a = (flute_set / "audio" / name).read_bytes()
        assert a == (other / "audio" / name).read_bytes()


def test_a_set_made_with_another_resampler_is_re_rendered(flute_set, tmp_path):
    """A set from before the one 48 -> 16 kHz path (its stamp names no resampler)
    is re-rendered whole, never completed with notes of the new filter."""
    import shutil

    old = tmp_path / "old"
    shutil.copytree(flute_set, old)
    stamp = json.loads((old / "soundfont_set.json").read_text())
    del stamp["resampler"]
    (old / "soundfont_set.json").write_text(json.dumps(stamp))
    name = sorted((old / "audio").iterdir())[0].name
    (old / "audio" / name).write_bytes(b"made by the old filter")
    build_soundfont_set(
        old, renderer="tinysoundfont", per_family=1, families=("flute",), progress=False
    )
    assert (old / "audio" / name).read_bytes() == (
        flute_set / "audio" / name
    ).read_bytes()
    assert json.loads((old / "soundfont_set.json").read_text())["resampler"]


def test_bad_options(tmp_path, capsys):
    with pytest.raises(InputError, match="per_family"):
        build_soundfont_set(tmp_path / "x", per_family=0)
    with pytest.raises(InputError, match="unknown families"):
        build_soundfont_set(tmp_path / "x", families=("drums",))
    code = cli.main(
        ["soundfont-set", "--out", str(tmp_path / "y"), "--soundfont", "/no/such.sf2"]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1
