"""Training: the paper's split, a tiny run, saving, results files and resumption."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import TINY_CONFIG

from fmlib.cli import main
from fmlib.errors import InputError
from fmlib.estimate import train as T
from fmlib.estimate.model import TargetScaler, canonicalize

TINY = TINY_CONFIG


@pytest.fixture
def dataset_dir(tiny_dataset):
    return tiny_dataset


@pytest.fixture
def trained(tiny_model):
    return tiny_model


def test_paper_split_sizes_disjoint_and_seeded():
    s = T.split_indices(5000, seed=0)
    assert [len(s[k]) for k in ("train", "val", "test")] == [3000, 750, 1250]
    allidx = np.concatenate(list(s.values()))
    assert len(np.unique(allidx)) == 5000 and allidx.min() == 0 and allidx.max() == 4999
    again = T.split_indices(5000, seed=0)
    other = T.split_indices(5000, seed=1)
    for k in s:
        np.testing.assert_array_equal(s[k], again[k])
        assert np.all(np.diff(s[k]) > 0)  # sorted
    assert not np.array_equal(s["test"], other["test"])
    with pytest.raises(InputError):
        T.split_indices(2, seed=0)


def test_pooled_metrics_and_cents_known_values():
    pred = np.zeros((2, 15))
    truth = np.zeros((2, 15))
    truth[0, 0] = 30.0  # one error of 30 over 30 values
    m = T.pooled_metrics(pred, truth)
    assert m["MSE"] == pytest.approx(900 / 30)
    assert m["RMSE"] == pytest.approx(np.sqrt(30))
    assert m["MAE"] == pytest.approx(1.0)
    cents = T.carrier_cents([880.0, 440.0, 5.0], [440.0, 440.0, 40.0])
    np.testing.assert_allclose(cents, [1200.0, 0.0, 1200.0])  # 5 Hz clipped to 20


def test_tiny_run_trains_and_writes_every_result(trained, dataset_dir):
    h = pd.read_csv(trained / T.HISTORY_CSV)
    assert list(h["epoch"]) == [0, 1, 2]
    assert h["loss"].iloc[-1] < h["loss"].iloc[0]
    assert h["mse"].iloc[-1] < h["mse"].iloc[0]
    for name in T._OWN_FILES:
        if not name.startswith("fig"):  # the figures are the train command's
            assert (trained / name).is_file(), name
    assert not (trained / T.CHECKPOINT_DIR).exists()
    meta = json.loads((trained / T.MODEL_JSON).read_text())
    assert meta["complete"] and meta["seed"] == 0 and meta["epochs_run"] == 3
    assert meta["split"] == {"train": 38, "val": 10, "test": 16}
    assert meta["config"]["conv_filters"] == [4, 8, 8]
    assert meta["algorithm"] == "dx7_18"
    from fmlib.datasets.dataset import open_dataset

    ds = open_dataset(dataset_dir)
    assert meta["dataset_manifest_hash"] == ds.manifest_hash
    # the scaler is fitted on the canonical training targets only
    split = T.load_split(trained)
    v = canonicalize(ds.vectors(), algorithm="dx7_18")
    ref = TargetScaler().fit(v[split["train"]])
    np.testing.assert_allclose(meta["scaler"]["mean"], ref.mean)
    np.testing.assert_array_equal(split["test"], T.split_indices(64, seed=0)["test"])
    t4 = pd.read_csv(trained / "table4_last_epochs.csv")
    assert list(t4["epoch"]) == [1, 2, 3]
    t5 = pd.read_csv(trained / "table5_test_metrics.csv")
    assert list(t5["metric"]) == ["RMSE", "MSE", "MAE"]
    # Table 5 recomputed from the saved test predictions
    preds = pd.read_csv(trained / "test_predictions.csv")
    truth = v[preds["note"].to_numpy()]
    m = T.pooled_metrics(preds.drop(columns="note").to_numpy(), truth)
    np.testing.assert_allclose(t5["ours"], [m["RMSE"], m["MSE"], m["MAE"]], rtol=1e-9)
    assert (trained / "table5_test_metrics.md").read_text().startswith("| metric")


def test_train_command_draws_figures_10_11_with_plots(trained, tmp_path):
    from fmlib.cli.train_cli import plot_history_figures

    history = pd.read_csv(trained / T.HISTORY_CSV)
    paths = plot_history_figures(history, tmp_path)
    assert [p.name for p in paths] == ["fig10_mse.png", "fig11_mae.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in paths)


def test_saved_model_predicts_like_the_trained_one(trained, dataset_dir):
    from fmlib.datasets.dataset import open_dataset
    from fmlib.estimate.predict import load_predictor

    preds = pd.read_csv(trained / "test_predictions.csv")
    audio = open_dataset(dataset_dir).read(preds["note"].to_numpy())
    p1 = load_predictor(trained).predict_vectors(audio)
    p2 = load_predictor(trained).predict_vectors(audio)
    np.testing.assert_allclose(p1, p2, rtol=1e-5, atol=1e-6)  # TF: no bitwise promise
    np.testing.assert_allclose(p1, preds.drop(columns="note").to_numpy(), rtol=1e-5)


def test_ensure_model_reuses_and_train_refuses_other_settings(trained, dataset_dir):
    before = (trained / "model.keras").stat().st_mtime_ns
    assert T.ensure_model(dataset_dir, trained, config=TINY, seed=0) == trained
    assert (trained / "model.keras").stat().st_mtime_ns == before
    with pytest.raises(InputError, match="other settings.*seed"):
        T.train(dataset_dir, trained, config=TINY, seed=1)


def _history(folder):
    return pd.read_csv(folder / T.HISTORY_CSV).drop(columns="seconds")


@pytest.mark.slow
def test_resumed_run_equals_uninterrupted(dataset_dir, tmp_path, monkeypatch):
    """Training stopped after epoch 2 of 4 and resumed gives the history, weights and
    optimizer state of an uninterrupted run: dropout on, shuffled batches, last
    epoch's weights kept (no restore of the best). Measured difference on one CPU
    thread: 0.0; the tolerance allows TensorFlow's run-to-run float noise. Without
    the resumed shuffling epoch or the dropout seed state it fails (differences of
    about 3e-3 in the loss)."""
    import keras

    import fmlib.estimate.train_callbacks as TC

    cfg = {
        **TINY,
        "conv_filters": [2, 2, 2],
        "epochs": 4,
        "batch_size": 8,
        "dropout": 0.2,
        "restore_best_weights": False,
    }
    full = T.train(dataset_dir, tmp_path / "full", config=cfg, seed=0, verbose=0)

    class Stop(TC.Checkpoint):
        def on_epoch_end(self, epoch, logs=None):
            super().on_epoch_end(epoch, logs)
            if epoch == 1:
                raise KeyboardInterrupt

    out = tmp_path / "resumed"
    monkeypatch.setattr(TC, "Checkpoint", Stop)
    with pytest.raises(KeyboardInterrupt):
        T.train(dataset_dir, out, config=cfg, seed=0, verbose=0)
    monkeypatch.undo()
    assert not T.is_complete(out)
    first = _history(out)
    state = json.loads((out / T.CHECKPOINT_DIR / "state.json").read_text())
    assert list(first["epoch"]) == [0, 1] and state["epoch"] == 1
    T.ensure_model(dataset_dir, out, config=cfg, seed=0, verbose=0)
    assert json.loads((out / T.MODEL_JSON).read_text())["epochs_run"] == 4

    a, b = _history(full), _history(out)
    assert list(b["epoch"]) == [0, 1, 2, 3]
    pd.testing.assert_frame_equal(b.iloc[:2], first)
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-6, atol=1e-7)
    m_full = keras.saving.load_model(full / T.MODEL_FILE)
    m_res = keras.saving.load_model(out / T.MODEL_FILE)
    for x, y in zip(m_full.get_weights(), m_res.get_weights(), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)
    opt_full, opt_res = m_full.optimizer.variables, m_res.optimizer.variables
    assert int(opt_full[0].numpy()) == int(opt_res[0].numpy()) > 0  # iterations
    for x, y in zip(opt_full, opt_res, strict=True):
        np.testing.assert_allclose(x.numpy(), y.numpy(), rtol=1e-6, atol=1e-7)
    # the same test predictions, so the same tables
    pd.testing.assert_frame_equal(
        pd.read_csv(full / "test_predictions.csv"),
        pd.read_csv(out / "test_predictions.csv"),
        check_exact=False,
        rtol=1e-5,
    )


def test_cli_errors_exit_2(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path / "nope"), "--out", "x"]) == 2
    assert "no such dataset folder" in capsys.readouterr().err
    assert main(["train", "--data", str(tmp_path), "--out", "x", "--epochs", "0"]) == 2
    assert "--epochs" in capsys.readouterr().err


@pytest.mark.slow
def test_a_folder_being_trained_by_a_live_process_is_refused(dataset_dir, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "busy"
    out.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from fmlib import files\n"
            "with files.folder_lock(sys.argv[1], command='train'):\n"
            "    print('locked', flush=True); time.sleep(60)\n",
            str(out),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(InputError, match="another train run is writing"):
            T.ensure_model(dataset_dir, out, config={**TINY, "epochs": 1}, seed=0)
    finally:
        holder.kill()
        holder.wait()
    # the kernel released the killed process's lock
    T.ensure_model(dataset_dir, out, config={**TINY, "epochs": 1}, seed=0, verbose=0)
    assert T.is_complete(out)
