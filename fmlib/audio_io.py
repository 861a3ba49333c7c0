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
    """Write mono float audio as a WAV file, atomically (temporary file, then rename).

    The file is 16-bit PCM when every sample lies in [-1, 1], and 32-bit float
    otherwise, so nothing is ever clipped: a rendered note can peak above 1.0 (up to
    about 1.5 for bright patches), because the anti-aliasing low-pass removes
    partials above 8 kHz and the remaining ones may add up higher than the 48 kHz
    signal did. About three in four random paper-range patches do.

    Args:
        path: Destination ``.wav``; its folder must exist.
        audio: shape (n,), float, finite; nominal range [-1, 1].
        sample_rate: Hz.

    Returns:
        The path written.

    Raises:
        MissingFileError: the folder does not exist.
        InputError: the folder is not writable, the path is a folder, or the audio
            is not finite.
    """
    path = check_output_path(path)
    audio = np.asarray(audio)
    if not np.all(np.isfinite(audio)):
        raise InputError(f"{path}: the audio contains NaN or infinite samples")
    subtype = "PCM_16" if audio.size == 0 or np.abs(audio).max() <= 1.0 else "FLOAT"
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        sf.write(tmp, audio, sample_rate, subtype=subtype, format="WAV")
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
