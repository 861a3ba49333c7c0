"""What limits ``fmlib match`` on real notes: oracle bounds on its log-mel distance.

Usage::

    .venv/bin/python benchmarks/diagnose_match_limits.py [--data DIR] [--limit N]
        [--budget B] [--every K] [--json PATH]

For each note (``--data``, default the 110 NSynth dev notes, in the evaluation's
round-robin order), ``match_note`` (seed 0) gives a patch; then, with the search's own
note model ``log1p(gain(t) * mel_power(f))`` (:mod:`fmlib.audio.timbre`, within about
2 of the measured log-mel distance), this script asks how far the distance could fall
if the synthesizer could do more, keeping everything else of the matched patch:

* ``static``: the matched patch as the model predicts it (the reference);
* ``ideal_gain``: every STFT frame gets its best gain (any carrier envelope at all,
  the timbre kept): the bound of a better *carrier envelope*;
* ``index_scale``: every frame gets its best common scale of the five modulation
  indices (0 to 1.6 x, 33 steps): the bound of one *brightness envelope* on the
  modulators (what per-operator envelopes add in their simplest form);
* ``frame_table``: every frame gets its best timbre among the harmonic table's 4,541
  entries and the index-scaled patch (carrier envelope kept): the bound of *any
  timbre trajectory* the table can express;
* ``second_carrier`` (every ``--every``-th note, it is slow): the matched timbre plus
  one more table timbre at a relative power of 0.1, 0.3, 1 or 3, static: a crude,
  unoptimised bound of a *second carrier* (a DX7 algorithm with two output
  operators);
* ``free_harmonics`` (every ``--harmonic-every``-th note, slower still): the best
  *static harmonic spectrum* of all, every harmonic of f0 below 8 kHz with its own
  free power (about 60 free values; least squares in the log-mel model, started from
  the matched timbre), under the matched carrier envelope: the bound of any
  static-timbre synthesizer with one envelope, FM or additive.

Each is a lower bound of the distance for its kind of extension within the model, not
a method; the gap to ``static`` says how much that extension could buy. Prints a
Markdown table (means per family and overall, and the log-mel gain over the 440 Hz
sine that each mean would give, using the evaluation's 440 Hz sine baseline of each
note). One thread; minutes for the 110 dev notes on the 2-core development machine.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

#: Relative powers of the second carrier tried by the ``second_carrier`` bound.
SECOND_CARRIER_POWERS = (0.1, 0.3, 1.0, 3.0)
#: Common scales of the modulation indices tried by the ``index_scale`` bound.
INDEX_SCALES = np.linspace(0.0, 1.6, 33)
#: Frame gains tried by the ``ideal_gain`` bound (0 and 10^-9 .. 10^1.5).
GAIN_GRID = np.concatenate([[0.0], 10.0 ** np.linspace(-9.0, 1.5, 400)])


def _frame_errors(mel: np.ndarray, gains: np.ndarray, target: np.ndarray):
    """Squared error per frame of ``log1p(gains * mel)`` against ``target``.

    Args:
        mel: (K, 128) mel power of K timbres.
        gains: (T,) power gain per frame.
        target: (128, T) the note's log-mel spectrogram.

    Returns:
        (K, T) float64.
    """
    pred = np.log1p(mel[:, :, None] * gains[None, None, :])
    return ((pred - target[None]) ** 2).sum(axis=1)


def bounds(x: np.ndarray, patch, f0_hz: float, *, second: bool) -> dict:
    """The oracle distances of one note (see the module docstring)."""
    from fmlib.audio import timbre
    from fmlib.audio.metrics import features

    target = features(x).log_mel.astype(np.float64)
    gains = timbre.frame_gains(patch.envelope, patch.level, n_samples=x.size)
    ratios = np.array([m.ratio for m in patch.modulators])
    indices = np.array([m.index for m in patch.modulators])
    k = INDEX_SCALES.size
    scaled = timbre.frame_mel_power(
        np.full(k, patch.carrier_hz),
        np.repeat(ratios[None], k, axis=0),
        INDEX_SCALES[:, None] * indices[None],
    )
    mel = scaled[int(np.argmin(np.abs(INDEX_SCALES - 1.0)))]
    scale_err = _frame_errors(scaled, gains, target)
    out = {"static": float(np.sqrt(_frame_errors(mel[None], gains, target).sum()))}
    gain_err = np.stack(
        [((np.log1p(mel[:, None] * g) - target) ** 2).sum(axis=0) for g in GAIN_GRID]
    )
    out["ideal_gain"] = float(np.sqrt(gain_err.min(axis=0).sum()))
    out["index_scale"] = float(np.sqrt(scale_err.min(axis=0).sum()))
    table = timbre.harmonic_table().mel_power(f0_hz)
    best = scale_err.min(axis=0)
    for lo in range(0, table.shape[0], 400):
        best = np.minimum(
            best, _frame_errors(table[lo : lo + 400], gains, target).min(0)
        )
    out["frame_table"] = float(np.sqrt(best.sum()))
    if second:
        active = gains > gains.max() * 1e-8
        rest = float((target[:, ~active] ** 2).sum())
        g, t = gains[active], target[:, active]
        lowest = np.inf
        for w in SECOND_CARRIER_POWERS:
            for lo in range(0, table.shape[0], 400):
                mix = (mel[None] + w * table[lo : lo + 400]) / (1.0 + w)
                lowest = min(lowest, float(_frame_errors(mix, g, t).sum(1).min()))
        out["second_carrier"] = float(np.sqrt(lowest + rest))
    return out


def free_harmonics_bound(x: np.ndarray, patch, f0_hz: float) -> float:
    """The ``free_harmonics`` distance of one note (see the module docstring)."""
    import scipy.optimize

    from fmlib.audio import timbre
    from fmlib.audio.metrics import features

    target = features(x).log_mel.astype(np.float64)
    gains = timbre.frame_gains(patch.envelope, patch.level, n_samples=x.size)
    # columns of the table's projection at the even half-harmonics = harmonics of f0
    h = np.arange(2, timbre.TABLE_HARMONICS + 1, 2)
    proj = timbre._projection(float(f0_hz))[:, h[h * f0_hz / 2 < 8000.0]]
    mel0 = timbre.frame_mel_power(
        np.array([patch.carrier_hz]),
        np.array([[m.ratio for m in patch.modulators]]),
        np.array([[m.index for m in patch.modulators]]),
    )[0]
    power0, _ = scipy.optimize.nnls(proj, mel0)
    active = gains > gains.max() * 1e-8
    g, t = gains[active], target[:, active]
    rest = float((target[:, ~active] ** 2).sum())

    def residual(log_power):
        mel = proj @ np.exp(log_power)
        return (np.log1p(mel[:, None] * g[None]) - t).ravel()

    fit = scipy.optimize.least_squares(
        residual, np.log(np.maximum(power0, 1e-9)), bounds=(-30.0, 10.0), max_nfev=200
    )
    return float(np.sqrt(float(fit.fun @ fit.fun) + rest))


def main(argv: list[str] | None = None) -> int:
    from fmlib import paths

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=paths.NSYNTH_DEV_DIR)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--budget", type=int, default=None)
    parser.add_argument("--every", type=int, default=3, help="second-carrier stride")
    parser.add_argument(
        "--harmonic-every", type=int, default=5, help="free-harmonics stride"
    )
    parser.add_argument("--json", type=Path, default=None, help="write rows here")
    args = parser.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        print("--limit: must be an integer >= 1", file=sys.stderr)
        return 2
    for name in ("every", "harmonic_every"):
        if getattr(args, name) < 1:
            print(
                f"--{name.replace('_', '-')}: must be an integer >= 1", file=sys.stderr
            )
            return 2

    import pandas as pd
    from tqdm.auto import tqdm

    from fmlib.datasets.nsynth import load_nsynth, read_note
    from fmlib.estimate.match import DEFAULT_BUDGET, match_note
    from fmlib.evaluation.evaluate import _BaselineCache, _order_for_limit, score_note
    from fmlib.synth.engine import render

    notes = _order_for_limit(load_nsynth(args.data))
    if args.limit is not None:
        notes = notes.head(args.limit)
    budget = DEFAULT_BUDGET if args.budget is None else args.budget
    cache = _BaselineCache()
    rows = []
    for i, note in enumerate(tqdm(list(notes.itertuples()), desc="notes")):
        x = read_note(note.path)
        result = match_note(x, budget=budget, seed=0)
        scores = score_note(x, render(result.patch), int(note.pitch), cache=cache)
        row = {
            "note_str": note.note_str,
            "family": note.instrument_family_str,
            "measured": scores["resynthesis_logmel"],
            "sine_440": scores["sine_440_logmel"],
        }
        second = i % args.every == 0
        row.update(bounds(x, result.patch, result.analysis.f0_hz, second=second))
        if i % args.harmonic_every == 0:
            row["free_harmonics"] = free_harmonics_bound(
                x, result.patch, result.analysis.f0_hz
            )
        rows.append(row)
    df = pd.DataFrame(rows)
    cols = ["measured", "static", "ideal_gain", "index_scale", "frame_table"]
    by_family = df.groupby("family")[cols].mean()
    print(f"# Oracle bounds of match, {len(df)} notes of {args.data}, budget {budget}")
    print()
    print("| family | " + " | ".join(cols) + " |")
    print("| --- |" + " --- |" * len(cols))
    for fam, r in by_family.iterrows():
        print(f"| {fam} | " + " | ".join(f"{r[c]:.1f}" for c in cols) + " |")
    s440 = df.sine_440.mean()
    print("| **all** | " + " | ".join(f"**{df[c].mean():.2f}**" for c in cols) + " |")
    print(
        "| gain vs 440 Hz sine | "
        + " | ".join(f"{100 * (1 - df[c].mean() / s440):.1f} %" for c in cols)
        + " |"
    )
    sub = df.dropna(subset=["second_carrier"])
    print()
    print(
        f"Second carrier, {len(sub)} notes (every {args.every}th): static "
        f"{sub.static.mean():.2f} -> {sub.second_carrier.mean():.2f}"
    )
    sub = df.dropna(subset=["free_harmonics"])
    print(
        f"Free static harmonic spectrum, {len(sub)} notes (every "
        f"{args.harmonic_every}th): static {sub.static.mean():.2f} -> "
        f"{sub.free_harmonics.mean():.2f} (gain vs 440 Hz sine "
        f"{100 * (1 - sub.static.mean() / sub.sine_440.mean()):.1f} % -> "
        f"{100 * (1 - sub.free_harmonics.mean() / sub.sine_440.mean()):.1f} %)"
    )
    if args.json is not None:
        from fmlib import files

        files.write_json(files.check_output(args.json), {"rows": rows})
        print(f"rows: {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
