"""The training dataset on disk: generate it from a seed, resume it, read it lazily.

Layout of a dataset folder (``python -m fmlib generate --n N --seed S --out DIR``)::

    DIR/manifest.json           how it was made and what is done (see below)
    DIR/params.csv              one row per note: TARGET_NAMES columns + algorithm
    DIR/audio/shard-00000.npy   float32 (count, 64000), notes start .. start+count-1
    DIR/audio/shard-00001.npy   ...
    DIR/wav/note-00000.wav      only with --wav K: the first K notes, 16-bit WAV
    DIR/wav/note-00000.json         and their patch JSON

* Audio is float32 at 16 kHz, 4 s per note (64,000 samples), exactly what
  :func:`fmlib.synth.render` returns (no rescaling: values in about [-1, 1]). Shards
  hold ``shard_size`` notes each (256 by default: 64 MB), the last one fewer. They
  are plain ``.npy`` files, opened with ``np.load(mmap_mode="r",
  allow_pickle=False)``.
* ``params.csv`` holds every float as Python's shortest round-trip ``repr`` so that
  reading it with ``float_precision="round_trip"`` gives the sampler's values exactly.
* ``manifest.json`` holds ``config`` (n, seed, the full sampler configuration, the
  seeding rule, rate, duration, note-off, audio dtype), ``shard_size``, the list of
  shards with the sha256 of each file (``null`` until written), the sha256 of
  ``params.csv``, ``complete``, the fmlib/numpy/scipy versions and a fingerprint of
  the renderer (:func:`render_fingerprint`). No timestamps,
  so the same dataset always has the same manifest (and :attr:`Dataset.manifest_hash`).

Determinism: note ``i`` is drawn from its own stream (:func:`fmlib.sampler.note_rng`)
and rendered alone, so shards are byte-identical whatever the number of workers or
the shard size. Crash safety: every file is written to a temporary name and renamed;
the parent records a shard's checksum in the manifest (also written atomically) only
after the shard is in place. A rerun verifies every recorded checksum and renders only
what is missing or corrupt.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import functools
import hashlib
import io
import json
import multiprocessing as mp
import os
import shutil
import signal
import sys
from collections.abc import Iterator, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from fmlib import files
from fmlib import params as P
from fmlib.algorithms import DEFAULT_ALGORITHM
from fmlib.errors import InputError, MissingFileError
from fmlib.patch import Patch, patch_from_vector
from fmlib.sampler import SamplerConfig, sample_vectors

FORMAT = "fmlib-dataset"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
PARAMS_NAME = "params.csv"
AUDIO_DIR = "audio"
WAV_DIR = "wav"
LOCK_NAME = ".lock"
#: Notes per shard file (256 x 64,000 x 4 B = 64 MB). Workers stream rows to disk,
#: so memory does not depend on it; it sets the resume granularity.
DEFAULT_SHARD_SIZE = 256
#: Samples per note at 16 kHz.
N_SAMPLES = round(P.DURATION_S * P.SAMPLE_RATE)
#: How a note's random stream is derived (recorded in the manifest).
SEEDING = "PCG64(SeedSequence(seed, spawn_key=(note_index,)))"
_HASH_CHUNK = 1 << 22


# --------------------------------------------------------------------------- helpers
_sha256_file = files.file_sha256
_write_text_atomic = files.write_text


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


def _npy_header(count: int) -> bytes:
    """The ``.npy`` (format 1.0) header of a float32 (count, N_SAMPLES) array."""
    buf = io.BytesIO()
    header = {"descr": "<f4", "fortran_order": False, "shape": (count, N_SAMPLES)}
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue()


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


def _shard_plan(n: int, shard_size: int) -> list[tuple[int, int]]:
    """(start, count) of every shard."""
    return [(s, min(shard_size, n - s)) for s in range(0, n, shard_size)]


def _shard_file(k: int) -> str:
    return f"{AUDIO_DIR}/shard-{k:05d}.npy"


def _npy_size(count: int) -> int:
    """Exact size in bytes of a float32 (count, N_SAMPLES) ``.npy`` file."""
    return len(_npy_header(count)) + count * N_SAMPLES * 4


def dataset_config(*, n: int, seed: int, sampler: SamplerConfig) -> dict[str, Any]:
    """The settings that determine a dataset's content (compared on reuse).

    Returns:
        A JSON-normalised dict (lists, not tuples).
    """
    cfg = {
        "n": int(n),
        "seed": int(seed),
        "sampler": sampler.to_dict(),
        "seeding": SEEDING,
        "sample_rate": P.SAMPLE_RATE,
        "duration_s": P.DURATION_S,
        "note_off_s": P.NOTE_OFF_S,
        "n_samples": N_SAMPLES,
        "audio_dtype": "float32",
    }
    return json.loads(json.dumps(cfg))


def _versions() -> dict[str, str]:
    import scipy

    from fmlib import __version__

    return {"fmlib": __version__, "numpy": np.__version__, "scipy": scipy.__version__}


def _new_manifest(config: dict[str, Any], shard_size: int) -> dict[str, Any]:
    plan = _shard_plan(config["n"], shard_size)
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": config,
        "versions": _versions(),
        "n": config["n"],
        "shard_size": shard_size,
        "n_shards": len(plan),
        "params_file": PARAMS_NAME,
        "params_sha256": None,
        "shards": [
            {"file": _shard_file(k), "start": s, "count": c, "sha256": None}
            for k, (s, c) in enumerate(plan)
        ],
        "complete": False,
    }


def render_fingerprint(*, seed: int, sampler: SamplerConfig) -> str:
    """sha256 of note 0's float32 audio as rendered now.

    Recorded in the manifest when a dataset is started: resuming with a synthesizer
    (or numpy) that renders differently would mix two renderers in one dataset, so
    :func:`generate_dataset` refuses it. Costs one render (a few ms).
    """
    v = sample_vectors(1, seed=seed, config=sampler)
    audio = render_notes(v, algorithm=sampler.algorithm)
    return files.bytes_sha256(audio.tobytes())


def _manifest_text(manifest: dict[str, Any]) -> str:
    return json.dumps(manifest, indent=2) + "\n"


def _write_manifest(out: Path, manifest: dict[str, Any]) -> None:
    _write_text_atomic(out / MANIFEST_NAME, _manifest_text(manifest))


def _read_manifest(path: Path) -> dict[str, Any]:
    """Parse ``path/manifest.json``; InputError when it is not an fmlib dataset's."""
    f = path / MANIFEST_NAME
    try:
        m = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{f}: not a readable dataset manifest ({exc})") from None
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise InputError(f"{f}: not an fmlib dataset manifest")
    if m.get("format_version") != FORMAT_VERSION:
        raise InputError(
            f"{f}: dataset format version {m.get('format_version')!r}; this fmlib "
            f"reads version {FORMAT_VERSION} (regenerate it with --force)"
        )
    return m


