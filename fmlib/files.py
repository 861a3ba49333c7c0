"""The one place that writes files: output checks, atomic writes, hashes, tables, audio.

Every command and writer of fmlib goes through this module, so the rules of
``docs/FILES.md`` hold everywhere:

- **Checks before work.** :func:`check_output` refuses an output that is an existing
  folder, device, FIFO or socket where a file is expected (or a file where a folder is
  expected), whose name is too long, whose nearest existing parent is not a writable
  folder, or (for audio) whose extension is not ``.wav``, ``.flac`` or ``.ogg``.
  :func:`check_distinct` refuses an output that is one of the command's inputs or
  another of its outputs, by resolved path and by file identity (``./x`` and ``x``,
  a symbolic link and a hard link are all caught).
- **Missing parent folders are created**, for every command alike (``mkdir -p``), but
  only once every check has passed, right before the first write.
- **Atomic writes.** A file is written to a temporary name in its own folder
  (``.NAME.XXXXXXXX.tmp``) and renamed over the destination, so a reader sees the old
  file or the new one, never half of one, and a failed write leaves nothing behind.
  The destination is checked again right before the rename: a device or any other
  non-regular file is never replaced.
- **One line per failure.** Every ``OSError`` becomes an :class:`InputError` whose
  message names the path and the reason (:func:`os_error_message`).
- **One number format** for every Markdown table (:func:`format_number`); CSV files
  hold floats with :data:`CSV_SIGNIFICANT_DIGITS` significant digits
  (:func:`csv_number`), so a table is the same bytes on every run even when the last
  bits of a float computation vary (FFT and BLAS kernels differ by CPU and thread
  count).

Hand-written parts and why: the number format (no library formats "4 significant
digits, never rounding the integer part, thousands separators"); the atomic rename
(the standard library has none that keeps the folder's permissions and refuses
non-regular destinations).

Why one module of about 700 lines: it is the project's one file layer by design
(docs/FILES.md); every output-path rule lives here so that no command can skip one.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import os
import re
import secrets
import stat
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from fmlib.errors import InputError, MissingFileError

#: Audio formats written by extension (soundfile format names).
AUDIO_FORMATS: dict[str, str] = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG"}
#: Significant digits of every number in a Markdown table.
SIGNIFICANT_DIGITS = 4
#: Significant digits of every float in a CSV table: well above float32's 7 (audio,
#: model outputs), well below float64's 15-17, whose last digits are noise.
CSV_SIGNIFICANT_DIGITS = 10

_TMP_RE = re.compile(r"^\..+\.[0-9a-f]{8}\.tmp(\.[^.]+)*$")
_HASH_CHUNK = 1 << 20


# --------------------------------------------------------------------------- errors
def os_error_message(path: str | os.PathLike, exc: OSError, *, action: str) -> str:
    """One line naming ``path``, what was being done and why it failed.

    Args:
        path: The file or folder concerned.
        exc: The operating system's error.
        action: What was being done, e.g. ``"cannot write"``.

    Returns:
        ``"PATH: ACTION (REASON)"``, e.g. ``"out.wav: cannot write (Permission
        denied)"``; a name too long for the file system says so with its length.
    """
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.errno == errno.ENAMETOOLONG:
        name = Path(path).name
        reason = (
            f"file name too long: {len(os.fsencode(name))} bytes, the file system "
            f"allows {_name_max(Path(path).parent)}"
        )
    return f"{path}: {action} ({reason})"


@contextlib.contextmanager
def os_errors(
    path: str | os.PathLike, *, action: str = "cannot write"
) -> Iterator[None]:
    """Turn an ``OSError`` raised inside the block into a one-line InputError.

    fmlib's own errors (:class:`InputError`, :class:`MissingFileError`) pass through
    unchanged.
    """
    try:
        yield
    except (InputError, MissingFileError):
        raise
    except OSError as exc:
        raise InputError(os_error_message(path, exc, action=action)) from None


# --------------------------------------------------------------------------- checks
def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(_existing_ancestor(folder), "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def _existing_ancestor(path: Path) -> Path:
    """The nearest ancestor of ``path`` (or ``path`` itself) that exists."""
    p = Path(os.path.abspath(path))
    while not os.path.lexists(p) and p != p.parent:
        p = p.parent
    return p


def _kind(st: os.stat_result) -> str:
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISREG(mode):
        return "a file"
    return "not a regular file"


def check_output(
    path: str | os.PathLike,
    *,
    kind: str = "file",
    suffixes: Iterable[str] | None = None,
) -> Path:
    """Check an output path before any work; create nothing.

    Args:
        path: The file or folder the command will write.
        kind: ``"file"``, ``"audio"`` (a file whose extension chooses the format, see
            :data:`AUDIO_FORMATS`) or ``"folder"``.
        suffixes: Allowed extensions of a file (lower case, with the dot), or None
            for any.

    Returns:
        ``path`` as a Path.

    Raises:
        InputError: one line naming the path and what is valid.
    """
    if kind not in ("file", "audio", "folder"):
        raise ValueError(f"kind must be 'file', 'audio' or 'folder', not {kind!r}")
    raw = os.fspath(path)
    if not raw.strip():
        raise InputError("the output path is empty; give a file or folder name")
    path = Path(raw)
    for part in path.parts:
        if len(os.fsencode(part)) > _name_max(path.parent):
            raise InputError(
                f"{path}: cannot write (file name too long: "
                f"{len(os.fsencode(part))} bytes, the file system allows "
                f"{_name_max(path.parent)})"
            )
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    except NotADirectoryError:
        raise InputError(
            f"{path}: cannot write (a parent in the path is a file, not a folder)"
        ) from None
    except OSError as exc:
        raise InputError(os_error_message(path, exc, action="cannot write")) from None
    if st is not None:
        what = _kind(st)
        if kind == "folder" and not stat.S_ISDIR(st.st_mode):
            raise InputError(f"{path}: exists and is {what}, not a folder")
        if kind != "folder" and not stat.S_ISREG(st.st_mode):
            raise InputError(
                f"{path}: exists and is {what}; give the name of a regular file"
            )
    if kind == "audio":
        suffixes = tuple(AUDIO_FORMATS)
    if suffixes is not None and kind != "folder":
        suffixes = tuple(suffixes)
        if path.suffix.lower() not in suffixes:
            shown = f"{path.suffix!r}" if path.suffix else "no extension"
            raise InputError(
                f"{path}: {shown} is not a valid output extension; "
                f"use {', '.join(suffixes)}"
            )
    if os.path.islink(path) and st is None:
        raise InputError(f"{path}: is a broken symbolic link; give another name")
    target = path if (st is not None and kind == "folder") else path.parent
    ancestor = _existing_ancestor(target)
    if not ancestor.is_dir():
        raise InputError(f"{path}: cannot write ({ancestor} is a file, not a folder)")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise InputError(f"{path}: cannot write ({ancestor} is not writable)")
    _probe_write(path, ancestor)
    return path


def _probe_write(path: Path, folder: Path) -> None:
    """Create and remove an empty file in ``folder``: the only sure test of
    writability (``os.access`` says yes to root on a read-only or virtual file
    system such as ``/proc``)."""
    probe = folder / f".fmlib-probe.{secrets.token_hex(4)}.tmp"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise InputError(f"{path}: cannot write ({folder}: {reason})") from None
    with contextlib.suppress(OSError):
        os.unlink(probe)


def check_input(path: str | os.PathLike, *, kind: str = "file", what: str = "") -> Path:
    """Check that an input exists and is a readable file (or folder).

    Args:
        path: The input.
        kind: ``"file"`` or ``"folder"``.
        what: What the input should be, for the message (e.g. ``"patch JSON"``).

    Raises:
        MissingFileError: it does not exist.
        InputError: it is the wrong kind or not readable.
    """
    path = Path(path)
    what = what or kind
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise MissingFileError(f"{path}: no such {what}") from None
    except OSError as exc:
        raise InputError(os_error_message(path, exc, action="cannot read")) from None
    wanted = stat.S_ISDIR if kind == "folder" else stat.S_ISREG
    if not wanted(st.st_mode):
        article = "an" if what[0].lower() in "aeiou" else "a"
        raise InputError(f"{path}: is {_kind(st)}; expected {article} {what}")
    if not os.access(path, os.R_OK):
        raise InputError(f"{path}: cannot read (permission denied)")
    return path


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when ``a`` and ``b`` name one file: equal resolved paths, or (both
    existing) the same device and inode, which catches hard links."""
    if Path(a).resolve() == Path(b).resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_distinct(
    outputs: Mapping[str, str | os.PathLike | None],
    inputs: Mapping[str, str | os.PathLike | None] | None = None,
) -> None:
    """Refuse an output that is one of the inputs or another output.

    Args:
        outputs: label -> path of every output (None entries are skipped); labels
            name the option, e.g. ``"--wav"``.
        inputs: label -> path of every input.

    Raises:
        InputError: e.g. ``"in.wav: --wav would overwrite the input audio; write
        to another file"``.
    """
    outs = [(k, v) for k, v in outputs.items() if v is not None]
    for label, out in outs:
        for in_label, inp in (inputs or {}).items():
            if inp is not None and same_file(out, inp):
                raise InputError(
                    f"{out}: {label} would overwrite the {in_label}; "
                    "write to another file"
                )
    for i, (label, out) in enumerate(outs):
        for other_label, other in outs[i + 1 :]:
            if same_file(out, other):
                raise InputError(
                    f"{out}: named by both {label} and {other_label}; "
                    "give two different files"
                )


