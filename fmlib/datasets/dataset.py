"""The training dataset on disk: generate it from a seed, resume it, reuse it.

Layout of a dataset folder (``python -m fmlib generate --n N --seed S --out DIR``)::

    DIR/manifest.json           how it was made and what is done (see below)
    DIR/params.csv              one row per note: TARGET_NAMES columns + algorithm
    DIR/audio/shard-00000.npy   float32 (count, 64000), notes start .. start+count-1
    DIR/audio/shard-00001.npy   ...
    DIR/wav/note-00000.wav      only with --wav K: the first K notes, 16-bit WAV
    DIR/wav/note-00000.json         and their patch JSON

* Audio is float32 at 16 kHz, 4 s per note (64,000 samples), exactly what
  :func:`fmlib.synth.engine.render` returns (no rescaling: values in about [-1, 1]).
  Shards hold ``shard_size`` notes each (256 by default: 64 MB), the last one fewer.
  They are plain ``.npy`` files, opened with ``np.load(mmap_mode="r",
  allow_pickle=False)``.
* ``params.csv`` holds every float as Python's shortest round-trip ``repr`` so that
  reading it with ``float_precision="round_trip"`` gives the sampler's values exactly.
* ``manifest.json`` holds ``config`` (n, seed, the full sampler configuration, the
  seeding rule, rate, duration, note-off, audio dtype), ``shard_size``, the list of
  shards with the sha256 of each file (``null`` until written), the sha256 of
  ``params.csv``, ``complete``, the fmlib/numpy/scipy versions and a fingerprint of
  the renderer (:func:`render_fingerprint`). No timestamps,
  so the same dataset always has the same manifest (and :attr:`Dataset.manifest_hash`).

Determinism: note ``i`` is drawn from its own stream
(:func:`fmlib.datasets.sampler.note_rng`) and rendered alone, so shards are
byte-identical whatever the number of workers or the shard size. Crash safety: every
file is written to a temporary name and renamed; the parent records a shard's checksum
in the manifest (also written atomically) only after the shard is in place. A rerun
verifies every recorded checksum and renders only what is missing or corrupt.

Modules: this one plans, locks, resumes and records;
:mod:`fmlib.datasets.dataset_reader` holds the format and the reader
(:func:`open_dataset`, :class:`Dataset`, re-exported here);
:mod:`fmlib.datasets.dataset_workers` renders shards in a process pool;
:mod:`fmlib.estimate.keras_data` serves batches to Keras; :mod:`fmlib.cli.dataset_cli`
is the ``generate`` command.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from fmlib import files
from fmlib.datasets.dataset_reader import (  # noqa: F401 (re-exported: the dataset's names)
    AUDIO_DIR,
    DEFAULT_SHARD_SIZE,
    FORMAT,
    FORMAT_VERSION,
    LOCK_NAME,
    MANIFEST_NAME,
    N_SAMPLES,
    PARAMS_NAME,
    SEEDING,
    WAV_DIR,
    Dataset,
    _npy_header,
    _npy_size,
    _read_manifest,
    _shard_file,
    _shard_is_valid,
    _shard_plan,
    check_int,
    dataset_config,
    open_dataset,
)
from fmlib.datasets.dataset_workers import (  # noqa: F401 (re-exported)
    _run_tasks,
    render_fingerprint,
    render_notes,
)
from fmlib.datasets.sampler import (
    DEFAULT_PRIOR,
    SamplerConfig,
    check_prior,
    sample_vectors,
)
from fmlib.errors import InputError, MissingFileError
from fmlib.synth import params as P
from fmlib.synth.algorithms import DEFAULT_ALGORITHM


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


def _manifest_text(manifest: dict[str, Any]) -> str:
    return json.dumps(manifest, indent=2) + "\n"


def _write_manifest(out: Path, manifest: dict[str, Any]) -> None:
    files.write_text(out / MANIFEST_NAME, _manifest_text(manifest))


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


#: The largest ``n`` accepted (25.6 TB of audio): anything above is a typo.
MAX_NOTES = 100_000_000

#: The most worker processes accepted.
MAX_WORKERS = 256

#: The largest shard accepted (65,536 notes: 16.8 GB per file).
MAX_SHARD_SIZE = 65_536


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
                old_s = {"prior": DEFAULT_PRIOR, **old[key]}
                new_s = {"prior": DEFAULT_PRIOR, **new[key]}
                sub = [
                    k
                    for k in sorted(set(old_s) | set(new_s))
                    if old_s.get(k) != new_s.get(k)
                ]
                if "prior" in sub:  # the one a user names on the command line
                    sub.remove("prior")
                    parts.append(
                        f"prior is {old_s['prior']!r}, asked {new_s['prior']!r}"
                    )
                if sub:
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
    prior: str | None = None,
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
        sampler: Full sampler configuration (default: the paper's, with ``algorithm``
            and ``prior``).
        prior: Carrier prior, ``"paper"`` (default) or ``"musical"``
            (:data:`fmlib.datasets.sampler.PRIORS`). With ``sampler`` it must be
            ``sampler.prior`` or None. A different prior is a different
            configuration: an existing dataset is refused (or replaced with ``force``).

    Returns:
        The dataset folder.

    Raises:
        InputError: bad option, a folder holding another dataset (without ``force``),
            an unwritable folder, or a write error such as a full disk (rerunning
            resumes: no partial shard is ever recorded as valid).
    """
    n = check_int("n", n, low=1, high=MAX_NOTES)
    seed = check_int("seed", seed, low=0)
    if workers is None:
        workers = os.cpu_count() or 1
    workers = check_int("workers", workers, low=1, high=MAX_WORKERS)
    if shard_size is not None:
        shard_size = check_int("shard_size", shard_size, low=1, high=MAX_SHARD_SIZE)
    wav = check_int("wav", wav, low=0)
    if wav > n:
        raise InputError(f"wav: {wav} is more than the {n} notes of the dataset")
    sampler = _sampler_of(sampler, algorithm=algorithm, prior=prior)
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
    if not params_path.is_file() or files.file_sha256(params_path) != expected:
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


