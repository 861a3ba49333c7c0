"""Diagnosis without training (issue 12, part 1): what the sampler's priors give a
network to learn from. Prints Markdown tables (``docs/PRIORS.md`` holds a run).

For each carrier prior (:data:`fmlib.datasets.sampler.PRIORS`: ``paper``, uniform
20-6000 Hz; ``musical``, uniform in MIDI note number 21-108) over ``--n`` notes of
seed ``--seed`` (the notes of ``python -m fmlib generate --n N --seed S --prior P``;
both priors share every parameter but the carrier):

1. **Carrier against real instruments.** Median carrier; share above the piano's top
   key (MIDI 108, C8, 4186 Hz, also the piccolo's top note), above 2 kHz (about B6,
   above the flute's top note C7: only the highest notes of a few instruments lie
   there), below the piano's lowest key (MIDI 21, A0, 27.5 Hz).
2. **Aliasing**, with :mod:`fmlib.datasets.stats`'s own functions
   (:func:`~fmlib.datasets.stats.aliasing_notes`,
   :func:`~fmlib.datasets.stats.aliasing_summary`): (a) Carson's rule, cascaded, puts
   the spectrum's upper edge past 24 kHz (the 48 kHz render's Nyquist); (b) measured
   on an oversampled, alias-free computation: at least 1 % of the note's power folds
   into 0-8 kHz (what survives the 16 kHz output).
3. **Unidentifiable targets.** A modulator whose effect on the note is inaudible has a
   ratio (and index) that no estimator can recover from the audio, yet the paper's
   loss and R² count its error. Two measures per (ratio_k, index_k) pair:

   * **heard (the headline):** the note rendered with ``index_k = 0`` (modulator k,
     and with it every modulator feeding k, removed) differs from the note by a
     log-mel distance (:func:`fmlib.audio.metrics.distances`, the paper's metric on
     the 16 kHz output) below ``--logmel-threshold`` = 1. Why 1: the log-mel
     distance between a unit 440 Hz sine and an NSynth note is about 190, and
     between an NSynth note and the paper's CNN's re-synthesis about 143
     (``docs/RESULTS.md``); 1 is under 1 % of either, so a modulator below it moves
     the note far less than any estimator's residual error, and changing its ratio
     (which moves the note at most by removing-then-adding the modulator, i.e. by
     about twice this distance) is not identifiable from the audio. It is measured on
     what the network sees, so it also counts a modulator whose sidebands all lie
     above 8 kHz (removed by the output low-pass) as unheard; the index rule below
     cannot see that.
   * **by index (structural cross-check):** ``index_k < --index-threshold`` = 0.05
     rad, or some modulator between k and the carrier has such an index (it carries
     k's effect: in ``dx7_18``, M4 and M5 reach the carrier only through M3). For
     one sinusoidal modulator of index β the first sidebands are J1(β)/J0(β) ≈ β/2
     below the carrier: β = 0.05 puts them 32 dB down. It does not depend on the
     carrier, so it is the same for both priors.
4. **Harmonicity.** Every partial of a note lies at the carrier plus an integer
   combination of its audible modulators' frequencies, so the partials' fundamental is
   the carrier times the greatest common divisor of 1 and the audible ratios (each a
   fraction p/q with q <= 8). The table gives the share of notes by the carrier's
   multiple of that fundamental: 1, 2 or 4 is the most that ``match``'s
   harmonic-locked search and table can represent (the carrier at f0/2, f0 or 2 f0
   of the tracked pitch, every partial on a multiple of f0/2), and an
   audible continuous ratio leaves no harmonic fundamental at all. Audible is the
   structural rule of item 3. Besides the two carrier priors it covers fmnet's
   instrument-like presets (:data:`fmlib.datasets.presets.PRESETS`).
5. **Symmetries** (:meth:`fmlib.synth.algorithms.Algorithm.interchangeable`): each
   group of g interchangeable modulators maps g! parameter vectors to one sound
   (``dx7_18``: M1 <-> M2, 2 vectors per sound). Beyond it: when two interchangeable
   modulators share a ratio (both drawn from the discrete set, about 5 % of notes),
   their indices only count through their sum, a one-parameter family of vectors per
   sound. Both are checked by rendering: the largest |difference| of the 16 kHz audio
   is printed.

Usage::

    .venv/bin/python benchmarks/diagnose_priors.py [--n 5000] [--seed 0]
"""

