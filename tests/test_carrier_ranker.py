"""Carrier candidates (fmlib.audio.carrier_peaks) and the carrier ranker."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fmlib.audio import carrier_peaks as CP
from fmlib.estimate import carrier_ranker as CR
from fmlib.synth.engine import render

SR = 16_000
FLAT = {"attack_s": 0.01, "decay_s": 0.1, "sustain": 1.0, "release_s": 0.2}


def _fm(carrier_hz, ratio, index):
    return render(
        {
            "algorithm": "dx7_18",
            "carrier_hz": carrier_hz,
            "modulators": [{"ratio": ratio, "index": index}]
            + [{"ratio": 1.0, "index": 0.0}] * 4,
            "envelope": FLAT,
        }
    )


def test_a_sine_is_its_own_loudest_candidate_read_at_x_1():
    t = np.arange(4 * SR) / SR
    c = CP.candidate_features(0.5 * np.sin(2 * np.pi * 440.0 * t))
    assert c.features.shape == (CP.N_CANDIDATES, CP.N_FEATURES)
    assert abs(1200 * np.log2(c.freqs_hz[0] / 440.0)) < 0.5
    row = c.features[0]
    assert row[0] == pytest.approx(np.log2(440.0 / 440.0), abs=1e-3)
    assert row[1] == 0.0  # the loudest bin
    # coarse cell 16 covers [1, 17/16) x c: the candidate itself, 0 dB
    assert row[CP.SLICES["coarse"]][16] == pytest.approx(0.0, abs=0.01)
    # fine cells of c/128 from 0.75 c: cell 32 starts at c
    assert row[CP.SLICES["fine"]][32] == pytest.approx(0.0, abs=0.01)
    # far from the sine (2 c .. 8 c) the spectrum is at the floor
    assert np.all(row[CP.SLICES["coarse"]][40:128] <= -0.95)
    # padding rows are zero and masked
    n = int(c.mask.sum())
    assert c.mask[:n].all() and not c.mask[n:].any()
    assert not c.features[n:].any() and not c.freqs_hz[n:].any()


def test_the_sidebands_of_one_modulator_mirror_around_the_carrier():
    # ratio 1/2: sidebands at c +- c/2 (offset j = 16 of c/32) with equal |J1|
    x = _fm(220.0, 0.5, 1.0)
    c = CP.candidate_features(x)
    cents = np.abs(1200 * np.log2(np.maximum(c.freqs_hz, 1e-3) / 220.0))
    j = int(np.argmin(cents))
    assert cents[j] < 2.0
    row = c.features[j]
    up, down, mis = (row[CP.SLICES[k]] for k in ("up", "down", "mismatch"))
    assert up[15] > -20 / CP.FLOOR_DB and down[15] > -20 / CP.FLOOR_DB
    assert mis[15] * CP.FLOOR_DB < 1.0  # within 1 dB of each other
    # seen from the upper sideband (330 Hz), offset 11/32 x 330 Hz (about 113 Hz)
    # reaches the J2 sideband above (440 Hz) and the carrier below (220 Hz):
    # |J0(1) / J2(1)| is 16.5 dB; at offset 16/32 both sides are at the floor
    k = int(np.argmin(np.abs(c.freqs_hz - 330.0)))
    assert abs(c.freqs_hz[k] - 330.0) < 0.5
    mis_k = c.features[k][CP.SLICES["mismatch"]] * CP.FLOOR_DB
    assert mis_k[10] == pytest.approx(16.5, abs=1.5)
    assert mis_k[15] == 0.0
    # a cell above the Nyquist limit is marked, not compared
    assert np.all(
        CP.candidate_features(_fm(3000.0, 0.5, 1.0)).features[0][CP.SLICES["mismatch"]][
            -1
        ]
        * CP.FLOOR_DB
        == -10.0
    )


def _loop_features(x):
    """The candidates' features one candidate at a time, with SciPy's running maximum
    and NumPy's reduceat: the implementation the vectorised one replaced, whose
    values the cached features of earlier runs hold."""
    from scipy.ndimage import maximum_filter1d

    db = CP.spectrum_db(x)
    freqs, levels = CP.peaks(db)
    scale, nyq = CP.N_FFT / SR, CP.N_FFT // 2
    filtered = {}

    def cells(c, edges):
        b = np.round(c * edges * scale).astype(np.int64)
        out = np.full(len(edges) - 1, CP.OUTSIDE_DB)
        bb = np.minimum(b, nyq)
        lo, hi = bb[:-1], np.maximum(bb[1:], bb[:-1] + 1)
        red = np.maximum.reduceat(db[lo[0] : hi[-1]], lo - lo[0])
        out[b[1:] <= nyq] = red[b[1:] <= nyq]
        return out

    def around(centers, half):
        lo = np.round((centers - half) * scale).astype(np.int64)
        hi = np.round((centers + half) * scale).astype(np.int64)
        ok = (lo >= 0) & (hi <= nyq)
        hb = max(int(round(2 ** (round(4 * np.log2(max(half * scale, 1))) / 4))), 1)
        if hb not in filtered:
            filtered[hb] = maximum_filter1d(db, 2 * hb + 1)
        out = np.full(len(centers), CP.OUTSIDE_DB)
        out[ok] = filtered[hb][np.round(centers * scale).astype(np.int64)[ok]]
        return out

    feats = np.zeros((CP.N_CANDIDATES, CP.N_FEATURES), np.float32)
    for j, (c, level) in enumerate(zip(freqs, levels, strict=True)):
        feats[j, :3] = np.log2(c / 440.0), level / CP.FLOOR_DB, j / CP.N_CANDIDATES
        feats[j, CP.SLICES["coarse"]] = cells(c, np.arange(129) / 16) / CP.FLOOR_DB
        feats[j, CP.SLICES["fine"]] = cells(c, 0.75 + np.arange(65) / 128) / 60.0
        d = np.arange(1, 97) / 32.0 * c
        up, down = around(c + d, c / 64), around(np.abs(c - d), c / 64)
        both = (up > CP.OUTSIDE_DB) & (down > CP.OUTSIDE_DB)
        feats[j, CP.SLICES["up"]] = up / CP.FLOOR_DB
        feats[j, CP.SLICES["down"]] = down / CP.FLOOR_DB
        feats[j, CP.SLICES["mismatch"]] = np.where(both, np.abs(up - down), -10) / 60
    return feats


@pytest.mark.parametrize(
    "carrier_hz, ratio, index", [(27.5, 7.3, 3.0), (220.0, 0.5, 1.0), (3000.0, 1.9, 5)]
)
def test_vectorised_features_equal_the_loop_over_candidates(carrier_hz, ratio, index):
    x = _fm(carrier_hz, ratio, index)
    x = x + 0.3 * np.random.default_rng(0).standard_normal(x.shape)  # many peaks
    c = CP.candidate_features(x)
    assert c.mask.sum() > 100
    assert np.array_equal(c.features, _loop_features(x))


def test_bad_audio_is_refused():
    with pytest.raises(ValueError, match="at least 48000"):
        CP.candidate_features(np.ones(1000))
    with pytest.raises(ValueError, match="silent"):
        CP.candidate_features(np.zeros(4 * SR))


def test_pitch_features_known_values():
    f = np.array([[330.0, 220.0 * 2 ** (60 / 1200), 0.0]])
    out = CR.pitch_features(f, np.array([220.0]))
    assert out.shape == (1, 3, 3)
    assert out[0, 0, 0] == pytest.approx(np.log2(1.5) / 4)
    assert out[0, 0, 1] == pytest.approx(0.0, abs=1e-9)  # 3/2 x f0
    assert out[0, 1, 1] == pytest.approx(
        0.6, abs=1e-6
    )  # 60 c above f0: q=8 grid is coarser
    assert np.all(out[0, :, 2] == pytest.approx(np.log2(0.5)))


def test_targets_take_the_nearest_real_candidate():
    f = np.array([[100.0, 200.0, 201.0], [100.0, 300.0, 0.0]])
    m = np.array([[True, True, False], [True, True, False]])
    idx, hit = CR.targets(f, m, np.array([201.0, 150.0]))
    assert idx.tolist() == [1, 0] and hit.tolist() == [True, False]


def _toy(n, seed):
    """Candidates whose carrier is marked by feature coarse[16] = 0 (else -1)."""
    rng = np.random.default_rng(seed)
    k = CP.N_CANDIDATES
    feats = rng.normal(0, 0.3, (n, k, CP.N_FEATURES)).astype(np.float16)
    feats[:, :, 3 + 16] = -1
    mask = np.zeros((n, k), bool)
    mask[:, :20] = True
    freqs = np.where(mask, rng.uniform(50, 4000, (n, k)), 0.0)
    truth = rng.integers(0, 20, n)
    feats[np.arange(n), truth, 3 + 16] = 0
    feats[~mask] = 0
    return feats, mask, freqs, np.full(n, 220.0), freqs[np.arange(n), truth]


def _train_toy(**config):
    """A small ranker trained for 15 epochs on 600 toy notes (seed 0)."""
    return CR.train_ranker(
        *_toy(600, 0),
        seed=0,
        config={"width": 32, "epochs": 15, "patience": 15, **config},
        verbose=0,
    )


def test_the_ranker_learns_a_marked_carrier_and_round_trips(tmp_path):
    model, record = _train_toy(train_candidates=None)  # every candidate
    assert record["notes_with_a_hit"] == 600 and record["epochs"] == 15
    tf, tm, tfr, tf0, tc = _toy(200, 1)
    picked = CR.pick(model, tf, tm, tfr, tf0)
    assert np.mean(picked == tc) > 0.6  # chance is 1 in 20 (measured: 0.865)
    # a masked candidate is never picked, even with the marker
    tf[:, 25, 3 + 16] = 0
    tfr[:, 25] = 5000.0
    assert not np.any(CR.pick(model, tf, tm, tfr, tf0) == 5000.0)
    out = CR.save_ranker(model, tmp_path / "r", record)
    loaded, meta = CR.load_ranker(out)
    assert meta["kind"] == CR.KIND and meta["seed"] == 0
    assert np.array_equal(
        CR.pick(loaded, tf, tm, tfr, tf0), CR.pick(model, tf, tm, tfr, tf0)
    )


def test_load_ranker_refuses_missing_and_foreign_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model.json"):
        CR.load_ranker(tmp_path)
    (tmp_path / "model.json").write_text(json.dumps({"kind": "fmnet"}))
    (tmp_path / "model.keras").write_bytes(b"")
    with pytest.raises(ValueError, match="not a 'carrier-ranker'"):
        CR.load_ranker(tmp_path)


def test_sample_candidates_keeps_the_carrier_and_draws_the_others_uniformly():
    k_all, k = 30, 8
    mask = np.zeros((3, k_all), bool)
    mask[0, :20] = True  # more real candidates than k
    mask[1, :5] = True  # fewer: all of them, then padding
    mask[2, :1] = True  # the carrier alone
    labels = np.array([13, 4, 0])
    rng = np.random.default_rng(0)
    counts = np.zeros(k_all)
    for _ in range(4000):
        idx, sub_mask, sub_labels, corr = CR.sample_candidates(mask, labels, k, rng)
        assert idx.shape == sub_mask.shape == corr.shape == (3, k)
        assert np.all(np.diff(idx, axis=1) > 0)  # loudest-first order kept
        assert np.array_equal(idx[np.arange(3), sub_labels], labels)
        assert sub_mask.sum(axis=1).tolist() == [8, 5, 1]
        assert np.all(mask[np.arange(3)[:, None], idx] == sub_mask)
        # correction -log q for drawn others, 0 for the carrier and for padding
        expect0 = np.where(sub_mask[0], -np.log(7 / 19), 0.0)
        expect0[sub_labels[0]] = 0.0
        assert np.allclose(corr[0], expect0)
        assert np.all(corr[1:] == 0.0)  # nothing left out: q = 1
        counts[idx[0][sub_mask[0]]] += 1
    others = np.delete(counts[:20], 13) / 4000
    assert counts[13] == 4000
    assert np.allclose(others, 7 / 19, atol=0.03)  # uniform (binomial sd 0.008)
    assert counts[20:].sum() == 0  # padding never drawn as a real candidate


def test_sample_candidates_always_keeps_the_loudest():
    mask = np.zeros((2, 30), bool)
    mask[:, :20] = True
    labels = np.array([13, 2])  # the carrier below / among the 4 loudest
    rng = np.random.default_rng(1)
    counts = np.zeros((2, 30))
    for _ in range(3000):
        idx, sub_mask, sub_labels, corr = CR.sample_candidates(
            mask, labels, 8, rng, loudest=4
        )
        assert sub_mask.all()
        assert np.array_equal(idx[np.arange(2), sub_labels], labels)
        for r, q in ((0, 3 / 15), (1, 4 / 16)):
            kept = np.isin(idx[r], [0, 1, 2, 3, labels[r]])
            assert np.allclose(corr[r], np.where(kept, 0.0, -np.log(q)))
            counts[r, idx[r]] += 1
    assert np.all(counts[:, :4] == 3000) and counts[0, 13] == 3000
    assert np.allclose(np.delete(counts[0, 4:20], 9) / 3000, 3 / 15, atol=0.03)
    assert np.allclose(counts[1, 4:20] / 3000, 4 / 16, atol=0.03)
    with pytest.raises(ValueError, match="loudest: must be 0..k - 2 = 6"):
        CR.sample_candidates(mask, labels, 8, rng, loudest=7)


def test_the_ranker_learns_from_sampled_candidates_and_picks_among_all():
    model, record = _train_toy(
        train_candidates=8, train_loudest=3, context_candidates=3
    )
    assert record["config"]["train_candidates"] == 8
    tf, tm, tfr, tf0, tc = _toy(200, 1)
    assert np.mean(CR.pick(model, tf, tm, tfr, tf0) == tc) > 0.6  # measured 0.84
    feats, mask, freqs, f0, carrier = _toy(50, 0)
    with pytest.raises(ValueError, match="train_candidates: must be 2..192"):
        CR.train_ranker(feats, mask, freqs, f0, carrier, config={"train_candidates": 1})


def test_the_context_pools_the_loudest_candidates_only():
    """Each candidate's logit depends on its own inputs and on the note's first
    ``context_candidates`` real candidates, nothing else: so a training sample,
    which keeps the loudest first, gives its candidates the logits picking gives."""
    import keras

    keras.utils.set_random_seed(0)  # the weights: no unit left dead by chance
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (2, 40, CR.N_INPUT)).astype(np.float32)
    m = np.ones((2, 40), np.float32)
    m[1, 30:] = 0
    model = CR.build_ranker(
        x.reshape(-1, CR.N_INPUT), config={"context": 8, "context_candidates": 5}
    )
    base = np.asarray(model((x, m)))
    # a candidate after the first 5 changes its own logit only
    y = x.copy()
    y[:, 20] += 3.0
    out = np.asarray(model((y, m)))
    assert not np.allclose(out[:, 20], base[:, 20])
    assert np.allclose(np.delete(out, 20, axis=1), np.delete(base, 20, axis=1))
    # one of the first 5 changes every candidate's logit
    y = x.copy()
    y[:, 2] += 3.0
    changed = ~np.isclose(np.asarray(model((y, m))), base, rtol=0, atol=1e-6)
    assert changed[:, :30].all()
    # a sample (the first 5, then others in order) scores as the whole note does
    keep = [0, 1, 2, 3, 4, 9, 17, 33]
    sub = np.asarray(model((x[:, keep], m[:, keep])))
    assert np.allclose(sub[0], base[0, keep], atol=1e-5)
    assert np.allclose(sub[1, :7], base[1, keep[:7]], atol=1e-5)
    # padding among the first 5 is left out of the context
    m2 = m.copy()
    m2[:, 4] = 0
    y = x.copy()
    y[:, 4] += 3.0
    assert np.allclose(
        np.delete(np.asarray(model((y, m2))), 4, axis=1),
        np.delete(np.asarray(model((x, m2))), 4, axis=1),
        atol=1e-6,
    )
    # without a context, every candidate is scored on its own
    alone = CR.build_ranker(x.reshape(-1, CR.N_INPUT), config={"context": 0})
    y = x.copy()
    y[:, 2] += 3.0
    a, b = np.asarray(alone((x, m))), np.asarray(alone((y, m)))
    assert np.allclose(np.delete(a, 2, axis=1), np.delete(b, 2, axis=1))


def test_checked_config_refuses_a_context_that_a_sample_cannot_show():
    assert (
        CR.checked_config()["context_candidates"] <= CR.DEFAULT_CONFIG["train_loudest"]
    )
    with pytest.raises(ValueError, match="context_candidates: must be <= train_l"):
        CR.checked_config({"train_loudest": 10})
    with pytest.raises(ValueError, match="context: must be >= 0"):
        CR.checked_config({"context": -1})
    with pytest.raises(ValueError, match="context_candidates: must be 1..192"):
        CR.checked_config({"context_candidates": 0, "train_candidates": None})
    # every candidate in training, or no context: any number of loudest
    assert CR.checked_config({"train_loudest": 0, "train_candidates": None})
    assert CR.checked_config({"train_loudest": 0, "context": 0})
