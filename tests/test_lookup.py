"""The table lookup (fmlib.estimate.lookup) and fmnet design C's training data
(fmlib.estimate.fmnet_table): known values, round trips, determinism."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fmlib.audio import harmonic_features as HF
from fmlib.errors import InputError
from fmlib.estimate import fmnet_table as FT
from fmlib.estimate import lookup as L
from fmlib.synth import params as P

NB = HF.SLICES["wide"].stop


def test_an_entrys_own_features_find_it_at_distance_zero():
    tab = L.table()
    f0 = np.array([110.0, 261.6, 880.0])
    picks = np.array([7, 1234, 4321])
    bands = np.stack([L.table_features(f)[k] for f, k in zip(f0, picks, strict=True)])
    idx, dist = L.nearest_entries(bands, f0, k=3)
    assert idx.shape == dist.shape == (3, 3)
    np.testing.assert_allclose(dist[:, 0], 0.0, atol=1e-12)
    for f, k, i in zip(
        f0, picks, idx[:, 0], strict=True
    ):  # the entry or one that reads the same
        np.testing.assert_allclose(
            L.table_features(f)[i], L.table_features(f)[k], atol=1e-9
        )
    assert np.all(np.diff(dist, axis=1) >= 0)
    assert tab.power.shape[0] == 4543  # 4,000 random + 543 structured entries


def test_feature_distance_is_the_weighted_square():
    a = np.array([[1.0, 0.0], [0.5, 0.5]])
    b = np.array([[0.0, 0.0]])
    np.testing.assert_allclose(L.feature_distance(a, b), [[1.0, 0.0625 * 2]])


def test_nearest_entries_checks_its_input():
    with pytest.raises(InputError, match="expected shapes"):
        L.nearest_entries(np.zeros((2, 5)), np.array([100.0, 200.0]))
    with pytest.raises(InputError, match="positive"):
        L.nearest_entries(np.zeros((1, NB)), np.array([0.0]))


@pytest.mark.slow
def test_lookup_recovers_a_rendered_table_patch():
    """A note rendered from a table entry comes back as a patch that sounds like it:
    the same carrier multiple and spectrum, and a small log-mel distance."""
    from fmlib.audio.metrics import logmel_distance
    from fmlib.estimate.estimators import LookupEstimator
    from fmlib.synth.engine import render
    from fmlib.synth.patch import patch_from_vector

    tab = L.table()
    f0 = 220.0
    k = 1500
    v = [tab.carrier_multiple[k] * f0, *tab.ratios[k], *tab.indices[k]]
    x = render(patch_from_vector([*v, 0.02, 0.4, 0.6, 0.3], algorithm="dx7_18"))
    p = L.lookup_note(x)
    assert p.carrier_hz / f0 == pytest.approx(tab.carrier_multiple[k], rel=2e-3)
    y = render(p)
    assert logmel_distance(x, y) < 0.25 * logmel_distance(x, np.zeros_like(x) + 1e-9)
    assert p.to_dict() == L.lookup_note(x).to_dict()  # deterministic
    got = LookupEstimator().estimate(np.stack([x, np.zeros_like(x)]))
    assert got[0].to_dict() == p.to_dict() and isinstance(got[1], Exception)


def test_mix_bands_mixes_shares_and_is_seeded():
    rng = np.random.default_rng(0)
    f = rng.uniform(0, 1, (10, HF.N_FEATURES)).astype(np.float32)
    f[:, 80:NB] = 0.0  # bands above 8 kHz
    a, rows = FT.mix_bands(f, n=20, seed=3)
    b, rows_b = FT.mix_bands(f, n=20, seed=3)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(rows, rows_b)
    assert a.shape == (20, HF.N_FEATURES) and a.dtype == np.float32
    shares = HF.band_shares(a[:, :NB])
    np.testing.assert_allclose(shares.sum(axis=1), 1.0, atol=1e-4)
    assert np.all(a[:, 80:NB] == 0.0)
    np.testing.assert_array_equal(a[:, NB:], f[rows, NB:])  # envelope, scalars of a
    c, _ = FT.mix_bands(f, n=20, seed=4)
    assert not np.array_equal(a, c)


def test_entry_vectors_put_the_carrier_on_its_multiple():
    tab = L.table()
    v = FT.entry_vectors([0, 100], [200.0, 300.0], [[0.01, 0.1, 0.5, 0.2]] * 2)
    assert v.shape == (2, len(P.TARGET_NAMES))
    np.testing.assert_allclose(v[:, 0], tab.carrier_multiple[[0, 100]] * [200, 300])
    np.testing.assert_allclose(v[1, 1:6], tab.ratios[100])
    np.testing.assert_allclose(v[1, 6:11], tab.indices[100])


@pytest.mark.slow
def test_tiny_table_design_trains_and_predicts(tiny_dataset, tmp_path):
    from fmlib.datasets.dataset_reader import open_dataset
    from fmlib.estimate.fmnet import FMNetPredictor, train_fmnet
    from fmlib.estimate.predict import load_predictor

    out = tmp_path / "model"
    config = {
        "hidden": [16],
        "epochs": 2,
        "batch_size": 16,
        "head": "table",
        "augment_mix": 1.0,
    }
    train_fmnet(
        tiny_dataset,
        tiny_dataset,
        out,
        config=config,
        seed=0,
        features_dir=tmp_path / "features",
        progress=False,
    )
    meta = json.loads((out / "model.json").read_text())
    assert meta["complete"] and meta["config"]["head"] == "table"
    assert meta["n_train_augmented"] == meta["n_train"]
    classes = meta["classes"]
    assert classes == sorted(set(classes)) and len(classes) >= 2
    pred = load_predictor(out)
    assert isinstance(pred, FMNetPredictor)
    x = open_dataset(tiny_dataset).read([0, 1])
    patches = pred.predict_patches(x)
    tab = L.table()
    f0, _, _ = pred.analyse(x)
    for p, f in zip(patches, f0, strict=True):  # every patch is a table entry on f0
        m = p.carrier_hz / f
        assert np.min(np.abs(tab.carrier_multiple - m)) < 1e-6
    with pytest.raises(InputError, match="head"):
        train_fmnet(
            tiny_dataset,
            tiny_dataset,
            tmp_path / "x",
            config={"head": "nope"},
            progress=False,
        )


@pytest.mark.slow
def test_evaluate_method_lookup_and_its_bad_arguments(nsynth_dev_dir, tmp_path, capsys):
    from fmlib.cli import main

    out = tmp_path / "e"
    args = ["evaluate", "--method", "lookup", "--data", str(nsynth_dev_dir)]
    assert main([*args, "--out", str(out), "--limit", "2"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["estimator"] == {"method": "lookup", "table": L.TABLE_ARGS}
    assert summary["n_ok"] == 2
    capsys.readouterr()
    bad = tmp_path / "bad"
    assert main([*args, "--out", str(bad), "--model", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--method lookup" in err[0]
    assert not bad.exists()


def test_table_features_depend_on_f0_only_through_the_cutoff():
    """Cached by cutoff: another f0 with the same cutoff reads the same features as
    computing them afresh at that f0."""
    tab = L.table()
    for f0, g0 in ((200.0, 200.3), (1000.0, 1001.0)):
        assert L._cutoff_key(f0, 257) == L._cutoff_key(g0, 257)
        fresh = HF.band_features(HF.line_band_powers(tab.power, g0))
        np.testing.assert_allclose(L.table_features(f0), fresh, atol=1e-6)
        assert L.table_features(g0) is L.table_features(f0)
    assert L._cutoff_key(200.0, 257) != L._cutoff_key(1000.0, 257)
