"""Side-by-side tables of several evaluations of the same notes.

:func:`fmlib.evaluation.evaluate.evaluate` writes one folder per estimator (its
``notes.csv`` holds the re-synthesis and every baseline). This module puts estimators
next to each other: the paper's CNN, sound matching, and the baselines (taken from the
first evaluation: they do not depend on the estimator), over the notes every evaluation
finished.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from fmlib.audio.metrics import METRIC_NAMES
from fmlib.evaluation.evaluate import METRIC_LABELS, REFERENCES, _read_done

#: Metrics shown in the comparison, in order (the normalised log-mel and Claesson
#: rows are in each evaluation's own Table 6).
COMPARED_METRICS: tuple[str, ...] = ("fft", "stft", "logmel", "mss", "envelope")


def _ok_rows(eval_dir: str | os.PathLike) -> pd.DataFrame:
    rows = _read_done(Path(eval_dir) / "notes.csv")
    rows = rows.drop_duplicates("note_str", keep="last")
    return rows[rows["status"] == "ok"].set_index("note_str")


def compare_evaluations(evaluations: dict[str, str | os.PathLike]) -> pd.DataFrame:
    """Means of every compared metric for each estimator and each baseline.

    Args:
        evaluations: ``{column name: evaluation folder}``, e.g. ``{"paper_cnn": ...,
            "match": ...}``; the baselines come from the first one.

    Returns:
        DataFrame indexed by metric label: one column per estimator, then the
        baselines, then ``<estimator>_gain_vs_sine_440_pct`` for each estimator.
        Extra rows: notes compared; % of notes whose log-mel beats
        ``sine_pitch_env``; % whose re-synthesis f0 lies within 50 cents of the label.
    """
    frames = {name: _ok_rows(d) for name, d in evaluations.items()}
    common = sorted(set.intersection(*(set(f.index) for f in frames.values())))
    first = next(iter(frames.values())).loc[common]
    table = {}
    for name, f in frames.items():
        f = f.loc[common]
        col = [
            float(f[f"resynthesis_{k}"].astype(float).mean()) for k in COMPARED_METRICS
        ]
        beats = (
            f["resynthesis_logmel"].astype(float)
            < f["sine_pitch_env_logmel"].astype(float)
        ).mean()
        f0 = (f["resynth_f0_error_cents"].astype(float).abs() <= 50).mean()
        table[name] = col + [len(common), 100 * beats, 100 * f0]
    for ref in REFERENCES:
        col = [
            float(first[f"{ref}_{k}"].astype(float).mean()) for k in COMPARED_METRICS
        ]
        table[ref] = col + [len(common), np.nan, np.nan]
    index = [METRIC_LABELS[k] for k in COMPARED_METRICS] + [
        "Notes",
        "Notes whose log-mel beats sine_pitch_env (%)",
        "Re-synthesis f0 within 50 cents of the label (%)",
    ]
    df = pd.DataFrame(table, index=index)
    for name in frames:
        gain = 100 * (1 - df[name] / df["sine_440"])
        gain.iloc[len(COMPARED_METRICS) :] = np.nan
        df[f"{name}_gain_vs_sine_440_pct"] = gain
    df.index.name = "metric"
    return df


def per_family_logmel(evaluations: dict[str, str | os.PathLike]) -> pd.DataFrame:
    """Mean log-mel per instrument family for each estimator and the baselines."""
    frames = {name: _ok_rows(d) for name, d in evaluations.items()}
    common = sorted(set.intersection(*(set(f.index) for f in frames.values())))
    first = next(iter(frames.values())).loc[common]
    fam = first["instrument_family_str"]
    out = {}
    for name, f in frames.items():
        out[name] = (
            f.loc[common, "resynthesis_logmel"].astype(float).groupby(fam).mean()
        )
    for ref in REFERENCES:
        out[ref] = first[f"{ref}_logmel"].astype(float).groupby(fam).mean()
    df = pd.DataFrame(out)
    df.insert(0, "n", fam.value_counts().sort_index())
    df.index.name = "family"
    return df


__all__ = [
    "COMPARED_METRICS",
    "METRIC_NAMES",
    "compare_evaluations",
    "per_family_logmel",
]
