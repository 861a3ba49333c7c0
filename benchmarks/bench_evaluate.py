"""Speed of the whole re-synthesis evaluation: predict + render + every metric.

Usage::

    .venv/bin/python benchmarks/bench_evaluate.py [--model MODEL_DIR] [--data DIR]
        [--limit N] [--batch-size B]

Without ``--model`` it builds the paper's architecture (:data:`fmlib.estimate.model.
PAPER_CONFIG`) with untrained weights and a scaler fitted on sampled parameters;
the cost of a forward pass does not depend on the weights. ``--data`` defaults to
the 110-note NSynth development set. Prints notes/s for the whole run, and the
per-stage cost per note measured separately. Target: >= 20 notes/s on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def _untrained_paper_model(folder: Path) -> Path:
    import keras

    from fmlib.datasets.sampler import sample_vectors
    from fmlib.estimate.model import TargetScaler, build_model

    keras.utils.set_random_seed(0)
    model = build_model()
    model.save(folder / "model.keras")
    scaler = TargetScaler().fit(sample_vectors(2000, seed=0))
    meta = {
        "complete": True,
        "scaler": scaler.to_dict(),
        "algorithm": "dx7_18",
        "note": "untrained paper-architecture model for benchmarking only",
    }
    (folder / "model.json").write_text(json.dumps(meta))
    return folder


def main() -> None:
    from fmlib.audio import metrics
    from fmlib.datasets.nsynth import load_nsynth, read_note
    from fmlib.estimate.predict import load_predictor
    from fmlib.evaluation.baselines import baselines
    from fmlib.evaluation.evaluate import evaluate, score_note
    from fmlib.paths import NSYNTH_DEV_DIR
    from fmlib.synth.engine import render

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--data", type=Path, default=NSYNTH_DEV_DIR)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()
    print(f"cores visible: {os.cpu_count()}")
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model or _untrained_paper_model(Path(tmp))
        t0 = time.perf_counter()
        predictor = load_predictor(model_dir)
        print(f"model load: {time.perf_counter() - t0:.2f} s")
        table = load_nsynth(args.data)
        n = len(table) if args.limit is None else min(args.limit, len(table))
        audio = np.stack([read_note(p) for p in table.path[:n]])
        # stages, each over the same notes
        predictor.predict_patches(audio[:2])  # warm-up (graph tracing)
        t = time.perf_counter()
        patches = []
        for i in range(0, n, args.batch_size):
            patches += predictor.predict_patches(audio[i : i + args.batch_size])
        t_pred = (time.perf_counter() - t) / n
        t = time.perf_counter()
        ys = [render(p) for p in patches]
        t_render = (time.perf_counter() - t) / n
        t = time.perf_counter()
        for x, y, pitch in zip(audio, ys, table.pitch[:n], strict=True):
            score_note(x, y, int(pitch))
        t_metrics = (time.perf_counter() - t) / n
        t = time.perf_counter()
        metrics.features(audio[0])
        t_feat = time.perf_counter() - t
        t = time.perf_counter()
        baselines(audio[0], 60)
        t_base = time.perf_counter() - t
        print(
            f"per note: predict {1e3 * t_pred:.1f} ms (batch {args.batch_size}), "
            f"render {1e3 * t_render:.1f} ms, "
            f"metrics+baselines {1e3 * t_metrics:.1f} ms"
            f" (one features() {1e3 * t_feat:.1f} ms, baseline signals "
            f"{1e3 * t_base:.1f} ms)"
        )
        # the whole command, as a user runs it (includes reading, CSV, tables)
        out = Path(tmp) / "results"
        t = time.perf_counter()
        evaluate(
            model_dir,
            args.data,
            out,
            limit=args.limit,
            batch_size=args.batch_size,
            progress=False,
        )
        total = time.perf_counter() - t
        print(
            f"evaluate(): {n} notes in {total:.2f} s = {n / total:.1f} notes/s "
            f"(target >= 20 notes/s)"
        )


if __name__ == "__main__":
    main()
