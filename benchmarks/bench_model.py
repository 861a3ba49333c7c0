"""Benchmark of the paper's CNN: training throughput and inference latency.

Training: the paper's model (PAPER_CONFIG) fitted for ``--steps`` batches of 32 on the
3,000-note training split (seed 0), once streaming from the memory-mapped dataset
through ``AudioParamsSequence`` (shuffled, as in training) and once with
``model.fit`` on the same notes already in memory. The two are interleaved
``--repeats`` times so that load from other processes hits both alike; the
input-pipeline overhead is streamed / in-memory - 1 (target: <= 10%). Reading alone
(iterating the sequence without a model) is timed too.

Inference: ``predict_on_batch`` latency for one note and for a batch of 256.

Usage::

    .venv/bin/python benchmarks/bench_model.py [--data DIR] [--steps 40] [--repeats 2]

It prints numbers only; nothing is asserted. ``--steps 94`` is one full epoch.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from fmlib.paths import DATASETS_DIR  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATASETS_DIR / "fm-paper-5000"))
    parser.add_argument("--steps", type=int, default=40, help="batches per timing")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import keras

    from fmlib.datasets.dataset import open_dataset
    from fmlib.estimate.keras_data import AudioParamsSequence
    from fmlib.estimate.model import (
        PAPER_CONFIG,
        TargetScaler,
        build_model,
        compile_model,
    )
    from fmlib.estimate.train import split_indices, target_vectors

    keras.utils.set_random_seed(args.seed)
    ds = open_dataset(args.data)
    split = split_indices(ds.n, seed=args.seed)
    train = split["train"]
    vectors = target_vectors(ds)
    y_all = TargetScaler().fit(vectors[train]).transform(vectors[train])
    batch = PAPER_CONFIG["batch_size"]
    steps = min(args.steps, -(-len(train) // batch))
    n = steps * batch
    print(f"cpu cores: {os.cpu_count()}, notes in training split: {len(train)}")
    print(f"timing {steps} steps of {batch} notes ({n} notes), {args.repeats} repeats")

    seq = AudioParamsSequence(
        ds, train, targets=y_all, batch_size=batch, shuffle=True, seed=args.seed
    )
    t0 = time.perf_counter()
    for i in range(steps):
        seq[i]
    read_s = time.perf_counter() - t0
    print(f"reading alone: {read_s:.2f} s for {n} notes ({n / read_s:.0f} notes/s)")

    # The same notes, in the same order, in memory.
    order = seq._order[:n] if hasattr(seq, "_order") else np.arange(n)
    x_mem = ds.read(train[order])[:, :, None]
    y_mem = y_all[order]

    model = compile_model(build_model())
    model.fit(x_mem[: 2 * batch], y_mem[: 2 * batch], batch_size=batch, verbose=0)

    streamed, in_memory = [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        model.fit(seq, epochs=1, steps_per_epoch=steps, shuffle=False, verbose=0)
        streamed.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        model.fit(x_mem, y_mem, batch_size=batch, epochs=1, shuffle=False, verbose=0)
        in_memory.append(time.perf_counter() - t0)
    s, m = statistics.median(streamed), statistics.median(in_memory)
    epoch_steps = -(-len(train) // batch)
    print(f"streamed:  {s:.2f} s, {n / s:.1f} samples/s, {s / steps:.3f} s/step")
    print(f"in memory: {m:.2f} s, {n / m:.1f} samples/s, {m / steps:.3f} s/step")
    print(f"  all repeats, streamed {[round(t, 2) for t in streamed]}")
    print(f"  all repeats, in memory {[round(t, 2) for t in in_memory]}")
    print(f"input-pipeline overhead: {100 * (s / m - 1):+.1f}%")
    print(
        f"projected training epoch ({len(train)} notes, no validation): "
        f"{s / steps * epoch_steps:.0f} s streamed, {m / steps * epoch_steps:.0f} s "
        "in memory"
    )

    one = x_mem[:1]
    model.predict_on_batch(one)
    lat = []
    for _ in range(20):
        t0 = time.perf_counter()
        model.predict_on_batch(one)
        lat.append(time.perf_counter() - t0)
    print(f"inference, 1 note: median {1000 * statistics.median(lat):.1f} ms")
    big = ds.read(np.arange(256))[:, :, None]
    model.predict_on_batch(big)
    lat = []
    for _ in range(3):
        t0 = time.perf_counter()
        model.predict_on_batch(big)
        lat.append(time.perf_counter() - t0)
    b = statistics.median(lat)
    print(f"inference, 256 notes: median {b:.2f} s ({256 / b:.0f} notes/s)")


if __name__ == "__main__":
    main()
