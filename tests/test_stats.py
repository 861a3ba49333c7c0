"""Dataset statistics: proportions, histograms, Carson's rule and measured aliasing."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.special import jv

from fmlib.cli import main
from fmlib.datasets import stats
from fmlib.datasets.dataset import generate_dataset
from fmlib.datasets.sampler import sample_vectors
from fmlib.synth.params import TARGET_NAMES


def _vector(carrier, ratios=(1, 1, 1, 1, 1), indices=(0, 0, 0, 0, 0)):
    return np.array([carrier, *ratios, *indices, 0.01, 0.1, 0.5, 0.2], dtype=float)


def test_proportions_known_counts():
    v = np.stack(
        [
            _vector(100, ratios=(1, 2, 0.5, 1.3, 8), indices=(0, 0.5, 2.9, 3, 8)),
            _vector(100, ratios=(1 / 7, 0.7, 3, 4, 5), indices=(0.4, 1, 1, 1, 1)),
        ]
    )
    t = stats.proportions(v).set_index("quantity")
    assert t.loc["ratio from the discrete set", "count"] == 8
    assert t.loc["ratio log-uniform", "count"] == 2
    assert t.loc["index in [0, 0.5)", "count"] == 2
    assert t.loc["index in [0.5, 3)", "count"] == 6
    assert t.loc["index in [3, 8]", "count"] == 2
    assert t.loc["ratio from the discrete set", "empirical"] == pytest.approx(0.8)
    assert list(t["paper"]) == [0.9, 0.1, 0.2, 0.6, 0.2]


def test_proportions_of_the_sampler_match_the_paper():
    t = stats.proportions(sample_vectors(4000, seed=11))
    assert (t["draws"] == 20_000).all()
    assert (t["z"].abs() < 5).all()


def test_index_bins_boundaries():
    bins = ((0, 0.5, 0.2), (0.5, 3, 0.6), (3, 8, 0.2))
    got = stats.index_bin_of(np.array([0, 0.49, 0.5, 2.99, 3, 8, 8.1, -1]), bins)
    np.testing.assert_array_equal(got, [0, 0, 1, 1, 2, 2, -1, -1])


def test_carson_single_modulator_is_the_textbook_rule():
    # dx7_18: only M1 -> C active: f_c + (beta + 1) f_m = 1000 + 4 * 2000
    v = _vector(1000, ratios=(2, 1, 1, 1, 1), indices=(3, 0, 0, 0, 0))
    assert stats.carson_upper_hz(v[None], algorithm="dx7_18")[0] == pytest.approx(9000)
    # no modulation at all: the carrier itself
    assert stats.carson_upper_hz(_vector(440)[None])[0] == pytest.approx(440)


def test_carson_cascade_by_hand():
    # dx7_18 stack M4 -> M3 -> C: f_c 100, M3 100 Hz (index 2), M4 200 Hz (index 1)
    v = _vector(100, ratios=(1, 1, 1, 2, 1), indices=(0, 0, 2, 1, 0))
    # M3: dev 1*200, top 200 -> F = 100 + 200 + 200 = 500
    # C: dev 2*(100 + 200) = 600, top 500 -> F = 100 + 600 + 500 = 1200
    assert stats.carson_upper_hz(v[None], algorithm="dx7_18")[0] == pytest.approx(1200)
    assert stats.peak_deviation_hz(v[None], algorithm="dx7_18")[0] == pytest.approx(600)
    # serial graph: M3 -> M2 -> M1 -> C would give another answer
    assert stats.carson_upper_hz(v[None], algorithm="serial")[0] != pytest.approx(1200)


def test_folded_frequencies():
    np.testing.assert_allclose(
        stats.folded_hz(np.array([1e3, 30e3, 47e3, 50e3, 100e3])),
        [1e3, 18e3, 1e3, 2e3, 4e3],
    )


def test_measured_shares_match_bessel_sidebands():
    # carrier 20 kHz, modulator 15 kHz, beta 0.5: partials at 20k + k * 15k with
    # power J_k(0.5)^2. Above 24 kHz: k = 1, 2, 3 (35k, 50k, 65k) and k = -3 (25k).
    # Folding below 8 kHz at 48 kHz: only 50k -> 2k (k = 2).
    v = _vector(20_000, ratios=(0.75, 1, 1, 1, 1), indices=(0.5, 0, 0, 0, 0))
    above, audible = stats.oversampled_shares(v[None])[0]
    j = {k: jv(k, 0.5) ** 2 for k in range(6)}
    assert above == pytest.approx(j[1] + j[2] + 2 * j[3] + j[4] + j[5], rel=0.01)
    assert audible == pytest.approx(j[2], rel=0.02)
    pure = stats.oversampled_shares(_vector(1000)[None])[0]
    assert pure.max() < 1e-9


def test_carson_bandwidth_holds_most_power():
    # Carson's edge exactly at 24 kHz: little power above it; far above: a lot.
    at_edge = _vector(6000, ratios=(2, 1, 1, 1, 1), indices=(0.5, 0, 0, 0, 0))
    assert stats.carson_upper_hz(at_edge[None])[0] == pytest.approx(24_000)
    assert stats.oversampled_shares(at_edge[None])[0, 0] < 0.02
    far = _vector(6000, ratios=(2, 1, 1, 1, 1), indices=(4, 0, 0, 0, 0))
    assert stats.oversampled_shares(far[None])[0, 0] > 0.2


def test_aliasing_report_counts():
    v = np.stack(
        [
            _vector(440),  # clean
            _vector(20_000, ratios=(0.75, 1, 1, 1, 1), indices=(0.5, 0, 0, 0, 0)),
        ]
    )
    notes = stats.aliasing_notes(v)
    assert list(notes["carson_aliases"]) == [False, True]
    report = stats.aliasing_report(v).set_index("criterion")
    assert (
        report.loc["upper edge > 24 kHz (aliases in the 48 kHz render)", "notes"] == 1
    )
    assert report.loc[">= 1% of power above 24 kHz", "share"] == 0.5
    assert report.loc[">= 1% of power folds into 0-8 kHz", "notes"] == 0


def test_histogram_figure_has_every_parameter():
    v = sample_vectors(200, seed=2)
    fig = stats.histogram_figure(pd.DataFrame(v, columns=list(TARGET_NAMES)))
    axes = fig.get_axes()
    assert len(axes) == 15
    labels = {ax.get_xlabel().split(" ")[0] for ax in axes}
    assert labels == set(TARGET_NAMES)
    heights = sum(p.get_height() for p in axes[0].patches)
    assert heights == 200


@pytest.mark.slow
def test_stats_command_writes_every_file(tmp_path, capsys):
    ds = generate_dataset(tmp_path / "ds", n=6, seed=0, workers=1, progress=False)
    out = tmp_path / "st"
    assert main(["stats", str(ds), "--out", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "dataset_aliasing.csv",
        "dataset_aliasing.md",
        "dataset_aliasing_notes.csv",
        "dataset_histograms.png",
        "dataset_proportions.csv",
        "dataset_proportions.md",
        "dataset_stats.json",
    ]
    summary = json.loads((out / "dataset_stats.json").read_text())
    assert summary["n"] == 6
    table = pd.read_csv(out / "dataset_proportions.csv")
    assert table["count"].tolist() == [r["count"] for r in summary["proportions"]]
    notes = pd.read_csv(out / "dataset_aliasing_notes.csv")
    np.testing.assert_allclose(
        notes["carson_upper_hz"], stats.carson_upper_hz(sample_vectors(6, seed=0))
    )
    assert f"statistics: {out}" in capsys.readouterr().out


def test_stats_command_bad_folder(tmp_path, capsys):
    assert main(["stats", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no such dataset folder" in err
    assert main(["stats", str(tmp_path)]) == 2  # a folder, but no dataset
    assert "no dataset here" in capsys.readouterr().err