def _params_rows(vectors: np.ndarray, algorithm: str) -> str:
    return "".join(
        ",".join(repr(float(x)) for x in row) + f",{algorithm}\n" for row in vectors
    )


def _params_header() -> str:
    return ",".join((*P.TARGET_NAMES, "algorithm")) + "\n"


def _write_params_csv(
    out: Path, *, n: int, seed: int, sampler: SamplerConfig, shard_size: int
) -> str:
    """Stream params.csv shard by shard (memory bounded); return its sha256."""
    path = out / PARAMS_NAME
    h = hashlib.sha256()
    with (
        files.atomic_path(path) as tmp,
        open(tmp, "w", encoding="utf-8", newline="\n") as f,
    ):
        for text in _params_chunks(n=n, seed=seed, sampler=sampler, size=shard_size):
            h.update(text.encode("utf-8"))
            f.write(text)
    return h.hexdigest()


def _params_chunks(
    *, n: int, seed: int, sampler: SamplerConfig, size: int
) -> Iterator[str]:
    yield _params_header()
    for start, count in _shard_plan(n, size):
        v = sample_vectors(count, seed=seed, start=start, config=sampler)
        yield _params_rows(v, sampler.algorithm)


def _params_sha256(*, n: int, seed: int, sampler: SamplerConfig, size: int) -> str:
    h = hashlib.sha256()
    for text in _params_chunks(n=n, seed=seed, sampler=sampler, size=size):
        h.update(text.encode("utf-8"))
    return h.hexdigest()


# --------------------------------------------------------------------------- workers
def render_notes(vectors: np.ndarray, *, algorithm: str) -> np.ndarray:
    """Render parameter vectors; row ``i`` equals ``render(patch_from_vector(v_i))``.

    Args:
        vectors: float64 array of shape (k, 15), TARGET_NAMES order.
        algorithm: Operator graph name.

    Returns:
        float32 array of shape (k, 64000), 16 kHz audio.
    """
    from fmlib.synth import render

    out = np.empty((len(vectors), N_SAMPLES), dtype=np.float32)
    for i, v in enumerate(vectors):
        out[i] = render(patch_from_vector(v, algorithm=algorithm))
    return out


