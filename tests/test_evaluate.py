"""evaluate end to end: a tiny model on a few SoundFont notes plus a broken one."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from fmlib.audio import metrics
from fmlib.cli import main
from fmlib.datasets.nsynth import read_note
from fmlib.datasets.soundfont import build_soundfont_set
from fmlib.errors import InputError
from fmlib.evaluation.baselines import midi_to_hz, sine_440
from fmlib.evaluation.evaluate import CSV_COLUMNS, METHODS, evaluate

BROKEN = "guitar_soundfont_999-060-100"


@pytest.fixture
def model_dir(tiny_model):
    """The session's tiny model (tests/conftest.py); read-only."""
    return tiny_model


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("evaldata") / "set"
    build_soundfont_set(
        out,
        renderer="tinysoundfont",
        per_family=1,
        families=("flute",),
        progress=False,
    )
    index = json.loads((out / "examples.json").read_text())
    index[BROKEN] = {"pitch": 60, "velocity": 100}  # listed, but its WAV is garbage
    (out / "examples.json").write_text(json.dumps(index))
    (out / "audio" / f"{BROKEN}.wav").write_bytes(b"not a wav file")
    return out


def _rows(out):
    return pd.read_csv(out / "notes.csv", keep_default_na=False, na_values=[""])


def test_end_to_end(model_dir, data_dir, tmp_path):
    out = evaluate(
        model_dir, data_dir, tmp_path / "res", save_audio=True, progress=False
    )
    rows = _rows(out)
    assert tuple(rows.columns) == CSV_COLUMNS
    assert len(rows) == 7
    bad = rows[rows.status == "error"]
    assert (
        list(bad.note_str) == [BROKEN]
        and "not a readable audio file" in bad.error.iloc[0]
    )
    ok = rows[rows.status == "ok"].set_index("note_str")
    assert len(ok) == 6
    # baseline columns are the metrics of the 440 Hz sine, recomputed independently
    name = ok.index[0]
    x = read_note(data_dir / "audio" / f"{name}.wav")
    d = metrics.distances(metrics.features(x), metrics.features(sine_440()))
    for k, v in d.items():
        assert ok.loc[name, f"sine_440_{k}"] == pytest.approx(v, rel=1e-6)
    # the saved re-synthesis is what was scored
    y = read_note(out / "audio" / f"{name}.wav")
    assert y.shape == (64_000,)
    assert ok.loc[name, "resynthesis_logmel"] == pytest.approx(
        metrics.logmel_distance(x, y),
        rel=0.02,  # WAV is 16-bit: tiny requantisation
    )
    # the pred_* columns hold the whole patch: rebuilt, it renders the saved audio
    from fmlib.synth.engine import render
    from fmlib.synth.params import TARGET_NAMES
    from fmlib.synth.patch import patch_from_vector

    patch = patch_from_vector(
        [ok.loc[name, f"pred_{n}"] for n in TARGET_NAMES],
        level=ok.loc[name, "pred_level"],
        curve=ok.loc[name, "pred_curve"],
    )
    assert np.max(np.abs(render(patch) - y)) < 2e-4  # 16-bit WAV
    cents = 1200 * np.log2(ok.pred_carrier_hz / ok.pitch.map(midi_to_hz))
    assert np.allclose(ok.pitch_error_cents, cents)
    # tables
    t6 = pd.read_csv(out / "table6_means.csv", index_col=0)
    for m in METHODS:
        assert t6.loc["Log Mel (raw)", m] == pytest.approx(ok[f"{m}_logmel"].mean())
    imp = t6.loc["FFT", "improvement_vs_sine_440_pct"]
    r, b = ok.resynthesis_fft.mean(), ok.sine_440_fft.mean()
    assert imp == pytest.approx(100 * (b - r) / b)
    t7 = pd.read_csv(out / "table7_std.csv", index_col=0)
    assert t7.loc["STFT", "sine_pitch"] == pytest.approx(ok.sine_pitch_stft.std())
    t8 = pd.read_csv(out / "table8_family_means.csv", index_col=0)
    assert list(t8.index) == ["flute"] and t8.loc["flute", "n"] == 6
    for stem in (
        "table6_means",
        "table7_std",
        "table8_family_means",
        "table9_family_std",
    ):
        assert (out / f"{stem}.md").read_text().startswith("### Table")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_ok"] == 6 and summary["n_failed"] == 1
    assert summary["failed"][0]["note_str"] == BROKEN
    assert "not NSynth" in summary["source_label"]


