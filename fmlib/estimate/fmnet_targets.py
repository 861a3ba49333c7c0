"""fmnet's targets: audibility masks, canonical modulator order, carrier multiples,
and the symmetry-aware metrics (numpy only; no Keras).

**Audibility (the structural rule of docs/PRIORS.md).** Modulator k is *inaudible*
when its own index, or the index of any modulator between it and the carrier, is
below :data:`AUDIBLE_INDEX` (0.05 rad: its first sidebands then lie 32 dB or more
below the carrier). Then its ratio cannot be recovered from the audio, and its index
only as "about 0" when it is its own index that is small. So:

* ``ratio_k`` is masked when modulator k is inaudible;
* ``index_k`` is masked when a modulator *downstream* of k (on its path to the
  carrier, k excluded) has an index below the threshold.

Why this rule rather than the log-mel one (render the note again without modulator
k; PRIORS.md measured both): it needs no render (the log-mel rule costs 5 renders a
note, 500,000 for 100,000 notes), it is exact and reproducible, and it agrees with
the log-mel rule on all but 0.8 % of the pairs under the musical prior (those whose
sidebands all lie above 8 kHz, which the network sees as inaudible anyway because the
absolute pitch is one of its inputs).

**Canonical order.** Interchangeable modulators
(:meth:`fmlib.synth.algorithms.Algorithm.interchangeable`: M1, M2 in ``dx7_18``) are
sorted audible first, then by ratio, ties by index. Audible first matters: sorting an
inaudible modulator's arbitrary ratio in with the audible one's would make the slot
of the audible pair unpredictable. Evaluation instead matches predicted and true
pairs by the permutation (within each group) with the smallest error, so any
estimator's output order is scored fairly (:func:`match_permutation`).
"""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np

from fmlib.synth import params as P
from fmlib.synth.algorithms import get_algorithm

#: Index below which a modulator (or its path to the carrier) counts as inaudible.
AUDIBLE_INDEX = 0.05
N_MOD = P.N_MODULATORS
CARRIER_COL = 0
RATIO_COLS = np.arange(1, 1 + N_MOD)
INDEX_COLS = np.arange(1 + N_MOD, 1 + 2 * N_MOD)
ENV_COLS = np.arange(1 + 2 * N_MOD, len(P.TARGET_NAMES))
#: The ratio classes: :data:`fmlib.synth.params.DISCRETE_RATIOS`.
RATIO_CLASSES = np.asarray(P.DISCRETE_RATIOS, dtype=np.float64)
#: Largest denominator of a carrier multiple (carrier / f0) considered.
MAX_DENOMINATOR = 8
#: A carrier whose multiple of the tracked f0 is farther than this from every class
#: is not a classification target (its label is -1, ignored by the loss).
MULTIPLE_TOLERANCE_CENTS = 15.0


def _paths(algorithm: str) -> dict[int, list[int]]:
    """For each modulator k (0-based), the 0-based modulators downstream of it on
    its way to the carrier (k excluded)."""
    alg = get_algorithm(algorithm)
    out: dict[int, list[int]] = {}
    for k in range(N_MOD):
        path, op = [], alg.target(f"M{k + 1}")
        while op is not None and op != "C":
            path.append(int(op[1:]) - 1)
            op = alg.target(op)
        out[k] = path
    return out


def audibility(vectors, *, algorithm: str, threshold: float = AUDIBLE_INDEX):
    """Which ratio and index targets the audio determines.

    Args:
        vectors: float (n, 15) parameter vectors, TARGET_NAMES order.
        algorithm: Their algorithm name.
        threshold: :data:`AUDIBLE_INDEX`.

    Returns:
        (ratio_ok, index_ok): bool arrays (n, 5), True where the target counts.
    """
    v = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
    idx = v[:, INDEX_COLS]
    down_ok = np.ones_like(idx, dtype=bool)
    for k, path in _paths(algorithm).items():
        for j in path:
            down_ok[:, k] &= idx[:, j] >= threshold
    return down_ok & (idx >= threshold), down_ok


