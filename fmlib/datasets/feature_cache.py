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

A folder of real notes in NSynth's layout (:func:`ensure_note_features`, fmnet's
teacher notes) is cached the same way, its notes in ``note_str`` order, identified by
the hash of its ``examples.json``; its chunks also hold ``envelope_KKKKK.npy`` float64
(count, 4): the attack, decay, sustain and release of the analysis's exponential-curve
fit (:func:`fmlib.audio.analysis.fit_envelope`, as a DX7 plays), the targets that a
synthetic note's parameters give instead.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
from dataclasses import dataclass
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


def _envelope_name(k: int) -> str:
    return f"envelope_{k:05d}.npy"


def _chunk_files(k: int, kind: str) -> list[str]:
    """The files of chunk ``k`` in the order :func:`_ensure` returns them."""
    return [*_chunk_names(k)] + ([_envelope_name(k)] if kind == "notes" else [])


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


#: The curve of the envelopes fitted to real notes (one fit: half the time of both).
ENVELOPE_FIT_CURVE = "exponential"


def compute_envelopes(audio) -> np.ndarray:
    """The analysis's fitted envelope of notes, exponential curve.

    Args:
        audio: float32 shape (k, 64000), 16 kHz.

    Returns:
        float64 (k, 4): attack_s, decay_s, sustain, release_s of
        :func:`fmlib.audio.analysis.fit_envelope` with the
        :data:`ENVELOPE_FIT_CURVE` curve; NaN rows for silent notes.
    """
    from fmlib.audio.analysis import fit_envelope, frame_rms

    env = np.full((len(audio), 4), np.nan)
    for i, x in enumerate(audio):
        if not np.any(x):
            continue
        try:
            e, _ = fit_envelope(
                frame_rms(x), n_samples=x.size, curves=(ENVELOPE_FIT_CURVE,)
            )
        except InputError:
            continue
        env[i] = (e.attack_s, e.decay_s, e.sustain, e.release_s)
    return env


def _note_paths(folder: str | os.PathLike) -> list[str]:
    from fmlib.datasets.nsynth import load_nsynth

    return list(load_nsynth(folder)["path"])


def _read(source: str, kind: str, lo: int, hi: int) -> np.ndarray:
    if kind == "dataset":
        from fmlib.datasets.dataset_reader import open_dataset

        return open_dataset(source, n=hi).read(np.arange(lo, hi))
    from fmlib.datasets.nsynth import read_note

    return np.stack([read_note(p) for p in _note_paths(source)[lo:hi]])


def _save_npy(path: Path, array: np.ndarray) -> None:
    with files.atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array, allow_pickle=False)


def _work(args: tuple[str, str, str, int, int, int]) -> int:
    source, kind, out_dir, k, lo, hi = args
    audio = _read(source, kind, lo, hi)
    feats, pitch = compute_features(audio)
    f_name, p_name = _chunk_names(k)
    if kind == "notes":
        _save_npy(Path(out_dir) / _envelope_name(k), compute_envelopes(audio))
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
    config_hash = files.bytes_sha256(
        json.dumps(ds.manifest["config"], sort_keys=True).encode()
    )
    feats, pitch = _ensure(
        dataset_dir,
        "dataset",
        cache_dir,
        n=ds.n,
        total=ds.manifest["n"],  # a chunk is full unless it ends the dataset
        config_hash=config_hash,
        workers=workers,
        progress=progress,
    )
    return feats, pitch


@dataclass(frozen=True)
class NoteFeatures:
    """fmnet's inputs of a folder of real notes, with their analysis envelopes.

    Attributes:
        note_str: (n,) the notes' names, in ``note_str`` order.
        features: float32 (n, N_FEATURES).
        pitch: float64 (n, 2): the tracker's f0 (Hz) and confidence.
        envelope: float64 (n, 4): fitted attack_s, decay_s, sustain, release_s.
    """

    note_str: tuple[str, ...]
    features: np.ndarray
    pitch: np.ndarray
    envelope: np.ndarray


def ensure_note_features(
    folder: str | os.PathLike,
    cache_dir: str | os.PathLike,
    *,
    workers: int = 1,
    progress: bool = True,
) -> NoteFeatures:
    """Features, f0 and analysis envelope of every note of an NSynth-layout folder,
    computed where missing (about 50 ms a note on one core; resumable by chunk).

    Args:
        folder: A folder with ``examples.json`` and ``audio/`` (16 kHz notes).
        cache_dir: Its cache folder (created if missing).
        workers: Processes computing chunks (1: in this process).
        progress: Show a tqdm bar.

    Returns:
        A :class:`NoteFeatures`; silent or untracked notes have NaN rows.

    Raises:
        MissingFileError: no such folder or no ``examples.json``.
        InputError: an unreadable note, or a cache made from another folder content
            or feature version.
    """
    from fmlib.datasets.nsynth import load_nsynth

    table = load_nsynth(folder)
    index = Path(folder) / "examples.json"
    feats, pitch, env = _ensure(
        folder,
        "notes",
        cache_dir,
        n=len(table),
        total=len(table),
        config_hash=files.file_sha256(index),
        workers=workers,
        progress=progress,
    )
    return NoteFeatures(tuple(table["note_str"]), feats, pitch, env)


def _ensure(
    source: str | os.PathLike,
    kind: str,
    cache_dir: str | os.PathLike,
    *,
    n: int,
    total: int,
    config_hash: str,
    workers: int,
    progress: bool,
) -> list[np.ndarray]:
    """The chunked, resumable cache behind both sources: [features, pitch] (and
    the envelopes for ``kind == "notes"``) of the first ``n`` of ``total`` notes."""
    cache = Path(cache_dir)
    ident = {
        "dataset": str(Path(source).resolve()),
        "dataset_config_sha256": config_hash,
        "feature_version": FEATURE_VERSION,
        "n_features": N_FEATURES,
        "chunk": CHUNK,
    }
    if kind == "notes":
        ident["source"] = kind
        ident["envelope_fit"] = ENVELOPE_FIT_CURVE
    manifest = cache / MANIFEST
    if manifest.is_file():
        saved = json.loads(manifest.read_text(encoding="utf-8"))
        keys = ("dataset_config_sha256", "feature_version", "n_features", "chunk")
        extra = ("source", "envelope_fit")  # absent from a dataset's cache
        if any(saved.get(k) != ident[k] for k in keys) or any(
            saved.get(k) != ident.get(k) for k in extra
        ):
            raise InputError(
                f"{cache}: a feature cache of another dataset or feature version; "
                "delete it or give another folder"
            )
    else:
        files.write_json(manifest, ident)
    n_chunks = -(-n // CHUNK)
    todo = [
        (str(source), kind, str(cache), k, k * CHUNK, min(total, (k + 1) * CHUNK))
        for k in range(n_chunks)
        if not (cache / _chunk_names(k)[0]).is_file()
    ]
    if todo:
        from tqdm.auto import tqdm

        bar = tqdm(
            total=sum(hi - lo for *_, lo, hi in todo),
            desc=f"features {Path(source).name}",
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
    parts: list[list[np.ndarray]] = [[] for _ in _chunk_files(0, kind)]
    for k in range(n_chunks):
        for part, name in zip(parts, _chunk_files(k, kind), strict=True):
            part.append(np.load(cache / name, allow_pickle=False))
    if n == 0:
        return [np.zeros((0, N_FEATURES), np.float32), np.zeros((0, 2))] + (
            [np.zeros((0, 4))] if kind == "notes" else []
        )
    return [np.concatenate(part)[:n] for part in parts]