def _write_wavs(out: Path, k: int) -> None:
    from fmlib.audio.audio_io import write_wav
    from fmlib.synth.patch import save_patch

    folder = out / WAV_DIR
    folder.mkdir(exist_ok=True)
    ds = open_dataset(out)
    for i in range(k):
        stem = folder / f"note-{i:05d}"
        if not stem.with_suffix(".wav").exists():
            write_wav(stem.with_suffix(".wav"), ds.read([i])[0], P.SAMPLE_RATE)
        if not stem.with_suffix(".json").exists():
            save_patch(ds.patch(i), stem.with_suffix(".json"))


def _sampler_of(
    sampler: SamplerConfig | None, *, algorithm: str, prior: str | None
) -> SamplerConfig:
    """The sampler configuration asked for by ``sampler``/``algorithm``/``prior``."""
    if sampler is None:
        return SamplerConfig(algorithm=algorithm, prior=prior or DEFAULT_PRIOR)
    if prior is not None and check_prior(prior) != sampler.prior:
        raise InputError(
            f"prior: {prior!r} contradicts the sampler's prior {sampler.prior!r}; "
            "give one of them"
        )
    return sampler


def ensure_dataset(
    out_dir: str | os.PathLike,
    *,
    n: int,
    seed: int,
    algorithm: str = DEFAULT_ALGORITHM,
    prior: str | None = None,
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
    regenerated from scratch, and a line says so. A dataset of another ``prior``
    is another configuration: generating into its folder is refused unless
    ``force``. Other keyword arguments go to :func:`generate_dataset`.

    Returns:
        The dataset folder.
    """
    out = Path(out_dir)
    sampler = _sampler_of(kwargs.pop("sampler", None), algorithm=algorithm, prior=prior)
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
