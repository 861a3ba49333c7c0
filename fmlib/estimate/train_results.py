"""A trained model's results as files: Tables 4-5, per-parameter errors, predictions.

Written by :func:`fmlib.estimate.train.train` once training ends; the paper's numbers
come from :mod:`fmlib.paper_reference`. Figures 10-11 are drawn by
:func:`fmlib.notebook.plots.plot_history` alone: the notebooks call it, and so does the
``train`` command (:mod:`fmlib.cli.train_cli`), which sits above the plots.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fmlib import files
from fmlib.estimate.model import postprocess
from fmlib.paper_reference import PAPER_TABLE5
from fmlib.synth import params as P

#: The history file of a model folder (Keras CSVLogger, one row per epoch).
HISTORY_CSV = "history.csv"


def _save_table(df, out_dir: Path, stem: str) -> None:
    """``STEM.csv`` and ``STEM.md`` through :func:`fmlib.files.write_table`."""
    files.write_table(df, out_dir, stem)


def pooled_metrics(predicted, truth) -> dict[str, float]:
    """RMSE, MSE, MAE pooled over every element of two (n, 15) arrays, as the paper's
    Table 5 (original units, so dominated by the carrier in Hz)."""
    err = np.asarray(predicted, dtype=np.float64) - np.asarray(truth, dtype=np.float64)
    mse = float(np.mean(err**2))
    return {"RMSE": float(np.sqrt(mse)), "MSE": mse, "MAE": float(np.mean(np.abs(err)))}


def carrier_cents(predicted_hz, true_hz) -> np.ndarray:
    """|1200 log2(predicted / true)| per note, cents. Predictions are first clipped to
    the carrier's range (20-6000 Hz) so that the logarithm is defined."""
    spec = P.PARAMS["carrier_hz"]
    pred = np.clip(np.asarray(predicted_hz, dtype=np.float64), spec.low, spec.high)
    return np.abs(1200.0 * np.log2(pred / np.asarray(true_hz, dtype=np.float64)))


def write_results(
    out_dir, *, model, dataset, split, scaler, vectors, batch_size: int = 32
) -> dict[str, Any]:
    """Write Tables 4-5, per-parameter MAE, carrier cents and the test predictions.

    Args:
        model: The trained Keras model.
        dataset: The opened dataset; the test notes are read from it.
        split: :func:`split_indices` output.
        scaler: The fitted :class:`~fmlib.estimate.model.TargetScaler`.
        vectors: (n, 15) float64 canonical targets in original units.

    Returns:
        The numbers also saved in ``results.json``.
    """
    import pandas as pd

    from fmlib.estimate.keras_data import AudioParamsSequence

    out_dir = Path(out_dir)
    history = pd.read_csv(out_dir / HISTORY_CSV)
    cols = ["loss", "mse", "mae", "val_loss", "val_mse", "val_mae"]
    t4 = history.tail(5)[["epoch", *cols]].copy()
    t4["epoch"] = t4["epoch"].astype(int) + 1
    _save_table(t4, out_dir, "table4_last_epochs")

    test = split["test"]
    seq = AudioParamsSequence(
        dataset, test, targets=scaler.transform(vectors[test]), batch_size=batch_size
    )
    z = np.concatenate([model.predict_on_batch(seq[i][0]) for i in range(len(seq))])
    raw = scaler.inverse_transform(z)
    post = postprocess(raw)
    truth = vectors[test]
    m_raw, m_post = pooled_metrics(raw, truth), pooled_metrics(post, truth)
    t5 = pd.DataFrame(
        {
            "metric": list(PAPER_TABLE5),
            "ours": [m_raw[k] for k in PAPER_TABLE5],
            "ours_postprocessed": [m_post[k] for k in PAPER_TABLE5],
            "paper": list(PAPER_TABLE5.values()),
        }
    )
    _save_table(t5, out_dir, "table5_test_metrics")

    per = pd.DataFrame(
        {
            "parameter": list(P.TARGET_NAMES),
            "unit": [P.PARAMS[n].unit for n in P.TARGET_NAMES],
            "mae": np.abs(raw - truth).mean(axis=0),
            "mae_postprocessed": np.abs(post - truth).mean(axis=0),
            "mae_predict_mean": np.abs(scaler.mean - truth).mean(axis=0),
        }
    )
    _save_table(per, out_dir, "per_parameter_mae")

    cents = carrier_cents(raw[:, 0], truth[:, 0])
    cents_df = pd.DataFrame(
        {
            "statistic": ["median", "p90", "mean"],
            "cents": [
                float(np.median(cents)),
                float(np.percentile(cents, 90)),
                float(np.mean(cents)),
            ],
        }
    )
    _save_table(cents_df, out_dir, "carrier_cents")

    pred_df = pd.DataFrame(raw, columns=list(P.TARGET_NAMES))
    pred_df.insert(0, "note", test)
    files.write_text(out_dir / "test_predictions.csv", pred_df.to_csv(index=False))

    results = {
        "table4": t4.to_dict(orient="list"),
        "table5": {"raw": m_raw, "postprocessed": m_post, "paper": PAPER_TABLE5},
        "per_parameter_mae": dict(
            zip(P.TARGET_NAMES, per["mae"].astype(float), strict=True)
        ),
        "carrier_cents": dict(
            zip(cents_df["statistic"], cents_df["cents"], strict=True)
        ),
        "n_test": int(len(test)),
    }
    files.write_json(out_dir / "results.json", results)
    return results
