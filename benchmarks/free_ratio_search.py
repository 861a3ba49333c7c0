"""Does a search over free ratios recover issue 12's ratios and indices? Measured at
the true carrier, the most favourable case for a search.

Every network of docs/FMNET.md misses issue 12's R² >= 0.5 for the ratios and
indices of the musical-prior test notes, and ``match``'s harmonic-locked search does
worse. The step those measurements leave is a search over *free* ratios: render
candidate patches and keep the one whose spectrum is nearest to the note's. This
script measures it, without building an estimator of fmlib.

Why it can be exact. A synthetic note's timbre is static: one ADSR multiplies the
carrier, and every note of the sampler's prior has finished its attack and decay by
1.1 s and is released at 3 s. So the note's samples over ``SEGMENT_S`` (1.15-1.40 s)
are the sustain level times the note's tone with a flat envelope, and the
renderer itself (:func:`fmlib.synth.engine.render` with a flat envelope, no second
synthesizer) reproduces them to 1e-6. A candidate's distance to the note,
:func:`spectrum_distance`, is the mean squared difference of the two segments' log
magnitude spectra below 7.6 kHz (Hann window, power smoothed over 12 Hz, normalised
to unit power, so the sustain level drops out, floored at -60 dB). The true patch
scores about 0; every other patch scores more, unless it sounds the same.

Two experiments, on the first ``--n`` notes of ``--test`` (carrier = the true one,
envelope = the true one, ratios from the 15 discrete ratios of the prior, indices in
[0, 8] rad):

* ``cold``: nothing known but the carrier. A beam search adds the modulators one by
  one in the order M1..M5 (each: 15 ratios x 6 indices, the ``--beam`` best kept),
  then :func:`coordinate_descent` (steepest descent over single-modulator moves:
  each modulator's 15 ratios, each with a line search of its index; at most 4
  moves), then Powell on the five indices. (SciPy's ``differential_evolution`` with
  integer ratio slots was tried first, in a probe on 4 notes: 15,150 renders a
  note, and it ended at distances 0.07-0.68, none at the truth; a search that knows
  the operator graph does better per render.)
* ``basin``: start at the truth (ratios snapped to the discrete set), with ``k``
  audible ratios (``--wrong``) replaced by other discrete ratios drawn at random
  (seeded by ``--seed`` and the note), then the same descent and polish. How many
  wrong ratios can a search start from and still recover the truth?

Both are scored like the networks
(:func:`fmlib.evaluation.parameter_scores.score_column`: audible targets, M1/M2
matched). Beside the R² it reports, among the notes whose ratios are all discrete
(the truth is then at distance about 0), how often the search reached the truth's
distance (<= 0.001), how often it did so with other audible ratios than the truth's
(patches that sound the same: not identifiable), and the
share of notes whose peak frequency deviation exceeds the carrier (sidebands
folded around 0 Hz), which a phase (Hilbert) demodulation would need to be small.

Usage::

    .venv/bin/python benchmarks/free_ratio_search.py --mode cold [--test DIR]
        [--n 50] [--beam 8] [--seed 0]
    .venv/bin/python benchmarks/free_ratio_search.py --mode basin [--wrong 1 2 3]

Writes ``data/benchmarks/free_ratio_search-{cold-b<beam>,basin}-<dataset>-<n>.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from _report import finish
from scipy.ndimage import gaussian_filter1d
from scipy.optimize import minimize, minimize_scalar
from tqdm import tqdm

#: The compared segment of every note: (start, length), s. It lies in the sustain
#: of every note of the sampler's prior (attack + decay <= 1.1 s, note-off at 3 s).
SEGMENT_S = (1.15, 0.25)
#: Gaussian smoothing of the power spectra, Hz (standard deviation).
SMOOTH_HZ = 12.0
#: Floor of the normalised magnitude before the log (-60 dB).
FLOOR = 1e-3
#: Index grid of the beam search and of each line search's bracket, rad.
INDEX_GRID = (0.0, 0.3, 0.8, 1.5, 2.5, 4.0, 6.0)
#: A search "reached the truth" of a note whose ratios are all discrete (so that the
#: truth itself is at distance about 0) when its distance is at most this.
REACHED = 1e-3


def spectrum_distance_fn(note, carrier_hz: float):
    """A function ``(ratios, indices) -> distance`` of a flat-envelope patch at
    ``carrier_hz`` to ``note`` (float32 (64000,) at 16 kHz), over ``SEGMENT_S``. The
    function counts its renders in its attribute ``renders``."""
    from fmlib.synth import params as P
    from fmlib.synth.engine import PASSBAND_HZ, render
    from fmlib.synth.patch import patch_from_vector

    start = round(SEGMENT_S[0] * P.SAMPLE_RATE)
    size = round(SEGMENT_S[1] * P.SAMPLE_RATE)
    window = np.hanning(size)
    bins = round(PASSBAND_HZ * SEGMENT_S[1])  # compared below the pass band's edge
    sigma = SMOOTH_HZ * SEGMENT_S[1]
    end_s = sum(SEGMENT_S) + 0.05  # clear of the low-pass's edge at the note's end

    def log_spectrum(x) -> np.ndarray:
        mag = np.abs(np.fft.rfft(x[start : start + size] * window))[:bins]
        power = gaussian_filter1d(mag.astype(np.float64) ** 2, sigma)
        return np.log(np.sqrt(power / (power.sum() + 1e-30)) + FLOOR)

    target = log_spectrum(note)

    def distance(ratios, indices) -> float:
        # A flat envelope: no attack, no decay, sustain 1, no release.
        patch = patch_from_vector(
            np.r_[carrier_hz, ratios, np.clip(indices, 0.0, 8.0), 0.0, 0.0, 1.0, 0.0]
        )
        distance.renders += 1
        y = render(patch, duration_s=end_s, note_off_s=end_s)
        return float(np.mean((log_spectrum(y) - target) ** 2))

    distance.renders = 0
    return distance


def best_index(distance, ratios, indices, slot: int, ratio: float):
    """The best index of modulator ``slot`` once its ratio is ``ratio``: searched on
    ``INDEX_GRID``, then refined (bounded Brent, at most 8 renders) between the grid
    neighbours of the best.

    Returns:
        (distance, index).
    """
    trial_r = np.array(ratios, float)
    trial_r[slot] = ratio

    def at(index):
        trial_i = np.array(indices, float)
        trial_i[slot] = index
        return distance(trial_r, trial_i)

    grid = np.asarray(INDEX_GRID)
    values = [at(a) for a in grid]
    j = int(np.argmin(values))
    bracket = (grid[max(j - 1, 0)], grid[min(j + 1, grid.size - 1)])
    line = minimize_scalar(at, bounds=bracket, method="bounded", options={"maxiter": 8})
    return (line.fun, line.x) if line.fun < values[j] else (values[j], grid[j])


def coordinate_descent(distance, ratios, indices, *, steps: int = 4):
    """Steepest descent over single-modulator moves: each step tries every
    (modulator, discrete ratio) with :func:`best_index` (75 line searches, about 1,100
    renders) and takes the best move; it stops when no move improves or after
    ``steps`` steps.

    Returns:
        (distance, ratios (5,), indices (5,)).
    """
    from fmlib.synth import params as P

    ratios, indices = np.array(ratios, float), np.array(indices, float)
    best = distance(ratios, indices)
    for _ in range(steps):
        moves = [
            (*best_index(distance, ratios, indices, slot, ratio), slot, ratio)
            for slot in range(5)
            for ratio in P.DISCRETE_RATIOS
        ]
        value, index, slot, ratio = min(moves, key=lambda m: m[0])
        if value >= best - 1e-9:
            break
        best = value
        ratios[slot], indices[slot] = ratio, index
    return best, ratios, indices


def polish(distance, value, ratios, indices):
    """Powell on the five indices at fixed ratios (at most 300 renders)."""
    res = minimize(
        lambda i: distance(ratios, np.clip(i, 0.0, 8.0)),
        indices,
        method="Powell",
        bounds=[(0.0, 8.0)] * 5,
        options={"maxfev": 300, "xtol": 1e-3},
    )
    if res.fun < value:
        return float(res.fun), ratios, np.clip(res.x, 0.0, 8.0)
    return value, ratios, indices


def beam_search(distance, *, beam: int):
    """Add M1..M5 one at a time (15 ratios x the non-zero grid indices), keeping the
    ``beam`` nearest partial patches; then descend and polish the nearest."""
    from fmlib.synth import params as P

    states = [(distance(np.ones(5), np.zeros(5)), np.ones(5), np.zeros(5))]
    for slot in range(5):
        found = list(states)
        for _, ratios, indices in states:
            for ratio in P.DISCRETE_RATIOS:
                for index in INDEX_GRID[1:]:
                    r, i = ratios.copy(), indices.copy()
                    r[slot], i[slot] = ratio, index
                    found.append((distance(r, i), r, i))
        found.sort(key=lambda s: s[0])
        states = found[:beam]
    _, ratios, indices = states[0]
    return polish(distance, *coordinate_descent(distance, ratios, indices))


def scrambled(ratios, audible, k: int, rng) -> np.ndarray:
    """``ratios`` with ``k`` of its audible slots (all of them, if fewer) set to other
    discrete ratios drawn uniformly."""
    from fmlib.synth import params as P

    out = ratios.copy()
    slots = np.flatnonzero(audible)
    for slot in rng.choice(slots, size=min(k, slots.size), replace=False):
        others = [r for r in P.DISCRETE_RATIOS if abs(r - out[slot]) > 1e-9]
        out[slot] = others[rng.integers(len(others))]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("cold", "basin"), required=True)
    parser.add_argument(
        "--test",
        type=Path,
        default=None,
        help="dataset (data/datasets/fm-musical-5000-s1)",
    )
    parser.add_argument("--n", type=int, default=50, help="first N notes (50)")
    parser.add_argument("--beam", type=int, default=8, help="cold: beam width (8)")
    parser.add_argument(
        "--wrong", type=int, nargs="+", default=[1, 2, 3], help="basin: k (1 2 3)"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    cpu0, wall0 = time.process_time(), time.time()

    from fmlib.datasets.dataset_reader import open_dataset
    from fmlib.datasets.stats import peak_deviation_hz
    from fmlib.errors import InputError
    from fmlib.estimate import fmnet_targets
    from fmlib.estimate.model import snap_ratios
    from fmlib.evaluation.parameter_scores import score_column
    from fmlib.paths import DATA_DIR

    args.test = args.test or DATA_DIR / "datasets" / "fm-musical-5000-s1"
    for name, value, low in (("--n", args.n, 1), ("--beam", args.beam, 1)):
        if value < low:
            print(f"{name}: must be >= {low}, got {value}", file=sys.stderr)
            return 2
    if min(args.wrong) < 1 or max(args.wrong) > 5:
        print(f"--wrong: each k must be 1..5, got {args.wrong}", file=sys.stderr)
        return 2
    try:
        ds = open_dataset(args.test, n=args.n)
    except (InputError, FileNotFoundError, ValueError) as err:
        print(f"--test: {err}", file=sys.stderr)
        return 2
    truth = fmnet_targets.canonical_order(ds.vectors(), algorithm=ds.algorithm)
    ratio_ok, _ = fmnet_targets.audibility(truth, algorithm=ds.algorithm)
    env = ds.params[["attack_s", "decay_s"]].to_numpy().sum(axis=1)
    static = env <= SEGMENT_S[0]
    carrier, ratios_true, indices_true = truth[:, 0], truth[:, 1:6], truth[:, 6:11]
    deviation = peak_deviation_hz(truth, algorithm=ds.algorithm)
    runs = ["cold"] if args.mode == "cold" else [f"wrong-{k}" for k in args.wrong]
    preds = {run: truth.copy() for run in runs}
    notes = []
    for i in tqdm(np.flatnonzero(static), desc=args.mode, unit="note"):
        distance = spectrum_distance_fn(ds.read(int(i))[0], float(carrier[i]))
        snap = snap_ratios(ratios_true[i])
        row = {
            "note": int(i),
            "truth": distance(ratios_true[i], indices_true[i]),
            "snapped_truth": distance(snap, indices_true[i]),
        }
        rng = np.random.default_rng([args.seed, int(i)])
        for run in runs:
            distance.renders, t0 = 0, time.process_time()
            if run == "cold":
                value, r, x = beam_search(distance, beam=args.beam)
            else:
                start = scrambled(snap, ratio_ok[i], int(run.split("-")[1]), rng)
                value, r, x = polish(
                    distance, *coordinate_descent(distance, start, indices_true[i])
                )
            preds[run][i, 1:6], preds[run][i, 6:11] = r, x
            row[run] = {
                "distance": value,
                "renders": distance.renders,
                "cpu_s": time.process_time() - t0,
                "ratios": r.tolist(),
                "indices": x.tolist(),
            }
        notes.append(row)
    kept = np.flatnonzero(static)
    result = {
        "dataset": str(args.test),
        "notes": int(kept.size),
        "notes_not_static": int((~static).sum()),
        "mode": args.mode,
        "beam": args.beam if args.mode == "cold" else None,
        "seed": args.seed,
        "segment_s": list(SEGMENT_S),
        "deviation_above_carrier_pct": float(100 * np.mean(deviation > carrier)),
        "runs": {},
        "per_note": notes,
    }
    # Notes whose ratios are all discrete: the search can reach them exactly.
    exact = np.array([row["snapped_truth"] < 1e-6 for row in notes])
    result["representable_notes"] = int(exact.sum())
    snapped_all = snap_ratios(ratios_true[kept])
    for run in runs:
        found = np.array([row[run]["distance"] for row in notes])
        scores = score_column(preds[run][kept], truth[kept], algorithm=ds.algorithm)
        # Reached the truth's distance with another audible ratio: sounds the same.
        matched = fmnet_targets.match_permutation(
            preds[run][kept], truth[kept], algorithm=ds.algorithm
        )
        other = np.any(
            ratio_ok[kept] & (np.abs(np.log2(matched[:, 1:6] / snapped_all)) > 0.01),
            axis=1,
        )
        reached = exact & (found <= REACHED)
        result["runs"][run] = {
            "reached_truth_pct": float(100 * reached.sum() / max(exact.sum(), 1)),
            "reached_with_other_ratios_pct": float(
                100 * (reached & other).sum() / max(exact.sum(), 1)
            ),
            "audible_ratios_all_exact_pct": float(100 * np.mean(~other)),
            "distance_median": float(np.median(found)),
            "renders_mean": float(np.mean([row[run]["renders"] for row in notes])),
            "cpu_s_per_note": float(np.mean([row[run]["cpu_s"] for row in notes])),
            "scores": {
                k: float(v) for k, v in scores.items() if "ratio" in k or "index" in k
            },
        }
    result["truth_distance_max"] = float(max(row["truth"] for row in notes))
    result["snapped_truth_distance_median"] = float(
        np.median([row["snapped_truth"] for row in notes])
    )
    mode = f"cold-b{args.beam}" if args.mode == "cold" else "basin"
    out = (
        DATA_DIR
        / "benchmarks"
        / f"free_ratio_search-{mode}-{args.test.name}-{args.n}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    finish(result, out, cpu0_s=cpu0, wall0_s=wall0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
