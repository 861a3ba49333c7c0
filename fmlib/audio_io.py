"""Reading and writing WAV files safely (no half-written outputs)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf

from fmlib.errors import InputError, MissingFileError


def check_output_path(path: str | os.PathLike) -> Path:
    """Return ``path`` as a Path after checking that its folder exists and is
    writable."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise MissingFileError(f"{parent}: output folder does not exist")
    if not os.access(parent, os.W_OK):
        raise InputError(f"{parent}: output folder is not writable")
    if path.is_dir():
        raise InputError(f"{path}: is a folder; give a file name ending in .wav")
    return path


def write_wav(path: str | os.PathLike, audio: np.ndarray, sample_rate: int) -> Path:
    """Write mono float audio as 16-bit PCM WAV atomically (temporary file, then
    rename).

    Args:
        path: Destination ``.wav``; its folder must exist.
        audio: shape (n,), float, nominal range [-1, 1] (clipped beyond).
        sample_rate: Hz.
    """
    path = check_output_path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        sf.write(
            tmp, np.clip(audio, -1.0, 1.0), sample_rate, subtype="PCM_16", format="WAV"
        )
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def read_wav(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Read any audio file soundfile understands.

    Returns:
        (audio, sample_rate): audio float32 of shape (n, channels), sample_rate in Hz.

    Raises:
        MissingFileError: no such file.
        InputError: unreadable or not audio, or empty.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path}: no such audio file")
    try:
        audio, sr = sf.read(path, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise InputError(f"{path}: not a readable audio file ({exc})") from None
    if audio.shape[0] == 0:
        raise InputError(f"{path}: the audio file is empty (0 samples)")
    return audio, int(sr)
