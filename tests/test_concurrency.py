"""Two runs into one folder, and a run killed half-way: real processes.

- Two ``generate`` runs into one folder: the second is refused with one line while
  the first holds the folder; the dataset ends complete and verified, and a rerun
  reuses it.
- Two ``train`` runs into one folder: the same.
- ``evaluate`` killed (SIGKILL) after its first notes, then rerun: it resumes, every
  note appears once, and the tables equal those of an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from fmlib.paths import PROJECT_ROOT

pytestmark = pytest.mark.slow


def _fmlib(*args, **kwargs) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT))
    return subprocess.Popen(
        [sys.executable, "-m", "fmlib", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=PROJECT_ROOT,
        env=env,
        **kwargs,
    )


def _wait_for(path: Path, *, timeout_s: float = 120.0, proc=None) -> None:
    t0 = time.monotonic()
    while not path.exists():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(
                f"process ended before {path} appeared: {proc.stderr.read()}"
            )
        if time.monotonic() - t0 > timeout_s:
            raise AssertionError(f"{path} did not appear")
        time.sleep(0.05)


def _one_error_line(stderr: str, text: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and text in lines[0], (
        stderr
    )


def test_two_generate_runs_into_one_folder(tmp_path):
    from fmlib.datasets.dataset import open_dataset

    out = tmp_path / "ds"
    args = ("generate", "--n", 1500, "--seed", 4, "--workers", 1, "--shard-size", 100)
    first = _fmlib(*args, "--out", out, "--quiet")
    _wait_for(out / "manifest.json", proc=first)  # written under the folder's lock
    second = _fmlib(*args, "--out", out, "--quiet")
    _, err2 = second.communicate(timeout=300)
    out1, err1 = first.communicate(timeout=600)
    assert first.returncode == 0, err1
    assert second.returncode == 2
    _one_error_line(err2, "another generate run is writing this folder")
    ds = open_dataset(out)
    assert ds.n == 1500 and ds.verify() == []
    third = _fmlib(*args, "--out", out, "--quiet")
    out3, err3 = third.communicate(timeout=300)
    assert third.returncode == 0, err3
    assert open_dataset(out).manifest_hash == ds.manifest_hash


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    from fmlib.datasets.dataset import generate_dataset

    root = tmp_path_factory.mktemp("conc")
    return generate_dataset(root / "ds", n=40, seed=5, workers=1, progress=False)


@pytest.fixture(scope="module")
def trained(small_dataset, tmp_path_factory):
    """Two ``train`` runs into one folder; the folder they leave."""
    out = tmp_path_factory.mktemp("conc-model") / "model"
    args = ("train", "--data", small_dataset, "--epochs", 2, "--batch-size", 8)
    first = _fmlib(*args, "--out", out)
    _wait_for(out / ".lock", proc=first)
    second = _fmlib(*args, "--out", out)
    _, err2 = second.communicate(timeout=300)
    out1, err1 = first.communicate(timeout=900)
    assert first.returncode == 0, err1
    return out, second.returncode, err2, err1


def test_two_train_runs_into_one_folder(trained, small_dataset):
    from fmlib.estimate.predict import load_predictor
    from fmlib.estimate.train import is_complete

    out, code2, err2, err1 = trained
    assert code2 == 2
    _one_error_line(err2, "another train run is writing this folder")
    assert is_complete(out)
    assert "oneDNN" not in err1 and "absl::InitializeLog" not in err1  # TF's log
    load_predictor(out)
    again = _fmlib(
        "train", "--data", small_dataset, "--epochs", 2, "--batch-size", 8,
        "--out", out,
    )  # fmt: skip
    stdout, stderr = again.communicate(timeout=300)
    assert again.returncode == 0, stderr
    assert "reusing model" in stdout


def _nsynth_folder(root: Path, n: int) -> Path:
    from fmlib.datasets.sampler import sample_vectors
    from fmlib.synth.engine import render
    from fmlib.synth.patch import patch_from_vector

    (root / "audio").mkdir(parents=True)
    notes = {}
    for i, v in enumerate(sample_vectors(n, seed=11)):
        name = f"keyboard_synthetic_{i:03d}-{40 + i:03d}-100"
        notes[name] = {"pitch": 40 + i, "velocity": 100}
        sf.write(root / "audio" / f"{name}.wav", render(patch_from_vector(v)), 16_000)
    (root / "examples.json").write_text(json.dumps(notes))
    return root


def test_evaluate_killed_and_rerun(trained, tmp_path):
    model = trained[0]
    data = _nsynth_folder(tmp_path / "data", 12)
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    args = ("evaluate", "--model", model, "--data", data, "--batch-size", 1)
    run = _fmlib(*args, "--out", killed)
    notes = killed / "notes.csv"
    t0 = time.monotonic()
    while True:  # wait for the first complete rows, then kill without warning
        if notes.is_file() and len(notes.read_text().splitlines()) >= 3:
            break
        assert run.poll() is None, run.stderr.read()
        assert time.monotonic() - t0 < 300
        time.sleep(0.02)
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    rows_at_kill = len(pd.read_csv(notes))
    assert 2 <= rows_at_kill < 12
    rerun = _fmlib(*args, "--out", killed)
    _, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err
    ref = _fmlib(*args, "--out", whole)
    _, err = ref.communicate(timeout=600)
    assert ref.returncode == 0, err

    done = pd.read_csv(notes)
    ok = done[done["status"] == "ok"]
    assert sorted(ok["note_str"]) == sorted(
        json.loads((data / "examples.json").read_text())
    )
    assert ok["note_str"].is_unique
    summary = json.loads((killed / "summary.json").read_text())
    assert summary["this_run"]["notes"] == 12 - rows_at_kill
    for stem in ("table6_means", "table7_std", "table8_family_means"):
        a = pd.read_csv(killed / f"{stem}.csv", index_col=0)
        b = pd.read_csv(whole / f"{stem}.csv", index_col=0)
        # TensorFlow does not promise bit-equal predictions across processes
        np.testing.assert_allclose(a.to_numpy(float), b.to_numpy(float), rtol=1e-4)
    leftovers = [p.name for p in killed.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []
