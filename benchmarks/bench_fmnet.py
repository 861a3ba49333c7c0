"""Benchmark of fmnet's inference: one note, one core, analysis included.

For each of ``--notes`` dev notes (16 kHz, 4 s), the CPU time (``time.process_time``,
one thread: ``OMP_NUM_THREADS=1`` and TensorFlow's thread pools set to 1 before the
import) of:

* ``fmnet total``: ``FMNetPredictor.predict_patches(x)`` for one note (f0 tracker,
  features, forward pass, decoding, level);
* its parts: ``estimate_f0``, ``note_features``, the forward pass alone;
* the peer in the same run: the paper CNN's ``Predictor.predict_patches`` for one
  note (its forward pass and post-processing; it does no analysis);
* the table lookup (:func:`fmlib.estimate.lookup.lookup_note`: the analysis with
  its envelope fits, the features, the nearest table entry), and its nearest-entry
  step alone.

The first call of each is a warm-up and not counted. Prints the medians and the
ratio of fmnet's total to the paper CNN's, so that machine load hits both alike.
Nothing is asserted (a benchmark, never a timed test).

Usage::

    .venv/bin/python benchmarks/bench_fmnet.py [--model DIR] [--cnn DIR] [--notes 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["OMP_NUM_THREADS"] = "1"
os.environ["TF_NUM_INTRAOP_THREADS"] = "1"
os.environ["TF_NUM_INTEROP_THREADS"] = "1"

import numpy as np  # noqa: E402

from fmlib.paths import MODELS_DIR, NSYNTH_DEV_DIR, SHIPPED_MODEL_DIR  # noqa: E402


def _cpu(fn, *args) -> float:
    t = time.process_time()
    fn(*args)
    return time.process_time() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(SHIPPED_MODEL_DIR))
    parser.add_argument("--cnn", default=str(MODELS_DIR / "cnn-paper"))
    parser.add_argument("--data", default=str(NSYNTH_DEV_DIR))
    parser.add_argument("--notes", type=int, default=30)
    args = parser.parse_args()

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)

    from fmlib.audio.analysis import estimate_f0, prepare_audio
    from fmlib.audio.audio_io import read_wav
    from fmlib.audio.harmonic_features import note_features
    from fmlib.estimate.fmnet import N_BANDS, predict_arrays
    from fmlib.estimate.lookup import lookup_note, nearest_entries
    from fmlib.estimate.predict import load_predictor

    t0 = time.perf_counter()
    fmnet = load_predictor(args.model)
    load_s = time.perf_counter() - t0
    cnn = load_predictor(args.cnn)
    wavs = sorted(
        (os.path.join(args.data, "audio", f))
        for f in os.listdir(os.path.join(args.data, "audio"))
    )[: args.notes + 1]
    notes = [prepare_audio(*read_wav(w))[0] for w in wavs]
    rows: dict[str, list[float]] = {
        "fmnet total": [],
        "  estimate_f0": [],
        "  note_features": [],
        "  forward pass": [],
        "paper CNN predict": [],
        "table lookup": [],
        "  nearest entry": [],
    }
    for i, x in enumerate(notes):
        f0 = estimate_f0(x).f0_hz
        feats = note_features(x, f0)[None]
        times = {
            "fmnet total": _cpu(fmnet.predict_patches, x[None]),
            "  estimate_f0": _cpu(estimate_f0, x),
            "  note_features": _cpu(note_features, x, f0),
            "  forward pass": _cpu(predict_arrays, fmnet.model, feats),
            "paper CNN predict": _cpu(cnn.predict_patches, x[None]),
            "table lookup": _cpu(lookup_note, x),
            "  nearest entry": _cpu(nearest_entries, feats[:, :N_BANDS], [f0]),
        }
        if i == 0:
            continue  # warm-up
        for k, v in times.items():
            rows[k].append(v)
    print(f"notes: {len(notes) - 1} (after one warm-up), one thread")
    print(f"fmnet load (wall, safe_mode=True): {load_s:.2f} s")
    for k, v in rows.items():
        print(
            f"{k:<20} median {1000 * statistics.median(v):7.2f} ms CPU "
            f"(p90 {1000 * float(np.percentile(v, 90)):7.2f})"
        )
    ratio = statistics.median(rows["fmnet total"]) / statistics.median(
        rows["paper CNN predict"]
    )
    print(f"fmnet total / paper CNN predict: {ratio:.2f}")


if __name__ == "__main__":
    main()
