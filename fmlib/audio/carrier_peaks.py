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

Hand-written with NumPy and SciPy (``find_peaks``), the cells and windows of all
candidates at once through a range-maximum table (:class:`_RangeMax`): 9.9 ms CPU a
note against 42 ms for the per-candidate loop it replaced, which gave the same
values (median of 200 musical-prior notes, both in one run on one core of a 2-core
AMD EPYC VM with a training on the other).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
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
_WINDOW = np.hanning(int(round(WINDOW_S * SAMPLE_RATE)))
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
    mag = np.abs(np.fft.rfft(a[:n] * _WINDOW, N_FFT))
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


class _RangeMax:
    """Maxima of a spectrum over many bin ranges at once (a sparse table).

    ``table[p][i]`` is the maximum of ``db[i : i + 2**p]``, so the maximum of any
    range ``[lo, hi)`` is that of two overlapping power-of-two ranges. Hand-written
    because SciPy's running maximum takes one window width at a time and NumPy's
    ``reduceat`` one set of cells, which left a Python loop over the candidates
    (module docstring: 42 against 9.9 ms a note). It gives exactly the loop's values
    (a maximum is exact; ``tests/test_carrier_ranker.py`` compares the two).

    Args:
        db: (L,) spectrum, dB. Levels of the table are built as far as the longest
            range asked for: (levels, L) float64, -inf past each level's end.
    """

    def __init__(self, db: np.ndarray):
        self.db = np.asarray(db, dtype=np.float64)
        self.table = self.db[None]

    def __call__(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Maximum of ``db[lo:hi]`` elementwise; every range non-empty, in bounds."""
        level = np.log2(hi - lo).astype(np.int64)  # exact for powers of two
        top = int(level.max(initial=0))
        if top >= len(self.table):  # built as far as asked, padded with -inf
            t = np.full((top + 1, len(self.db)), -np.inf)
            t[0] = self.db
            for p in range(1, top + 1):
                w = 1 << (p - 1)
                np.maximum(t[p - 1, :-w], t[p - 1, w:], out=t[p, :-w])
            self.table = t
        return np.maximum(self.table[level, lo], self.table[level, hi - (1 << level)])


def _cells(rmax: _RangeMax, c: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Maximum of the spectrum in the cells ``[edges[j], edges[j + 1]) * c`` Hz.

    Args:
        c: (C,) candidate frequencies, Hz.

    Returns:
        (C, len(edges) - 1) dB; a cell whose upper edge lies above the Nyquist limit
        reads :data:`OUTSIDE_DB`. Edges are rounded to bins; a cell that rounds to
        no bin reads its lower bin.
    """
    b = np.round(c[:, None] * edges * N_FFT / SAMPLE_RATE).astype(np.int64)
    bb = np.minimum(b, _NYQUIST_BIN)
    lo = bb[:, :-1]
    hi = np.maximum(bb[:, 1:], lo + 1)
    return np.where(b[:, 1:] <= _NYQUIST_BIN, rmax(lo, hi), OUTSIDE_DB)


def _around(rmax: _RangeMax, centers_hz: np.ndarray, half_hz: np.ndarray) -> np.ndarray:
    """Maximum of the spectrum within about ``+-half_hz`` of each centre.

    Args:
        centers_hz: (C, M) Hz.
        half_hz: (C,) half-widths, Hz, one per row.

    Returns:
        (C, M) dB; :data:`OUTSIDE_DB` where the window leaves 0..Nyquist.
    """
    half = half_hz[:, None]
    lo = np.round((centers_hz - half) * N_FFT / SAMPLE_RATE).astype(np.int64)
    hi = np.round((centers_hz + half) * N_FFT / SAMPLE_RATE).astype(np.int64)
    ok = (lo >= 0) & (hi <= _NYQUIST_BIN)
    # The half-width is rounded to a quarter octave of bins (once a shared set of
    # running-maximum filters; kept so that the features stay the same).
    half_bins = np.maximum(half_hz * N_FFT / SAMPLE_RATE, 1)
    hb = np.maximum(np.round(2 ** (np.round(4 * np.log2(half_bins)) / 4)), 1)
    hb = np.broadcast_to(hb.astype(np.int64)[:, None], centers_hz.shape)
    cb = np.round(centers_hz * N_FFT / SAMPLE_RATE).astype(np.int64)
    cb, hb = cb[ok], hb[ok]
    out = np.full(centers_hz.shape, OUTSIDE_DB)
    # a window that runs past either end is cut there, as the running maximum's
    # reflecting boundary only repeats values already inside the window
    out[ok] = rmax(np.maximum(cb - hb, 0), np.minimum(cb + hb + 1, _NYQUIST_BIN + 1))
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
    m = len(freqs)
    feats = np.zeros((N_CANDIDATES, N_FEATURES), np.float32)
    mask = np.zeros(N_CANDIDATES, bool)
    out_freqs = np.zeros(N_CANDIDATES)
    if m:
        c = np.asarray(freqs, dtype=np.float64)
        rmax = _RangeMax(db)
        feats[:m, 0] = np.log2(c / 440.0)
        feats[:m, 1] = levels / FLOOR_DB
        feats[:m, 2] = np.arange(m) / N_CANDIDATES
        feats[:m, SLICES["coarse"]] = _cells(rmax, c, _COARSE_EDGES) / FLOOR_DB
        feats[:m, SLICES["fine"]] = _cells(rmax, c, _FINE_EDGES) / FLOOR_DB
        d = _MIRROR_OFFSETS * c[:, None]
        up = _around(rmax, c[:, None] + d, c / 64.0)
        down = _around(rmax, np.abs(c[:, None] - d), c / 64.0)
        both = (up > OUTSIDE_DB) & (down > OUTSIDE_DB)  # both below Nyquist
        feats[:m, SLICES["up"]] = up / FLOOR_DB
        feats[:m, SLICES["down"]] = down / FLOOR_DB
        feats[:m, SLICES["mismatch"]] = (
            np.where(both, np.abs(up - down), -10.0) / FLOOR_DB
        )
        mask[:m] = True
        out_freqs[:m] = c
    return Candidates(feats, mask, out_freqs)
