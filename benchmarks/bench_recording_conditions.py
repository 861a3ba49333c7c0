"""How ``match`` holds up under recording conditions that real WAV files have and
the NSynth notes do not.

Usage::

    .venv/bin/python benchmarks/bench_recording_conditions.py [--data DIR]
        [--per-family N] [--budget 1500] [--csv PATH]

The first ``--per-family`` notes of each family of ``--data`` (default: 2 of each of
the 11 families of the NSynth dev notes) are altered as below and matched as the
command line matches a file (``match_audio``: ``prepare_audio``, then ``match_note``
without a model, seed 0). The alterations (seeded, ``numpy`` seed 0):

- ``clean``: the note as it is;
- ``44k1_stereo``: resampled to 44.1 kHz, two channels at gains 1.1 and 0.9;
- ``quiet_-30dB``: 30 dB quieter;
- ``noise_-40dB``: white noise 40 dB below the note's peak;
- ``reverb``: plus a diffuse tail (exponentially decaying noise, 1.2 s, -60 dB at
  1 s), at half the note's RMS;
- ``lead_0.5s``: 0.5 s of noise at -100 dBFS before the note;
- ``dc_0.05``: a DC offset of +0.05;
- ``short_1.5s``: only the first 1.5 s;
- ``lowpass_4k``: an 8th-order Butterworth low-pass at 4 kHz, zero-phase;
- ``vibrato``: a 5.5 Hz, +-30 cents vibrato made by warping time;
- ``hum_50Hz_-40dB``: mains hum (50, 100 and 150 Hz at amplitudes 1, 1/2, 1/3)
  40 dB below the note's peak.

Printed per condition, over the notes: the log-mel distance of the re-synthesis to
the audio the matcher saw (the prepared input), its gain over a 440 Hz sine on the
same audio, the log-mel distance to the *clean* note (how close the patch is to the
sound itself; not printed where the condition changes the sound: level, length),
and the share of notes whose analysed f0 lies within 50 cents of the clean note's.
One thread; about 8 minutes for 22 notes on a 2-core x86_64 VM.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import platform  # noqa: E402

import numpy as np  # noqa: E402

SR = 16_000
#: Conditions whose clean reference is still the same sound (see the docstring).
SAME_SOUND = {
    "clean",
    "44k1_stereo",
    "noise_-40dB",
    "reverb",
    "lead_0.5s",
    "dc_0.05",
    "lowpass_4k",
    "vibrato",
    "hum_50Hz_-40dB",
}


def conditions(x: np.ndarray, rng: np.random.Generator):
    """Yield ``(name, audio, sample_rate)`` for one clean 16 kHz note ``x``."""
    import scipy.signal as ss

    yield "clean", x, SR
    up = ss.resample_poly(x, 441, 160)
    yield "44k1_stereo", np.stack([1.1 * up, 0.9 * up], axis=1), 44_100
    yield "quiet_-30dB", x * 10 ** (-30 / 20), SR
    peak = float(np.max(np.abs(x)))
    noise = rng.standard_normal(x.size) * peak * 10 ** (-40 / 20)
    yield "noise_-40dB", x + noise, SR
    n_ir = round(1.2 * SR)
    ir = rng.standard_normal(n_ir) * np.exp(-6.9 * np.arange(n_ir) / SR)
    ir[0] = 0.0
    wet = ss.fftconvolve(x, ir)[: x.size]
    yield "reverb", x + wet * 0.5 * np.std(x) / np.std(wet), SR
    lead = np.concatenate([np.zeros(SR // 2), x])
    yield "lead_0.5s", lead + rng.standard_normal(lead.size) * 1e-5, SR
    yield "dc_0.05", x + 0.05, SR
    yield "short_1.5s", x[: round(1.5 * SR)], SR
    b, a = ss.butter(8, 4000 / (SR / 2))
    yield "lowpass_4k", ss.filtfilt(b, a, x), SR
    t = np.arange(x.size) / SR
    depth = 2 ** (30 / 1200) - 1
    warped = t + np.cumsum(depth * np.sin(2 * np.pi * 5.5 * t)) / SR
    yield "vibrato", np.interp(warped, t, x), SR
    hum = sum(np.sin(2 * np.pi * 50.0 * k * t) / k for k in (1, 2, 3))
    yield "hum_50Hz_-40dB", x + hum * peak * 10 ** (-40 / 20), SR


def main() -> None:
    import pandas as pd
    from tqdm import tqdm

    from fmlib.audio.analysis import prepare_note
    from fmlib.audio.metrics import features
    from fmlib.datasets.nsynth import load_nsynth, read_note
    from fmlib.estimate.match import DEFAULT_BUDGET, match_note
    from fmlib.evaluation import baselines
    from fmlib.paths import NSYNTH_DEV_DIR
    from fmlib.synth.engine import render

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=NSYNTH_DEV_DIR)
    ap.add_argument("--per-family", type=int, default=2)
    ap.add_argument("--budget", type=int, default=DEFAULT_BUDGET)
    ap.add_argument(
        "--only",
        default=None,
        help="comma-separated conditions to run (default: all); 'clean' always runs",
    )
    ap.add_argument("--csv", default=None, help="also write the per-note rows here")
    args = ap.parse_args()
    machine = f"{platform.machine()}, {os.cpu_count()} cores"
    print(f"machine: {machine}; budget {args.budget}")

    notes = load_nsynth(args.data)
    notes = (
        notes.sort_values("note_str")
        .groupby("instrument_family_str")
        .head(args.per_family)
    )
    only = None if args.only is None else {"clean", *args.only.split(",")}
    rng = np.random.default_rng(0)
    sine_440 = features(baselines.sine_440(), with_mss=False)

    def log_mel(a, b) -> float:
        return float(np.linalg.norm(a.log_mel - b.log_mel))

    rows = []
    for note_str, path in tqdm(
        list(zip(notes.note_str, notes.path, strict=True)), unit="note"
    ):
        x = read_note(path).astype(np.float64)
        clean = features(x.astype(np.float32), with_mss=False)
        f0_clean = None
        for name, audio, sr in conditions(x, rng):
            if only and name not in only:
                continue
            prepared = prepare_note(audio, sr)
            result = match_note(prepared.x, budget=args.budget, seed=0)
            f0 = result.analysis.f0_hz
            f0_clean = f0 if name == "clean" else f0_clean
            seen = features(prepared.x, with_mss=False)
            resynth = features(render(result.patch), with_mss=False)
            rows.append(
                {
                    "note": note_str,
                    "condition": name,
                    "logmel_input": log_mel(seen, resynth),
                    "sine_440_input": log_mel(seen, sine_440),
                    "logmel_clean": log_mel(clean, resynth)
                    if name in SAME_SOUND
                    else np.nan,
                    "f0_cents_vs_clean": 1200 * np.log2(f0 / f0_clean),
                    "changes": "; ".join(prepared.changes),
                }
            )
    df = pd.DataFrame(rows)
    if args.csv:
        df.to_csv(args.csv, index=False)
    g = df.groupby("condition", sort=False)
    table = pd.DataFrame(
        {
            "log-mel vs input": g.logmel_input.mean(),
            "gain vs 440 Hz sine, %": 100
            * (1 - g.logmel_input.mean() / g.sine_440_input.mean()),
            "log-mel vs clean note": g.logmel_clean.mean(),
            "f0 within 50 c of clean, %": g.f0_cents_vs_clean.apply(
                lambda c: 100 * float(np.mean(np.abs(c) <= 50))
            ),
        }
    )
    print(f"{len(notes)} notes")
    print(table.round(2).to_markdown())


if __name__ == "__main__":
    main()
