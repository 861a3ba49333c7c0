"""Per-parameter scores of models on a synthetic test set (notebook 07's tables)."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest

from fmlib.errors import InputError
from fmlib.estimate import fmnet_targets
from fmlib.evaluation.parameter_scores import MODES, score_column, scores_table
from fmlib.paths import SHIPPED_MODEL_DIR
from fmlib.synth.params import TARGET_NAMES

matplotlib.use("Agg")


def _truth(n=40, seed=0):
    from fmlib.datasets.sampler import sample_vectors

    vectors = sample_vectors(n, seed=seed)
    return fmnet_targets.canonical_order(vectors, algorithm="dx7_18")


def test_a_perfect_prediction_scores_perfectly():
    truth = _truth()
    col = score_column(truth.copy(), truth, algorithm="dx7_18")
    assert col["carrier median abs. error (cents)"] == 0.0
    assert col["carrier within 25 cents (%)"] == 100.0
    for k in range(1, 6):
        assert col[f"ratio_{k} R² (audible)"] == pytest.approx(1.0)
        assert col[f"ratio_{k} exact (%)"] == 100.0
        assert col[f"index_{k} R² (all)"] == pytest.approx(1.0)
    assert col["decay_s R²"] == pytest.approx(1.0)


def test_swapped_m1_m2_still_scores_perfectly_but_a_shifted_carrier_does_not():
    truth = _truth()
    swapped = truth.copy()
    r, i = TARGET_NAMES.index, TARGET_NAMES.index
    swapped[:, [r("ratio_1"), r("ratio_2")]] = truth[:, [r("ratio_2"), r("ratio_1")]]
    swapped[:, [i("index_1"), i("index_2")]] = truth[:, [i("index_2"), i("index_1")]]
    col = score_column(swapped, truth, algorithm="dx7_18")
    assert col["ratio_1 R² (audible)"] == pytest.approx(1.0)
    assert col["index_2 R² (all)"] == pytest.approx(1.0)
    octave = truth.copy()
    octave[:, 0] *= 2.0
    col = score_column(octave, truth, algorithm="dx7_18")
    assert col["carrier median abs. error (cents)"] == pytest.approx(1200.0)
    assert col["carrier within 25 cents (%)"] == 0.0


@pytest.mark.slow
def test_scores_table_scores_both_kinds_of_model(tiny_model, tiny_dataset, tmp_path):
    df, preds = scores_table(
        {"paper": tiny_model, "fmnet": SHIPPED_MODEL_DIR},
        tiny_dataset,
        features_dir=tmp_path / "features",
        n=24,
    )
    assert list(df.columns) == [f"{m} ({mode})" for m in preds for mode in MODES]
    for label, (pred, truth) in preds.items():
        assert truth.shape == (24, len(TARGET_NAMES))
        for mode in MODES:
            assert pred[mode].shape == truth.shape
            expected = score_column(pred[mode], truth, algorithm="dx7_18")
            assert df[f"{label} ({mode})"].to_dict() == pytest.approx(
                expected, nan_ok=True
            )
    # the paper CNN's "patch" values are its raw outputs post-processed
    from fmlib.estimate.model import postprocess

    paper = preds["paper"][0]
    assert np.allclose(paper["patch"], postprocess(paper["raw"]))
    # the features were cached where asked
    assert any((tmp_path / "features").iterdir())


def test_prediction_scatter_draws_a_panel_per_model_and_parameter():
    from fmlib.notebook.plots import prediction_scatter

    truth = _truth(n=10)
    fig = prediction_scatter({"a": (truth, truth), "b": (truth, truth)})
    assert len(fig.axes) == 2 * 5
    with pytest.raises(InputError, match="no predictions"):
        prediction_scatter({})
