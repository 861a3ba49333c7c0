"""Would more output operators let ``match`` reach issue 9's 82 %? A bound measured on
real renders.

Usage::

    .venv/bin/python benchmarks/diagnose_extra_voices.py [--data DIR] [--limit N]
        [--budget 1500] [--csv PATH]

For each note (``--data``, default the 110 NSynth dev notes, sorted by name),
``match_note`` (no model, seed 0) gives a patch. Then sine voices at the harmonics
1..8 of the analysed f0 are added to its rendering, each a patch with every index 0
(so a sine at ``h * f0`` under the matched envelope and level, rendered by
``fmlib.render``: exactly what one more carrier operator with the same envelope
would add). Their signed amplitudes (a sign stands for a phase of 0 or pi against
the FM partial at the same frequency) are optimised on the *measured* log-mel
distance to the note, with ``scipy.optimize`` (bounded Brent for one voice, Powell
for several):

- ``one_sine``: the best single harmonic;
- ``two_sines``: that harmonic and the best second one;
- ``eight_sines``: all eight at once.

The matched patch keeps all six operators, so these are operators *beyond* a DX7's
six: a bound of what extra static carriers sharing the envelope could add to the
search's answer (a joint search could do a little better; a DX7 would have to give up
modulators for them). Prints the means and the log-mel gain over the 440 Hz sine
that each mean gives. About 10 s a note on one core.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import platform  # noqa: E402

import numpy as np  # noqa: E402

#: Harmonics of f0 that may get a sine voice.
HARMONICS = np.arange(1, 9)


def main() -> None:
    import pandas as pd
    import scipy.optimize as so
    from tqdm import tqdm

    from fmlib.audio.metrics import features
    from fmlib.datasets.nsynth import load_nsynth, read_note
    from fmlib.estimate.match import DEFAULT_BUDGET, match_note
    from fmlib.evaluation import baselines
    from fmlib.paths import NSYNTH_DEV_DIR
    from fmlib.synth.engine import render
    from fmlib.synth.patch import Modulator

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=NSYNTH_DEV_DIR)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--budget", type=int, default=DEFAULT_BUDGET)
    ap.add_argument("--csv", default=None, help="also write the per-note rows here")
    args = ap.parse_args()
    machine = f"{platform.machine()}, {os.cpu_count()} cores"
    print(f"machine: {machine}; budget {args.budget}")

    notes = load_nsynth(args.data)
    sine_440 = features(baselines.sine_440(), with_mss=False)
    rows = []
    for note_str, path in tqdm(
        list(zip(notes.note_str, notes.path, strict=True))[: args.limit], unit="note"
    ):
        x = read_note(path)
        target = features(x, with_mss=False).log_mel
        result = match_note(x, budget=args.budget, seed=0)
        patch, f0 = result.patch, result.analysis.f0_hz
        base = render(patch).astype(np.float64)
        silent = tuple(Modulator(m.ratio, 0.0) for m in patch.modulators)
        voices = np.array(
            [
                render(dataclasses.replace(patch, carrier_hz=h * f0, modulators=silent))
                if h * f0 < 7_800.0
                else np.zeros_like(base)
                for h in HARMONICS
            ],
            dtype=np.float64,
        )

        def distance(amps, which, base=base, voices=voices, target=target) -> float:
            y = (base + np.asarray(amps) @ voices[list(which)]).astype(np.float32)
            return float(np.linalg.norm(target - features(y, with_mss=False).log_mel))

        singles = sorted(
            (
                so.minimize_scalar(
                    lambda a, j=j: distance([a], [j]),
                    bounds=(-2.0, 2.0),
                    method="bounded",
                    options={"xatol": 1e-3},
                ).fun,
                j,
            )
            for j in range(HARMONICS.size)
        )
        first = singles[0][1]
        two = min(
            so.minimize(
                distance,
                np.zeros(2),
                args=([first, j],),
                method="Powell",
                options={"maxfev": 400},
            ).fun
            for j in range(HARMONICS.size)
            if j != first
        )
        eight = so.minimize(
            distance,
            np.zeros(HARMONICS.size),
            args=(range(HARMONICS.size),),
            method="Powell",
            options={"maxfev": 1500, "xtol": 1e-3},
        ).fun
        rows.append(
            {
                "note": note_str,
                "matched": distance(np.zeros(0), []),
                "one_sine": singles[0][0],
                "two_sines": two,
                "eight_sines": eight,
                "sine_440": float(np.linalg.norm(target - sine_440.log_mel)),
            }
        )
    df = pd.DataFrame(rows)
    if args.csv:
        df.to_csv(args.csv, index=False)
    means = df.mean(numeric_only=True)
    print(f"{len(df)} notes")
    print("| voices | log-mel mean | gain vs 440 Hz sine |")
    print("| --- | --- | --- |")
    for col in ("matched", "one_sine", "two_sines", "eight_sines"):
        gain = 100 * (1 - means[col] / means["sine_440"])
        print(f"| {col} | {means[col]:.2f} | {gain:.2f} % |")


if __name__ == "__main__":
    main()
