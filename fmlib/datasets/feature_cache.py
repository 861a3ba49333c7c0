"""fmnet's input features of a dataset's notes, computed once and cached as ``.npy``.

For every note: the tracker's f0 (:func:`fmlib.audio.analysis.estimate_f0`, exactly
what inference measures) and :func:`fmlib.audio.harmonic_features.note_features`.
About 15 ms a note on one core, so 100,000 notes cost about 25 core-minutes: the
work is split into chunks of :data:`CHUNK` notes, each written atomically as soon as
it is done, so an interrupted run resumes at the first missing chunk. Chunk ``k``
holds notes ``[k * CHUNK, (k + 1) * CHUNK)``, so the first N notes of a dataset (the
N-note dataset of the same seed) are read from the first chunks alone.

A cache folder holds ``features.json`` (the hash of the dataset's config and the feature
version: a mismatch is an error, never a silent reuse) and, per chunk,
``features_KKKKK.npy`` float32 (count, N_FEATURES) and ``pitch_KKKKK.npy`` float64
(count, 2): f0 in Hz and the tracker's confidence. A note the tracker rejects (silent)
has NaN features and f0.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
from pathlib import Path

import numpy as np

from fmlib import files
from fmlib.audio.harmonic_features import N_FEATURES
from fmlib.errors import InputError

#: Notes per chunk file.
CHUNK = 500
#: Bump when :mod:`fmlib.audio.harmonic_features` changes its output.
FEATURE_VERSION = 1
MANIFEST = "features.json"


def _chunk_names(k: int) -> tuple[str, str]:
    return f"features_{k:05d}.npy", f"pitch_{k:05d}.npy"


def compute_features(audio) -> tuple[np.ndarray, np.ndarray]:
    """Features and pitch of notes.

    Args:
        audio: float32 shape (k, 64000), 16 kHz.

    Returns:
        (features float32 (k, N_FEATURES), pitch float64 (k, 2): f0 Hz, confidence);
        NaN rows for notes the tracker rejects.
    """
    from fmlib.audio.analysis import estimate_f0
    from fmlib.audio.harmonic_features import note_features

    feats = np.full((len(audio), N_FEATURES), np.nan, dtype=np.float32)
    pitch = np.full((len(audio), 2), np.nan)
    for i, x in enumerate(audio):
        try:
            p = estimate_f0(x)
            feats[i] = note_features(x, p.f0_hz)
            pitch[i] = (p.f0_hz, p.confidence)
        except InputError:
            continue
    return feats, pitch


def _save_npy(path: Path, array: np.ndarray) -> None:
    with files.atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array, allow_pickle=False)


def _work(args: tuple[str, str, int, int, int]) -> int:
    dataset_dir, out_dir, k, lo, hi = args
    from fmlib.datasets.dataset_reader import open_dataset

    ds = open_dataset(dataset_dir, n=hi)
    feats, pitch = compute_features(ds.read(np.arange(lo, hi)))
    f_name, p_name = _chunk_names(k)
    _save_npy(Path(out_dir) / p_name, pitch)
    _save_npy(Path(out_dir) / f_name, feats)  # written last: marks the chunk done
    return hi - lo


def _init_worker() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def ensure_features(
    dataset_dir: str | os.PathLike,
    cache_dir: str | os.PathLike,
    *,
    n: int | None = None,
    workers: int = 1,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Features of the first ``n`` notes of a dataset, computed where missing.

    Args:
        dataset_dir: A dataset folder
            (:func:`fmlib.datasets.dataset_reader.open_dataset`).
        cache_dir: The cache folder of this dataset (created if missing).
        n: Number of notes from the start (default: all).
        workers: Processes computing chunks (1: in this process).
        progress: Show a tqdm bar.

    Returns:
        (features float32 (n, N_FEATURES), pitch float64 (n, 2)).

    Raises:
        InputError: ``n`` out of range, or a cache made from another dataset or
            feature version.
    """
    from fmlib.datasets.dataset_reader import open_dataset

    ds = open_dataset(dataset_dir, n=n)
    n, total = ds.n, ds.manifest["n"]  # a chunk is full unless it ends the dataset
    cache = Path(cache_dir)
    ident = {
        "dataset": str(Path(dataset_dir).resolve()),
        "dataset_config_sha256": files.bytes_sha256(
            json.dumps(ds.manifest["config"], sort_keys=True).encode()
        ),
        "feature_version": FEATURE_VERSION,
        "n_features": N_FEATURES,
        "chunk": CHUNK,
    }
    manifest = cache / MANIFEST
    if manifest.is_file():
        saved = json.loads(manifest.read_text(encoding="utf-8"))
        keys = ("dataset_config_sha256", "feature_version", "n_features", "chunk")
        if any(saved.get(k) != ident[k] for k in keys):
            raise InputError(
                f"{cache}: a feature cache of another dataset or feature version; "
                "delete it or give another folder"
            )
    else:
        files.write_json(manifest, ident)
    n_chunks = -(-n // CHUNK)
    todo = [
        (str(dataset_dir), str(cache), k, k * CHUNK, min(total, (k + 1) * CHUNK))
        for k in range(n_chunks)
        if not (cache / _chunk_names(k)[0]).is_file()
    ]
    if todo:
        from tqdm.auto import tqdm

        bar = tqdm(
            total=sum(hi - lo for *_, lo, hi in todo),
            desc=f"features {Path(dataset_dir).name}",
            unit="note",
            disable=not progress,
        )
        if workers <= 1:
            for t in todo:
                bar.update(_work(t))
        else:
            ctx = mp.get_context("spawn")
            with ctx.Pool(workers, initializer=_init_worker) as pool:
                for done in pool.imap_unordered(_work, todo):
                    bar.update(done)
        bar.close()
    feats, pitch = [], []
    for k in range(n_chunks):
        f_name, p_name = _chunk_names(k)
        feats.append(np.load(cache / f_name, allow_pickle=False))
        pitch.append(np.load(cache / p_name, allow_pickle=False))
    return np.concatenate(feats)[:n], np.concatenate(pitch)[:n]
