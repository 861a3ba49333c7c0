"""Benchmark: fmlib patches exported as DX7 voices, rendered by fmlib and by Dexed.

For ``--n`` random paper-range patches (:func:`fmlib.datasets.sampler.sample_vectors`,
the paper's sampler) it

1. exports each patch (:func:`fmlib.synth.dx7.patch_to_voice`), writes them as 32-voice
   banks and has dexed-py load every bank (a checksum warning counts as a refusal)
   and every single-voice dump's data, and checks the bytes Dexed holds;
2. renders each patch with fmlib and the exported voice with Dexed (48 kHz, the key
   stored in the voice, velocity 100, note-off at 3 s, 4 s, then fmlib's own
   :func:`fmlib.synth.engine.downsample` to 16 kHz) and reports the median log-mel
   distance (:func:`fmlib.audio.metrics.logmel_distance`) between the two renders,
   against the median distance between the fmlib renders of two different random patches
   (patch i against patch i + 1; target: at least 5 x larger);
3. runs the round trip export -> import -> export on every patch: the voice must
   come back byte for byte, and the worst error of every parameter is printed;
4. imports every exported voice with each envelope curve (linear, exponential) and
   reports the median log-mel distance of fmlib's render of the imported patch to
   Dexed's render of the voice, and on how many voices the exponential import is
   closer (the measurement behind :data:`fmlib.synth.dx7.IMPORT_CURVE`).

``--curve exponential`` gives the random patches the exponential envelope curve.

``--patches DIR`` adds matched notes: every ``DIR/<stem>.json`` whose
``<stem>.wav`` exists in the NSynth development set. For each it prints both
renders' log-mel distances to the original note and the log-mel gain over the
440 Hz sine baseline (:func:`fmlib.evaluation.baselines.sine_440`) that Dexed's render
keeps relative to fmlib's: ``(d(sine) - d(dexed)) / (d(sine) - d(fmlib))``.

A figure of fmlib's render against Dexed's (waveform envelope and log-mel
spectrogram) for ``--figure`` patches goes to ``data/dx7/``, with a JSON of every
number printed.

dexed-py (GPL-3) is a dev extra, imported only here and in tests.

Usage::

    PYTHONPATH=. .venv/bin/python benchmarks/bench_dx7.py [--n 200] [--seed 0]
        [--patches data/matched-dev] [--figure 4]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from tqdm import tqdm

from fmlib.audio.audio_io import read_wav
from fmlib.audio.metrics import distances, features
from fmlib.datasets.sampler import sample_vectors
from fmlib.evaluation.baselines import sine_440
from fmlib.paths import DATA_DIR, NSYNTH_DEV_DIR
from fmlib.synth import dx7
from fmlib.synth import params as P
from fmlib.synth.engine import downsample, render
from fmlib.synth.patch import load_patch, patch_from_vector

try:
    import dexed
except ImportError:  # pragma: no cover
    sys.exit("error: dexed-py is not installed (pip install -e '.[dev]')")

OUT_DIR = DATA_DIR / "dx7"
VELOCITY = 100


def dexed_render(voice: dx7.Voice, key: int, synth) -> np.ndarray:
    """Render ``voice`` at ``key`` in Dexed from its exported bytes; 16 kHz float32
    shape (64000,)."""
    synth.load_patch(dexed.Patch.from_sysex(dx7.voice_to_bytes(voice)))
    y = synth.render(key, VELOCITY, P.NOTE_OFF_S, P.DURATION_S)
    return downsample(np.asarray(y, dtype=np.float32))


def logmel(fx, fy) -> float:
    return distances(fx, fy)["logmel"]


def check_dexed_accepts(voices: list[dx7.Voice], tmp: Path) -> tuple[int, int]:
    """(voices Dexed loaded with identical bytes, banks it loaded without a
    warning) over banks of 32 and single-voice data."""
    ok_voices, ok_banks = 0, 0
    for start in range(0, len(voices), dx7.BANK_VOICES):
        chunk = voices[start : start + dx7.BANK_VOICES]
        path = tmp / f"bank{start // 32:02d}.syx"
        path.write_bytes(dx7.bank_sysex(chunk))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                loaded = dexed.Patch.load_bank(str(path))
            ok_banks += 1
        except (Warning, ValueError):
            continue
        for v, lp in zip(chunk, loaded, strict=False):
            single = dx7.parse_sysex(dx7.voice_sysex(v))[0]
            data = dx7.voice_to_bytes(single)
            if (
                lp.to_sysex()[:155]
                == data
                == dexed.Patch.from_sysex(data).to_sysex()[:155]
            ):
                ok_voices += 1
    return ok_voices, ok_banks


def round_trip(patch) -> tuple[bool, dict[str, float]]:
    """Export, import, export again: (same voice with the default import and with
    the patch's own curve?, error of each parameter imported with its own curve)."""
    voice, _ = dx7.patch_to_voice(patch)
    stored = dx7.voice_from_bytes(dx7.voice_to_bytes(voice))
    default = dx7.patch_to_voice(dx7.voice_to_patch(stored))[0]
    back = dx7.voice_to_patch(stored, curve=patch.envelope.curve)
    again, _ = dx7.patch_to_voice(back)
    a, b = patch.to_vector(), back.to_vector()
    errs = {}
    for name, x, y in zip(P.TARGET_NAMES, a, b, strict=True):
        if name == "carrier_hz" or name.startswith("ratio"):
            errs[name] = abs(1200 * math.log2(y / x))  # cents
        else:
            errs[name] = abs(y - x)
    errs["level"] = abs(back.level - patch.level)
    return again == voice == default, errs


def plot_pairs(items, path: Path) -> Path:
    """fmlib's render against Dexed's for a few patches: RMS envelopes (dB) and
    log-mel spectrograms side by side. ``items``: (title, fmlib, dexed) audio."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fmlib.audio.metrics import rms_envelope

    n = len(items)
    fig, axes = plt.subplots(n, 3, figsize=(12, 2.4 * n), squeeze=False)
    for row, (title, x, y) in enumerate(items):
        fx, fy = features(x), features(y)
        t = np.arange(fx.rms.size) * 512 / P.SAMPLE_RATE
        ax = axes[row, 0]
        ax.plot(t, 20 * np.log10(rms_envelope(x) + 1e-6), label="fmlib")
        ax.plot(t, 20 * np.log10(rms_envelope(y) + 1e-6), label="Dexed", alpha=0.8)
        ax.set_ylim(-80, 5)
        ax.set_ylabel("RMS, dB")
        ax.set_title(title, fontsize=9)
        if row == 0:
            ax.legend(frameon=False)
        vmax = max(fx.log_mel.max(), fy.log_mel.max())
        for col, (f, label) in enumerate(((fx, "fmlib"), (fy, "Dexed")), start=1):
            axes[row, col].imshow(
                f.log_mel,
                origin="lower",
                aspect="auto",
                vmin=0,
                vmax=vmax,
                extent=(0, t[-1], 0, f.log_mel.shape[0]),
                cmap="magma",
            )
            axes[row, col].set_title(f"{label}: log(1 + mel power)", fontsize=9)
            axes[row, col].set_ylabel("mel band")
    for ax in axes[-1]:
        ax.set_xlabel("time, s")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path


def matched_notes(patch_dir: Path, synth) -> dict:
    """Distances to the original notes for matched patches (see the module doc)."""
    audio_dir = NSYNTH_DEV_DIR / "audio"
    rows = []
    files = sorted(patch_dir.glob("*.json"))
    for f in tqdm(files, desc="matched notes", unit="note"):
        wav = audio_dir / f"{f.stem}.wav"
        if not wav.is_file():
            continue
        note = read_wav(wav)[0].mean(axis=1).astype(np.float32)
        patch = load_patch(f)
        voice, report = dx7.patch_to_voice(patch)
        x, y = render(patch), dexed_render(voice, report.key, synth)
        fn, fx, fy, fs = features(note), features(x), features(y), features(sine_440())
        d_fm, d_dx, d_sine = logmel(fn, fx), logmel(fn, fy), logmel(fn, fs)
        rows.append(
            {
                "stem": f.stem,
                "fmlib": d_fm,
                "dexed": d_dx,
                "sine_440": d_sine,
                "fmlib_vs_dexed": logmel(fx, fy),
                "gain_fmlib": d_sine - d_fm,
                "gain_dexed": d_sine - d_dx,
            }
        )
    if not rows:
        return {"n": 0}
    g_fm = np.array([r["gain_fmlib"] for r in rows])
    g_dx = np.array([r["gain_dexed"] for r in rows])
    ratio = g_dx / np.where(g_fm != 0, g_fm, np.nan)
    positive = g_fm > 0
    return {
        "n": len(rows),
        "median_fmlib_to_note": float(np.median([r["fmlib"] for r in rows])),
        "median_dexed_to_note": float(np.median([r["dexed"] for r in rows])),
        "median_sine_to_note": float(np.median([r["sine_440"] for r in rows])),
        "median_fmlib_vs_dexed": float(np.median([r["fmlib_vs_dexed"] for r in rows])),
        "gain_kept_total": float(g_dx.sum() / g_fm.sum()),
        "gain_kept_median": float(np.nanmedian(ratio[positive])),
        "notes_keeping_90pct": int(np.sum(ratio[positive] >= 0.9)),
        "notes_with_positive_fmlib_gain": int(positive.sum()),
        "rows": rows,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="random patches (default 200)")
    ap.add_argument(
        "--seed", type=int, default=0, help="sampler seed (2026 tuned FLOOR_DB)"
    )
    ap.add_argument("--patches", type=Path, help="folder of matched patch JSONs")
    ap.add_argument(
        "--curve",
        choices=P.ENVELOPE_CURVES,
        default=P.DEFAULT_ENVELOPE_CURVE,
        help="envelope curve of the random patches",
    )
    ap.add_argument("--figure", type=int, default=4, help="patches in the figure")
    ap.add_argument("--out", type=Path, default=OUT_DIR, help="output folder")
    args = ap.parse_args()
    if args.n < 2:
        sys.exit("error: --n: give at least 2 patches")
    if args.patches is not None and not args.patches.is_dir():
        sys.exit(f"error: --patches: {args.patches} is not a folder")
    print(
        f"machine: {platform.machine()}, {platform.processor() or '?'}, "
        f"python {platform.python_version()}, dexed-py {dexed.__version__ or '0.3.0'}"
    )
    patches = [
        patch_from_vector(v, curve=args.curve)
        for v in sample_vectors(args.n, seed=args.seed)
    ]
    synth = dexed.DexedSynth(sample_rate=P.RENDER_SAMPLE_RATE)
    t0 = time.perf_counter()
    exported = [dx7.patch_to_voice(p) for p in patches]
    t_export = (time.perf_counter() - t0) / len(patches)
    voices = [v for v, _ in exported]

    with tempfile.TemporaryDirectory() as tmp:
        ok_voices, ok_banks = check_dexed_accepts(voices, Path(tmp))
    n_banks = math.ceil(len(voices) / dx7.BANK_VOICES)

    near, far, fm_feats, pairs = [], [], [], []
    imported = {c: [] for c in P.ENVELOPE_CURVES}
    for i, (p, (v, rep)) in enumerate(
        tqdm(list(zip(patches, exported, strict=True)), desc="render", unit="patch")
    ):
        x, y = render(p), dexed_render(v, rep.key, synth)
        fx, fy = features(x), features(y)
        fm_feats.append(fx)
        near.append(logmel(fx, fy))
        for c in P.ENVELOPE_CURVES:
            q = dx7.voice_to_patch(v, curve=c)
            imported[c].append(logmel(features(render(q)), fy))
        if i < args.figure:
            pairs.append(
                (
                    f"patch {i}: {p.carrier_hz:.0f} Hz, key {rep.key}; "
                    f"log-mel {near[-1]:.0f}",
                    x,
                    y,
                )
            )
    for i in range(len(patches)):
        far.append(logmel(fm_feats[i], fm_feats[(i + 1) % len(patches)]))

    trips = [round_trip(p) for p in tqdm(patches, desc="round trip", unit="patch")]
    same = sum(ok for ok, _ in trips)
    worst = {k: max(e[k] for _, e in trips) for k in trips[0][1]}

    results = {
        "n": len(patches),
        "seed": args.seed,
        "export_ms_per_patch": 1000 * t_export,
        "dexed_accepts_voices": ok_voices,
        "dexed_accepts_banks": ok_banks,
        "banks": n_banks,
        "median_logmel_fmlib_vs_dexed": float(np.median(near)),
        "median_logmel_two_random_patches": float(np.median(far)),
        "ratio": float(np.median(far) / np.median(near)),
        "p90_logmel_fmlib_vs_dexed": float(np.percentile(near, 90)),
        "curve": args.curve,
        "import_median_logmel_to_dexed": {
            c: float(np.median(d)) for c, d in imported.items()
        },
        "import_exponential_closer": int(
            np.sum(np.less(imported["exponential"], imported["linear"]))
        ),
        "round_trip_same_voice": same,
        "round_trip_worst_error": worst,
    }
    print(f"export: {results['export_ms_per_patch']:.1f} ms per patch")
    print(
        f"Dexed accepts: {ok_voices}/{len(voices)} voices, {ok_banks}/{n_banks} banks"
    )
    print(
        "log-mel fmlib vs Dexed, same patch: median "
        f"{results['median_logmel_fmlib_vs_dexed']:.2f} "
        f"(90th percentile {results['p90_logmel_fmlib_vs_dexed']:.2f})"
    )
    print(
        f"log-mel between two random patches (fmlib): median "
        f"{results['median_logmel_two_random_patches']:.2f}"
    )
    print(f"ratio: {results['ratio']:.2f}x (target >= 5x)")
    print(
        "voice imported with each curve, log-mel to Dexed's render: median "
        + ", ".join(
            f"{c} {m:.2f}" for c, m in results["import_median_logmel_to_dexed"].items()
        )
        + f"; exponential closer on {results['import_exponential_closer']}"
        f"/{len(patches)}"
    )
    print(f"round trip export -> import -> export: {same}/{len(patches)} same voice")
    print("round trip worst error (cents for carrier_hz and ratios, own unit else):")
    for k, e in worst.items():
        print(f"  {k:<11} {e:.4g}")
    if args.patches is not None:
        m = matched_notes(args.patches, synth)
        results["matched"] = m
        if m["n"]:
            print(
                f"matched notes ({m['n']}): median log-mel to the note: fmlib "
                f"{m['median_fmlib_to_note']:.2f}, "
                f"Dexed {m['median_dexed_to_note']:.2f}, "
                f"440 Hz sine {m['median_sine_to_note']:.2f}; fmlib vs Dexed "
                f"{m['median_fmlib_vs_dexed']:.2f}"
            )
            print(
                f"gain over the sine kept by Dexed: {m['gain_kept_total']:.1%} of "
                f"fmlib's in total, median per note {m['gain_kept_median']:.1%}, "
                f"{m['notes_keeping_90pct']}/{m['notes_with_positive_fmlib_gain']} "
                "notes keep >= 90 %"
            )
        else:
            print(f"matched notes: no <stem>.json in {args.patches} matches a dev note")
    args.out.mkdir(parents=True, exist_ok=True)
    fig = plot_pairs(pairs, args.out / "fmlib_vs_dexed.png") if pairs else None
    out_json = args.out / "bench_dx7.json"
    tmp = out_json.with_name(".bench_dx7.json.tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    tmp.replace(out_json)
    print(f"wrote {out_json}" + (f" and {fig}" if fig else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
