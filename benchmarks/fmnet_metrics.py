"""Per-parameter test metrics of trained model folders (paper CNN or fmnet), side by
side, on one test dataset.

Scores come from :func:`fmlib.evaluation.parameter_scores.scores_table`, which follows
:func:`fmlib.estimate.fmnet_targets.parameter_metrics`: truth in
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--test", required=True, type=Path)
    parser.add_argument("--table", default=None, help="write STEM.csv and STEM.md")
    args = parser.parse_args()

    from fmlib import files
    from fmlib.evaluation.parameter_scores import scores_table
    from fmlib.paths import FEATURES_DIR

    df, _ = scores_table(
        {m.name: m for m in args.models},
        args.test,
        features_dir=FEATURES_DIR / args.test.name,
    )
    for col in df.columns:
        print(col, json.dumps({k: round(v, 3) for k, v in df[col].items()}))
    print(df.round(3).to_string())
    if args.table:
        stem = Path(args.table)
        files.write_table(df.reset_index(), stem.parent, stem.name)


if __name__ == "__main__":
    main()