from __future__ import annotations

import os

# One thread for every numeric library, set before numpy/scipy are imported.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from fractions import Fraction  # noqa: E402

import numpy as np  # noqa: E402

from fmlib.audio.metrics import distances, features  # noqa: E402
from fmlib.datasets.dataset_workers import render_notes  # noqa: E402
from fmlib.datasets.presets import PRESETS, preset_sampler  # noqa: E402
from fmlib.datasets.sampler import PRIORS, SamplerConfig, sample_vectors  # noqa: E402
from fmlib.datasets.stats import aliasing_notes, aliasing_summary  # noqa: E402
from fmlib.synth import params as P  # noqa: E402
from fmlib.synth.algorithms import (  # noqa: E402
    ALGORITHMS,
    CARRIER,
    MODULATORS,
    get_algorithm,
)

ALGORITHM = "dx7_18"
#: Carriers of real instruments: the piano's range, and a 2 kHz "top of the
#: orchestra" mark, Hz.
PIANO_LOW_HZ = float(P.midi_to_hz(P.MUSICAL_MIDI_RANGE[0]))
PIANO_HIGH_HZ = float(P.midi_to_hz(P.MUSICAL_MIDI_RANGE[1]))
TWO_KHZ = 2000.0
#: Looser log-mel thresholds reported beside the headline one (sensitivity).
SENSITIVITY = (5.0, 10.0)
_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_RATIO = slice(1, 1 + P.N_MODULATORS)
_INDEX = slice(1 + P.N_MODULATORS, 1 + 2 * P.N_MODULATORS)


def note_name(hz: float) -> str:
    """Nearest equal-tempered note of ``hz`` and the offset, e.g. ``"A4 +3 c"``."""
    midi = float(P.hz_to_midi(hz))
    k = round(midi)
    return f"{_NAMES[k % 12]}{k // 12 - 1} {100 * (midi - k):+.0f} c"


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- carrier
def carrier_rows(vectors: dict[str, np.ndarray]) -> list[list[str]]:
    """Rows of the carrier table: one per measure, one column per prior."""
    hz = {p: v[:, 0] for p, v in vectors.items()}
    measures = [
        (
            "median carrier",
            lambda c: f"{np.median(c):.0f} Hz ({note_name(np.median(c))})",
        ),
        (
            f"above MIDI 108 ({PIANO_HIGH_HZ:.0f} Hz)",
            lambda c: _pct(np.mean(c > PIANO_HIGH_HZ)),
        ),
        ("above 2 kHz", lambda c: _pct(np.mean(c > TWO_KHZ))),
        (
            f"below MIDI 21 ({PIANO_LOW_HZ:.1f} Hz)",
            lambda c: _pct(np.mean(c < PIANO_LOW_HZ)),
        ),
        (
            "range (min - max)",
            lambda c: f"{c.min():.1f} - {c.max():.0f} Hz",
        ),
    ]
    return [[name] + [f(hz[p]) for p in hz] for name, f in measures]


# ---------------------------------------------------------------------------- aliasing
def aliasing_rows(vectors: dict[str, np.ndarray]) -> list[list[str]]:
    """:func:`aliasing_summary` of each prior, side by side (shares of the notes)."""
    summaries = {
        p: aliasing_summary(aliasing_notes(v, algorithm=ALGORITHM, measure=True))
        for p, v in vectors.items()
    }
    first = next(iter(summaries.values()))
    rows = []
    for i, row in first.iterrows():
        rows.append(
            [row["estimate"], row["criterion"]]
            + [_pct(s.loc[i, "share"]) for s in summaries.values()]
        )
    return rows


# ---------------------------------------------------------------------- harmonicity
#: Largest denominator of a discrete ratio (1/8).
_MAX_DENOMINATOR = 8