def _render_shard(task: tuple) -> tuple[int, str]:
    """Worker: sample, render and atomically write one shard; return (k, sha256)."""
    from fmlib.synth import render

    k, start, count, seed, sampler_dict, path = task
    sampler = SamplerConfig.from_dict(sampler_dict)
    vectors = sample_vectors(count, seed=seed, start=start, config=sampler)
    rows = (render(patch_from_vector(v, algorithm=sampler.algorithm)) for v in vectors)
    return k, _write_shard_atomic(Path(path), rows, count)


# --------------------------------------------------------------------------- generate
#: The largest ``n`` accepted (25.6 TB of audio): anything above is a typo.
MAX_NOTES = 100_000_000
#: The most worker processes accepted.
MAX_WORKERS = 256
#: The largest shard accepted (65,536 notes: 16.8 GB per file).
MAX_SHARD_SIZE = 65_536


def _check_int(name: str, value: Any, *, low: int, high: int | None = None) -> int:
    valid = f"an integer >= {low}" if high is None else f"{low} to {high:,}"
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InputError(f"{name}: expected {valid}, got {value!r}")
    if value < low or (high is not None and value > high):
        raise InputError(f"{name}: {value:,} is not valid; valid: {valid}")
    return int(value)


def _shard_size_of(out: Path) -> int:
    """The shard size of the dataset in ``out``, or the default."""
    try:
        return int(_read_manifest(out)["shard_size"])
    except (InputError, KeyError, TypeError, ValueError, OSError):
        return DEFAULT_SHARD_SIZE


def _known_entry(name: str) -> bool:
    return name in {MANIFEST_NAME, PARAMS_NAME, AUDIO_DIR, WAV_DIR, LOCK_NAME} or (
        name.startswith(".") and name.endswith(".tmp")
    )


def _check_folder(out: Path) -> None:
    """Refuse ``out`` before any work: not a folder, or a folder holding something
    else than a dataset (see :func:`fmlib.files.check_output`)."""
    files.check_output(out, kind="folder")
    if out.is_dir() and not (out / MANIFEST_NAME).exists():
        with files.os_errors(out, action="cannot read"):
            strangers = sorted(
                p.name for p in out.iterdir() if not _known_entry(p.name)
            )
        if strangers:
            raise InputError(
                f"{out}: is not empty and not a dataset (holds {strangers[0]!r}); "
                "give an empty or new folder for --out"
            )


#: Upper bound of one params.csv row, bytes (15 shortest-repr floats of at most 24
#: characters, commas, the algorithm's name).
_PARAMS_ROW_BYTES = 15 * 25 + 32
#: Upper bound of one shard's entry in manifest.json, bytes.
_MANIFEST_SHARD_BYTES = 160
#: One ``--wav`` note: a 32-bit float WAV (the worst case) and its patch JSON.
_WAV_NOTE_BYTES = N_SAMPLES * 4 + 64 + 1024


def required_bytes(*, n: int, shard_size: int, wav: int = 0) -> int:
    """Disk space a complete dataset takes, bytes (exact for the shards, an upper
    bound for params.csv, the manifest and the ``--wav`` notes); O(1) in ``n``."""
    full, last = divmod(n, shard_size)
    audio = full * _npy_size(shard_size) + (_npy_size(last) if last else 0)
    n_shards = full + (1 if last else 0)
    return (
        audio
        + n * _PARAMS_ROW_BYTES
        + n_shards * _MANIFEST_SHARD_BYTES
        + 4096
        + wav * _WAV_NOTE_BYTES
    )


def _existing_bytes(out: Path) -> int:
    """Bytes of the dataset files already in ``out`` (kept or replaced by a rerun)."""
    total = 0
    for f in (out / MANIFEST_NAME, out / PARAMS_NAME):
        with contextlib.suppress(OSError):
            total += f.stat().st_size
    with contextlib.suppress(OSError):
        for f in (out / AUDIO_DIR).iterdir():
            with contextlib.suppress(OSError):
                total += f.stat().st_size
    return total


