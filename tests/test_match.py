"""Sound matching (fmlib.estimate.match, ``python -m fmlib match``, ``evaluate --method
match``): round trips on notes fmlib rendered with known parameters, determinism,
bad input, folder runs.

Stated tolerances (measured at budget 300 on the round-trip cases below, at the
time of writing, worst case in brackets):

* pitch of the re-synthesis within 5 cents of the rendered f0 [0.002 cents];
* RMS envelope of the re-synthesis, on frames within 40 dB of the peak: 90th
  percentile of the dB difference <= 3 dB [2.5], every frame <= 4.5 dB [3.4];
  attack within 25 ms [20 ms: the match turns attacks of 5-20 ms into 0; its log-mel
  model ignores the onset's transient], release within 25 ms when the note still
  sounds at note-off [18 ms], decay within 30 % [25 %];
* log-mel distance (fmlib.audio.metrics.logmel_distance) of the re-synthesis to the
  original <= 0.25 x that of the 440 Hz sine [0.20], and <= 0.10 x on average over
  the cases [0.07];
* every linear case comes back with the linear curve; every exponential case
  (EXPONENTIAL_ROUND_TRIPS, attacks of at most 20 ms as above, measured at budget
  300 at the time of writing) comes back exponential, with the same envelope-dB
  bounds [p90 0.54 dB, max 2.25 dB], attack within 25 ms [3 ms], decay within 10 %
  [2.9 %], a sustain within 2 dB [1.3 dB: with a short attack the fit trades the
  peak (level) against the sustain; the envelope-dB bounds check what is heard]
  or, for a sustain of 0, at most 0.01 [9e-6], release within 15 % when the note
  sounds at note-off [12 %: the part of an exponential release below -50 dB barely
  shows], log-mel <= 0.25 x the 440 Hz sine's [0.064].
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import fmlib
from fmlib.audio import analysis as A
from fmlib.audio import metrics
from fmlib.audio.audio_io import write_wav
from fmlib.cli import main
from fmlib.errors import InputError
from fmlib.estimate.match import MAX_BUDGET, MIN_BUDGET, check_budget, match_note
from fmlib.evaluation.baselines import sine_440

BUDGET = (
    300  # small: about 0.3 s a note; the default is fmlib.estimate.match.DEFAULT_BUDGET
)
CLI_BUDGET = "100"
REPO = Path(__file__).resolve().parents[1]

PITCH_TOL_CENTS = 5.0
ENV_P90_DB = 3.0
ENV_MAX_DB = 4.5
ATTACK_TOL_S = 0.025
RELEASE_TOL_S = 0.025
DECAY_TOL_REL = 0.30
LOGMEL_MAX_FRACTION_OF_SINE = 0.25
EXP_DECAY_TOL_REL = 0.10
EXP_SUSTAIN_TOL_DB = 2.0
EXP_SILENT_SUSTAIN = 0.01
EXP_RELEASE_TOL_REL = 0.15
LOGMEL_MEAN_FRACTION_OF_SINE = 0.10


def make_patch(carrier_hz, ratios, indices, env, level=1.0, curve="linear"):
    return fmlib.patch_from_dict(
        {
            "carrier_hz": float(carrier_hz),
            "modulators": [
                {"ratio": float(r), "index": float(b)}
                for r, b in zip(ratios, indices, strict=True)
            ],
            "envelope": {
                **dict(
                    zip(
                        ("attack_s", "decay_s", "sustain", "release_s"),
                        env,
                        strict=True,
                    )
                ),
                "curve": curve,
            },
            "level": float(level),
        }
    )


def cents(f_hz: float, ref_hz: float) -> float:
    return 1200.0 * math.log2(f_hz / ref_hz)


#: Harmonic-locked patches: carrier = f0, ratios from {1, 2, 3, 4}, indices 0..4:
#: (f0_hz, ratios, indices, (attack_s, decay_s, sustain, release_s), level).
ROUND_TRIPS = {
    "A2_two_parallel": (
        110.0,
        [1, 2, 1, 1, 1],
        [1.5, 0.7, 0, 0, 0],
        (0.01, 0.3, 0.6, 0.3),
        0.8,
    ),
    "C4_stack": (
        261.63,
        [1, 1, 3, 1, 1],
        [0, 0, 2.0, 1.0, 0],
        (0.05, 0.4, 0.5, 0.5),
        1.0,
    ),
    "A4_ratio2": (
        440.0,
        [2, 1, 1, 1, 1],
        [1.0, 0, 0, 0, 0],
        (0.02, 0.2, 0.7, 0.4),
        0.5,
    ),
    "E5_ratio3": (
        659.26,
        [3, 1, 1, 1, 1],
        [0.8, 0, 1.5, 0, 0],
        (0.005, 0.8, 0.2, 0.2),
        1.0,
    ),
    "G3_index4": (196.0, [1, 1, 1, 1, 1], [4.0, 0, 0, 0, 0], (0.1, 0.5, 0.4, 0.6), 0.7),
    "Cs4_chain": (
        277.18,
        [3, 4, 4, 1, 1],
        [0, 0.11, 3.01, 0, 1.32],
        (0.03, 0.6, 0.2, 0.1),
        0.3,
    ),
    "E6_slow_attack": (
        1318.51,
        [3, 3, 1, 4, 2],
        [2.77, 0, 1.24, 0, 0],
        (0.3, 0.1, 0.2, 0.6),
        1.0,
    ),
    "E2_decaying": (
        82.41,
        [1, 2, 3, 1, 1],
        [0.5, 1.0, 0.3, 0, 0],
        (0.01, 0.2, 0.0, 0.2),
        1.0,
    ),
}
#: A case the analysis gets wrong at the time of writing: strong odd harmonics over a
#: weak fundamental; YIN finds f0/3 (219.75 Hz) and the octave check never tries 3x.
F0_THIRD_CASE = (
    659.26,
    [4, 2, 4, 3, 3],
    [1.14, 0, 1.77, 0.84, 0],
    (0.01, 0.3, 0.2, 0.6),
    0.3,
)


#: Notes with an exponential envelope (mallet- and pluck-like decays), same layout.
EXPONENTIAL_ROUND_TRIPS = {
    "C5_mallet": (
        523.25,
        [4, 1, 1, 1, 1],
        [1.2, 0, 0, 0, 0],
        (0.002, 2.5, 0.0, 0.3),
        0.8,
    ),
    "A3_pluck": (
        220.0,
        [1, 2, 1, 1, 1],
        [1.5, 0.7, 0, 0, 0],
        (0.005, 1.2, 0.05, 0.4),
        1.0,
    ),
    "E4_organ_release": (
        329.63,
        [2, 1, 1, 1, 1],
        [1.0, 0, 0, 0, 0],
        (0.02, 0.5, 0.4, 0.8),
        0.6,
    ),
}


def _db(v: np.ndarray) -> np.ndarray:
    return 20 * np.log10(np.maximum(v, 1e-5))


def _round_trip(case, curve="linear") -> dict:
    f0, ratios, indices, env, level = case
    patch = make_patch(f0, ratios, indices, env, level, curve)
    x = fmlib.render(patch)
    result = match_note(x, budget=BUDGET, seed=0)
    y = fmlib.render(result.patch)
    rx, ry = metrics.rms_envelope(x), metrics.rms_envelope(y)
    loud = rx >= rx.max() * 10 ** (-40 / 20)
    return {
        "case": case,
        "x": x,
        "result": result,
        "resynth_cents": cents(A.estimate_f0(y).f0_hz, f0),
        "env_db": np.abs(_db(ry[loud]) - _db(rx[loud])),
        "logmel": metrics.logmel_distance(x, y),
        "logmel_sine_440": metrics.logmel_distance(x, sine_440()),
    }


@pytest.fixture(scope="module")
def round_trips():
    return {name: _round_trip(case) for name, case in ROUND_TRIPS.items()}


# ------------------------------------------------------------------------ round trips


@pytest.mark.slow
@pytest.mark.parametrize("name", list(ROUND_TRIPS))
def test_round_trip_pitch_within_5_cents(round_trips, name):
    rt = round_trips[name]
    assert abs(rt["resynth_cents"]) <= PITCH_TOL_CENTS
    assert abs(cents(rt["result"].analysis.f0_hz, rt["case"][0])) <= PITCH_TOL_CENTS
    # harmonic-locked: the carrier is f0/2, f0 or 2 f0
    ratio = rt["result"].patch.carrier_hz / rt["result"].analysis.f0_hz
    assert min(abs(ratio - k) for k in (0.5, 1.0, 2.0)) < 1e-6


@pytest.mark.slow
@pytest.mark.parametrize("name", list(ROUND_TRIPS))
def test_round_trip_envelope(round_trips, name):
    rt = round_trips[name]
    assert np.percentile(rt["env_db"], 90) <= ENV_P90_DB
    assert rt["env_db"].max() <= ENV_MAX_DB
    attack, decay, sustain, release = rt["case"][3]
    got = rt["result"].patch.envelope
    assert got.curve == "linear"
    assert abs(got.attack_s - attack) <= ATTACK_TOL_S
    assert abs(got.decay_s - decay) <= DECAY_TOL_REL * decay
    if sustain > 0:
        assert abs(got.release_s - release) <= RELEASE_TOL_S


@pytest.mark.slow
@pytest.mark.parametrize("name", list(ROUND_TRIPS))
def test_round_trip_logmel_far_below_the_440_hz_sine(round_trips, name):
    rt = round_trips[name]
    assert rt["logmel"] <= LOGMEL_MAX_FRACTION_OF_SINE * rt["logmel_sine_440"]


@pytest.mark.slow
def test_round_trip_logmel_mean(round_trips):
    fractions = [rt["logmel"] / rt["logmel_sine_440"] for rt in round_trips.values()]
    assert np.mean(fractions) <= LOGMEL_MEAN_FRACTION_OF_SINE


@pytest.mark.slow
def test_round_trip_result_fields(round_trips):
    for rt in round_trips.values():
        r = rt["result"]
        assert r.n_evaluations > 0  # <= budget: test_budget_bounds_the_renders
        assert r.hypothesis == "table"
        assert math.isfinite(r.predicted_logmel)
        assert r.patch.algorithm == "dx7_18"
        assert fmlib.patch_from_dict(r.patch.to_dict()) == r.patch  # valid, saved


@pytest.fixture(scope="module")
def exponential_round_trips():
    return {
        name: _round_trip(case, "exponential")
        for name, case in EXPONENTIAL_ROUND_TRIPS.items()
    }


@pytest.mark.slow
@pytest.mark.parametrize("name", list(EXPONENTIAL_ROUND_TRIPS))
def test_exponential_round_trip_envelope(exponential_round_trips, name):
    """A note rendered with an exponential envelope comes back exponential, with
    its times and levels (tolerances in the module docstring)."""
    rt = exponential_round_trips[name]
    got = rt["result"].patch.envelope
    assert got.curve == "exponential"
    assert np.percentile(rt["env_db"], 90) <= ENV_P90_DB
    assert rt["env_db"].max() <= ENV_MAX_DB
    attack, decay, sustain, release = rt["case"][3]
    assert abs(got.attack_s - attack) <= ATTACK_TOL_S
    assert abs(got.decay_s - decay) <= EXP_DECAY_TOL_REL * decay
    if sustain > 0:
        assert abs(20 * math.log10(got.sustain / sustain)) <= EXP_SUSTAIN_TOL_DB
        assert abs(got.release_s - release) <= EXP_RELEASE_TOL_REL * release
    else:
        assert got.sustain <= EXP_SILENT_SUSTAIN
    assert abs(rt["resynth_cents"]) <= PITCH_TOL_CENTS
    assert rt["logmel"] <= LOGMEL_MAX_FRACTION_OF_SINE * rt["logmel_sine_440"]


@pytest.mark.parametrize("budget", [MIN_BUDGET, 100, 300])
def test_budget_bounds_the_renders(budget):
    """The budget counts candidate timbres rendered (fmlib.estimate.match docstring)."""
    r = match_note(_note("G3_index4"), budget=budget, seed=0)
    assert r.n_evaluations <= budget, f"{r.n_evaluations} renders for {budget}"


def test_round_trip_weak_fundamental_odd_harmonics_pitch():
    """YIN reads this note at f0/3 (a weak fundamental under strong odd
    harmonics); the analysis's twelfth check (``_settle_twelfth``) recovers f0."""
    rt = _round_trip(F0_THIRD_CASE)
    assert abs(rt["resynth_cents"]) <= PITCH_TOL_CENTS


