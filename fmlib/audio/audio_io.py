"""Reading and writing audio files safely, through :mod:`fmlib.files`."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from fmlib import files
from fmlib.errors import InputError


def check_output_path(path: str | os.PathLike) -> Path:
    """Check an audio output before any work (see :func:`fmlib.files.check_output`):
    the extension must be ``.wav``, ``.flac`` or ``.ogg``; an existing path must be a
    regular file; the nearest existing folder must be writable."""
    return files.check_output(path, kind="audio")


def write_wav(path: str | os.PathLike, audio: np.ndarray, sample_rate: int) -> Path:
    """Write float audio atomically, in the format the extension names.

    ``.wav`` is 16-bit PCM when every sample lies in [-1, 1], and 32-bit float
    otherwise, so nothing is ever clipped: a rendered note can peak above 1.0 (up to
    about 1.5 for bright patches), because the anti-aliasing low-pass removes
    partials above 8 kHz and the remaining ones may add up higher than the 48 kHz
    signal did. About three in four random paper-range patches do. ``.flac`` and
    ``.ogg`` are written as :func:`fmlib.files.write_audio` describes.

    Args:
        path: Destination ``.wav`` (or ``.flac``, ``.ogg``); missing parent folders
            are created.
        audio: shape (n,), float, finite; nominal range [-1, 1].
        sample_rate: Hz.

    Returns:
        The path written.

    Raises:
        InputError: an unsupported extension, a folder or device, non-finite audio,
            or any OSError (one line).
    """
    path = check_output_path(path)
    return files.write_audio(path, audio, sample_rate)


def read_wav(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Read any audio file soundfile understands.

    Returns:
        (audio, sample_rate): audio float32 of shape (n, channels), sample_rate in Hz.

    Raises:
        MissingFileError: no such file.
        InputError: a folder, unreadable, not audio, or empty.
    """
    import soundfile as sf

    path = files.check_input(path, what="audio file")
    try:
        audio, sr = sf.read(path, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise InputError(
            f"{path}: not a readable audio file ({_one_line(exc)})"
        ) from None
    except OSError as exc:
        raise InputError(
            files.os_error_message(path, exc, action="cannot read")
        ) from None
    if audio.shape[0] == 0:
        raise InputError(f"{path}: the audio file is empty (0 samples)")
    return audio, int(sr)


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())
