"""Per-parameter test metrics of trained model folders (paper CNN or fmnet), side by
side, on one test dataset.

Scores follow :func:`fmlib.estimate.fmnet_targets.parameter_metrics`: truth in
canonical order, predicted interchangeable modulators matched to the true ones, R²
of ratios and indices on the audible targets (structural rule: the modulator's
index and every index on its path to the carrier >= 0.05 rad) and on all, the
carrier's median |error| in cents. Each model gets two columns: "patch" (fmnet:
argmax classes; the paper CNN: post-processed, i.e. clipped and ratios snapped: what
the patches contain) and "raw" (fmnet: each ratio the expected value under its class
probabilities, the least-squares estimate; the paper CNN: its raw outputs).

Usage::

    .venv/bin/python benchmarks/fmnet_metrics.py --test DATASET MODEL_DIR ... \
        [--table results/tables/fmnet_test_metrics]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def predictions(model_dir: Path, test: Path) -> tuple[dict, np.ndarray]:
    """({mode: predicted (n, 15)}, truth (n, 15)) on the test dataset's notes. Modes:
    fmnet's decodings (:func:`fmlib.estimate.fmnet.decode`); for the paper CNN,
    "argmax" is its post-processed patches, "mean" its raw outputs."""
    from fmlib.datasets.dataset_reader import open_dataset
    from fmlib.estimate import fmnet_targets as T
    from fmlib.estimate.predict import load_predictor

    ds = open_dataset(test)
    truth = T.canonical_order(ds.vectors(), algorithm=ds.algorithm)
    pred = load_predictor(model_dir)
    if getattr(pred, "kind", "cnn") == "fmnet":
        from fmlib.datasets.feature_cache import ensure_features
        from fmlib.estimate.fmnet import decode, predict_arrays
        from fmlib.paths import FEATURES_DIR

        feats, pitch = ensure_features(test, FEATURES_DIR / test.name)
        out = predict_arrays(pred.model, feats)
        return {
            m: decode(out, pitch[:, 0], pred.multiples, mode=m)
            for m in ("argmax", "mean")
        }, truth
    from fmlib.estimate.model import postprocess

    raw = np.concatenate(
        [
            pred.predict_vectors(ds.read(np.arange(i, min(ds.n, i + 256))))
            for i in range(0, ds.n, 256)
        ]
    )
    return {"argmax": postprocess(raw), "mean": raw}, truth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--test", required=True, type=Path)
    parser.add_argument("--table", default=None, help="write STEM.csv and STEM.md")
    args = parser.parse_args()

    import pandas as pd

    from fmlib import files
    from fmlib.estimate import fmnet_targets as T

    cols = {}
    for m in args.models:
        preds, truth = predictions(m, args.test)
        for mode, pred in preds.items():
            met = T.parameter_metrics(pred, truth, algorithm="dx7_18")
            col = {
                "carrier median abs. error (cents)": met["carrier_hz"]["median_cents"],
                "carrier within 25 cents (%)": 100
                * met["carrier_hz"]["within_25_cents"],
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
            cols[f"{m.name} ({'patch' if mode == 'argmax' else 'raw'})"] = col
            print(m.name, mode, json.dumps({k: round(v, 3) for k, v in col.items()}))
    df = pd.DataFrame(cols)
    df.index.name = "metric"
    print(df.round(3).to_string())
    if args.table:
        stem = Path(args.table)
        files.write_table(df.reset_index(), stem.parent, stem.name)


if __name__ == "__main__":
    main()