def make_parents(path: str | os.PathLike) -> list[Path]:
    """Create the missing parent folders of ``path``; return those created
    (outermost first), so a failed write can remove them again."""
    parent = Path(path).parent
    missing = []
    p = parent
    while not os.path.lexists(p) and p != p.parent:
        missing.append(p)
        p = p.parent
    with os_errors(parent, action="cannot create the folder"):
        parent.mkdir(parents=True, exist_ok=True)
    return list(reversed(missing))


def remove_empty_folders(folders: Iterable[Path]) -> None:
    """Remove folders (innermost first) that are still empty; ignore the others."""
    for d in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):
            d.rmdir()


# --------------------------------------------------------------------------- atomic
def is_temporary(name: str) -> bool:
    """True for the name of a temporary file made by :func:`atomic_path`."""
    return bool(_TMP_RE.match(name))


def _check_destination(path: Path) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        return  # the link itself is replaced, never its target
    if not stat.S_ISREG(st.st_mode):
        raise InputError(
            f"{path}: exists and is {_kind(st)}; give the name of a regular file"
        )


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it onto ``path``.

    For writers that take a file name (soundfile, ``np.save``, ``model.save``,
    ``fig.savefig``). The temporary file exists, empty, when the block starts
    (created with the usual permissions, 0666 less the umask). Missing parent folders
    are created; if the block raises, the temporary file and the folders created are
    removed and the destination is untouched.

    Args:
        path: The destination file.
        suffix: Appended to the temporary name, for writers that insist on an
            extension (Keras wants ``.keras`` or ``.weights.h5``).

    Raises:
        InputError: the destination is a folder, device or other non-regular file,
            or any OSError (one line).
    """
    path = Path(path)
    with os_errors(path):
        _check_destination(path)
    created = make_parents(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp{suffix}")
    try:
        with os_errors(path):
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        yield tmp
        with os_errors(path):
            _check_destination(path)
            os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        remove_empty_folders(created)
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (flushed to disk before the rename)."""
    path = Path(path)
    with atomic_path(path) as tmp, os_errors(path), open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` as UTF-8 with ``\\n`` line ends, atomically."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any, *, sort_keys: bool = False) -> Path:
    """Write ``obj`` as JSON (indent 2, trailing newline, UTF-8), atomically."""
    return write_text(path, json.dumps(obj, indent=2, sort_keys=sort_keys) + "\n")


# --------------------------------------------------------------------------- hashing
def file_sha256(path: str | os.PathLike) -> str:
    """sha256 hex digest of a file's bytes, read in chunks (memory bounded)."""
    with os_errors(path, action="cannot read"), open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def bytes_sha256(data: bytes) -> str:
    """sha256 hex digest of ``data``."""
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- tables
def format_number(value: Any) -> str:
    """The one number format of every Markdown table.

    Integers in full with thousands separators (``5,000``); floats with
    :data:`SIGNIFICANT_DIGITS` significant digits but the integer part never rounded
    (``11,476``, ``141.7``, ``65.62``, ``0.6086``, ``0.008785``); magnitudes below
    1e-3 in scientific notation (``1.600e-08``); zero as ``0``; NaN as an empty cell.
    Anything else (text, booleans) as ``str``.
    """
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int) or _is_numpy_int(value):
        return f"{int(value):,}"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(v):
        return ""
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if v == 0:
        return "0"
    if abs(v) < 1e-3:
        return f"{v:.{SIGNIFICANT_DIGITS - 1}e}"
    magnitude = math.floor(math.log10(abs(v)))
    decimals = max(0, SIGNIFICANT_DIGITS - 1 - magnitude)
    text = f"{v:,.{decimals}f}"
    return "0" if text in ("-0", "0") else text


def csv_number(value: float) -> str:
    """A float as written in every CSV table: rounded to
    :data:`CSV_SIGNIFICANT_DIGITS` significant digits, then Python's shortest
    round-trip form, so a float stays a float (``2.0``, ``0.0001607552028``,
    ``1e-12``, ``nan``)."""
    return repr(float(f"{float(value):.{CSV_SIGNIFICANT_DIGITS}g}"))


def _is_numpy_int(value: Any) -> bool:
    return type(value).__module__ == "numpy" and "int" in type(value).__name__


def markdown_table(df, *, index: bool = False, index_label: str | None = None) -> str:
    """A GitHub Markdown table of a pandas DataFrame, numbers by :func:`format_number`
    (numeric columns right-aligned, others left-aligned).

    Args:
        df: The table.
        index: Include the index as the first column.
        index_label: Header of that column (default: the index's name, or "").

    Returns:
        The table, lines joined by ``\\n``, with no trailing newline.
    """
    table = df.copy()
    if index:
        table = table.reset_index()
        first = table.columns[0]
        label = index_label if index_label is not None else (df.index.name or "")
        table = table.rename(columns={first: label})
    import pandas as pd

    align = [
        "right"
        if pd.api.types.is_numeric_dtype(table[c])
        and not pd.api.types.is_bool_dtype(table[c])
        else "left"
        for c in table.columns
    ]
    cells = table.astype(object).map(format_number)
    cells.columns = [str(c) for c in cells.columns]
    return cells.to_markdown(
        index=False, tablefmt="pipe", disable_numparse=True, colalign=align
    )


def write_table(
    df,
    out_dir: str | os.PathLike,
    stem: str,
    *,
    title: str | None = None,
    index: bool = False,
    index_label: str | None = None,
) -> tuple[Path, Path]:
    """Write a DataFrame as ``STEM.csv`` (floats by :func:`csv_number`) and
    ``STEM.md`` (by :func:`format_number`), atomically: the same table gives the
    same bytes.

    Args:
        df: The table.
        out_dir: Folder (created when missing).
        stem: File name without extension.
        title: Optional ``### title`` line above the Markdown table.
        index: Write the index as the first column (CSV and Markdown alike).
        index_label: That column's header.

    Returns:
        (csv_path, md_path).
    """
    out_dir = Path(out_dir)
    csv_path, md_path = out_dir / f"{stem}.csv", out_dir / f"{stem}.md"
    csv = df.to_csv(
        index=index,
        index_label=index_label if index else None,
        float_format=csv_number,
    )
    md = markdown_table(df, index=index, index_label=index_label) + "\n"
    if title:
        md = f"### {title}\n\n{md}"
    write_text(csv_path, csv)
    write_text(md_path, md)
    return csv_path, md_path


# --------------------------------------------------------------------------- audio
def audio_format(path: str | os.PathLike) -> str:
    """soundfile format name for a path's extension; refuses any other extension."""
    fmt = AUDIO_FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        suffix = Path(path).suffix
        shown = repr(suffix) if suffix else "no extension"
        raise InputError(
            f"{path}: {shown} is not a supported audio extension; "
            f"use {', '.join(AUDIO_FORMATS)}"
        )
    return fmt


def write_audio(path: str | os.PathLike, audio, sample_rate: int) -> Path:
    """Write mono or multichannel float audio in the format its extension names.

    - ``.wav``: 16-bit PCM when every sample lies in [-1, 1], 32-bit float otherwise,
      so nothing is ever clipped (a rendered note can peak above 1.0, up to about
      1.5, because the anti-aliasing low-pass may let the remaining partials add up
      higher than the 48 kHz signal did).
    - ``.flac``: 16-bit PCM; FLAC holds integers only, so audio peaking above 1.0 is
      refused rather than clipped.
    - ``.ogg``: Ogg Vorbis (lossy, floating point inside).

    Args:
        path: Destination; missing parent folders are created.
        audio: shape (n,) or (n, channels), float, finite; nominal range [-1, 1].
        sample_rate: Hz, positive.

    Returns:
        The path written (atomically).

    Raises:
        InputError: unsupported extension, non-finite audio, FLAC above full scale,
            or any OSError (one line).
    """
    import numpy as np
    import soundfile as sf

    path = Path(path)
    fmt = audio_format(path)
    audio = np.asarray(audio)
    if not np.all(np.isfinite(audio)):
        raise InputError(f"{path}: the audio contains NaN or infinite samples")
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    if fmt == "WAV":
        subtype = "PCM_16" if peak <= 1.0 else "FLOAT"
    elif fmt == "FLAC":
        if peak > 1.0:
            raise InputError(
                f"{path}: the audio peaks at {peak:.3f}, above the full scale 1.0 "
                "that FLAC can hold; write .wav (kept as 32-bit float) instead"
            )
        subtype = "PCM_16"
    else:
        subtype = "VORBIS"
    with atomic_path(path) as tmp, os_errors(path):
        sf.write(tmp, audio, int(sample_rate), subtype=subtype, format=fmt)
    return path


# --------------------------------------------------------------------------- space
def free_bytes(path: str | os.PathLike) -> int:
    """Free bytes available to this user on the file system that will hold
    ``path`` (its nearest existing ancestor)."""
    with os_errors(path, action="cannot inspect"):
        return int(_disk_usage(_existing_ancestor(Path(path))))


def _disk_usage(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def format_bytes(n: int) -> str:
    """``n`` bytes in binary units, e.g. ``"6.1 GiB"``."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(value) < 1024 or unit == "PiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


# --------------------------------------------------------------------------- locking
#: Name of the lock file that :func:`folder_lock` keeps in a folder.
LOCK_NAME = ".lock"


#: Locks held by this process: (device, inode) of the lock file -> [fd, count].
_HELD: dict[tuple[int, int], list[int]] = {}


class FolderLock:
    """An exclusive lock on a folder so two processes never write it at once.

    The lock is ``fcntl.flock`` on ``FOLDER/.lock`` (released by the kernel when the
    process ends, even when killed); the empty ``.lock`` file stays. It is taken when
    the object is constructed and released by :meth:`release`, at the end of a
    ``with`` block, or when the object is garbage-collected. Within one process it is
    re-entrant, so a notebook that reruns a step after an error (whose traceback may
    still hold the first lock) is not locked out by itself.

    Args:
        folder: An existing folder.
        command: The command's name, for the message.

    Raises:
        InputError: another process holds the lock.
    """

    def __init__(self, folder: str | os.PathLike, *, command: str) -> None:
        import fcntl

        self.key: tuple[int, int] | None = None
        lock = Path(folder) / LOCK_NAME
        with os_errors(lock):
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
            st = os.fstat(fd)
        key = (st.st_dev, st.st_ino)
        if key in _HELD:
            os.close(fd)
            _HELD[key][1] += 1
            self.key = key
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise InputError(
                f"{folder}: another {command} run is writing this folder; wait for "
                "it to finish or choose another folder"
            ) from None
        _HELD[key] = [fd, 1]
        self.key = key

    def release(self) -> None:
        if self.key is None:
            return
        held = _HELD.get(self.key)
        if held is not None:
            held[1] -= 1
            if held[1] == 0:
                os.close(held[0])
                del _HELD[self.key]
        self.key = None

    def __enter__(self) -> FolderLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self) -> None:
        self.release()


def folder_lock(folder: str | os.PathLike, *, command: str) -> FolderLock:
    """Lock ``folder`` for this process (see :class:`FolderLock`); use it as
    ``with folder_lock(out, command="generate"): ...``."""
    return FolderLock(folder, command=command)


def move_into_place(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Rename a finished file or folder of ours (a completed download, an extracted
    archive) onto ``dst`` atomically. A file may replace a regular file; a folder
    only takes the place of nothing. Never replaces a device or other special file.

    Raises:
        InputError: ``dst`` is in the way, or any OSError (one line).
    """
    src, dst = Path(src), Path(dst)
    with os_errors(dst):
        if src.is_dir() and os.path.lexists(dst):
            raise InputError(f"{dst}: exists; remove it or choose another folder")
        _check_destination(dst)
        os.replace(src, dst)
    return dst
