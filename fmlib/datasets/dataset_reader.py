"""A dataset's on-disk format, and reading it (:func:`open_dataset`).

The format is described in :mod:`fmlib.datasets.dataset`, which writes it. This module
holds the names of its files, the shard layout, the manifest's reader and the lazy
reader
:class:`Dataset`; it imports only numpy (pandas when ``Dataset.params`` is read), so
every process that reads a dataset can import it cheaply.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from fmlib import files
from fmlib.datasets.sampler import DEFAULT_PRIOR, SamplerConfig
from fmlib.errors import InputError, MissingFileError
from fmlib.synth import params as P
from fmlib.synth.patch import Patch, patch_from_vector

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


def _npy_header(count: int) -> bytes:
    """The ``.npy`` (format 1.0) header of a float32 (count, N_SAMPLES) array."""
    buf = io.BytesIO()
    header = {"descr": "<f4", "fortran_order": False, "shape": (count, N_SAMPLES)}
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue()


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


def check_int(name: str, value: Any, *, low: int, high: int | None = None) -> int:
    """``value`` as an int in [low, high]; InputError naming ``name`` otherwise."""
    valid = f"an integer >= {low}" if high is None else f"{low} to {high:,}"
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InputError(f"{name}: expected {valid}, got {value!r}")
    if value < low or (high is not None and value > high):
        raise InputError(f"{name}: {value:,} is not valid; valid: {valid}")
    return int(value)


def _shard_is_valid(out: Path, shard: dict[str, Any]) -> bool:
    if not shard.get("sha256"):
        return False
    f = out / shard["file"]
    try:
        if f.stat().st_size != _npy_size(shard["count"]):
            return False
        return files.file_sha256(f) == shard["sha256"]
    except OSError:
        return False


class Dataset:
    """A complete dataset folder, read lazily from memory-mapped shards.

    Attributes:
        path: The dataset folder.
        manifest: The parsed ``manifest.json``.
        manifest_hash: sha256 hex digest of the ``manifest.json`` bytes.
        n: Number of notes.
        algorithm: Operator graph of every note.
        prior: Carrier prior of the sampler, ``"paper"`` or ``"musical"`` (a
            manifest without one is the paper's: see
            :meth:`fmlib.datasets.sampler.SamplerConfig.to_dict`).
    """

    def __init__(
        self,
        path: Path,
        manifest: dict[str, Any],
        manifest_hash: str,
        *,
        n: int | None = None,
    ):
        self.path = path
        self.manifest = manifest
        self.manifest_hash = manifest_hash
        self.n: int = manifest["n"] if n is None else int(n)
        self.shard_size: int = manifest["shard_size"]
        self.algorithm: str = manifest["config"]["sampler"]["algorithm"]
        self.prior: str = manifest["config"]["sampler"].get("prior", DEFAULT_PRIOR)
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
        if list(df.columns) != expected or len(df) != self.manifest["n"]:
            raise InputError(
                f"{self.path / PARAMS_NAME}: expected {self.manifest['n']} rows with "
                f"columns {', '.join(expected)}"
            )
        return df.iloc[: self.n].copy() if self.n < len(df) else df

    def vectors(self) -> np.ndarray:
        """All parameter vectors: float64 array of shape (n, 15), TARGET_NAMES order."""
        return self.params[list(P.TARGET_NAMES)].to_numpy(dtype=np.float64)

    def patch(self, i: int) -> Patch:
        """Note ``i`` as a validated :class:`~fmlib.synth.patch.Patch`."""
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
        if files.file_sha256(self.path / PARAMS_NAME) != self.manifest["params_sha256"]:
            bad.append(PARAMS_NAME)
        return bad


def open_dataset(path: str | os.PathLike, *, n: int | None = None) -> Dataset:
    """Open a complete dataset folder made by :func:`generate_dataset`.

    Cheap: reads the manifest and checks that every shard has its expected size;
    :meth:`Dataset.verify` recomputes the checksums.

    Args:
        path: The dataset folder.
        n: Open only its first ``n`` notes (default: all). Notes are drawn one by one
            from their own random streams, so the first n notes of a dataset are the
            n-note dataset of the same seed and sampler. The shards holding them must
            be finished; the rest of the dataset may still be generating.

    Raises:
        MissingFileError: no such folder or no manifest in it.
        InputError: not a dataset, an unfinished one (or unfinished shards among
            the first ``n`` notes), a shard of the wrong size, or a bad ``n``.
    """
    path = Path(path)
    if not (path / MANIFEST_NAME).is_file():
        raise MissingFileError(f"{path}: no dataset here (no {MANIFEST_NAME})")
    raw = (path / MANIFEST_NAME).read_bytes()
    manifest = _read_manifest(path)
    if n is not None:
        n = check_int("n", n, low=1, high=manifest["n"])
    shards = manifest["shards"]
    if n is None or n == manifest["n"]:
        if not manifest.get("complete"):
            raise InputError(
                f"{path}: the dataset is unfinished; rerun the same generate command "
                "to complete it"
            )
    else:
        shards = [s for s in shards if s["start"] < n]
        if not all(s.get("sha256") for s in shards):
            raise InputError(
                f"{path}: the shards of its first {n:,} notes are not all finished; "
                "rerun the generate command, or give a smaller n"
            )
    for shard in shards:
        f = path / shard["file"]
        if not f.is_file() or f.stat().st_size != _npy_size(shard["count"]):
            raise InputError(
                f"{f}: missing or of the wrong size; rerun the generate command to "
                "repair the dataset"
            )
    return Dataset(path, manifest, files.bytes_sha256(raw), n=n)