def harmonic_multiple(v: np.ndarray, *, threshold: float) -> np.ndarray:
    """float (n,): each note's carrier / the fundamental of its partials (1, 2, ...),
    ``inf`` where an audible ratio is not p/q with q <= 8 (continuous: inharmonic).

    Hand-written with :class:`fractions.Fraction`, exact: a float gcd would need a
    tolerance.
    """
    silent = silent_by_index(v, threshold=threshold)
    out = np.empty(len(v))
    for i, (ratios, mute) in enumerate(zip(v[:, _RATIO], silent, strict=True)):
        g = Fraction(1)
        for r in ratios[~mute]:
            f = Fraction(float(r)).limit_denominator(_MAX_DENOMINATOR)
            if abs(float(f) - r) > 1e-9:
                g = None
                break
            g = Fraction(
                math.gcd(g.numerator * f.denominator, f.numerator * g.denominator),
                g.denominator * f.denominator,
            )
        out[i] = math.inf if g is None else float(1 / g)
    return out


def harmonicity_rows(
    vectors: dict[str, np.ndarray], *, threshold: float
) -> list[list[str]]:
    """Rows of the harmonicity table: one per class of multiple, one column per
    prior or preset."""
    k = {p: harmonic_multiple(v, threshold=threshold) for p, v in vectors.items()}
    classes = [
        ("1 (the carrier is the fundamental)", lambda m: m == 1),
        ("2", lambda m: m == 2),
        ("4", lambda m: m == 4),
        ("3, 5 - 8", lambda m: (m >= 3) & (m <= 8) & (m != 4)),
        ("more than 8", lambda m: (m > 8) & np.isfinite(m)),
        ("none (an audible continuous ratio)", lambda m: ~np.isfinite(m)),
    ]
    rows = [[name] + [_pct(np.mean(f(m))) for m in k.values()] for name, f in classes]
    rows.append(
        ["a fundamental below 20 Hz (below hearing)"]
        + [
            _pct(np.mean(np.isfinite(m) & (v[:, 0] / m < 20.0)))
            for m, v in zip(k.values(), vectors.values(), strict=True)
        ]
    )
    rows.append(
        ["median multiple (notes with a fundamental)"]
        + [
            f"{np.median(m[np.isfinite(m)]):g}" if np.isfinite(m).any() else "-"
            for m in k.values()
        ]
    )
    return rows


# ----------------------------------------------------------------- unidentifiable pairs
def downstream(algorithm: str, op: str) -> tuple[str, ...]:
    """Modulators between ``op`` and the carrier (``op`` excluded), nearest first."""
    alg = get_algorithm(algorithm)
    path = []
    dst = alg.target(op)
    while dst is not None and dst != CARRIER:
        path.append(dst)
        dst = alg.target(dst)
    return tuple(path)


def silent_by_index(v: np.ndarray, *, threshold: float) -> np.ndarray:
    """bool (n, 5): modulator k's index, or that of a modulator carrying its effect
    to the carrier, is below ``threshold`` rad."""
    idx = v[:, _INDEX]
    small = idx < threshold
    out = small.copy()
    for k, op in enumerate(MODULATORS):
        for d in downstream(ALGORITHM, op):
            out[:, k] |= small[:, MODULATORS.index(d)]
    return out


def _logmel(fx, fy) -> float:
    with warnings.catch_warnings():  # no MSS spectra: its mean of nothing warns
        warnings.simplefilter("ignore", RuntimeWarning)
        return distances(fx, fy)["logmel"]


def logmel_without_each(v: np.ndarray, *, detune_cents: float) -> np.ndarray:
    """float (n, 6): log-mel distance between each note and the note with
    ``index_k = 0``, for k = 1..5 (16 kHz output, the paper's log-mel); the last
    column, for scale, against the note with its carrier ``detune_cents`` higher."""
    out = np.empty((len(v), P.N_MODULATORS + 1))
    for i, row in enumerate(v):
        variants = np.repeat(row[None, :], P.N_MODULATORS + 2, axis=0)
        for k in range(P.N_MODULATORS):
            variants[1 + k, _INDEX.start + k] = 0.0
        variants[-1, 0] *= 2.0 ** (detune_cents / 1200.0)
        audio = render_notes(variants, algorithm=ALGORITHM)
        ref = features(audio[0], with_mss=False)
        for k in range(P.N_MODULATORS + 1):
            out[i, k] = _logmel(ref, features(audio[1 + k], with_mss=False))
    return out