# ------------------------------------------------------------------------ determinism


def _note(name="A4_ratio2"):
    f0, ratios, indices, env, level = ROUND_TRIPS[name]
    return fmlib.render(make_patch(f0, ratios, indices, env, level))


def _patch_json(result) -> str:
    return json.dumps(result.patch.to_dict())


@pytest.mark.slow
def test_same_input_and_seed_give_identical_patch_json(round_trips):
    x = _note()
    again = match_note(x.copy(), budget=BUDGET, seed=0)
    assert _patch_json(again) == _patch_json(round_trips["A4_ratio2"]["result"])
    assert again.n_evaluations == round_trips["A4_ratio2"]["result"].n_evaluations


def test_another_seed_still_matches():
    """A different seed may give another patch; it must be as valid and close."""
    x = _note()
    other = match_note(x, budget=BUDGET, seed=7)
    y = fmlib.render(other.patch)
    assert abs(cents(A.estimate_f0(y).f0_hz, 440.0)) <= PITCH_TOL_CENTS
    d = metrics.logmel_distance(x, y)
    assert d <= LOGMEL_MAX_FRACTION_OF_SINE * metrics.logmel_distance(x, sine_440())


_SUBPROCESS_MATCH = """
import json, sys
import numpy as np
import fmlib
from fmlib.estimate.match import match_note
x = np.load(sys.argv[1], allow_pickle=False)
print(json.dumps(match_note(x, budget=int(sys.argv[2]), seed=0).patch.to_dict()))
"""