def canonical_order(vectors, *, algorithm: str) -> np.ndarray:
    """Sort each group of interchangeable modulators: audible first, then by ratio,
    ties by index (see the module docstring). Returns a float64 copy (n, 15)."""
    v = np.array(np.atleast_2d(vectors), dtype=np.float64)
    ratio_ok, _ = audibility(v, algorithm=algorithm)
    for group in get_algorithm(algorithm).interchangeable():
        ks = [int(op[1:]) - 1 for op in group]
        r, i = v[:, RATIO_COLS[ks]], v[:, INDEX_COLS[ks]]
        order = np.lexsort((i, r, ~ratio_ok[:, ks]), axis=-1)
        v[:, RATIO_COLS[ks]] = np.take_along_axis(r, order, axis=-1)
        v[:, INDEX_COLS[ks]] = np.take_along_axis(i, order, axis=-1)
    return v


def ratio_labels(ratios) -> np.ndarray:
    """Index of the nearest ratio class (log distance) of each ratio; int64, same
    shape as ``ratios``."""
    r = np.log(np.maximum(np.asarray(ratios, dtype=np.float64), 1e-12))
    return np.abs(r[..., None] - np.log(RATIO_CLASSES)).argmin(axis=-1)


def nearest_multiple(values, classes) -> tuple[np.ndarray, np.ndarray]:
    """Nearest class (log distance) of each value, and the distance in cents.

    Args:
        values: float (n,) carrier / f0 ratios (> 0; NaN gives label -1).
        classes: float (c,) the multiples.

    Returns:
        (labels int64 (n,), cents float64 (n,)).
    """
    m = np.asarray(values, dtype=np.float64)
    logc = np.log2(np.asarray(classes, dtype=np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        d = np.abs(np.log2(m)[:, None] - logc) * 1200
    d = np.where(np.isfinite(d), d, np.inf)
    lab = d.argmin(axis=1)
    cents = d[np.arange(len(m)), lab]
    lab = np.where(np.isfinite(cents), lab, -1)
    return lab, cents


def fit_multiples(carrier_hz, f0_hz, *, min_share: float = 5e-4) -> list[float]:
    """The carrier classes: multiples p/q (q <= 8, 1/8 <= p/q <= 32) of the tracked f0
    that the carriers of the training notes hit (within 15 cents) at least a
    ``min_share`` of the time.

    Args:
        carrier_hz, f0_hz: float (n,), the true carriers and the tracker's f0.

    Returns:
        The multiples, increasing.
    """
    cands = sorted(
        {
            float(Fraction(p, q))
            for q in range(1, MAX_DENOMINATOR + 1)
            for p in range(1, 32 * q + 1)
            if Fraction(p, q) >= Fraction(1, 8)
        }
    )
    m = np.asarray(carrier_hz, dtype=np.float64) / np.asarray(f0_hz, dtype=np.float64)
    ok = np.isfinite(m)
    lab, cents = nearest_multiple(m[ok], cands)
    hit = lab[cents <= MULTIPLE_TOLERANCE_CENTS]
    counts = np.bincount(hit, minlength=len(cands))
    keep = counts >= max(1, min_share * ok.sum())
    return [c for c, k in zip(cands, keep, strict=True) if k]


def carrier_labels(carrier_hz, f0_hz, multiples) -> np.ndarray:
    """Class of each note's carrier / f0 among ``multiples``, -1 when none lies
    within :data:`MULTIPLE_TOLERANCE_CENTS` (or f0 is NaN); int64 (n,)."""
    m = np.asarray(carrier_hz, dtype=np.float64) / np.asarray(f0_hz, dtype=np.float64)
    lab, cents = nearest_multiple(m, multiples)
    return np.where(cents <= MULTIPLE_TOLERANCE_CENTS, lab, -1)


def match_permutation(pred, truth, *, algorithm: str) -> np.ndarray:
    """``pred`` with each group of interchangeable modulators permuted, per note, to
    the order that best matches ``truth`` (smallest squared error of log2 ratio and
    of index over the true pair's audible targets).

    Args:
        pred, truth: float (n, 15), TARGET_NAMES order.

    Returns:
        float64 (n, 15), a permuted copy of ``pred``.
    """
    p = np.array(np.atleast_2d(pred), dtype=np.float64)
    t = np.atleast_2d(np.asarray(truth, dtype=np.float64))
    ratio_ok, index_ok = audibility(t, algorithm=algorithm)
    for group in get_algorithm(algorithm).interchangeable():
        ks = [int(op[1:]) - 1 for op in group]
        best, best_err = None, None
        for perm in itertools.permutations(range(len(ks))):
            src = [ks[j] for j in perm]
            lr = np.log2(np.maximum(p[:, RATIO_COLS[src]], 1e-6)) - np.log2(
                t[:, RATIO_COLS[ks]]
            )
            di = p[:, INDEX_COLS[src]] - t[:, INDEX_COLS[ks]]
            err = np.sum(
                np.where(ratio_ok[:, ks], lr**2, 0)
                + np.where(index_ok[:, ks], di**2, 0),
                axis=1,
            )
            if best is None:
                best, best_err = np.tile(src, (len(p), 1)), err
            else:
                better = err < best_err
                best[better] = src
                best_err = np.minimum(err, best_err)
        rows = np.arange(len(p))[:, None]
        r_new, i_new = p[rows, RATIO_COLS[best]], p[rows, INDEX_COLS[best]]
        p[:, RATIO_COLS[ks]] = r_new
        p[:, INDEX_COLS[ks]] = i_new
    return p


def r_squared(pred, truth, mask=None) -> float:
    """Coefficient of determination 1 - SS_res / SS_tot over the rows where ``mask``
    (default all); NaN with fewer than 2 rows."""
    p, t = np.asarray(pred, dtype=np.float64), np.asarray(truth, dtype=np.float64)
    if mask is not None:
        p, t = p[mask], t[mask]
    if t.size < 2:
        return float("nan")
    ss_tot = np.sum((t - t.mean()) ** 2)
    return float(1 - np.sum((p - t) ** 2) / ss_tot) if ss_tot > 0 else float("nan")


def parameter_metrics(pred, truth, *, algorithm: str) -> dict[str, dict[str, float]]:
    """Per-parameter R² of predictions against the truth, symmetry-aware.

    Predicted interchangeable modulators are first matched to the true ones
    (:func:`match_permutation`). Ratios and indices are scored on the audible
    targets (``r2``, see :func:`audibility`) and on all (``r2_all``); ratios also
    in log2 (``r2_log2``, audible). The carrier gets its median |error| in cents.

    Args:
        pred, truth: float (n, 15), TARGET_NAMES order, original units.

    Returns:
        {parameter name: {metric: value}}.
    """
    t = np.atleast_2d(np.asarray(truth, dtype=np.float64))
    p = match_permutation(pred, t, algorithm=algorithm)
    ratio_ok, index_ok = audibility(t, algorithm=algorithm)
    out: dict[str, dict[str, float]] = {}
    cents = np.abs(1200 * np.log2(np.maximum(p[:, 0], 1e-6) / t[:, 0]))
    out["carrier_hz"] = {
        "r2": r_squared(p[:, 0], t[:, 0]),
        "r2_log2": r_squared(np.log2(np.maximum(p[:, 0], 1e-6)), np.log2(t[:, 0])),
        "median_cents": float(np.median(cents)),
        "within_25_cents": float(np.mean(cents <= 25)),
    }
    for k in range(N_MOD):
        rc, ic = RATIO_COLS[k], INDEX_COLS[k]
        lp, lt = np.log2(np.maximum(p[:, rc], 1e-6)), np.log2(t[:, rc])
        out[f"ratio_{k + 1}"] = {
            "r2": r_squared(p[:, rc], t[:, rc], ratio_ok[:, k]),
            "r2_all": r_squared(p[:, rc], t[:, rc]),
            "r2_log2": r_squared(lp, lt, ratio_ok[:, k]),
            "exact": float(np.mean(np.abs(lp - lt)[ratio_ok[:, k]] < 0.01)),
            "n_audible": int(ratio_ok[:, k].sum()),
        }
        out[f"index_{k + 1}"] = {
            "r2": r_squared(p[:, ic], t[:, ic], index_ok[:, k]),
            "r2_all": r_squared(p[:, ic], t[:, ic]),
            "n_audible": int(index_ok[:, k].sum()),
        }
    for c in ENV_COLS:
        out[P.TARGET_NAMES[c]] = {"r2": r_squared(p[:, c], t[:, c])}
    return out
