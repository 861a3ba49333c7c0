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


def test_the_ranker_learns_a_marked_carrier_and_round_trips(tmp_path):
    feats, mask, freqs, f0, carrier = _toy(600, 0)
    model, record = CR.train_ranker(
        feats,
        mask,
        freqs,
        f0,
        carrier,
        seed=0,
        config={"width": 32, "epochs": 15, "patience": 15},
        verbose=0,
    )
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
