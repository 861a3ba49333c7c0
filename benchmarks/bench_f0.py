"""Accuracy of the pitch analysis (``fmlib.audio.analysis.estimate_f0``) by pitch range.

Usage::

    .venv/bin/python benchmarks/bench_f0.py [--n 400] [--seed 0] [--data DIR ...]

Two kinds of notes:

1. **Synthetic harmonic tones whose period is known** (``--n`` of them, seeded):
   MIDI pitch uniform in 21..108, every harmonic below 7.8 kHz, a random spectral
   slope (0-12 dB an octave), 0-2 formants (+6..+30 dB), 4 dB of jitter per
   harmonic, a fundamental 10-40 dB weaker in 30 % of the tones and even harmonics
   10-30 dB weaker in 15 % (clarinet-like), an attack of 2-100 ms, a decay of
   0.3-4 s, note-off at 3 s and noise 40-70 dB down. The truth is the period, so
   an octave error here is the tracker's, not a labelling convention's.
2. **Labelled sets** (``--data``, NSynth layout; default the 110 dev notes): the
   label's MIDI pitch. Real notes can sound an octave off their label (organ stops,
   sub-octaves), so these rates mix tracker errors and the labels' convention.

For each, the share of notes within 50 cents, per pitch range, for three stages of
the analysis: ``yin`` (the median of ``librosa.yin`` over the active frames, the
first step), ``octave`` (after the octave check, ``_settle_octave``) and
``estimate_f0`` (everything: also the twelfth check and the refinement). CPU time
is not measured here (``bench_match.py`` and ``bench_fmnet.py`` time the analysis).
"""

from __future__ import annotations

import argparse
import math
import platform
from pathlib import Path

import numpy as np

RANGES = ((21, 36), (36, 48), (48, 60), (60, 72), (72, 84), (84, 96), (96, 109))
SR = 16000


def synthetic_tone(rng: np.random.Generator, midi: int) -> np.ndarray:
    """One tone of the synthetic set (module docstring): float32 (64000,)."""
    f0 = 440.0 * 2 ** ((midi - 69) / 12)
    t = np.arange(4 * SR) / SR
    k = np.arange(1, int(7800 // f0) + 1)
    db = -rng.uniform(0, 12) * np.log2(k)
    for _ in range(rng.integers(0, 3)):
        fc = math.exp(rng.uniform(math.log(200), math.log(4000)))
        width = rng.uniform(0.2, 1.0)
        db = db + rng.uniform(6, 30) * np.exp(
            -0.5 * (np.log2(k * f0 / fc) / width) ** 2
        )
    db = db + rng.normal(0, 4, k.size)
    if rng.random() < 0.3:
        db[0] -= rng.uniform(10, 40)
    if rng.random() < 0.15:
        db[1::2] -= rng.uniform(10, 30)
    phases = rng.uniform(0, 2 * np.pi, k.size)
    x = np.zeros_like(t)
    for kk, a, p in zip(k, 10 ** (db / 20), phases, strict=True):
        x += a * np.sin(2 * np.pi * kk * f0 * t + p)
    env = np.minimum(t / rng.uniform(0.002, 0.1), 1) * np.exp(-t / rng.uniform(0.3, 4))
    x = x * env * (t < 3.0)
    x += rng.normal(0, 1, t.size) * np.abs(x).max() * 10 ** (-rng.uniform(40, 70) / 20)
    return (0.5 * x / np.abs(x).max()).astype(np.float32)


def stages(x: np.ndarray) -> dict[str, float]:
    """f0 (Hz) after each stage of the analysis (module docstring)."""
    from fmlib.audio import analysis as A

    a = A._as_note(x)
    yin = float(2 ** np.median(A._yin_log2(a)))
    mag, bin_hz = A._spectrum(a)
    octave = A._settle_octave(mag, bin_hz, yin)
    return {"yin": yin, "octave": octave, "estimate_f0": A.estimate_f0(x).f0_hz}


def table(rows: list[tuple[int, dict[str, float], float]], title: str) -> None:
    """Print the share within 50 cents per range and stage (Markdown)."""
    names = ("yin", "octave", "estimate_f0")
    print(f"\n### {title}\n")
    print("| MIDI | notes | " + " | ".join(names) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in names) + " |")
    for lo, hi in (*RANGES, (21, 109)):
        sel = [(est, f) for midi, est, f in rows if lo <= midi < hi]
        if not sel:
            continue
        cells = []
        for n in names:
            ok = [abs(1200 * math.log2(est[n] / f)) <= 50 for est, f in sel]
            cells.append(f"{100 * np.mean(ok):.1f} %")
        label = "all" if (lo, hi) == (21, 109) else f"{lo}-{hi - 1}"
        print(f"| {label} | {len(sel)} | " + " | ".join(cells) + " |")


def main() -> None:
    from fmlib.paths import NSYNTH_DEV_DIR

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=400, help="synthetic tones")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", type=Path, nargs="*", default=[NSYNTH_DEV_DIR])
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, {platform.processor() or '?'}")

    rng = np.random.default_rng(args.seed)
    rows = []
    for _ in range(args.n):
        midi = int(rng.integers(21, 109))
        x = synthetic_tone(rng, midi)
        rows.append((midi, stages(x), 440.0 * 2 ** ((midi - 69) / 12)))
    table(rows, f"{args.n} synthetic harmonic tones (seed {args.seed}): the period")

    from fmlib.datasets.nsynth import load_nsynth, read_note

    for folder in args.data:
        notes = load_nsynth(folder)
        rows = [
            (int(p), stages(read_note(path)), 440.0 * 2 ** ((int(p) - 69) / 12))
            for p, path in zip(notes.pitch, notes.path, strict=True)
        ]
        table(rows, f"{len(rows)} notes of {folder}: the label")


if __name__ == "__main__":
    main()
