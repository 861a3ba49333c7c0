"""Rendering a dataset's notes into shard files, in this process or a process pool.

Note ``i`` is drawn from its own random stream (:func:`fmlib.datasets.sampler.note_rng`)
and rendered alone, so a shard's bytes do not depend on the number of workers. Workers
are spawned (safe when TensorFlow's threads run in the parent) and import only numpy,
scipy and fmlib's synthesizer; each writes its shard to a temporary file, renamed once
complete, and returns its sha256 to the parent, which records it
(:mod:`fmlib.datasets.dataset`).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import multiprocessing as mp
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from fmlib import files
from fmlib.datasets.dataset_reader import N_SAMPLES, _npy_header
from fmlib.datasets.sampler import SamplerConfig, sample_vectors
from fmlib.synth.patch import patch_from_vector


class _HashingWriter(io.RawIOBase):
    """A write-only stream that forwards to a file and hashes what passes through."""

    def __init__(self, f) -> None:
        self._f = f
        self.hash = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        self.hash.update(b)
        return self._f.write(b)


def _write_shard_atomic(path: Path, rows: Iterator[np.ndarray], count: int) -> str:
    """Stream ``count`` float32 rows into a ``.npy`` file via a temporary file.

    Only one row is held at a time, so a worker's memory does not depend on the
    shard size. The bytes equal ``np.save(path, np.stack(rows))``.

    Returns:
        sha256 hex digest of the file.
    """
    with files.atomic_path(path) as tmp, open(tmp, "wb") as f:
        writer = _HashingWriter(f)
        writer.write(_npy_header(count))
        written = 0
        for row in rows:
            writer.write(np.ascontiguousarray(row, dtype="<f4").tobytes())
            written += 1
        if written != count:
            raise AssertionError(f"shard {path.name}: {written} rows, not {count}")
    return writer.hash.hexdigest()


def render_notes(vectors: np.ndarray, *, algorithm: str) -> np.ndarray:
    """Render parameter vectors; row ``i`` equals ``render(patch_from_vector(v_i))``.

    Args:
        vectors: float64 array of shape (k, 15), TARGET_NAMES order.
        algorithm: Operator graph name.

    Returns:
        float32 array of shape (k, 64000), 16 kHz audio.
    """
    from fmlib.synth.engine import render

    out = np.empty((len(vectors), N_SAMPLES), dtype=np.float32)
    for i, v in enumerate(vectors):
        out[i] = render(patch_from_vector(v, algorithm=algorithm))
    return out


def _render_shard(task: tuple) -> tuple[int, str]:
    """Worker: sample, render and atomically write one shard; return (k, sha256)."""
    from fmlib.synth.engine import render

    k, start, count, seed, sampler_dict, path = task
    sampler = SamplerConfig.from_dict(sampler_dict)
    vectors = sample_vectors(count, seed=seed, start=start, config=sampler)
    rows = (render(patch_from_vector(v, algorithm=sampler.algorithm)) for v in vectors)
    return k, _write_shard_atomic(Path(path), rows, count)


def render_fingerprint(*, seed: int, sampler: SamplerConfig) -> str:
    """sha256 of note 0's float32 audio as rendered now.

    Recorded in the manifest when a dataset is started: resuming with a synthesizer
    (or numpy) that renders differently would mix two renderers in one dataset, so
    :func:`generate_dataset` refuses it. Costs one render (a few ms).
    """
    v = sample_vectors(1, seed=seed, config=sampler)
    audio = render_notes(v, algorithm=sampler.algorithm)
    return files.bytes_sha256(audio.tobytes())


def _ignore_sigint() -> None:
    """Pool initializer: Ctrl-C is handled by the parent alone, which stops the pool
    and removes half-written files (no traceback from every worker)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


#: Thread-count variables of the BLAS/OpenMP libraries numpy and scipy may use.
_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


@contextlib.contextmanager
def _single_threaded_children():
    """Spawned workers inherit ``*_NUM_THREADS=1``: there is one process per core
    already, so a multi-threaded numerical library inside each would oversubscribe
    the cores (the renderer itself uses no BLAS: its output never depends on thread
    counts, see ``fmlib.synth.engine._small_matmul``)."""
    saved = {k: os.environ.get(k) for k in _THREAD_VARS}
    os.environ.update({k: "1" for k in _THREAD_VARS})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _run_tasks(tasks: list[tuple], *, workers: int) -> Iterator[tuple[int, str]]:
    """Yield (k, sha256) as shards finish; in this process when one worker suffices."""
    workers = min(workers, len(tasks))
    if workers == 1:
        for task in tasks:
            yield _render_shard(task)
        return
    # spawn: safe even when TensorFlow (threads) is loaded in the parent, and each
    # worker imports only numpy/scipy/fmlib (never Keras).
    ctx = mp.get_context("spawn")
    with _single_threaded_children():
        pool = ctx.Pool(workers, initializer=_ignore_sigint)
    try:
        yield from pool.imap_unordered(_render_shard, tasks)
        pool.close()
    finally:
        pool.terminate()
        pool.join()