@pytest.mark.slow
def test_identical_patch_json_with_other_thread_settings(round_trips, tmp_path):
    note = tmp_path / "note.npy"
    np.save(note, _note(), allow_pickle=False)
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "2",
        "OPENBLAS_NUM_THREADS": "2",
        "MKL_NUM_THREADS": "2",
    }
    out = subprocess.run(
        [sys.executable, "-c", _SUBPROCESS_MATCH, str(note), str(BUDGET)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        check=True,
    )
    assert out.stdout.strip() == _patch_json(round_trips["A4_ratio2"]["result"])


@pytest.mark.parametrize(
    "budget", [0, MIN_BUDGET - 1, MAX_BUDGET + 1, 10**9, 1.5, True]
)
def test_bad_budget_is_refused(budget):
    with pytest.raises(InputError, match="budget"):
        check_budget(budget)
    with pytest.raises(InputError, match="budget"):
        match_note(np.ones(64_000, np.float32), budget=budget)


@pytest.mark.parametrize("seed", [-1, 1.5, True])
def test_bad_seed_is_refused(seed):
    with pytest.raises(InputError, match="seed"):
        match_note(_note(), budget=MIN_BUDGET, seed=seed)


def test_silent_note_is_refused():
    with pytest.raises(InputError, match="silent"):
        match_note(np.zeros(64_000, np.float32), budget=MIN_BUDGET)


# --------------------------------------------------------------------------- CLI


def _snapshot(folder: Path) -> dict:
    """Every file under ``folder`` (hidden ones too): relative path -> bytes."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    } | {str(p.relative_to(folder)) + "/": b"" for p in folder.rglob("*") if p.is_dir()}


def _run_main(argv, capsys) -> tuple[int, str, str]:
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


def _write_note(path: Path, f0_hz: float, *, seconds: float = 1.0, level=0.5) -> Path:
    patch = make_patch(f0_hz, [2, 1, 1, 1, 1], [1.0, 0, 0, 0, 0], (0.01, 0.1, 0.7, 0.1))
    x = fmlib.render(patch, duration_s=seconds, note_off_s=seconds * 0.75)
    return write_wav(path, level * x, fmlib.SAMPLE_RATE)


@pytest.fixture
def cli_dir(tmp_path):
    """A folder with one good note, a text file, a silent WAV and a folder of notes."""
    _write_note(tmp_path / "note.wav", 220.0)
    (tmp_path / "text.wav").write_text("this is not audio\n")
    write_wav(tmp_path / "silent.wav", np.zeros(16_000, np.float32), 16_000)
    # an audio file named .json: the only way to make -o equal to the input
    # get past the suffix check
    (tmp_path / "in.json").write_bytes((tmp_path / "note.wav").read_bytes())
    (tmp_path / "notes").mkdir()
    _write_note(tmp_path / "notes" / "a.wav", 330.0)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no audio here\n")
    return tmp_path


#: argv after ``match`` (paths relative to cli_dir) -> a word the message must hold.
BAD_CLI = {
    "missing_file": (["missing.wav", "-o", "out.json"], "no such"),
    "not_audio": (["text.wav", "-o", "out.json"], "not a readable audio file"),
    "silent": (["silent.wav", "-o", "out.json"], "silent"),
    "out_is_input": (["in.json", "-o", "in.json"], "input"),
    "wav_is_out": (["note.wav", "-o", "out.json", "--wav", "out.json"], "--wav"),
    "wav_is_input": (["note.wav", "-o", "out.json", "--wav", "note.wav"], "input"),
    "out_suffix": (["note.wav", "-o", "out.txt"], ".json"),
    "wav_suffix": (["note.wav", "-o", "out.json", "--wav", "out.mp3"], ".wav"),
    "syx_suffix": (["note.wav", "-o", "out.json", "--syx", "out.bin"], ".syx"),
    "out_parent_is_a_file": (["note.wav", "-o", "note.wav/out.json"], "note.wav"),
    "budget_0": (["note.wav", "-o", "out.json", "--budget", "0"], "budget"),
    "budget_huge": (["note.wav", "-o", "out.json", "--budget", str(10**9)], "budget"),
    "budget_text": (["note.wav", "-o", "out.json", "--budget", "many"], "budget"),
    "seed_negative": (["note.wav", "-o", "out.json", "--seed", "-1"], "seed"),
    "folder_no_audio": (["empty", "-o", "out_dir"], "no audio"),
    "out_inside_input": (["notes", "-o", "notes/out"], "inside"),
    "out_is_input_folder": (["notes", "-o", "notes"], "input folder"),
    "folder_wav_path": (["notes", "-o", "out_dir", "--wav", "x.wav"], "--wav"),
    "workers_0": (["notes", "-o", "out_dir", "--workers", "0"], "--workers"),
}


def _paths(argv, folder: Path) -> list[str]:
    """Make the path arguments absolute under ``folder`` (not options, not values
    of numeric options)."""
    numeric = {"--budget", "--seed", "--workers"}
    out, prev = [], None
    for a in argv:
        out.append(
            a if a.startswith("--") or a == "-o" or prev in numeric else str(folder / a)
        )
        prev = a
    return out


@pytest.mark.parametrize("case", list(BAD_CLI))
def test_bad_cli_input_exit_2_one_line_nothing_written(cli_dir, capsys, case):
    argv, word = BAD_CLI[case]
    before = _snapshot(cli_dir)
    rc, out, err = _run_main(["match", *_paths(argv, cli_dir)], capsys)
    assert rc == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert word in lines[0]
    assert "Traceback" not in err + out
    assert _snapshot(cli_dir) == before  # inputs unchanged, nothing left behind


#: Cases also run through a real ``python -m fmlib`` process (about 3 s each).
REAL_PROCESS_CASES = (
    "missing_file",
    "not_audio",
    "silent",
    "out_is_input",
    "budget_text",
    "seed_negative",
    "out_inside_input",
)


@pytest.mark.slow
def test_bad_cli_input_in_a_real_process(cli_dir):
    """Through ``python -m fmlib match``: exit 2, one line, no traceback."""
    before = _snapshot(cli_dir)
    for case in REAL_PROCESS_CASES:
        argv, word = BAD_CLI[case]
        proc = subprocess.run(
            [sys.executable, "-m", "fmlib", "match", *_paths(argv, cli_dir)],
            capture_output=True,
            text=True,
            cwd=REPO,
        )
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2, (case, proc.stderr)
        assert len(lines) == 1 and lines[0].startswith("error:"), (case, proc.stderr)
        assert word in lines[0]
        assert "Traceback" not in proc.stderr + proc.stdout
    assert _snapshot(cli_dir) == before


def test_single_file_run_writes_json_and_wav(cli_dir, capsys):
    out_json = cli_dir / "res" / "note.json"
    out_json.parent.mkdir()
    before = (cli_dir / "note.wav").read_bytes()
    argv = ["match", str(cli_dir / "note.wav"), "-o", str(out_json), "--wav"]
    rc, out, err = _run_main([*argv, "--budget", CLI_BUDGET], capsys)
    assert rc == 0, err
    assert (cli_dir / "note.wav").read_bytes() == before
    assert sorted(p.name for p in out_json.parent.iterdir()) == [
        "note.json",
        "note.wav",
    ]
    patch = fmlib.load_patch(out_json)
    y, sr = fmlib.audio.audio_io.read_wav(out_json.with_suffix(".wav"))
    assert sr == 16_000 and y.shape == (64_000, 1)
    np.testing.assert_allclose(y[:, 0], fmlib.render(patch), atol=1 / 16_000)
    assert abs(cents(patch.carrier_hz, 220.0)) <= PITCH_TOL_CENTS
    assert "input: padded with silence from 1.000 s to 4 s" in out
    assert f"patch: {out_json}" in out


def test_single_file_run_starts_the_patch_at_the_onset(tmp_path, capsys):
    # 0.5 s of silence before a note with a 10 ms attack: the silence is cut and
    # reported, and the patch's attack is the note's, not half a second.
    patch = make_patch(220.0, [2, 1, 1, 1, 1], [1.0, 0, 0, 0, 0], (0.01, 0.3, 0.5, 0.3))
    note = 0.5 * fmlib.render(patch, duration_s=3.0, note_off_s=2.0)
    write_wav(tmp_path / "late.wav", np.r_[np.zeros(8_000, np.float32), note], 16_000)
    out_json = tmp_path / "out" / "late.json"
    out_json.parent.mkdir()
    argv = ["match", str(tmp_path / "late.wav"), "-o", str(out_json), "--wav"]
    rc, out, err = _run_main([*argv, "--budget", CLI_BUDGET], capsys)
    assert rc == 0, err
    assert "input: cut 0.498 s of silence before the note's onset" in out
    patch = fmlib.load_patch(out_json)
    assert patch.envelope.attack_s < 0.03
    # The re-synthesis is delayed by the cut (7,968 samples), lining up with the input.
    y, _ = fmlib.audio.audio_io.read_wav(out_json.with_suffix(".wav"))
    assert y.shape == (7_968 + 64_000, 1)
    assert not y[:7_968].any()
    np.testing.assert_allclose(y[7_968:, 0], fmlib.render(patch), atol=1 / 16_000)


# --------------------------------------------------------------------------- folder

FOLDER_NOTES = {"a": 196.0, "b": 330.0, "c": 523.25}


@pytest.fixture
def note_dir(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for stem, f0 in FOLDER_NOTES.items():
        _write_note(src / f"{stem}.wav", f0, seconds=0.5)
    (src / "corrupt.wav").write_bytes(b"RIFF\x00\x00garbage, not a wav file")
    (src / "notes.txt").write_text("ignored: not audio\n")
    return src


def _stat(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


def test_folder_run_resume_and_failures(note_dir, tmp_path, capsys):
    inputs = _snapshot(note_dir)
    out = tmp_path / "out"
    argv = ["match", str(note_dir), "-o", str(out), "--wav", "--budget", CLI_BUDGET]
    rc, stdout, err = _run_main(argv, capsys)
    assert rc == 0, err
    assert _snapshot(note_dir) == inputs
    # the empty .lock file stays by design (fmlib.files.LOCK_NAME)
    names = sorted(p.name for p in out.iterdir() if p.name != ".lock")
    expected = [f"{s}.{k}" for s in FOLDER_NOTES for k in ("json", "wav")]
    assert names == sorted([*expected, "failures.json", "match.json"])
    failures = json.loads((out / "failures.json").read_text())
    assert list(failures) == ["corrupt"]
    assert "not a readable audio file" in failures["corrupt"]
    settings = json.loads((out / "match.json").read_text())
    assert settings["budget"] == int(CLI_BUDGET) and settings["seed"] == 0
    assert "3 of 4 notes matched, 1 failed" in stdout
    for stem, f0 in FOLDER_NOTES.items():
        patch = fmlib.load_patch(out / f"{stem}.json")
        assert abs(cents(patch.carrier_hz, f0)) <= PITCH_TOL_CENTS

    # resume: delete one output; only that note is redone
    kept = {p.name: _stat(p) for p in out.iterdir() if p.stem in ("a", "c")}
    old_b = (out / "b.json").read_bytes()
    (out / "b.json").unlink()
    rc, stdout, err = _run_main(argv, capsys)
    assert rc == 0, err
    assert {
        p.name: _stat(out / p.name) for p in out.iterdir() if p.stem in ("a", "c")
    } == kept
    assert (out / "b.json").read_bytes() == old_b  # deterministic
    assert list(json.loads((out / "failures.json").read_text())) == ["corrupt"]

    # the corrupt note fixed: the next run matches it and clears failures.json
    _write_note(note_dir / "corrupt.wav", 262.0, seconds=0.5)
    rc, _, err = _run_main(argv, capsys)
    assert rc == 0, err
    assert not (out / "failures.json").exists()
    assert (out / "corrupt.json").is_file() and (out / "corrupt.wav").is_file()
    assert {
        p.name: _stat(out / p.name) for p in out.iterdir() if p.stem in ("a", "c")
    } == kept


def test_folder_refuses_other_settings(note_dir, tmp_path, capsys):
    out = tmp_path / "out"
    base = ["match", str(note_dir), "-o", str(out), "--budget", CLI_BUDGET]
    (note_dir / "corrupt.wav").unlink()
    for stem in ("b", "c"):
        (note_dir / f"{stem}.wav").unlink()
    rc, _, err = _run_main(base, capsys)
    assert rc == 0, err
    before = _snapshot(out)
    rc, _, err = _run_main([*base, "--seed", "3"], capsys)
    assert rc == 2 and err.startswith("error:") and "other settings" in err
    assert _snapshot(out) == before


def test_single_file_and_folder_give_the_same_patch(note_dir, tmp_path, capsys):
    for stem in ("b", "c", "corrupt"):
        (note_dir / f"{stem}.wav").unlink()
    out = tmp_path / "out"
    rc, _, err = _run_main(
        ["match", str(note_dir), "-o", str(out), "--budget", CLI_BUDGET], capsys
    )
    assert rc == 0, err
    single = tmp_path / "a.json"
    argv = ["match", str(note_dir / "a.wav"), "-o", str(single)]
    rc, _, err = _run_main([*argv, "--budget", CLI_BUDGET], capsys)
    assert rc == 0, err
    assert single.read_bytes() == (out / "a.json").read_bytes()


@pytest.mark.slow
def test_two_workers_give_the_same_json_as_one(note_dir, tmp_path, capsys):
    (note_dir / "corrupt.wav").unlink()
    outs = {}
    for workers in ("1", "2"):
        out = tmp_path / f"out{workers}"
        argv = ["match", str(note_dir), "-o", str(out), "--workers", workers]
        rc, _, err = _run_main([*argv, "--budget", CLI_BUDGET], capsys)
        assert rc == 0, err
        outs[workers] = {p.name: p.read_bytes() for p in out.glob("*.json")}
    assert sorted(outs["1"]) == ["a.json", "b.json", "c.json", "match.json"]
    assert outs["1"] == outs["2"]


# --------------------------------------------------------------------------- evaluate

EVAL_NOTES = {
    "keyboard_synthetic_000-060-100": (60, [1, 2, 1, 1, 1], [1.2, 0.5, 0, 0, 0]),
    "organ_synthetic_001-048-100": (48, [1, 1, 3, 1, 1], [0, 0, 1.5, 0, 0]),
    "flute_synthetic_002-072-100": (72, [2, 1, 1, 1, 1], [0.7, 0, 0, 0, 0]),
}


@pytest.fixture
def nsynth_like(tmp_path):
    """A tiny NSynth-layout folder of fmlib-rendered notes (16 kHz, 4 s)."""
    root = tmp_path / "set"
    (root / "audio").mkdir(parents=True)
    index = {}
    for name, (pitch, ratios, indices) in EVAL_NOTES.items():
        f0 = 440.0 * 2 ** ((pitch - 69) / 12)
        x = fmlib.render(make_patch(f0, ratios, indices, (0.02, 0.3, 0.6, 0.3), 0.6))
        write_wav(root / "audio" / f"{name}.wav", x, fmlib.SAMPLE_RATE)
        index[name] = {"note_str": name, "pitch": pitch, "velocity": 100}
    (root / "examples.json").write_text(json.dumps(index))
    return root


@pytest.mark.slow
def test_evaluate_method_match(nsynth_like, tmp_path, capsys):
    out = tmp_path / "res"
    argv = ["evaluate", "--method", "match", "--data", str(nsynth_like)]
    argv += ["--out", str(out), "--limit", "2", "--budget", CLI_BUDGET]
    rc, stdout, err = _run_main(argv, capsys)
    assert rc == 0, err
    rows = pd.read_csv(out / "notes.csv", keep_default_na=False, na_values=[""])
    assert len(rows) == 2 and set(rows.status) == {"ok"}
    assert (rows.resynth_f0_error_cents.abs() <= PITCH_TOL_CENTS).all()
    # the carrier may be f0/2, f0 or 2 f0 (harmonic-locked): octave-folded
    folded = (rows.pitch_error_cents + 600) % 1200 - 600
    assert (folded.abs() <= PITCH_TOL_CENTS).all()
    assert (rows.resynthesis_logmel < rows.sine_pitch_env_logmel).all()
    t6 = pd.read_csv(out / "table6_means.csv", index_col="metric")
    for column in ("resynthesis", "sine_440", "sine_pitch", "sine_pitch_env"):
        assert column in t6.columns
    assert "const_patch" in t6.columns
    assert "improvement_vs_const_patch_pct" in t6.columns
    assert "MSS (Hayes et al.) [dB]" in t6.index
    assert np.isfinite(t6.loc["MSS (Hayes et al.) [dB]", "resynthesis"])
    assert t6.loc["Log Mel (raw)", "resynthesis"] < t6.loc["Log Mel (raw)", "sine_440"]
    md = (out / "table6_means.md").read_text()
    assert "const_patch" in md and "MSS" in md
    ident = json.loads((out / "evaluation.json").read_text())
    assert ident["estimator"]["method"] == "match"
    assert ident["estimator"]["budget"] == int(CLI_BUDGET)
    assert "results:" in stdout
