"""``python -m fmlib stats``: a dataset's parameter statistics, histograms and
aliasing report, as tables, a figure and JSON (computed by
:mod:`fmlib.datasets.stats`)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from fmlib import files
from fmlib.datasets.dataset_reader import open_dataset
from fmlib.datasets.stats import (
    aliasing_notes,
    aliasing_summary,
    histogram_figure,
    proportions,
)
from fmlib.notebook.plots import save_figure


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataset", help="dataset folder made by 'python -m fmlib generate'")
    p.add_argument("--out", default=None, help="output folder (default: DATASET/stats)")
    p.add_argument(
        "--no-measure",
        action="store_true",
        help="skip the oversampled aliasing measurement (Carson only)",
    )


def run(args: argparse.Namespace) -> int:
    data = files.check_input(args.dataset, kind="folder", what="dataset folder")
    out = Path(args.out) if args.out else data / "stats"
    files.check_output(out, kind="folder")
    files.check_distinct({"--out": out}, {"dataset": data})
    ds = open_dataset(data)
    table = proportions(ds.params)
    notes = aliasing_notes(ds.params, measure=not args.no_measure)
    report = aliasing_summary(notes)
    files.write_table(table, out, "dataset_proportions")
    files.write_table(report, out, "dataset_aliasing")
    files.write_text(out / "dataset_aliasing_notes.csv", notes.to_csv(index=False))
    fig_path = save_figure(
        histogram_figure(ds.params), "dataset_histograms", out_dir=out, show=False
    )
    files.write_json(
        out / "dataset_stats.json",
        {
            "dataset": str(ds.path),
            "manifest_sha256": ds.manifest_hash,
            "n": ds.n,
            "proportions": table.to_dict(orient="records"),
            "aliasing": report.to_dict(orient="records"),
            "carson_upper_hz_quantiles": {
                q: float(np.quantile(notes["carson_upper_hz"], float(q)))
                for q in ("0.5", "0.9", "0.99")
            },
        },
    )
    print(table.to_string(index=False))
    print(report.to_string(index=False))
    print(f"statistics: {out} (tables, {fig_path.name}, dataset_stats.json)")
    return 0
