"""The sampler follows the paper's distributions and is reproducible per note."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from fmlib.datasets.sampler import (
    SamplerConfig,
    note_rng,
    sample_indices,
    sample_note,
    sample_ratios,
    sample_vectors,
)
from fmlib.errors import InputError
from fmlib.synth import params as P

N = 20_000
RATIO_COLS = slice(1, 6)
INDEX_COLS = slice(6, 11)


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    return sample_vectors(N, seed=123)


def _within_binomial(count: int, trials: int, p: float, *, z: float = 5.0) -> bool:
    sd = np.sqrt(trials * p * (1 - p))
    return abs(count - trials * p) <= z * sd


def test_every_value_inside_its_range(vectors):
    assert vectors.shape == (N, 15) and vectors.dtype == np.float64
    for j, name in enumerate(P.TARGET_NAMES):
        spec = P.PARAMS[name]
        assert vectors[:, j].min() >= spec.low, name
        assert vectors[:, j].max() <= spec.high, name


def test_ratio_branch_proportions(vectors):
    ratios = vectors[:, RATIO_COLS].ravel()
    discrete = np.isin(ratios, P.DISCRETE_RATIOS)
    assert _within_binomial(int(discrete.sum()), ratios.size, 0.9)
    # every discrete value is equally likely: 0.9 / 15 each
    for r in P.DISCRETE_RATIOS:
        assert _within_binomial(int((ratios == r).sum()), ratios.size, 0.9 / 15), r
    # the other branch is log-uniform over [1/8, 8]
    logs = np.log(ratios[~discrete])
    lo, hi = np.log(1 / 8), np.log(8)
    assert stats.kstest(logs, "uniform", args=(lo, hi - lo)).pvalue > 1e-3


def test_index_bin_proportions(vectors):
    idx = vectors[:, INDEX_COLS].ravel()
    counts = [
        int(((idx >= 0) & (idx < 0.5)).sum()),
        int(((idx >= 0.5) & (idx < 3)).sum()),
        int(((idx >= 3) & (idx <= 8)).sum()),
    ]
    assert sum(counts) == idx.size
    for count, p in zip(counts, (0.2, 0.6, 0.2), strict=True):
        assert _within_binomial(count, idx.size, p)
    # uniform inside a bin
    mid = idx[(idx >= 0.5) & (idx < 3)]
    assert stats.kstest(mid, "uniform", args=(0.5, 2.5)).pvalue > 1e-3


@pytest.mark.parametrize(
    ("col", "low", "high"),
    [(0, 20, 6000), (11, 0.005, 0.5), (12, 0.02, 0.6), (13, 0.1, 0.9), (14, 0.05, 0.8)],
)
def test_uniform_parameters(vectors, col, low, high):
    x = vectors[:, col]
    assert stats.kstest(x, "uniform", args=(low, high - low)).pvalue > 1e-3


def test_note_stream_is_the_spawned_child_of_the_seed():
    # documented seeding rule: note i uses SeedSequence(seed).spawn(...)[i]
    child = np.random.SeedSequence(7).spawn(4)[3]
    expected = np.random.Generator(np.random.PCG64(child)).random(5)
    np.testing.assert_array_equal(note_rng(7, 3).random(5), expected)


def test_notes_do_not_depend_on_batching():
    whole = sample_vectors(30, seed=5)
    np.testing.assert_array_equal(sample_vectors(10, seed=5, start=20), whole[20:])
    np.testing.assert_array_equal(sample_note(5, 17), whole[17])
    np.testing.assert_array_equal(sample_vectors(30, seed=5), whole)


def test_different_seeds_differ():
    a, b = sample_vectors(5, seed=0), sample_vectors(5, seed=1)
    assert not np.any(a[:, 0] == b[:, 0])


def test_configurable_distributions(rng):
    cfg = SamplerConfig(ratio_set=(1.0, 2.0), p_discrete=1.0, index_bins=((1, 2, 1.0),))
    r = sample_ratios(rng, cfg, size=1000)
    assert set(np.unique(r)) == {1.0, 2.0}
    i = sample_indices(rng, cfg, size=1000)
    assert i.min() >= 1 and i.max() < 2
    never = SamplerConfig(p_discrete=0.0)
    assert not np.isin(sample_ratios(rng, never, size=1000), P.DISCRETE_RATIOS).any()


def test_config_round_trips_through_json():
    cfg = SamplerConfig(algorithm="serial", p_discrete=0.5)
    again = SamplerConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg


@pytest.mark.parametrize(
    "kwargs",
    [
        {"p_discrete": 1.5},
        {"index_bins": ((0, 1, 0.5), (1, 2, 0.4))},
        {"ratio_set": (0.0, 1.0)},
        {"carrier_range": (6000.0, 20.0)},
        {"algorithm": "nope"},
    ],
)
def test_bad_config_is_refused(kwargs):
    with pytest.raises(InputError):
        SamplerConfig(**kwargs)


def test_unknown_config_key_is_refused():
    with pytest.raises(InputError, match="unknown"):
        SamplerConfig.from_dict({"carrier": [1, 2]})
