"""fmnet: targets (audibility, canonical order, carrier multiples), the masked loss,
metrics, a tiny model's training and round trip, and the model-folder plumbing."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from fmlib.errors import InputError
from fmlib.estimate import fmnet_targets as T
from fmlib.synth import params as P


def _vector(ratios, indices, carrier=440.0, env=(0.01, 0.1, 0.5, 0.2)):
    return np.array([carrier, *ratios, *indices, *env], dtype=np.float64)


# --------------------------------------------------------------------------- targets
def test_audibility_follows_the_path_to_the_carrier():
    # dx7_18: M5 -> M4 -> M3 -> C, M1 -> C, M2 -> C. M4's index is ~0.
    v = _vector([1, 2, 3, 4, 5], [1.0, 0.01, 2.0, 0.0, 3.0])
    ratio_ok, index_ok = T.audibility(v[None], algorithm="dx7_18")
    assert ratio_ok[0].tolist() == [True, False, True, False, False]
    # index_4 is itself ~0 (heard as "no modulation"); index_5 sits behind it.
    assert index_ok[0].tolist() == [True, True, True, True, False]
    ratio_ok, index_ok = T.audibility(v[None], algorithm="serial")
    # serial: M5 -> M4 -> M3 -> M2 -> M1 -> C; M2 (index 0.01) mutes M3..M5.
    assert ratio_ok[0].tolist() == [True, False, False, False, False]
    assert index_ok[0].tolist() == [True, True, False, False, False]


def test_canonical_order_puts_the_audible_interchangeable_modulator_first():
    quiet_first = _vector([1, 3, 1, 1, 1], [0.0, 2.0, 1, 1, 1])
    out = T.canonical_order(quiet_first[None], algorithm="dx7_18")[0]
    assert out[1:3].tolist() == [3, 1] and out[6:8].tolist() == [2.0, 0.0]
    both = _vector([5, 2, 1, 1, 1], [1.0, 2.0, 1, 1, 1])
    out = T.canonical_order(both[None], algorithm="dx7_18")[0]
    assert out[1:3].tolist() == [2, 5] and out[6:8].tolist() == [2.0, 1.0]
    serial = T.canonical_order(both[None], algorithm="serial")[0]
    np.testing.assert_array_equal(serial, both)


def test_carrier_multiples_and_labels():
    f0 = np.full(400, 100.0)
    carriers = np.r_[np.full(200, 100.0), np.full(150, 250.0), np.full(50, 173.0)]
    mult = T.fit_multiples(carriers, f0, min_share=0.1)
    assert 1.0 in mult and 2.5 in mult and len(mult) == 2  # 1.73 is rare here
    lab = T.carrier_labels(
        np.array([100.0, 250.4, 173.0, 100.0]), [100, 100, 100, np.nan], mult
    )
    assert lab.tolist() == [mult.index(1.0), mult.index(2.5), -1, -1]


def test_match_permutation_scores_swapped_interchangeable_modulators_as_exact():
    truth = _vector([2, 5, 1, 3, 4], [1.0, 2.0, 0.5, 0.6, 0.7])
    swapped = _vector([5, 2, 1, 3, 4], [2.0, 1.0, 0.5, 0.6, 0.7])
    rng = np.random.default_rng(0)
    t = np.tile(truth, (10, 1)) * rng.uniform(0.9, 1.1, (10, 15))
    p = t.copy()
    p[:, [1, 2, 6, 7]] = t[:, [2, 1, 7, 6]]  # every prediction has M1, M2 swapped
    m = T.parameter_metrics(p, t, algorithm="dx7_18")
    assert m["ratio_1"]["r2"] == pytest.approx(1.0) and m["index_2"]["r2"] == 1.0
    assert m["carrier_hz"]["median_cents"] == 0.0
    fixed = T.match_permutation(swapped[None], truth[None], algorithm="dx7_18")[0]
    np.testing.assert_array_equal(fixed, truth)


def test_make_targets_masks_inaudible_ratios_and_indices():
    from fmlib.estimate.fmnet import make_targets

    v = _vector([1, 2, 3, 4, 5], [1.0, 2.0, 2.0, 0.0, 3.0])[None]
    t = make_targets(v, np.array([440.0]), [1.0, 2.0], algorithm="dx7_18")
    assert t["carrier"].tolist() == [0]
    assert t["ratios"][0, 3] == -1 and t["ratios"][0, 4] == -1
    assert t["ratios"][0, 0] == list(P.DISCRETE_RATIOS).index(1.0)
    assert np.isnan(t["indices"][0, 4]) and t["indices"][0, 3] == 0.0
    assert t["indices"][0, 1] == pytest.approx(2.0 / 8)
    assert t["adsr"][0, 2] == pytest.approx(P.SUSTAIN.to_unit(0.5))
    unmasked = make_targets(
        v, np.array([440.0]), [1.0], algorithm="dx7_18", mask_inaudible=False
    )
    assert np.all(unmasked["ratios"] >= 0) and np.all(np.isfinite(unmasked["indices"]))


# --------------------------------------------------------------------------- losses
def test_masked_losses_ignore_masked_targets():
    import keras

    from fmlib.estimate.fmnet import masked_mse

    loss = masked_mse()
    y = np.array([[0.5, np.nan, 0.2]], dtype=np.float32)
    a = np.array([[0.4, 0.9, 0.2]], dtype=np.float32)
    b = np.array([[0.4, 0.0, 0.2]], dtype=np.float32)  # differs at the masked slot
    c = np.array([[0.0, 0.9, 0.2]], dtype=np.float32)  # differs at a target
    la, lb, lc = (float(loss(y, x)) for x in (a, b, c))
    assert la == pytest.approx(0.01 / 2)  # mean over the 2 unmasked targets
    assert la == lb and lc > la
    ce = keras.losses.SparseCategoricalCrossentropy(ignore_class=-1)
    labels = np.array([[0, -1]])
    p1 = np.array([[[0.7, 0.3], [0.9, 0.1]]], dtype=np.float32)
    p2 = np.array([[[0.7, 0.3], [0.1, 0.9]]], dtype=np.float32)
    p3 = np.array([[[0.3, 0.7], [0.9, 0.1]]], dtype=np.float32)
    assert float(ce(labels, p1)) == pytest.approx(float(ce(labels, p2)))
    assert float(ce(labels, p3)) > float(ce(labels, p1))


# --------------------------------------------------------------------------- model
TINY_FMNET = {"hidden": [16], "epochs": 2, "batch_size": 16, "conv_filters": [4]}


@pytest.fixture(scope="module")
def tiny_fmnet(tiny_dataset, tmp_path_factory):
    from fmlib.estimate.fmnet import train_fmnet

    root = tmp_path_factory.mktemp("fmnet")
    out = root / "model"
    train_fmnet(
        tiny_dataset,
        tiny_dataset,
        out,
        config=TINY_FMNET,
        seed=0,
        features_dir=root / "features",
        progress=False,
    )
    return out


@pytest.mark.slow
def test_tiny_fmnet_trains_saves_and_round_trips(tiny_fmnet, tiny_dataset):
    from fmlib.datasets.dataset_reader import open_dataset
    from fmlib.estimate.fmnet import FMNetPredictor, predict_arrays
    from fmlib.estimate.predict import load_predictor

    meta = json.loads((tiny_fmnet / "model.json").read_text())
    assert meta["kind"] == "fmnet" and meta["complete"] is True
    assert not (tiny_fmnet / "checkpoint").exists()
    assert set(meta["test_metrics"]) == set(P.TARGET_NAMES)
    pred = load_predictor(tiny_fmnet)
    assert isinstance(pred, FMNetPredictor)
    x = open_dataset(tiny_dataset).read([0, 1])
    patches = pred.predict_patches(x)
    assert len(patches) == 2 and all(p.algorithm == "dx7_18" for p in patches)
    # The saved model gives the trained outputs (safe_mode load, no custom objects).
    _, feats, _ = pred.analyse(x)
    again = load_predictor(tiny_fmnet)
    a, b = predict_arrays(pred.model, feats), predict_arrays(again.model, feats)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    single = pred.predict_patches(x[:1])[0]  # batch equals single
    np.testing.assert_allclose(single.to_vector(), patches[0].to_vector(), rtol=1e-5)


@pytest.mark.slow
def test_rerun_returns_the_finished_model_and_refuses_other_settings(
    tiny_fmnet, tiny_dataset, tmp_path
):
    from fmlib.estimate.fmnet import train_fmnet

    before = (tiny_fmnet / "model.keras").read_bytes()
    meta = train_fmnet(
        tiny_dataset,
        tiny_dataset,
        tiny_fmnet,
        config=TINY_FMNET,
        seed=0,
        features_dir=tmp_path / "unused",
        progress=False,
    )
    assert meta["complete"] and (tiny_fmnet / "model.keras").read_bytes() == before
    with pytest.raises(InputError, match="trained otherwise"):
        train_fmnet(
            tiny_dataset,
            tiny_dataset,
            tiny_fmnet,
            config=TINY_FMNET,
            seed=1,
            progress=False,
        )


def test_config_rejects_unknown_keys_and_archs():
    from fmlib.estimate.fmnet import merge_config

    with pytest.raises(InputError, match="unknown key 'nope'"):
        merge_config({"nope": 1})
    with pytest.raises(InputError, match="valid: mlp, conv"):
        merge_config({"arch": "rnn"})


@pytest.mark.slow
def test_model_folder_kinds_are_checked(tiny_fmnet, tmp_path):
    from fmlib.estimate.predict import check_model_folder

    meta, _ = check_model_folder(tiny_fmnet)
    assert meta["kind"] == "fmnet"
    bad = tmp_path / "bad"
    shutil.copytree(tiny_fmnet, bad)
    meta["kind"] = "transformer"
    (bad / "model.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match="unknown model kind 'transformer'"):
        check_model_folder(bad)


# --------------------------------------------------------------------------- shipped
def _run_cli(args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "fmlib", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_predict_without_a_model_uses_the_shipped_one_from_any_folder(tmp_path):
    from fmlib.audio.audio_io import write_wav
    from fmlib.paths import SHIPPED_MODEL_DIR
    from fmlib.synth.engine import render
    from fmlib.synth.patch import load_patch, patch_from_vector

    assert (SHIPPED_MODEL_DIR / "model.keras").is_file()
    assert (SHIPPED_MODEL_DIR / "model.keras").stat().st_size <= 5 * 2**20
    patch = patch_from_vector(_vector([1, 2, 3, 1, 1], [1.0, 0.5, 0.3, 0.2, 0.1]))
    wav = tmp_path / "note.wav"
    write_wav(wav, render(patch), P.SAMPLE_RATE)
    work = tmp_path / "elsewhere"
    work.mkdir()
    r = _run_cli(["predict", str(wav), "-o", "p.json"], cwd=work)
    assert r.returncode == 0, r.stderr
    out = load_patch(work / "p.json")
    assert abs(1200 * np.log2(out.carrier_hz / 440.0)) < 1200  # some pitch, valid
    # Bad input: exit 2 and one line on stderr.
    junk = tmp_path / "junk.wav"
    junk.write_text("not audio")
    r = _run_cli(["predict", str(junk), "-o", "q.json"], cwd=work)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), r.stderr
    assert not (work / "q.json").exists()
    r = _run_cli(["predict", "a", "b", "c", "-o", "q.json"], cwd=work)
    assert r.returncode == 2 and "expected [MODEL_DIR] INPUT" in r.stderr


def test_shipped_model_folder_is_complete_and_small():
    from fmlib.estimate.predict import check_model_folder
    from fmlib.paths import SHIPPED_MODEL_DIR

    meta, path = check_model_folder(SHIPPED_MODEL_DIR)
    assert meta["kind"] == "fmnet"
    assert path.stat().st_size <= 5 * 2**20
    assert (SHIPPED_MODEL_DIR / "MODEL_CARD.md").is_file()


def test_match_start_model_defaults_to_the_shipped_one():
    from fmlib.estimate.estimators import start_model
    from fmlib.paths import SHIPPED_MODEL_DIR

    assert start_model(None) == SHIPPED_MODEL_DIR
    assert start_model("m") == "m"
    assert start_model(None, no_model=True) is None
    with pytest.raises(InputError, match="not both"):
        start_model("m", no_model=True)


def test_train_fmnet_command_checks_its_arguments(tiny_dataset, tmp_path, capsys):
    from fmlib.cli import main

    args = ["train", "--arch", "fmnet", "--data", str(tiny_dataset)]
    assert main([*args, "--out", str(tmp_path / "m")]) == 2
    assert "give the test notes (--test-data" in capsys.readouterr().err
    bad = [
        *args,
        "--test-data",
        str(tmp_path / "nothing"),
        "--out",
        str(tmp_path / "m"),
    ]
    assert main(bad) == 2
    assert "no such" in capsys.readouterr().err
    over = [*args, "--test-data", str(tiny_dataset), "--limit", "9999"]
    assert main([*over, "--out", str(tmp_path / "m")]) == 2
    assert "n: 9,999 is not valid" in capsys.readouterr().err


@pytest.mark.slow
def test_evaluate_without_a_model_uses_the_shipped_one(nsynth_dev_dir, tmp_path):
    from fmlib.evaluation.evaluate import evaluate

    out = evaluate(None, nsynth_dev_dir, tmp_path / "e", limit=2, progress=False)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["estimator"]["model_kind"] == "fmnet"
    assert summary["n_ok"] == 2
