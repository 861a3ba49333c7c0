"""Sample-rate conversion to the synthesizer's 16 kHz, with one path from 48 kHz.

Audio reaches 16 kHz from 48 kHz in three places: the synthesizer's own output
(:func:`fmlib.synth.engine.render`), the SoundFont evaluation set (rendered at 48 kHz by
:mod:`fmlib.datasets.soundfont`) and any 48 kHz file given to ``predict``/``match``
(:func:`fmlib.audio.analysis.prepare_audio`). All three go through
:func:`downsample_48k_to_16k`, i.e. the synthesizer's zero-phase low-pass
(:func:`fmlib.synth.engine.downsample`: flat to 7.6 kHz, zero from 8 kHz), so training
data and evaluation notes are filtered alike. Other input rates use
``scipy.signal.resample_poly`` with the exact rational factor: the synthesizer's
filter is defined for a factor of 3 only.
"""

from __future__ import annotations

import math

import numpy as np

from fmlib.synth import params as P
from fmlib.synth.engine import DOWNSAMPLE, downsample

#: The rate handled by the synthesizer's own filter, Hz.
RATE_48K = P.RENDER_SAMPLE_RATE


def downsample_48k_to_16k(x) -> np.ndarray:
    """48 kHz to 16 kHz with the synthesizer's zero-phase low-pass.

    The input is zero-padded to a multiple of 3 samples first, so any length is
    accepted; samples outside the signal count as silence (as in the synthesizer).

    Args:
        x: float array of shape (..., n) at 48 kHz, nominal range [-1, 1].

    Returns:
        Array of shape (..., ceil(n / 3)) at 16 kHz: float64 for float64 input,
        float32 otherwise (the length ``scipy.signal.resample_poly(x, 1, 3)`` gives).
    """
    x = np.asarray(x)
    n = x.shape[-1]
    pad = -n % DOWNSAMPLE
    if pad:
        x = np.concatenate([x, np.zeros((*x.shape[:-1], pad), dtype=x.dtype)], -1)
    return downsample(x)


def to_16k(x, sample_rate: int) -> np.ndarray:
    """Mono audio at ``sample_rate`` brought to 16 kHz.

    Args:
        x: float array of shape (n,), nominal range [-1, 1].
        sample_rate: Its rate, Hz, a positive integer. 48 kHz uses
            :func:`downsample_48k_to_16k`; 16 kHz returns the input unchanged;
            others ``scipy.signal.resample_poly`` with the factor
            16000 / sample_rate reduced by their gcd.

    Returns:
        float64 array of shape (ceil(n * 16000 / sample_rate),).
    """
    x = np.asarray(x, dtype=np.float64)
    if sample_rate == P.SAMPLE_RATE:
        return x
    if sample_rate == RATE_48K:
        return downsample_48k_to_16k(x)
    from scipy.signal import resample_poly

    g = math.gcd(P.SAMPLE_RATE, sample_rate)
    return resample_poly(x, P.SAMPLE_RATE // g, sample_rate // g)