def identifiability_rows(
    vectors: dict[str, np.ndarray],
    logmel: dict[str, np.ndarray],
    *,
    index_threshold: float,
    logmel_threshold: float,
    detune_cents: float,
) -> list[list[str]]:
    """Shares of (ratio_k, index_k) pairs, and of notes, that are unidentifiable;
    ``logmel`` holds :func:`logmel_without_each`'s (n, 6) arrays."""
    rows = []
    detuned = {p: logmel[p][:, -1] for p in vectors}
    logmel = {p: logmel[p][:, :-1] for p in vectors}
    heard = {p: logmel[p] < logmel_threshold for p in vectors}
    by_index = {
        p: silent_by_index(v, threshold=index_threshold) for p, v in vectors.items()
    }
    own = {p: v[:, _INDEX] < index_threshold for p, v in vectors.items()}
    rows.append(
        [f"pairs: removing modulator k moves log-mel < {logmel_threshold:g}"]
        + [_pct(heard[p].mean()) for p in vectors]
    )
    for k, op in enumerate(MODULATORS):
        rows.append(
            [f"&nbsp;&nbsp;{op} (ratio_{k + 1}) unheard"]
            + [_pct(heard[p][:, k].mean()) for p in vectors]
        )
    rows.append(
        ["notes with at least one unheard modulator"]
        + [_pct(heard[p].any(axis=1).mean()) for p in vectors]
    )
    for looser in SENSITIVITY:
        rows.append(
            [f"sensitivity: pairs moving log-mel < {looser:g}"]
            + [_pct((logmel[p] < looser).mean()) for p in vectors]
        )
    rows.append(
        [f"pairs: index_k < {index_threshold:g} rad"]
        + [_pct(own[p].mean()) for p in vectors]
    )
    rows.append(
        [f"pairs: index_k, or an index carrying it, < {index_threshold:g} rad"]
        + [_pct(by_index[p].mean()) for p in vectors]
    )
    rows.append(
        ["pairs unheard (log-mel) but index >= threshold along the path"]
        + [_pct((heard[p] & ~by_index[p]).mean()) for p in vectors]
    )
    rows.append(
        ["median log-mel change of removing a modulator"]
        + [f"{np.median(logmel[p]):.1f}" for p in vectors]
    )
    rows.append(
        [f"scale: median log-mel change of detuning the carrier {detune_cents:+g} c"]
        + [f"{np.median(detuned[p]):.1f}" for p in vectors]
    )
    return rows


# --------------------------------------------------------------------------- symmetries
def _swap(v: np.ndarray, a: int, b: int) -> np.ndarray:
    w = v.copy()
    for base in (_RATIO.start, _INDEX.start):
        w[:, [base + a, base + b]] = w[:, [base + b, base + a]]
    return w


