"""Pitch-normalised input features of a note, for the fmnet estimator (issue 12).

An FM note of this synthesizer has a constant timbre (no operator has its own
envelope): its spectrum is a fixed set of partials at ``carrier * (1 + sum n_i r_i)``,
scaled by one ADSR. With the discrete ratios every partial lies on a multiple of a
common fundamental f0, so a spectrum read *on a grid relative to f0* shows the
ratios and indices as the same pattern whatever the pitch. The paper's CNN has to
learn that invariance from raw audio; here it is given.

One feature vector per note, float32 shape (:data:`N_FEATURES`,), in [0, 1] except
the scalars:

* ``harmonic`` (:data:`N_HARMONIC_BANDS` = 64 values): the power in the bands of
  width f0/2 centred on ``k * f0 / 2``, k = 1..64 (up to 32 f0). Half-f0 steps so
  that an octave error of the tracker (f0 found one octave too high) still lands the
  partials on band centres.
* ``wide`` (:data:`N_WIDE_BANDS` = 24 values): sixth-octave bands from 32.25 f0 to
  about 516 f0, so that a low note's wide FM bandwidth is seen too.
* Both band sets are powers divided by the note's power below 8 kHz, as
  ``log10(p + 1e-6) / 6 + 1`` (0 is -60 dB or less, 1 is all the power); a band
  above the 8 kHz Nyquist limit of the 16 kHz audio reads 0.
* ``envelope`` (:data:`N_ENVELOPE` = 126 values): the frame RMS
  (:func:`fmlib.audio.analysis.frame_rms`, 2048/512 framing) in dB below its peak,
  as ``dB / 100 + 1`` clipped at 0 (-100 dB).
* ``scalars`` (3 values): ``log2(f0 / 440) / 4`` (the network needs the absolute
  pitch: the 8 kHz low-pass and aliasing depend on it), the peak frame RMS in dB / 100,
  and the spectrum's power-weighted distance of partials from the harmonic grid (0 on
  a harmonic note).

The spectrum is the Hann-windowed FFT (2**16 points, 0.24 Hz bins) of the note's
active part (frames within 40 dB of the loudest), the same for training and
inference. f0 comes from :func:`fmlib.audio.analysis.estimate_f0` (the tracker) in both.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

from fmlib.audio.analysis import FRAME_LENGTH, HOP_LENGTH, N_SAMPLES, frame_rms
from fmlib.errors import InputError
from fmlib.synth import params as P

#: Bands of width f0/2 centred on k f0/2, k = 1..64.
N_HARMONIC_BANDS = 64
#: Sixth-octave bands above the harmonic ones.
N_WIDE_BANDS = 24
WIDE_BANDS_PER_OCTAVE = 6
#: Frames of the RMS envelope of a 4 s note (1 + 64000 // 512).
N_ENVELOPE = 1 + N_SAMPLES // HOP_LENGTH
N_SCALARS = 3
#: Length of one feature vector.
N_FEATURES = N_HARMONIC_BANDS + N_WIDE_BANDS + N_ENVELOPE + N_SCALARS
#: Slices of the feature vector, by name.
SLICES: dict[str, slice] = {
    "harmonic": slice(0, N_HARMONIC_BANDS),
    "wide": slice(N_HARMONIC_BANDS, N_HARMONIC_BANDS + N_WIDE_BANDS),
    "envelope": slice(
        N_HARMONIC_BANDS + N_WIDE_BANDS, N_HARMONIC_BANDS + N_WIDE_BANDS + N_ENVELOPE
    ),
    "scalars": slice(N_FEATURES - N_SCALARS, N_FEATURES),
}
#: FFT length of the long-term spectrum (0.244 Hz bins at 16 kHz).
N_FFT = 1 << 16
#: Power floor of the band features, relative to the total (-60 dB).
BAND_FLOOR = 1e-6
#: Frames within this many dB of the loudest make the "active" part of a note.
ACTIVE_DB = 40.0
#: Floor of the envelope, dB below the peak frame.
ENVELOPE_FLOOR_DB = 100.0


def band_edges_hz(f0_hz: float) -> np.ndarray:
    """Edges of the harmonic then the wide bands for fundamental ``f0_hz``.

    Returns:
        float64 shape (N_HARMONIC_BANDS + N_WIDE_BANDS + 1,), increasing, Hz: the
        first 65 edges are ``(k - 0.5) * f0 / 2`` for k = 1..65, then 24 more at
        ``32.25 f0 * 2 ** (j / 6)``.
    """
    if not np.isfinite(f0_hz) or f0_hz <= 0:
        raise InputError(f"f0_hz: {f0_hz!r} is not valid; use a positive frequency")
    k = np.arange(1, N_HARMONIC_BANDS + 2)
    harmonic = (k - 0.5) * f0_hz / 2
    j = np.arange(1, N_WIDE_BANDS + 1)
    wide = harmonic[-1] * 2.0 ** (j / WIDE_BANDS_PER_OCTAVE)
    return np.concatenate([harmonic, wide])


def power_spectrum(x) -> np.ndarray:
    """Power spectrum of the active part of a note (Hann window, :data:`N_FFT`).

    Args:
        x: float array shape (n,), 16 kHz mono, not silent.

    Returns:
        float64 shape (N_FFT // 2 + 1,), bin k at ``k * 16000 / N_FFT`` Hz.
    """
    a = np.asarray(x, dtype=np.float64)
    rms = frame_rms(a)
    active = np.nonzero(rms >= rms.max() * 10 ** (-ACTIVE_DB / 20))[0]
    lo = max(0, active[0] * HOP_LENGTH - FRAME_LENGTH // 2)
    hi = min(a.size, active[-1] * HOP_LENGTH + FRAME_LENGTH // 2)
    seg = a[lo:hi][:N_FFT]
    seg = seg * np.hanning(seg.size)
    return np.abs(scipy.fft.rfft(seg, n=N_FFT)) ** 2


def band_powers(power, f0_hz: float) -> np.ndarray:
    """Power in each band of :func:`band_edges_hz`, relative to the total.

    Band sums are differences of the cumulative power, linearly interpolated at
    fractional bins, so a band narrower than a bin still gets its share.

    Args:
        power: float shape (N_FFT // 2 + 1,), from :func:`power_spectrum`.
        f0_hz: The fundamental, Hz.

    Returns:
        float64 shape (N_HARMONIC_BANDS + N_WIDE_BANDS,), each in [0, 1]; bands
        reaching past 8 kHz are 0.
    """
    p = np.asarray(power, dtype=np.float64)
    total = p.sum()
    if not total > 0:
        raise InputError("audio: it has no power below 8 kHz")
    bin_hz = P.SAMPLE_RATE / N_FFT
    cum = np.concatenate([[0.0], np.cumsum(p)])
    # cum[i] is the power of bins < i; bin k covers [k - 0.5, k + 0.5) in bin units.
    edges = band_edges_hz(f0_hz) / bin_hz + 0.5
    at = np.interp(edges, np.arange(cum.size), cum)
    bands = np.diff(at) / total
    bands[band_edges_hz(f0_hz)[1:] > P.SAMPLE_RATE / 2] = 0.0
    return np.clip(bands, 0.0, 1.0)


def line_band_powers(partial_power, f0_hz: float) -> np.ndarray:
    """:func:`band_powers` of ideal line spectra: partials at multiples of f0/2.

    What :func:`band_powers` would read from a note made of these partials, without
    the window's leakage, aliasing or noise: each partial's power goes to the band
    that holds its frequency, partials at or above the 8 kHz Nyquist limit are
    dropped (the 16 kHz audio has none), and bands reaching past it read 0. Used to
    compare a note with the line spectra of :func:`fmlib.audio.timbre.harmonic_table`
    in feature space (:func:`line_band_features`).

    Args:
        partial_power: float (N, H) or (H,): the power of the partial at
            ``h * f0 / 2`` for h = 0..H-1 (h = 0, DC, lies in no band).
        f0_hz: The fundamental, Hz.

    Returns:
        float64 (N, N_HARMONIC_BANDS + N_WIDE_BANDS) (or one row for one
        spectrum), each row's shares of its power below 8 kHz, in [0, 1]; a row
        without power below 8 kHz is all 0.
    """
    p = np.asarray(partial_power, dtype=np.float64)
    one = p.ndim == 1
    p = np.atleast_2d(p)
    edges = band_edges_hz(f0_hz)
    h = np.arange(p.shape[1])
    freq = h * f0_hz / 2
    heard = (freq < P.SAMPLE_RATE / 2) & (h > 0)
    band = np.searchsorted(edges, freq, side="right") - 1
    inside = heard & (band >= 0) & (band < edges.size - 1)
    onto = np.zeros((p.shape[1], edges.size - 1))
    onto[h[inside], band[inside]] = 1.0
    total = p[:, heard].sum(axis=1, keepdims=True)
    out = np.divide(
        p @ onto, total, out=np.zeros((p.shape[0], onto.shape[1])), where=total > 0
    )
    out[:, edges[1:] > P.SAMPLE_RATE / 2] = 0.0
    out = np.clip(out, 0.0, 1.0)
    return out[0] if one else out


def band_features(bands) -> np.ndarray:
    """Band shares (from :func:`band_powers` or :func:`line_band_powers`) as the
    features of :func:`note_features`: ``log10(p + 1e-6) / 6 + 1``, in [0, 1]."""
    return (
        np.log10(np.asarray(bands, dtype=np.float64) + BAND_FLOOR)
        / -np.log10(BAND_FLOOR)
        + 1.0
    )


def band_shares(features) -> np.ndarray:
    """The inverse of :func:`band_features`: band shares from band features
    (clipped at 0; a feature of 0 is a band at or below -60 dB)."""
    f = np.asarray(features, dtype=np.float64)
    return np.maximum(10.0 ** ((f - 1.0) * -np.log10(BAND_FLOOR)) - BAND_FLOOR, 0.0)


def harmonicity(power, f0_hz: float) -> float:
    """Power-weighted mean distance of the spectrum from the grid of multiples of
    f0/2, in units of f0/2 (0 on the grid, about 0.25 for noise), over 0-8 kHz."""
    p = np.asarray(power, dtype=np.float64)
    f = np.arange(p.size) * (P.SAMPLE_RATE / N_FFT)
    step = f0_hz / 2
    dist = np.abs(f / step - np.rint(f / step))
    return float(np.sum(p * dist) / np.sum(p))


def note_features(x, f0_hz: float) -> np.ndarray:
    """The feature vector of one note (see the module docstring).

    Args:
        x: float array shape (64000,), 16 kHz mono (see
            :func:`fmlib.audio.analysis.prepare_audio`), not silent.
        f0_hz: Its fundamental, Hz (from :func:`fmlib.audio.analysis.estimate_f0`).

    Returns:
        float32 shape (N_FEATURES,).
    """
    a = np.asarray(x, dtype=np.float64)
    if a.shape != (N_SAMPLES,):
        raise InputError(
            f"audio: expected shape ({N_SAMPLES},) at 16 kHz, got {a.shape}; "
            "use prepare_audio first"
        )
    if not np.all(np.isfinite(a)) or np.max(np.abs(a)) <= 1e-5:
        raise InputError("audio: it is silent or contains NaN or infinite samples")
    power = power_spectrum(a)
    band_feat = band_features(band_powers(power, f0_hz))
    rms = frame_rms(a)
    peak = rms.max()
    db = 20 * np.log10(np.maximum(rms, 1e-12) / peak)
    env = np.clip(db / ENVELOPE_FLOOR_DB + 1.0, 0.0, 1.0)
    scalars = np.array(
        [
            np.log2(f0_hz / P.A4_HZ) / 4,
            20 * np.log10(peak) / ENVELOPE_FLOOR_DB,
            harmonicity(power, f0_hz),
        ]
    )
    return np.concatenate([band_feat, env, scalars]).astype(np.float32)
