"""NSynth: the ``jsonwav`` loader and the downloader of the official test split.

Layout (NSynth's ``jsonwav``; the SoundFont set of :mod:`fmlib.datasets.soundfont` uses
it too)::

    DIR/examples.json          {note_str: {"pitch": 60, "velocity": 100, ...}, ...}
    DIR/audio/<note_str>.wav   16-bit PCM, mono, 16 kHz, 64,000 samples

``note_str`` is ``<family>_<source>_<NNN>-<pitch>-<velocity>`` (e.g.
``synth_lead_synthetic_000-048-127``), so any missing family, source, pitch or
velocity key is recovered from it.

Download: ``python -m fmlib download-nsynth`` fetches ``nsynth-test.jsonwav.tar.gz``
(4,096 notes, about 350 MB) from the Magenta datasets site into
``data/downloads/`` (resuming a ``.part`` file with an HTTP Range request), checks it
and extracts it safely to ``data/nsynth-test``.

About the checksum: no sha256 of the archive is published by Magenta and none could
be verified offline while writing this module, so :data:`NSYNTH_TEST_SHA256` is
``None`` rather than an invented value. The downloader then (1) prints and records
the sha256 it computed (``data/nsynth-test/download.json``), so the user can compare
it with a trusted copy, and (2) checks the archive's content: ``examples.json`` must
list exactly :data:`NSYNTH_TEST_NOTES` (4,096) notes, each with its WAV. Pass
``--sha256 HEX`` (or ``sha256=``) to enforce a known hash; a mismatch deletes the
download and fails.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from fmlib import files, paths
from fmlib.audio.audio_io import read_wav
from fmlib.errors import InputError, MissingFileError
from fmlib.synth.params import SAMPLE_RATE

#: The official archive of the NSynth test split (Engel et al. 2017, CC BY 4.0).
NSYNTH_TEST_URL = (
    "http://download.magenta.tensorflow.org/datasets/nsynth/nsynth-test.jsonwav.tar.gz"
)
#: sha256 of that archive, or None when not pinned (see the module docstring).
NSYNTH_TEST_SHA256: str | None = None
#: Number of notes in the official test split.
NSYNTH_TEST_NOTES = 4096
#: Samples per note (4 s at 16 kHz).
NOTE_SAMPLES = 64_000
#: Columns of :func:`load_nsynth`'s table, in order.
COLUMNS: tuple[str, ...] = (
    "note_str",
    "instrument_family_str",
    "instrument_source_str",
    "pitch",
    "velocity",
    "path",
)
#: NSynth's 11 instrument families.
FAMILIES: tuple[str, ...] = (
    "bass",
    "brass",
    "flute",
    "guitar",
    "keyboard",
    "mallet",
    "organ",
    "reed",
    "string",
    "synth_lead",
    "vocal",
)
SOURCES: tuple[str, ...] = ("acoustic", "electronic", "synthetic")

_NOTE_RE = re.compile(
    r"^(?P<family>[a-z_]+?)_(?P<source>[a-z]+)_(?P<num>\d+)-(?P<pitch>\d+)-(?P<vel>\d+)$"
)
_CHUNK = 1 << 20


def parse_note_str(note_str: str) -> dict:
    """Family, source, pitch and velocity encoded in an NSynth ``note_str``.

    Returns:
        dict with ``instrument_family_str``, ``instrument_source_str`` (str or None),
        ``pitch``, ``velocity`` (int or None); None where the name does not follow
        NSynth's pattern.
    """
    m = _NOTE_RE.match(note_str)
    if not m:
        return {
            "instrument_family_str": None,
            "instrument_source_str": None,
            "pitch": None,
            "velocity": None,
        }
    return {
        "instrument_family_str": m["family"],
        "instrument_source_str": m["source"],
        "pitch": int(m["pitch"]),
        "velocity": int(m["vel"]),
    }


def load_nsynth(data_dir: str | os.PathLike) -> pd.DataFrame:
    """Read a ``jsonwav`` folder's ``examples.json`` into a table.

    Optional keys may be missing: family, source, pitch and velocity then come from
    the ``note_str`` (the entry's key). An entry whose pitch cannot be found at all is
    an error, since every evaluation needs it.

    Args:
        data_dir: Folder holding ``examples.json`` and ``audio/``.

    Returns:
        DataFrame with :data:`COLUMNS`, sorted by ``note_str``: ``pitch`` and
        ``velocity`` int64 (MIDI 0-127), ``path`` the WAV path as str (the file is
        not opened here; :func:`read_note` reports unreadable ones). Extra keys of
        ``examples.json`` (``instrument_str``, ``qualities_str``, ``source_label``...)
        are kept as further columns.

    Raises:
        MissingFileError: no folder or no ``examples.json``.
        InputError: ``examples.json`` is not a JSON object of objects, or a note has
            no pitch.
    """
    data_dir = Path(data_dir)
    index = data_dir / "examples.json"
    if not data_dir.is_dir():
        raise MissingFileError(
            f"{data_dir}: no such data folder (NSynth jsonwav layout)"
        )
    if not index.is_file():
        raise MissingFileError(
            f"{index}: missing; a data folder needs examples.json and "
            "audio/<note_str>.wav"
        )
    try:
        entries = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{index}: not valid JSON ({exc})") from None
    if not isinstance(entries, dict) or not all(
        isinstance(v, dict) for v in entries.values()
    ):
        raise InputError(f"{index}: expected an object mapping note_str to an object")
    rows = []
    for key, meta in entries.items():
        note_str = str(meta.get("note_str", key))
        parsed = parse_note_str(note_str)
        row = {k: v for k, v in meta.items() if k not in COLUMNS}
        row["note_str"] = note_str
        for col in (
            "instrument_family_str",
            "instrument_source_str",
            "pitch",
            "velocity",
        ):
            value = meta.get(col)
            row[col] = parsed[col] if value is None else value
        if row["pitch"] is None:
            raise InputError(
                f"{index}: note {note_str!r} has no pitch and its name has none"
            )
        row["instrument_family_str"] = row["instrument_family_str"] or "unknown"
        row["instrument_source_str"] = row["instrument_source_str"] or "unknown"
        row["velocity"] = 127 if row["velocity"] is None else row["velocity"]
        row["path"] = str(data_dir / "audio" / f"{note_str}.wav")
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS})
    table["pitch"] = table["pitch"].astype(np.int64)
    table["velocity"] = table["velocity"].astype(np.int64)
    extra = [c for c in table.columns if c not in COLUMNS]
    return table[list(COLUMNS) + extra].sort_values("note_str", ignore_index=True)


def read_note(path: str | os.PathLike) -> np.ndarray:
    """Read one note as NSynth's float audio.

    Args:
        path: A 16 kHz WAV (mono, or several channels that are averaged).

    Returns:
        float32 shape (64000,), 16-bit PCM / 32768 (range [-1, 1)); shorter files are
        zero-padded and longer ones cut at 4 s.

    Raises:
        MissingFileError: no such file.
        InputError: unreadable, or not at 16 kHz.
    """
    audio, sr = read_wav(path)
    if sr != SAMPLE_RATE:
        raise InputError(
            f"{path}: sample rate {sr} Hz; NSynth-layout notes must be {SAMPLE_RATE} Hz"
        )
    x = audio.mean(axis=1, dtype=np.float32) if audio.shape[1] > 1 else audio[:, 0]
    out = np.zeros(NOTE_SAMPLES, dtype=np.float32)
    n = min(NOTE_SAMPLES, x.size)
    out[:n] = x[:n]
    return out


# --------------------------------------------------------------------------- download


def _fetch(url: str, part: Path, *, timeout_s: float, progress: bool) -> None:
    """Download ``url`` into ``part``, resuming from its current size."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url)
    if have:
        request.add_header("Range", f"bytes={have}-")
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        status = getattr(response, "status", None)
        length = response.headers.get("Content-Length")
        length = int(length) if length else None
        if have and status == 206:  # the server honoured the Range header
            mode, total = "ab", (have + length if length is not None else None)
        elif have and url.startswith("file:"):  # no Range for files: skip what we have
            skip = have
            while skip:
                skipped = len(response.read(min(_CHUNK, skip)))
                if not skipped:
                    break
                skip -= skipped
            mode, total = "ab", length
        else:  # nothing yet, or the server ignored the Range header: start over
            have, mode, total = 0, "wb", length
        with (
            open(part, mode) as f,
            tqdm(
                total=total,
                initial=have,
                unit="B",
                unit_scale=True,
                desc=part.name,
                disable=not progress,
            ) as bar,
        ):
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                f.write(chunk)
                bar.update(len(chunk))


def _safe_members(tar: tarfile.TarFile, dest: Path) -> list[tarfile.TarInfo]:
    """Members of ``tar``, refusing absolute paths, ``..``, links and devices."""
    root = dest.resolve()
    members = []
    for m in tar.getmembers():
        target = (root / m.name).resolve()
        if os.path.isabs(m.name) or (target != root and root not in target.parents):
            raise InputError(
                f"archive member {m.name!r} escapes the destination; refusing"
            )
        if not (m.isfile() or m.isdir()):
            raise InputError(f"archive member {m.name!r} is a link or device; refusing")
        members.append(m)
    return members


def _find_jsonwav_root(folder: Path) -> Path:
    """The folder (``folder`` or one level below) that holds examples.json."""
    if (folder / "examples.json").is_file():
        return folder
    for child in sorted(folder.iterdir()):
        if child.is_dir() and (child / "examples.json").is_file():
            return child
    raise InputError(
        "the archive holds no examples.json; it is not an NSynth jsonwav archive"
    )


def _check_content(root: Path, expected_notes: int | None) -> int:
    table = load_nsynth(root)
    missing = [p for p in table["path"] if not Path(p).is_file()]
    if missing:
        raise InputError(
            f"the archive lacks {len(missing)} WAV files, e.g. {missing[0]}"
        )
    if expected_notes is not None and len(table) != expected_notes:
        raise InputError(
            f"the archive lists {len(table)} notes; "
            f"the NSynth test split has {expected_notes}"
        )
    return len(table)


def _check_destination(dest: Path) -> None:
    """Refuse a destination that is not a folder, or a folder holding anything (it
    is never deleted to make room: it may be the user's)."""
    files.check_output(dest, kind="folder")
    if dest.is_dir():
        with files.os_errors(dest, action="cannot read"):
            busy = any(dest.iterdir())
        if busy:
            raise InputError(
                f"{dest}: is not empty and holds no finished NSynth download; "
                "give an empty or new folder for --out"
            )


def download_nsynth_test(
    *,
    url: str = NSYNTH_TEST_URL,
    sha256: str | None = NSYNTH_TEST_SHA256,
    dest: str | os.PathLike = paths.NSYNTH_TEST_DIR,
    downloads_dir: str | os.PathLike = paths.DOWNLOADS_DIR,
    expected_notes: int | None = NSYNTH_TEST_NOTES,
    timeout_s: float = 60.0,
    progress: bool = True,
) -> Path:
    """Download, check and extract the NSynth test split (resumable).

    Args:
        url: Archive URL (http, https or file).
        sha256: Expected sha256 hex of the archive, or None to record it only.
        dest: Folder to hold ``examples.json`` and ``audio/`` afterwards.
        downloads_dir: Where the archive (and its ``.part`` while downloading) goes.
        expected_notes: Notes the archive must list (None: any number).
        timeout_s: Network timeout per read, s.
        progress: Show a tqdm bar.

    Returns:
        ``dest``. An already complete ``dest`` (its ``download.json`` present) is
        returned at once.

    Raises:
        InputError: no network / unreachable URL (one line saying what to do), a
            checksum mismatch (the download is deleted), an unsafe or wrong archive.
    """
    dest = Path(dest)
    downloads_dir = Path(downloads_dir)
    stamp = dest / "download.json"
    if stamp.is_file() and (dest / "examples.json").is_file():
        return dest
    if sha256 is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", sha256):
        raise InputError(f"sha256 {sha256!r} is not valid; give 64 hexadecimal digits")
    _check_destination(dest)
    files.check_output(downloads_dir, kind="folder")
    with files.os_errors(downloads_dir, action="cannot create the folder"):
        downloads_dir.mkdir(parents=True, exist_ok=True)
    name = Path(urllib.request.url2pathname(url.rsplit("/", 1)[-1])).name or "archive"
    archive = downloads_dir / name
    part = downloads_dir / (name + ".part")
    if not archive.is_file():
        try:
            try:
                _fetch(url, part, timeout_s=timeout_s, progress=progress)
            except urllib.error.HTTPError as exc:
                if exc.code != 416 or not part.exists():  # 416: .part already complete
                    raise
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            raise InputError(
                f"cannot download {url} ({reason}); connect to the network and rerun "
                f"(it resumes), or download it yourself, put it at {archive} and rerun"
            ) from None
        files.move_into_place(part, archive)
    digest = files.file_sha256(archive)
    if sha256 is not None and digest.lower() != sha256.lower():
        archive.unlink()
        raise InputError(
            f"{archive.name}: sha256 {digest} does not match the expected "
            f"{sha256.lower()}; "
            "the file was deleted, rerun to download it again"
        )
    staging = dest.with_name(dest.name + ".extracting")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    try:
        try:
            with tarfile.open(archive, "r:*") as tar:
                tar.extractall(
                    staging, members=_safe_members(tar, staging), filter="data"
                )
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise InputError(
                f"{archive}: not a readable tar archive ({exc}); delete it and rerun"
            ) from None
        root = _find_jsonwav_root(staging)
        n_notes = _check_content(root, expected_notes)
        info = {
            "url": url,
            "archive": archive.name,
            "sha256": digest,
            "sha256_pinned": sha256 is not None,
            "n_notes": n_notes,
            "label": "NSynth (Engel et al. 2017), CC BY 4.0",
        }
        files.write_json(root / "download.json", info)
        if dest.is_dir() and not any(dest.iterdir()):
            dest.rmdir()  # checked empty by _check_destination: ours to replace
        files.make_parents(dest)
        files.move_into_place(root, dest)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return dest


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=NSYNTH_TEST_URL, help="archive URL")
    parser.add_argument(
        "--sha256",
        default=NSYNTH_TEST_SHA256,
        help="expected sha256 of the archive (default: record and print it only)",
    )
    parser.add_argument(
        "--out", type=Path, default=paths.NSYNTH_TEST_DIR, help="extraction folder"
    )


def run(args: argparse.Namespace) -> int:
    dest = download_nsynth_test(url=args.url, sha256=args.sha256, dest=args.out)
    info = json.loads((dest / "download.json").read_text())
    status = "verified" if info["sha256_pinned"] else "recorded, not pinned"
    print(f"sha256 {info['sha256']} ({status})")
    print(f"{info['n_notes']} notes in {dest}")
    return 0