def symmetry_rows(v: np.ndarray, *, n_check: int) -> tuple[list[list[str]], list[str]]:
    """Interchangeable groups of every algorithm, and what they mean on ``v``."""
    rows = []
    for name, alg in ALGORITHMS.items():
        groups = alg.interchangeable()
        per_sound = math.prod(math.factorial(len(g)) for g in groups)
        text = ", ".join("{" + ", ".join(g) + "}" for g in groups) or "none"
        rows.append([name, text, str(per_sound)])
    notes = []
    groups = get_algorithm(ALGORITHM).interchangeable()
    for g in groups:
        ks = [MODULATORS.index(op) for op in g]
        ratios = v[:, [_RATIO.start + k for k in ks]]
        indices = v[:, [_INDEX.start + k for k in ks]]
        pairs = np.stack([ratios, indices], axis=-1)  # (n, g, 2)
        distinct = np.array([len({tuple(p) for p in note}) == len(g) for note in pairs])
        same_ratio = np.array([len(set(r)) < len(g) for r in ratios])
        notes.append(
            f"{ALGORITHM} {{{', '.join(g)}}}: {_pct(distinct.mean())} of the notes "
            "have "
            f"{math.factorial(len(g))} distinct parameter vectors with the same sound; "
            f"{_pct(same_ratio.mean())} have two of these modulators on the same ratio "
            "(their indices count only through their sum: a one-parameter family per "
            "sound)"
        )
        a, b = ks[0], ks[1]
        head = v[:n_check]
        x = render_notes(head, algorithm=ALGORITHM)
        y = render_notes(_swap(head, a, b), algorithm=ALGORITHM)
        notes.append(
            f"check: swapping {g[0]} and {g[1]} on {len(head)} notes changes the audio "
            f"by at most {np.abs(x - y).max():.2g} (float32 output)"
        )
        tied = v[same_ratio][:n_check].copy()
        if len(tied):
            moved = tied.copy()
            total = moved[:, _INDEX.start + a] + moved[:, _INDEX.start + b]
            moved[:, _INDEX.start + a] = total
            moved[:, _INDEX.start + b] = 0.0
            x = render_notes(tied, algorithm=ALGORITHM)
            y = render_notes(moved, algorithm=ALGORITHM)
            notes.append(
                f"check: on {len(tied)} notes with equal ratios, moving all of "
                f"{g[1]}'s index onto {g[0]} changes the audio by at most "
                f"{np.abs(x - y).max():.2g}"
            )
    return rows, notes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000, help="notes per prior")
    ap.add_argument("--seed", type=int, default=0, help="dataset seed")
    ap.add_argument(
        "--measure-n",
        type=int,
        default=None,
        help="notes of the rendered log-mel measure (default: all --n)",
    )
    ap.add_argument("--index-threshold", type=float, default=0.05, help="rad")
    ap.add_argument("--logmel-threshold", type=float, default=1.0)
    ap.add_argument(
        "--detune-cents", type=float, default=5.0, help="scale row of the log-mel"
    )
    ap.add_argument("--check-n", type=int, default=50, help="notes of the checks")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    vectors = {
        p: sample_vectors(args.n, seed=args.seed, config=SamplerConfig(prior=p))
        for p in PRIORS
    }
    m = args.n if args.measure_n is None else min(args.measure_n, args.n)
    cols = [f"{p} prior" for p in PRIORS]
    print(f"# Priors diagnosis: {args.n:,} notes per prior, seed {args.seed}\n")
    print(
        f"Algorithm {ALGORITHM}; python {platform.python_version()}, numpy "
        f"{np.__version__}, {platform.machine()}, {os.cpu_count()} CPUs.\n"
    )
    print("## Carrier against real instruments\n")
    print(_table(["measure", *cols], carrier_rows(vectors)), "\n", flush=True)

    print("## Harmonicity: the carrier as a multiple of the partials' fundamental\n")
    harm = dict(vectors)
    for name in PRESETS:
        cfg = preset_sampler(name)
        harm[f"preset {name}"] = sample_vectors(args.n, seed=args.seed, config=cfg)
    rows = harmonicity_rows(harm, threshold=args.index_threshold)
    hcols = [c if c.startswith("preset") else f"{c} prior" for c in harm]
    print(_table(["carrier / fundamental", *hcols], rows), "\n", flush=True)

    print("## Aliasing (shares of notes; fmlib.datasets.stats)\n")
    print(_table(["estimate", "criterion", *cols], aliasing_rows(vectors)), "\n")
    t1 = time.perf_counter()
    print(f"(aliasing: {t1 - t0:.0f} s)\n", flush=True)

    print(f"## Unidentifiable targets ({m:,} notes rendered per prior)\n")
    logmel = {
        p: logmel_without_each(v[:m], detune_cents=args.detune_cents)
        for p, v in vectors.items()
    }
    head = {p: v[:m] for p, v in vectors.items()}
    rows = identifiability_rows(
        head,
        logmel,
        index_threshold=args.index_threshold,
        logmel_threshold=args.logmel_threshold,
        detune_cents=args.detune_cents,
    )
    print(_table(["measure", *cols], rows), "\n")
    t2 = time.perf_counter()
    print(f"(log-mel measure: {t2 - t1:.0f} s)\n", flush=True)

    print("## Symmetries (interchangeable modulators)\n")
    rows, notes = symmetry_rows(vectors["paper"], n_check=args.check_n)
    print(
        _table(["algorithm", "interchangeable groups", "vectors per sound"], rows),
        "\n",
    )
    for line in notes:
        print(f"- {line}")
    print(f"\n(total: {time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