def test_resume_after_interruption(model_dir, data_dir, tmp_path):
    out = evaluate(model_dir, data_dir, tmp_path / "res", limit=4, progress=False)
    full = _rows(out)
    # simulate a crash in the middle of writing the last rows
    text = (out / "notes.csv").read_text()
    lines = text.splitlines(keepends=True)
    (out / "notes.csv").write_text("".join(lines[:-2]) + lines[-2][:25])
    evaluate(model_dir, data_dir, out, limit=4, progress=False)
    again = _rows(out)
    # failed notes are retried on every run; only a note's last row counts
    assert (again.note_str == BROKEN).sum() == 2
    again = again.drop_duplicates("note_str", keep="last")
    assert sorted(again.note_str) == sorted(full.note_str)
    a = again.set_index("note_str").sort_index()
    f = full.set_index("note_str").sort_index()
    # batch composition changes the CNN output at float32 rounding level only
    pd.testing.assert_frame_equal(a, f, check_exact=False, rtol=1e-4)
    # a different limit in the same folder is refused
    with pytest.raises(InputError, match="another"):
        evaluate(model_dir, data_dir, out, limit=3, progress=False)


@pytest.mark.slow
def test_killed_run_resumed_equals_uninterrupted(
    model_dir, data_dir, tmp_path, monkeypatch
):
    """An evaluation interrupted after its first batch and rerun gives the notes.csv
    and the Tables 6-9 of an uninterrupted run, exactly: the resumed run sees the same
    batches (of 2 notes), so even the CNN's float32 output is bitwise the same.
    (When batches differ, see test_resume_after_interruption, the CNN's output
    moves at float32 rounding level.)"""
    import fmlib.evaluation.evaluate as E

    full = evaluate(
        model_dir, data_dir, tmp_path / "full", batch_size=2, progress=False
    )
    real = E._process_batch
    calls = []

    def dying(*args, **kwargs):
        if calls:
            raise KeyboardInterrupt
        calls.append(1)
        return real(*args, **kwargs)

    out = tmp_path / "resumed"
    monkeypatch.setattr(E, "_process_batch", dying)
    with pytest.raises(KeyboardInterrupt):
        evaluate(model_dir, data_dir, out, batch_size=2, progress=False)
    assert len(_rows(out)) == 2  # the first batch is on disk, nothing more
    monkeypatch.undo()
    evaluate(model_dir, data_dir, out, batch_size=2, progress=False)

    def ok_rows(folder):
        rows = _rows(folder).drop_duplicates("note_str", keep="last")
        return rows.set_index("note_str").sort_index()

    pd.testing.assert_frame_equal(ok_rows(out), ok_rows(full), check_exact=True)
    for stem in (
        "table6_means",
        "table7_std",
        "table8_family_means",
        "table9_family_std",
    ):
        a = pd.read_csv(full / f"{stem}.csv", index_col=0)
        b = pd.read_csv(out / f"{stem}.csv", index_col=0)
        pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_limit_round_robin_and_cli(model_dir, data_dir, tmp_path, capsys):
    data = tmp_path / "two"
    shutil.copytree(data_dir, data)
    code = main(
        [
            "evaluate",
            "--model",
            str(model_dir),
            "--data",
            str(data),
            "--out",
            str(tmp_path / "cli"),
            "--limit",
            "2",
        ]
    )
    assert code == 0
    assert "results:" in capsys.readouterr().out
    assert len(_rows(tmp_path / "cli")) == 2
    code = main(
        [
            "evaluate",
            "--model",
            str(tmp_path / "none"),
            "--data",
            str(data),
            "--out",
            str(tmp_path / "x"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1


def test_a_failing_prediction_is_isolated(tmp_path):
    import soundfile as sf

    from fmlib.estimate.estimators import CNNEstimator
    from fmlib.evaluation.evaluate import (
        _BaselineCache,
        _process_batch,
        paper_mean_patch,
    )
    from fmlib.synth.patch import patch_from_vector

    good = patch_from_vector([261.6, 1, 2, 1, 1, 1, 1, 0, 0, 0, 0, 0.01, 0.1, 0.5, 0.2])

    class Picky:  # refuses silent notes, as a model could fail on odd input
        def predict_patches(self, audio):
            if np.any(np.all(audio == 0, axis=1)):
                raise InputError("silent input")
            return [good] * len(audio)

    recs = []
    for name, amp in (("a_x_1-060-100", 0.5), ("b_x_1-060-100", 0.0)):
        path = tmp_path / f"{name}.wav"
        t = np.arange(64_000) / 16_000
        sf.write(path, amp * np.sin(2 * np.pi * 261.6 * t), 16_000, subtype="PCM_16")
        recs.append(
            {"note_str": name, "instrument_family_str": "x", "pitch": 60, "path": path}
        )
    rows = _process_batch(
        CNNEstimator(Picky()),
        pd.DataFrame(recs),
        _BaselineCache(),
        None,
        paper_mean_patch(),
    )
    by = {r["note_str"]: r for r in rows}
    assert by["a_x_1-060-100"]["status"] == "ok"
    expected = 1200 * np.log2(261.6 / midi_to_hz(60))  # -0.17 cents
    assert by["a_x_1-060-100"]["pitch_error_cents"] == pytest.approx(expected)
    assert by["b_x_1-060-100"]["status"] == "error"
    assert "silent input" in by["b_x_1-060-100"]["error"]