def _check_space(out: Path, *, n: int, shard_size: int, wav: int) -> None:
    """Refuse, naming both numbers, when the disk is too small for the dataset."""
    need = max(0, required_bytes(n=n, shard_size=shard_size, wav=wav))
    need -= _existing_bytes(out) if out.is_dir() else 0
    free = files.free_bytes(out)
    if need > free:
        raise InputError(
            f"{out}: {n:,} notes need {files.format_bytes(need)} of disk "
            f"({files.format_bytes(_npy_size(1) - len(_npy_header(1)))} per note) "
            f"but only {files.format_bytes(free)} is free; lower --n or choose "
            "another --out"
        )


def _prepare_folder(out: Path) -> None:
    """Check ``out`` (:func:`_check_folder`), then create it with its parents."""
    _check_folder(out)
    with files.os_errors(out, action="cannot create the output folder"):
        out.mkdir(parents=True, exist_ok=True)
        (out / AUDIO_DIR).mkdir(exist_ok=True)


_folder_lock = functools.partial(files.folder_lock, command="generate")


def _config_difference(old: dict[str, Any], new: dict[str, Any]) -> str:
    parts = []
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            if key == "sampler":
                sub = [
                    k
                    for k in sorted(set(old[key]) | set(new[key]))
                    if old[key].get(k) != new[key].get(k)
                ]
                parts.append(f"sampler {', '.join(sub)}")
            else:
                parts.append(f"{key} is {old.get(key)!r}, asked {new.get(key)!r}")
    return "; ".join(parts)


def _remove_dataset(out: Path) -> None:
    for name in (AUDIO_DIR, WAV_DIR):
        shutil.rmtree(out / name, ignore_errors=True)
    for name in (MANIFEST_NAME, PARAMS_NAME):
        with contextlib.suppress(FileNotFoundError):
            (out / name).unlink()
    (out / AUDIO_DIR).mkdir(exist_ok=True)


def _shard_is_valid(out: Path, shard: dict[str, Any]) -> bool:
    if not shard.get("sha256"):
        return False
    f = out / shard["file"]
    try:
        if f.stat().st_size != _npy_size(shard["count"]):
            return False
        return _sha256_file(f) == shard["sha256"]
    except OSError:
        return False


def _tqdm(progress: bool, **kwargs):
    from tqdm.auto import tqdm

    return tqdm(disable=not progress, file=sys.stderr, dynamic_ncols=True, **kwargs)


def generate_dataset(
    out_dir: str | os.PathLike,
    *,
    n: int,
    seed: int,
    algorithm: str = DEFAULT_ALGORITHM,
    workers: int | None = None,
    shard_size: int | None = None,
    force: bool = False,
    wav: int = 0,
    progress: bool = True,
    sampler: SamplerConfig | None = None,
) -> Path:
    """Generate (or resume, or verify) a dataset of ``n`` random notes.

    Args:
        out_dir: Dataset folder; created with its parents if needed.
        n: Number of notes, >= 1.
        seed: Dataset seed, >= 0; note ``i`` depends only on (seed, i, sampler).
        algorithm: Operator graph of every note (ignored when ``sampler`` is given).
        workers: Processes rendering shards (default: every CPU core); 1 renders in
            this process. Does not change the output.
        shard_size: Notes per shard file (default 256, or the existing dataset's).
            Does not change any note; only how notes are grouped into files.
        force: Replace a dataset made with another configuration instead of refusing.
        wav: Also write the first ``wav`` notes as WAV + patch JSON under ``wav/``.
        progress: Show tqdm bars (notes/s) on stderr.
        sampler: Full sampler configuration (default: the paper's, with ``algorithm``).

    Returns:
        The dataset folder.

    Raises:
        InputError: bad option, a folder holding another dataset (without ``force``),
            an unwritable folder, or a write error such as a full disk (rerunning
            resumes: no partial shard is ever recorded as valid).
    """
    n = _check_int("n", n, low=1, high=MAX_NOTES)
    seed = _check_int("seed", seed, low=0)
    if workers is None:
        workers = os.cpu_count() or 1
    workers = _check_int("workers", workers, low=1, high=MAX_WORKERS)
    if shard_size is not None:
        shard_size = _check_int("shard_size", shard_size, low=1, high=MAX_SHARD_SIZE)
    wav = _check_int("wav", wav, low=0)
    if wav > n:
        raise InputError(f"wav: {wav} is more than the {n} notes of the dataset")
    if sampler is None:
        sampler = SamplerConfig(algorithm=algorithm)
    config = dataset_config(n=n, seed=seed, sampler=sampler)
    out = Path(out_dir)
    _check_folder(out)
    _check_space(out, n=n, shard_size=shard_size or _shard_size_of(out), wav=wav)
    _prepare_folder(out)
    try:
        with _folder_lock(out):
            _generate_locked(
                out,
                config=config,
                sampler=sampler,
                workers=workers,
                shard_size=shard_size,
                force=force,
                wav=wav,
                progress=progress,
            )
    except (InputError, MissingFileError):
        raise
    except OSError as exc:
        reason = exc.strerror or str(exc)
        hint = (
            " (free some space, then rerun to resume)"
            if exc.errno == errno.ENOSPC
            else ""
        )
        raise InputError(f"{out}: cannot write the dataset ({reason}){hint}") from None
    return out


