"""Per-parameter scores of trained models on a synthetic test dataset (truth known).

What notebook 07 and ``benchmarks/fmnet_metrics.py`` report for the paper's CNN and
fmnet side by side: each model predicts every note of a test dataset made by
``python -m fmlib generate``, and :func:`fmlib.estimate.fmnet_targets.parameter_metrics`
scores the predictions against the parameters that made the notes (truth in canonical
order, predicted interchangeable modulators matched to the true ones, ratios and
indices on the audible targets and on all, the carrier in cents).

Each model gives two predictions: ``"patch"`` (what its patches contain: fmnet's
argmax classes; the paper CNN's post-processed values, clipped and ratios snapped) and
``"raw"`` (the least-squares estimate: fmnet's expected ratio under its class
probabilities; the paper CNN's raw outputs).
"""

from __future__ import annotations

import os

import numpy as np

#: The two predictions of each model (module docstring).
MODES: tuple[str, ...] = ("patch", "raw")


def test_predictions(
    model_dir: str | os.PathLike,
    test_dir: str | os.PathLike,
    *,
    features_dir: str | os.PathLike,
    n: int | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Predictions of one model folder (paper CNN or fmnet) on a test dataset.

    Args:
        model_dir: A model folder (:func:`fmlib.estimate.predict.load_predictor`).
        test_dir: A dataset folder (:func:`fmlib.datasets.dataset_reader.open_dataset`).
        features_dir: fmnet's feature cache of this dataset (created if missing,
            resumable; :func:`fmlib.datasets.feature_cache.ensure_features`).
        n: Score only the first ``n`` notes (default all).

    Returns:
        ({"patch": (n, 15), "raw": (n, 15)} predictions in original units,
        truth (n, 15) in canonical order), float64, TARGET_NAMES order.
    """
    from fmlib.datasets.dataset_reader import open_dataset
    from fmlib.estimate import fmnet_targets
    from fmlib.estimate.predict import load_predictor

    ds = open_dataset(test_dir, n=n)
    truth = fmnet_targets.canonical_order(ds.vectors(), algorithm=ds.algorithm)
    predictor = load_predictor(model_dir)
    if getattr(predictor, "kind", "cnn") == "fmnet":
        from fmlib.datasets.feature_cache import ensure_features
        from fmlib.estimate.fmnet import predict_arrays

        feats, pitch = ensure_features(test_dir, features_dir, n=ds.n)
        out = predict_arrays(predictor.model, feats)
        f0 = pitch[:, 0]
        return {
            "patch": predictor.decode_outputs(out, f0, mode="argmax"),
            "raw": predictor.decode_outputs(out, f0, mode="mean"),
        }, truth
    from fmlib.estimate.model import postprocess

    raw = np.concatenate(
        [
            predictor.predict_vectors(ds.read(np.arange(i, min(ds.n, i + 256))))
            for i in range(0, ds.n, 256)
        ]
    )
    return {"patch": postprocess(raw), "raw": raw}, truth


def score_column(pred: np.ndarray, truth: np.ndarray, *, algorithm: str) -> dict:
    """One model's scores as one table column: {metric name: value}.

    Args:
        pred, truth: float (n, 15), TARGET_NAMES order, original units.
        algorithm: The test set's operator graph (its symmetries).
    """
    from fmlib.estimate.fmnet_targets import parameter_metrics

    met = parameter_metrics(pred, truth, algorithm=algorithm)
    col = {
        "carrier median abs. error (cents)": met["carrier_hz"]["median_cents"],
        "carrier within 25 cents (%)": 100 * met["carrier_hz"]["within_25_cents"],
        "carrier R²": met["carrier_hz"]["r2"],
    }
    for k in range(1, 6):
        col[f"ratio_{k} R² (audible)"] = met[f"ratio_{k}"]["r2"]
        col[f"ratio_{k} R² (all)"] = met[f"ratio_{k}"]["r2_all"]
        col[f"ratio_{k} exact (%)"] = 100 * met[f"ratio_{k}"]["exact"]
    for k in range(1, 6):
        col[f"index_{k} R² (audible)"] = met[f"index_{k}"]["r2"]
        col[f"index_{k} R² (all)"] = met[f"index_{k}"]["r2_all"]
    for name in ("attack_s", "decay_s", "sustain", "release_s"):
        col[f"{name} R²"] = met[name]["r2"]
    return col


def scores_table(
    model_dirs: dict[str, str | os.PathLike],
    test_dir: str | os.PathLike,
    *,
    features_dir: str | os.PathLike,
    n: int | None = None,
):
    """Scores of several models on one test dataset, a column per model and mode.

    Args:
        model_dirs: {label: model folder}; columns are ``"<label> (patch)"`` and
            ``"<label> (raw)"``.
        test_dir, features_dir, n: As :func:`test_predictions`.

    Returns:
        (pandas DataFrame indexed by metric name, {label: (predictions, truth)}).
    """
    import pandas as pd

    from fmlib.datasets.dataset_reader import open_dataset

    algorithm = open_dataset(test_dir, n=n).algorithm
    cols, preds = {}, {}
    for label, model_dir in model_dirs.items():
        pred, truth = test_predictions(
            model_dir, test_dir, features_dir=features_dir, n=n
        )
        preds[label] = (pred, truth)
        for mode in MODES:
            cols[f"{label} ({mode})"] = score_column(
                pred[mode], truth, algorithm=algorithm
            )
    df = pd.DataFrame(cols)
    df.index.name = "metric"
    return df, preds
