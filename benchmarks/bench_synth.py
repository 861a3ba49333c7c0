"""Benchmark: fmlib's synthesizer against the Dexed DX7 engine, one thread each.

The paper's note: a random ``dx7_18`` patch, 4 s long, note-off at 3 s, rendered at
48 kHz and downsampled to 16 kHz. Dexed (PyPI ``dexed-py``, GPL-3, a dev extra that
fmlib itself never imports) renders random 6-operator DX7 algorithm-18 patches at
48 kHz for 4 s (note-off at 3 s), and its output goes through the same
:func:`fmlib.synth.engine.downsample`. Both get a ready patch object per note (fmlib a
validated :class:`~fmlib.synth.patch.Patch`, Dexed a ``dexed.Patch`` it loads); timing
covers loading the patch, rendering and downsampling.

The two engines are timed in alternating rounds, so that a load change on a shared
machine hits both alike. Both are single-threaded, so the main figures are CPU time
(``time.process_time``), which time spent waiting for a shared CPU does not inflate;
wall-clock figures are printed too. The ratio is the median over rounds of each
round's ratio; per-note times are medians over rounds. It also prints
where fmlib's time goes and the SNR of :func:`fmlib.synth.engine.render` against the
float64
:func:`fmlib.synth.engine.render_reference`.

Usage::

    .venv/bin/python benchmarks/bench_synth.py [--notes 100] [--rounds 5] [--seed 0]
"""

from __future__ import annotations

import os