def _generate_locked(
    out: Path,
    *,
    config: dict[str, Any],
    sampler: SamplerConfig,
    workers: int,
    shard_size: int | None,
    force: bool,
    wav: int,
    progress: bool,
) -> None:
    manifest = None
    fingerprint = render_fingerprint(seed=config["seed"], sampler=sampler)
    if (out / MANIFEST_NAME).exists():
        try:
            manifest = _read_manifest(out)
        except InputError:
            if not force:
                raise InputError(
                    f"{out}: holds an unreadable or foreign manifest.json; "
                    "use --force to replace it"
                ) from None
        if manifest is not None and manifest["config"] != config:
            if not force:
                raise InputError(
                    f"{out}: holds a dataset with another configuration "
                    f"({_config_difference(manifest['config'], config)}); "
                    "choose another --out or add --force to replace it"
                )
            manifest = None
        if manifest is not None and shard_size not in (None, manifest["shard_size"]):
            if not force:
                raise InputError(
                    f"{out}: holds this dataset with shard size "
                    f"{manifest['shard_size']} (asked {shard_size}); omit --shard-size "
                    "or add --force to rewrite it"
                )
            manifest = None
        if (
            force
            and manifest
            and manifest.get("render_fingerprint")
            not in (
                None,
                fingerprint,
            )
        ):
            manifest = None  # made by another renderer: regenerate it whole
        if manifest is None:
            _remove_dataset(out)
    if manifest is None:
        manifest = _new_manifest(config, shard_size or DEFAULT_SHARD_SIZE)
        manifest["render_fingerprint"] = fingerprint
    size = manifest["shard_size"]
    for stray in (out / AUDIO_DIR).glob(".*.tmp"):  # left by a killed worker
        stray.unlink()

    # params.csv: cheap to recompute, so verify by recomputing its checksum.
    params_path = out / PARAMS_NAME
    n, seed = config["n"], config["seed"]
    expected = manifest.get("params_sha256") or _params_sha256(
        n=n, seed=seed, sampler=sampler, size=size
    )
    if not params_path.is_file() or _sha256_file(params_path) != expected:
        expected = _write_params_csv(
            out, n=n, seed=seed, sampler=sampler, shard_size=size
        )
    manifest["params_sha256"] = expected

    shards = manifest["shards"]
    pending = []
    with _tqdm(
        progress and len(shards) > 1,
        total=len(shards),
        desc="verify",
        unit="shard",
        leave=False,
    ) as bar:
        for k, shard in enumerate(shards):
            if not _shard_is_valid(out, shard):
                shard["sha256"] = None
                pending.append(k)
            bar.update(1)
    recorded = manifest.get("render_fingerprint")  # absent in the first datasets
    if pending and recorded not in (None, fingerprint):
        raise InputError(
            f"{out}: this synthesizer renders note 0 differently from when the "
            "dataset was started (fmlib or numpy changed); add --force to regenerate "
            "it whole rather than mix two renderers"
        )
    manifest["complete"] = not pending
    _write_manifest(out, manifest)

    if pending:
        done_notes = n - sum(shards[k]["count"] for k in pending)
        tasks = [
            (
                k,
                shards[k]["start"],
                shards[k]["count"],
                seed,
                sampler.to_dict(),
                str(out / shards[k]["file"]),
            )
            for k in pending
        ]
        with _tqdm(
            progress,
            total=n,
            initial=done_notes,
            desc="generate",
            unit="note",
            smoothing=0.1,
        ) as bar:
            try:
                for k, sha in _run_tasks(tasks, workers=workers):
                    shards[k]["sha256"] = sha
                    _write_manifest(out, manifest)
                    bar.update(shards[k]["count"])
            finally:  # workers are stopped by now; drop what they left half-written
                for stray in (out / AUDIO_DIR).glob(".*.tmp"):
                    stray.unlink(missing_ok=True)
        manifest["complete"] = True
        _write_manifest(out, manifest)

    if wav:
        _write_wavs(out, wav)


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
    counts, see ``fmlib.synth._small_matmul``)."""
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


def _write_wavs(out: Path, k: int) -> None:
    from fmlib.audio_io import write_wav
    from fmlib.patch import save_patch

    folder = out / WAV_DIR
    folder.mkdir(exist_ok=True)
    ds = open_dataset(out)
    for i in range(k):
        stem = folder / f"note-{i:05d}"
        if not stem.with_suffix(".wav").exists():
            write_wav(stem.with_suffix(".wav"), ds.read([i])[0], P.SAMPLE_RATE)
        if not stem.with_suffix(".json").exists():
            save_patch(ds.patch(i), stem.with_suffix(".json"))


def ensure_dataset(
    out_dir: str | os.PathLike,
    *,
    n: int,
    seed: int,
    algorithm: str = DEFAULT_ALGORITHM,
    force: bool = False,
    verify: bool = False,
    **kwargs: Any,
) -> Path:
    """Reuse ``out_dir`` when it holds this complete dataset, else generate/resume it.

    Reuse checks the manifest's configuration, the renderer's fingerprint,
    completeness and every shard's size (cheap); ``verify=True`` also recomputes
    every checksum (about 1 s per GB). A complete dataset of the same configuration
    made by a renderer that renders differently (another synthesizer version, or a
    manifest that predates fingerprints) is no longer what the code makes: it is
    regenerated from scratch, and a line says so. Other keyword arguments go to
    :func:`generate_dataset`.

    Returns:
        The dataset folder.
    """
    out = Path(out_dir)
    sampler = kwargs.pop("sampler", None) or SamplerConfig(algorithm=algorithm)
    config = dataset_config(n=n, seed=seed, sampler=sampler)
    if not force and (out / MANIFEST_NAME).is_file():
        try:
            ds = open_dataset(out)
        except InputError:
            ds = None
        if ds is not None and ds.manifest["config"] == config:
            fingerprint = render_fingerprint(seed=seed, sampler=sampler)
            if ds.manifest.get("render_fingerprint") != fingerprint:
                print(
                    f"{out}: made by a renderer that renders differently from this "
                    "one; regenerating it",
                    flush=True,
                )
                force = True
            elif not verify or not ds.verify():
                return out
    return generate_dataset(out, n=n, seed=seed, force=force, sampler=sampler, **kwargs)


# --------------------------------------------------------------------------- reading
class Dataset:
    """A complete dataset folder, read lazily from memory-mapped shards.

    Attributes:
        path: The dataset folder.
        manifest: The parsed ``manifest.json``.
        manifest_hash: sha256 hex digest of the ``manifest.json`` bytes.
        n: Number of notes.
        algorithm: Operator graph of every note.
    """

    def __init__(self, path: Path, manifest: dict[str, Any], manifest_hash: str):
        self.path = path
        self.manifest = manifest
        self.manifest_hash = manifest_hash
        self.n: int = manifest["n"]
        self.shard_size: int = manifest["shard_size"]
        self.algorithm: str = manifest["config"]["sampler"]["algorithm"]
        self._maps: dict[int, np.ndarray] = {}

    def __repr__(self) -> str:
        return f"Dataset({str(self.path)!r}, n={self.n}, algorithm={self.algorithm!r})"

    def __len__(self) -> int:
        return self.n

    def __getstate__(self) -> dict[str, Any]:  # memory maps are reopened, not copied
        state = self.__dict__.copy()
        state["_maps"] = {}
        state.pop("params", None)
        return state

    @cached_property
    def params(self):
        """pandas DataFrame, one row per note: TARGET_NAMES (float64) + algorithm."""
        import pandas as pd

        df = pd.read_csv(self.path / PARAMS_NAME, float_precision="round_trip")
        expected = [*P.TARGET_NAMES, "algorithm"]
        if list(df.columns) != expected or len(df) != self.n:
            raise InputError(
                f"{self.path / PARAMS_NAME}: expected {self.n} rows with columns "
                f"{', '.join(expected)}"
            )
        return df

    def vectors(self) -> np.ndarray:
        """All parameter vectors: float64 array of shape (n, 15), TARGET_NAMES order."""
        return self.params[list(P.TARGET_NAMES)].to_numpy(dtype=np.float64)

    def patch(self, i: int) -> Patch:
        """Note ``i`` as a validated :class:`~fmlib.patch.Patch`."""
        row = self.params.iloc[int(i)]
        return patch_from_vector(
            row[list(P.TARGET_NAMES)].to_numpy(dtype=np.float64),
            algorithm=row["algorithm"],
        )

    def _shard(self, k: int) -> np.ndarray:
        m = self._maps.get(k)
        if m is None:
            shard = self.manifest["shards"][k]
            m = np.load(self.path / shard["file"], mmap_mode="r", allow_pickle=False)
            if m.shape != (shard["count"], N_SAMPLES) or m.dtype != np.float32:
                raise InputError(
                    f"{self.path / shard['file']}: shape {m.shape} {m.dtype}, expected "
                    f"({shard['count']}, {N_SAMPLES}) float32; regenerate the dataset"
                )
            self._maps[k] = m
        return m

    def read(self, indices: int | slice | Sequence[int] | np.ndarray) -> np.ndarray:
        """Audio of the given notes, in the given order.

        Args:
            indices: note numbers in [0, n) (array-like of ints, a slice or one int).

        Returns:
            float32 array of shape (k, 64000), 16 kHz; only these rows are read.
        """
        if isinstance(indices, slice):
            idx = np.arange(self.n)[indices]
        else:
            idx = np.atleast_1d(np.asarray(indices))
        if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
            raise InputError("indices: expected a 1-D sequence of integer note numbers")
        if idx.size and (idx.min() < 0 or idx.max() >= self.n):
            raise InputError(f"indices: note numbers must be in [0, {self.n})")
        out = np.empty((idx.size, N_SAMPLES), dtype=np.float32)
        shard_of = idx // self.shard_size
        for k in np.unique(shard_of):
            mask = shard_of == k
            rows = idx[mask] - k * self.shard_size
            out[mask] = self._shard(int(k))[rows]
        return out

    def verify(self) -> list[str]:
        """Recompute every checksum; return the files that do not match (empty: OK)."""
        bad = [
            s["file"]
            for s in self.manifest["shards"]
            if not _shard_is_valid(self.path, s)
        ]
        if _sha256_file(self.path / PARAMS_NAME) != self.manifest["params_sha256"]:
            bad.append(PARAMS_NAME)
        return bad


def open_dataset(path: str | os.PathLike) -> Dataset:
    """Open a complete dataset folder made by :func:`generate_dataset`.

    Cheap: reads the manifest and checks that every shard has its expected size;
    :meth:`Dataset.verify` recomputes the checksums.

    Raises:
        MissingFileError: no such folder or no manifest in it.
        InputError: not a dataset, an unfinished one, or a shard of the wrong size.
    """
    path = Path(path)
    if not (path / MANIFEST_NAME).is_file():
        raise MissingFileError(f"{path}: no dataset here (no {MANIFEST_NAME})")
    raw = (path / MANIFEST_NAME).read_bytes()
    manifest = _read_manifest(path)
    if not manifest.get("complete"):
        raise InputError(
            f"{path}: the dataset is unfinished; rerun the same generate command "
            "to complete it"
        )
    for shard in manifest["shards"]:
        f = path / shard["file"]
        if not f.is_file() or f.stat().st_size != _npy_size(shard["count"]):
            raise InputError(
                f"{f}: missing or of the wrong size; rerun the generate command to "
                "repair the dataset"
            )
    return Dataset(path, manifest, files.bytes_sha256(raw))


def _make_sequence_class():
    """Build :class:`AudioParamsSequence` on first use, so that importing this module
    (and every generate worker) never imports Keras/TensorFlow."""
    import keras

    class AudioParamsSequence(keras.utils.PyDataset):
        """Keras batches (audio, targets) read lazily from a :class:`Dataset`.

        Args:
            dataset: A :class:`Dataset` or a dataset folder.
            indices: Note numbers to serve (1-D ints in [0, n)), e.g. a training split.
            targets: Optional array of shape (len(indices), m) aligned with
                ``indices`` (row j belongs to note ``indices[j]``), e.g. scaled
                targets; default: the notes' 15 parameters in original units.
            batch_size: Notes per batch; the last batch may be smaller.
            shuffle: Visit the notes in a new random order every epoch; the order of
                epoch e is a permutation drawn from ``default_rng([seed, e])``.
            seed: Seed of the shuffling.
            initial_epoch: Epoch number of the first epoch served (pass Keras'
                ``initial_epoch`` when resuming, so a resumed training run sees the
                same orders as an uninterrupted one).
            **kwargs: ``workers``, ``use_multiprocessing``, ``max_queue_size`` of
                ``keras.utils.PyDataset``.

        Batch ``i`` is ``(x, y)``: x float32 of shape (b, 64000, 1) (16 kHz audio),
        y float32 of shape (b, m) (m = 15 by default).
        """

        def __init__(
            self,
            dataset: Dataset | str | os.PathLike,
            indices,
            *,
            targets=None,
            batch_size: int = 32,
            shuffle: bool = False,
            seed: int = 0,
            initial_epoch: int = 0,
            **kwargs: Any,
        ):
            super().__init__(**kwargs)
            ds = dataset if isinstance(dataset, Dataset) else open_dataset(dataset)
            idx = np.asarray(indices)
            if (
                idx.ndim != 1
                or idx.size == 0
                or not np.issubdtype(idx.dtype, np.integer)
            ):
                raise InputError(
                    "indices: expected a non-empty 1-D array of note numbers"
                )
            if idx.min() < 0 or idx.max() >= ds.n:
                raise InputError(f"indices: note numbers must be in [0, {ds.n})")
            if targets is None:
                targets = ds.vectors()[idx]
            targets = np.asarray(targets, dtype=np.float32)
            if targets.ndim != 2 or len(targets) != len(idx):
                raise InputError(
                    f"targets: expected shape ({len(idx)}, m), got {targets.shape}"
                )
            self.dataset = ds
            self.indices = idx.astype(np.int64)
            self.targets = targets
            self.batch_size = _check_int("batch_size", batch_size, low=1)
            self.shuffle = bool(shuffle)
            self.seed = int(seed)
            self.epoch = _check_int("initial_epoch", initial_epoch, low=0)
            self._order = self._permutation()

        def _permutation(self) -> np.ndarray:
            if not self.shuffle:
                return np.arange(len(self.indices))
            return np.random.default_rng([self.seed, self.epoch]).permutation(
                len(self.indices)
            )

        def __len__(self) -> int:
            return -(-len(self.indices) // self.batch_size)

        def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
            if not 0 <= i < len(self):
                raise IndexError(f"batch {i} out of range [0, {len(self)})")
            pos = self._order[i * self.batch_size : (i + 1) * self.batch_size]
            x = self.dataset.read(self.indices[pos])[:, :, None]
            return x, self.targets[pos]

        def on_epoch_end(self) -> None:
            self.epoch += 1
            self._order = self._permutation()

    AudioParamsSequence.__module__ = __name__
    AudioParamsSequence.__qualname__ = "AudioParamsSequence"
    return AudioParamsSequence


def __getattr__(name: str):
    if name == "AudioParamsSequence":
        cls = _make_sequence_class()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --------------------------------------------------------------------------- CLI
def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n", type=int, required=True, help="number of notes (>= 1)")
    p.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    p.add_argument("--out", required=True, help="dataset folder (created if needed)")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes rendering shards (default: all CPU cores)",
    )
    p.add_argument(
        "--algorithm",
        default=DEFAULT_ALGORITHM,
        help=f"operator graph of every note (default {DEFAULT_ALGORITHM})",
    )
    p.add_argument(
        "--shard-size",
        type=int,
        default=None,
        help=f"notes per shard file (default {DEFAULT_SHARD_SIZE}); no effect on notes",
    )
    p.add_argument(
        "--wav",
        type=int,
        default=0,
        metavar="K",
        help="also write the first K notes as WAV + patch JSON",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="replace a dataset of another seed/configuration in --out",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    out = generate_dataset(
        args.out,
        n=args.n,
        seed=args.seed,
        algorithm=args.algorithm,
        workers=args.workers,
        shard_size=args.shard_size,
        force=args.force,
        wav=args.wav,
        progress=not args.quiet,
    )
    ds = open_dataset(out)
    print(
        f"dataset: {out} ({ds.n} notes in {ds.manifest['n_shards']} shards, "
        f"manifest sha256 {ds.manifest_hash[:12]})"
    )
    if args.wav:
        print(f"listening: {out / WAV_DIR} (first {args.wav} notes, WAV + patch JSON)")
    return 0
