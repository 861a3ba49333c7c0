"""Carrier candidates of an FM note: its spectral peaks, the spectrum seen from each.

The carrier of an FM note is one of its partials (the ``n_i = 0`` term of
``carrier * (1 + sum n_i r_i)``), but under free ratios it is rarely the strongest
one and rarely a small multiple of the tracked pitch (docs/FMNET.md). What marks it
is where the other partials sit *relative to it*: at ``carrier * x`` with ``x`` made
of the ratios, and in mirror pairs ``carrier +- d`` of about equal level (the
sidebands of a modulator have equal magnitude on both sides; a lower sideband below
0 Hz folds back to ``d - carrier``). This module lists a note's peaks and describes
the spectrum around each on grids scaled by the candidate itself, so that a ranker
(:mod:`fmlib.estimate.carrier_ranker`) can learn which peak is the carrier.

The spectrum is the Hann-windowed FFT of the note's first :data:`WINDOW_S` seconds
(before the note-off at 3 s) zero-padded to :data:`N_FFT` points (0.12 Hz bins), in
dB below its strongest bin and floored at -:data:`FLOOR_DB`. Candidates are its
local maxima at least 3 dB prominent and 5 bins apart, the :data:`N_CANDIDATES`
loudest, their frequency refined by parabolic interpolation. The spectrum is
computed here rather than through :mod:`fmlib.audio.analysis` because the candidates
need a finer resolution (0.12 Hz against 0.24 Hz: a 25-cent error at the lowest
carrier, 27.5 Hz, is 0.4 Hz).

Per candidate ``c`` (float32, :data:`N_FEATURES` values, dB values divided by
:data:`FLOOR_DB`; a cell above the 8 kHz Nyquist limit reads ``-(FLOOR_DB + 10)``):

* ``scalars`` (3): ``log2(c / 440)``, the candidate's level, its rank by level / K;
* ``coarse`` (128): the maximum of the spectrum in cells ``[j/16, (j+1)/16) * c``,
  j = 0..127 (0 to 8 c);
* ``fine`` (64): the same in cells of c/128 from 0.75 c to 1.25 c;
* ``up``, ``down``, ``mismatch`` (96 each): the maximum within +-c/64 (half-width
  rounded to a quarter-octave number of bins) of ``c + d`` and of ``|c - d|``, for
  ``d = j c / 32``, j = 1..96, and ``|up - down|`` where both cells lie below the
  Nyquist limit (else -10 / :data:`FLOOR_DB`; two cells at the floor read 0).

Hand-written with NumPy and SciPy (``find_peaks``, ``maximum_filter1d``): 42 ms CPU a
note (median of 100 musical-prior notes, p90 61 ms, one core of a 2-core AMD EPYC VM),
most of it in the loop over candidates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import maximum_filter1d
from scipy.signal import find_peaks

from fmlib.synth.params import SAMPLE_RATE

#: Seconds of the note analysed, from its start (the note-off is at 3 s).
WINDOW_S = 3.0
#: FFT length (0.122 Hz bins at 16 kHz).
N_FFT = 1 << 17
#: Dynamic range of the spectrum, dB below its strongest bin.
FLOOR_DB = 60.0
#: Candidates kept per note, loudest first.
N_CANDIDATES = 192
#: Value of a cell above the Nyquist limit (dB below the peak).
OUTSIDE_DB = -(FLOOR_DB + 10.0)
_NYQUIST_BIN = N_FFT // 2
_COARSE_EDGES = np.arange(129) / 16.0
_FINE_EDGES = 0.75 + np.arange(65) / 128.0
_MIRROR_OFFSETS = np.arange(1, 97) / 32.0
#: Slices of a candidate's feature vector, by name.
SLICES: dict[str, slice] = {
    "scalars": slice(0, 3),
    "coarse": slice(3, 131),
    "fine": slice(131, 195),
    "up": slice(195, 291),
    "down": slice(291, 387),
    "mismatch": slice(387, 483),
}
#: Length of one candidate's feature vector.
N_FEATURES = 483


@dataclass(frozen=True)
class Candidates:
    """A note's carrier candidates.

    Attributes:
        features: float32, shape (:data:`N_CANDIDATES`, :data:`N_FEATURES`); rows
            past the last candidate are 0.
        mask: bool, shape (:data:`N_CANDIDATES`,): True for a real candidate.
        freqs_hz: float64, shape (:data:`N_CANDIDATES`,), in (0, 8000) Hz; 0 past
            the last candidate.
    """

    features: np.ndarray
    mask: np.ndarray
    freqs_hz: np.ndarray


def spectrum_db(x) -> np.ndarray:
    """The note's spectrum in dB below its strongest bin.

    Args:
        x: Mono 16 kHz audio, shape (n,), n >= :data:`WINDOW_S` x 16000, not silent.

    Returns:
        float64, shape (N_FFT // 2 + 1,), in [-FLOOR_DB, 0] dB.
    """
    a = np.asarray(x, dtype=np.float64)
    n = int(round(WINDOW_S * SAMPLE_RATE))
    if a.ndim != 1 or a.size < n:
        raise ValueError(
            f"audio: need mono audio of at least {n} samples (16 kHz), "
            f"got shape {a.shape}"
        )
    mag = np.abs(np.fft.rfft(a[:n] * np.hanning(n), N_FFT))
    if not np.isfinite(mag).all() or mag.max() <= 0:
        raise ValueError("audio: it is silent or not finite; need a sounding note")
    db = 20 * np.log10(mag + 1e-12)
    return np.maximum(db - db.max(), -FLOOR_DB)


def peaks(db: np.ndarray, *, n: int = N_CANDIDATES) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` loudest peaks of a spectrum from :func:`spectrum_db`.

    Returns:
        ``(freqs_hz, levels_db)``, each shape (m,), m <= n, loudest first.
    """
    pk, _ = find_peaks(db, height=-FLOOR_DB + 1, distance=5, prominence=3)
    pk = pk[(pk > 0) & (pk < len(db) - 1)]
    pk = pk[np.argsort(-db[pk], kind="stable")][:n]
    y0, y1, y2 = db[pk - 1], db[pk], db[pk + 1]
    den = y0 - 2 * y1 + y2
    off = np.where(den < 0, 0.5 * (y0 - y2) / np.where(den < 0, den, -1), 0.0)
    return (pk + off) * SAMPLE_RATE / N_FFT, db[pk]


def _cells(db: np.ndarray, c: float, edges: np.ndarray) -> np.ndarray:
    """Maximum of ``db`` in the cells ``[edges[j], edges[j + 1]) * c`` Hz."""
    b = np.round(c * edges * N_FFT / SAMPLE_RATE).astype(np.int64)
    out = np.full(len(edges) - 1, OUTSIDE_DB)
    valid = b[1:] <= _NYQUIST_BIN
    bb = np.minimum(b, _NYQUIST_BIN)
    lo = bb[:-1]
    hi = np.maximum(bb[1:], lo + 1)
    red = np.maximum.reduceat(db[lo[0] : hi[-1]], lo - lo[0])
    out[valid] = red[valid]
    return out


def _around(db, filtered: dict, centers_hz: np.ndarray, half_hz: float) -> np.ndarray:
    """Maximum of ``db`` within about ``+-half_hz`` of each centre (cached filters)."""
    lo = np.round((centers_hz - half_hz) * N_FFT / SAMPLE_RATE).astype(np.int64)
    hi = np.round((centers_hz + half_hz) * N_FFT / SAMPLE_RATE).astype(np.int64)
    ok = (lo >= 0) & (hi <= _NYQUIST_BIN)
    out = np.full(len(centers_hz), OUTSIDE_DB)
    # The half-width is rounded to a quarter octave of bins so that the candidates
    # of one note share a few running-maximum filters instead of one each.
    half_bins = max(half_hz * N_FFT / SAMPLE_RATE, 1)
    hb = max(int(round(2 ** (round(4 * np.log2(half_bins)) / 4))), 1)
    if hb not in filtered:
        filtered[hb] = maximum_filter1d(db, 2 * hb + 1)
    cb = np.round(centers_hz * N_FFT / SAMPLE_RATE).astype(np.int64)
    out[ok] = filtered[hb][cb[ok]]
    return out


def candidate_features(x) -> Candidates:
    """The carrier candidates of one note and their features (module docstring).

    Args:
        x: Mono 16 kHz audio, shape (n,), n >= 48,000, not silent.

    Returns:
        :class:`Candidates`.
    """
    db = spectrum_db(x)
    freqs, levels = peaks(db)
    feats = np.zeros((N_CANDIDATES, N_FEATURES), np.float32)
    mask = np.zeros(N_CANDIDATES, bool)
    filtered: dict[int, np.ndarray] = {}
    for j, (c, level) in enumerate(zip(freqs, levels, strict=True)):
        feats[j, 0] = np.log2(c / 440.0)
        feats[j, 1] = level / FLOOR_DB
        feats[j, 2] = j / N_CANDIDATES
        feats[j, SLICES["coarse"]] = _cells(db, c, _COARSE_EDGES) / FLOOR_DB
        feats[j, SLICES["fine"]] = _cells(db, c, _FINE_EDGES) / FLOOR_DB
        d = _MIRROR_OFFSETS * c
        up = _around(db, filtered, c + d, c / 64.0)
        down = _around(db, filtered, np.abs(c - d), c / 64.0)
        both = (up > OUTSIDE_DB) & (down > OUTSIDE_DB)  # both below Nyquist
        feats[j, SLICES["up"]] = up / FLOOR_DB
        feats[j, SLICES["down"]] = down / FLOOR_DB
        feats[j, SLICES["mismatch"]] = (
            np.where(both, np.abs(up - down), -10.0) / FLOOR_DB
        )
        mask[j] = True
    out_freqs = np.zeros(N_CANDIDATES)
    out_freqs[: len(freqs)] = freqs
    return Candidates(feats, mask, out_freqs)