# One thread for every numeric library, set before numpy/scipy are imported.
for _var in (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from fmlib.synth import params as P  # noqa: E402
from fmlib.synth.engine import downsample, render, render_48k, render_reference  # noqa: E402
from fmlib.synth.patch import Patch, patch_from_dict  # noqa: E402

#: DX7 algorithm 18 in dexed-py's 0-based numbering.
DEXED_ALGORITHM_18 = 17


def random_patches(n: int, *, seed: int) -> list[Patch]:
    """``n`` random ``dx7_18`` patches, every parameter uniform on its paper range
    (on a log axis for the log-scaled ones: carrier and ratios)."""
    rng = np.random.default_rng(seed)
    specs = [P.PARAMS[name] for name in P.TARGET_NAMES]
    patches = []
    for _ in range(n):
        v = [
            spec.from_unit(u)
            for spec, u in zip(specs, rng.random(len(specs)), strict=True)
        ]
        patches.append(
            patch_from_dict(
                {
                    "algorithm": "dx7_18",
                    "carrier_hz": v[0],
                    "modulators": [
                        {"ratio": v[1 + i], "index": v[6 + i]} for i in range(5)
                    ],
                    "envelope": {
                        "attack_s": v[11],
                        "decay_s": v[12],
                        "sustain": v[13],
                        "release_s": v[14],
                    },
                }
            )
        )
    return patches


def random_dexed_patches(n: int, *, seed: int) -> list[tuple[object, int]]:
    """``n`` random DX7 algorithm-18 patches for Dexed with all six operators
    sounding (no zero output level), no feedback, no LFO; with a MIDI note each."""
    import dexed

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        levels = np.ones((6, 4), dtype=np.float32)
        levels[:, 1] = rng.uniform(0.7, 1.0, 6)
        levels[:, 2] = rng.uniform(0.5, 1.0, 6)
        levels[:, 3] = 0.0
        output = rng.uniform(0.6, 0.95, 6).astype(np.float32)
        output[0] = 1.0  # the carrier
        preset = dexed.Preset(
            algorithm=DEXED_ALGORITHM_18,
            feedback=0.0,
            op_env_rates=rng.uniform(0.5, 1.0, (6, 4)).astype(np.float32),
            op_env_levels=levels,
            op_output_level=output,
            op_frequency_coarse=(rng.integers(0, 9, 6) / 31).astype(np.float32),
        )
        out.append((preset.to_patch(), int(rng.integers(36, 97))))
    return out


def time_fmlib(patches: list[Patch]) -> tuple[float, float]:
    """(CPU, wall) seconds per note for :func:`fmlib.synth.engine.render` over
    ``patches``."""
    c0, t0 = time.process_time(), time.perf_counter()
    for p in patches:
        render(p)
    n = len(patches)
    return (time.process_time() - c0) / n, (time.perf_counter() - t0) / n


def time_dexed(synth, patches) -> tuple[float, float]:
    """(CPU, wall) seconds per note for Dexed: load the patch, render 4 s at 48 kHz
    with note-off at 3 s, downsample to 16 kHz."""
    c0, t0 = time.process_time(), time.perf_counter()
    for patch, note in patches:
        synth.load_patch(patch)
        audio = synth.render(
            midi_note=note,
            velocity=100,
            note_duration=P.NOTE_OFF_S,
            render_duration=P.DURATION_S,
        )
        downsample(audio)
    n = len(patches)
    return (time.process_time() - c0) / n, (time.perf_counter() - t0) / n


def snr_db(reference: np.ndarray, test: np.ndarray) -> float:
    """10 log10 of reference energy over error energy, dB."""
    err = np.sum((test.astype(np.float64) - reference) ** 2)
    return float(10 * np.log10(np.sum(reference**2) / max(err, 1e-300)))


def stage_times(patches: list[Patch], synth, dx_patches) -> dict[str, float]:
    """Median ms per note (wall clock) of each stage of both pipelines."""
    t_48k, t_ds, t_dx = [], [], []
    for p, (dx_patch, note) in zip(patches, dx_patches, strict=True):
        t0 = time.perf_counter()
        x = render_48k(p)
        t1 = time.perf_counter()
        downsample(x)
        t2 = time.perf_counter()
        synth.load_patch(dx_patch)
        synth.render(note, 100, P.NOTE_OFF_S, P.DURATION_S)
        t3 = time.perf_counter()
        t_48k.append(t1 - t0)
        t_ds.append(t2 - t1)
        t_dx.append(t3 - t2)
    return {
        "fmlib operators + envelope, 48 kHz": 1e3 * statistics.median(t_48k),
        "downsample to 16 kHz (both)": 1e3 * statistics.median(t_ds),
        "Dexed load + render, 48 kHz": 1e3 * statistics.median(t_dx),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, default=100, help="notes per round")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds")
    parser.add_argument("--seed", type=int, default=0, help="seed of the patches")
    parser.add_argument("--snr-notes", type=int, default=10, help="notes for SNR")
    args = parser.parse_args()

    import dexed

    print(
        f"machine: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} logical CPUs, one thread per engine; "
        f"dexed-py {dexed.__version__}, numpy {np.__version__}"
    )
    patches = random_patches(args.notes, seed=args.seed)
    dx_patches = random_dexed_patches(args.notes, seed=args.seed)
    synth = dexed.DexedSynth(sample_rate=float(P.RENDER_SAMPLE_RATE))
    time_fmlib(patches[:5])  # warm-up: caches, FFT plans
    time_dexed(synth, dx_patches[:5])

    fm_cpu, dx_cpu, fm_wall, dx_wall, ratios = [], [], [], [], []
    for r in range(args.rounds):
        fm_c, fm_w = time_fmlib(patches)
        dx_c, dx_w = time_dexed(synth, dx_patches)
        fm_cpu.append(fm_c)
        dx_cpu.append(dx_c)
        fm_wall.append(fm_w)
        dx_wall.append(dx_w)
        ratios.append(dx_c / fm_c)
        print(
            f"round {r + 1}/{args.rounds}: fmlib {1 / fm_c:7.1f} notes/s, "
            f"Dexed {1 / dx_c:7.1f} notes/s (CPU time), ratio {dx_c / fm_c:.2f}x; "
            f"wall-clock ratio {dx_w / fm_w:.2f}x"
        )
    fm, dx = statistics.median(fm_cpu), statistics.median(dx_cpu)

    print("\nwhere the time goes (median ms per note, wall clock):")
    for stage, ms in stage_times(patches, synth, dx_patches).items():
        print(f"  {stage:36s} {ms:6.3f}")

    snrs = [snr_db(render_reference(p), render(p)) for p in patches[: args.snr_notes]]
    carrier_6k = patch_from_dict({**patches[0].to_dict(), "carrier_hz": 6000.0})
    pure_6k = patch_from_dict(
        {
            **patches[0].to_dict(),
            "carrier_hz": 6000.0,
            "modulators": [{"ratio": 1.0, "index": 0.0}] * 5,
        }
    )
    snr_6k = snr_db(render_reference(carrier_6k), render(carrier_6k))
    snr_pure = snr_db(render_reference(pure_6k), render(pure_6k))

    fm_w, dx_w = statistics.median(fm_wall), statistics.median(dx_wall)
    print(f"\nnotes: {args.notes} per round x {args.rounds} rounds, 4 s each, 48 kHz")
    print(
        f"fmlib : {1 / fm:8.1f} notes/s ({1e3 * fm:.2f} ms CPU/note; wall clock "
        f"{1 / fm_w:.1f} notes/s), median round"
    )
    print(
        f"Dexed : {1 / dx:8.1f} notes/s ({1e3 * dx:.2f} ms CPU/note incl. downsample; "
        f"wall clock {1 / dx_w:.1f} notes/s), median round"
    )
    print(
        f"ratio : {statistics.median(ratios):.2f}x (CPU time, median of paired rounds; "
        f"range {min(ratios):.2f}-{max(ratios):.2f}x; wall clock {dx_w / fm_w:.2f}x; "
        "required 2x, goal 3x)"
    )
    print(
        f"SNR vs float64 reference: 6 kHz sine {snr_pure:.1f} dB, 6 kHz FM patch "
        f"{snr_6k:.1f} dB, {len(snrs)} random patches min {min(snrs):.1f} dB / "
        f"median {statistics.median(snrs):.1f} dB (required >= 80 dB)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
