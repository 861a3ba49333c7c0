"""Steady-state spectra of FM patches, fast: what the sound-matching search compares.

A patch of fmlib has static modulation indices and one envelope on the carrier, so
its timbre does not change during a note: every STFT frame of a note is, up to the
envelope's gain, the spectrum of one steady frame. The search
(:mod:`fmlib.estimate.match`) therefore scores thousands of candidate timbres by one
frame each instead of rendering whole notes:

* :func:`frame_mel_power` renders one frame of many patches at once at the
  synthesizer's 48 kHz rate (so their aliasing is the synthesizer's own), windows it
  like the metrics' 2048-sample Hann frame at 16 kHz (6144 samples at 48 kHz: the
  same bins, three times the amplitude), applies the synthesizer's 8 kHz low-pass
  gain per bin and returns the mel power spectrum the log-mel metric sees.
* :class:`HarmonicTable` is a precomputed table of harmonic line spectra (powers at
  the multiples of f0/2) of a few thousand patches whose partials are locked to the
  harmonics of f0; :meth:`HarmonicTable.mel_power` projects the whole table onto the
  mel bands for a given f0 with one matrix product. It ranks starting points.
* :func:`frame_gains` and :func:`predicted_log_mel` model a whole note's log-mel
  spectrogram as ``log1p(gain(t) * mel_power(f))`` (envelope times timbre).

Hand-written rather than calling :func:`fmlib.synth.engine.render`: a batch of 64 frames
costs about as much as one 4 s note, which is what makes a search of a thousand
candidates fit in a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.fft

from fmlib.synth import params as P
from fmlib.synth.algorithms import CARRIER, MODULATORS, get_algorithm
from fmlib.synth.patch import Envelope

#: Samples of one analysis frame at 16 kHz and at the 48 kHz render rate.
FRAME_16K = 2048
FRAME_48K = 3 * FRAME_16K
HOP_16K = 512
#: Start of the steady frame rendered by :func:`frame_mel_power`, s (any time works
#: for a static timbre; away from 0 so that no operator starts at phase 0).
FRAME_START_S = 0.5


@lru_cache(maxsize=1)
def _window_48k() -> np.ndarray:
    n = np.arange(FRAME_48K)
    return (0.5 - 0.5 * np.cos(2 * np.pi * n / FRAME_48K)).astype(np.float64)


@lru_cache(maxsize=1)
def _lowpass_gain() -> np.ndarray:
    """The synthesizer's anti-aliasing gain at the 1025 bins of a 16 kHz frame."""
    from fmlib.synth.engine import PASSBAND_HZ, STOPBAND_HZ

    f = np.arange(FRAME_16K // 2 + 1) * P.SAMPLE_RATE / FRAME_16K
    h = np.ones_like(f)
    band = (f > PASSBAND_HZ) & (f < STOPBAND_HZ)
    h[band] = 0.5 * (
        1 + np.cos(np.pi * (f[band] - PASSBAND_HZ) / (STOPBAND_HZ - PASSBAND_HZ))
    )
    h[f >= STOPBAND_HZ] = 0.0
    return h


@lru_cache(maxsize=2)
def _mel_basis_dense(mel_sample_rate: float) -> np.ndarray:
    """The metrics' mel filter bank, dense float64 (128, 1025)."""
    import librosa

    from fmlib.audio.metrics import N_FFT, N_MELS

    return librosa.filters.mel(sr=mel_sample_rate, n_fft=N_FFT, n_mels=N_MELS).astype(
        np.float64
    )


def _mel_sr() -> float:
    from fmlib.audio.metrics import MEL_FILTER_SAMPLE_RATE

    return float(MEL_FILTER_SAMPLE_RATE)


def frame_mel_power(
    carrier_hz,
    ratios,
    indices,
    *,
    algorithm: str = "dx7_18",
    start_s: float = FRAME_START_S,
) -> np.ndarray:
    """Mel power spectrum of one steady 128 ms frame of many unit-level patches.

    Args:
        carrier_hz: shape (K,), Hz.
        ratios: shape (K, 5), modulator frequency / carrier frequency (M1..M5).
        indices: shape (K, 5), modulation indices, rad.
        algorithm: Operator graph (:mod:`fmlib.synth.algorithms`).
        start_s: Time of the frame's first sample, s.

    Returns:
        float64 shape (K, 128): ``mel @ |STFT frame|**2`` of each patch's carrier
        output (envelope 1, level 1), as :func:`fmlib.audio.metrics.features` would
        compute it for a frame of the rendered note.
    """
    c = np.asarray(carrier_hz, dtype=np.float64).reshape(-1)
    r = np.asarray(ratios, dtype=np.float64).reshape(c.size, -1)
    b = np.asarray(indices, dtype=np.float64).reshape(c.size, -1)
    alg = get_algorithm(algorithm)
    n = np.arange(FRAME_48K, dtype=np.float32)
    freq = {CARRIER: c}
    gain = {CARRIER: np.ones_like(c)}
    for i, name in enumerate(MODULATORS):
        freq[name] = r[:, i] * c
        gain[name] = b[:, i]
    ops = [op for op in alg.render_order() if op == CARRIER or np.any(gain[op])]
    out: dict[str, np.ndarray] = {}
    for op in ops:
        # Start phase reduced in float64; the 128 ms of increments in float32 (at
        # most 6,144 cycles: a phase error below 3e-3 rad, plenty for a search).
        start = (2 * np.pi * ((freq[op] * start_s) % 1.0)).astype(np.float32)
        step = (2 * np.pi * freq[op] / P.RENDER_SAMPLE_RATE).astype(np.float32)
        phase = step[:, None] * n[None, :]
        phase += start[:, None]
        for src in alg.sources(op):
            if src in out:
                phase += out[src]
        y = np.sin(phase, out=phase)
        if op != CARRIER:
            y *= gain[op].astype(np.float32)[:, None]
        out[op] = y
    spec = scipy.fft.rfft(out[CARRIER] * _window_48k().astype(np.float32), axis=1)[
        :, : FRAME_16K // 2 + 1
    ]
    power = (np.abs(spec) * (_lowpass_gain() / 3.0)) ** 2
    return power.astype(np.float64) @ _mel_basis_dense(_mel_sr()).T


# --------------------------------------------------------------------------- note model


@lru_cache(maxsize=1)
def _hann_1ms() -> np.ndarray:
    """The 2048-sample Hann window sampled every 16 samples, normalised to sum 1."""
    w = np.hanning(FRAME_16K // 16 + 1)[:-1]
    return w / w.sum()


def frame_gains(
    envelope: Envelope,
    level: float,
    *,
    n_samples: int,
    note_off_s: float = P.NOTE_OFF_S,
) -> np.ndarray:
    """Power gain of each STFT frame of a note with this envelope: the square of
    the Hann-weighted mean of ``level * adsr(t)`` over the frame (a slowly varying
    amplitude scales a frame's spectrum by its window-weighted mean).

    Returns:
        float64 shape (1 + n_samples // 512,), >= 0.
    """
    from fmlib.audio.analysis import envelope_curve

    g = envelope_curve(envelope, level, n_samples=n_samples, note_off_s=note_off_s)
    w = _hann_1ms()
    half = w.size // 2
    padded = np.concatenate([np.zeros(half), g, np.zeros(half)])
    smooth = np.convolve(padded, w[::-1], mode="valid")  # smooth[j] ~ centre at j
    n_frames = 1 + n_samples // HOP_16K
    idx = np.minimum(np.arange(n_frames) * (HOP_16K // 16), smooth.size - 1)
    return smooth[idx] ** 2


def predicted_log_mel(gains: np.ndarray, mel_power: np.ndarray) -> np.ndarray:
    """``log1p(gain(t) * mel_power(f))``.

    Args:
        gains: shape (n_frames,).
        mel_power: shape (..., 128).

    Returns:
        shape (..., 128, n_frames), like :attr:`fmlib.audio.metrics.Features.log_mel`.
    """
    return np.log1p(mel_power[..., :, None] * gains[None, :])


# --------------------------------------------------------------------------- table

#: Samples per period of f0/2 in the table render: partials up to 1024 x f0/2.
_TABLE_PERIOD = 2048
#: Harmonics of f0/2 kept in the table (partials up to 128 x f0).
TABLE_HARMONICS = 256
#: Carrier multiples of f0 the table holds, with the ratios that keep every
#: partial on a multiple of f0/2.
CARRIER_MULTIPLES: tuple[float, ...] = (0.5, 1.0, 2.0)
_INTEGER_RATIOS = tuple(float(k) for k in range(1, 9))


def harmonic_ratios(carrier_multiple: float) -> tuple[float, ...]:
    """Discrete ratios whose modulators sit on multiples of f0/2 for a carrier at
    ``carrier_multiple * f0``."""
    return tuple(
        r
        for r in P.DISCRETE_RATIOS
        if abs(r * 2 * carrier_multiple - round(r * 2 * carrier_multiple)) < 1e-9
    )


@dataclass(frozen=True)
class HarmonicTable:
    """Line spectra of patches whose partials lie on multiples of f0/2.

    Attributes:
        carrier_multiple: shape (N,), carrier / f0.
        ratios: shape (N, 5).
        indices: shape (N, 5), rad.
        power: float32 shape (N, TABLE_HARMONICS + 1): power of the partial at
            ``h * f0 / 2`` for h = 0..256, for a unit-level carrier.
    """

    carrier_multiple: np.ndarray
    ratios: np.ndarray
    indices: np.ndarray
    power: np.ndarray

    def mel_power(self, f0_hz: float) -> np.ndarray:
        """Every entry's frame mel power at fundamental ``f0_hz``: float64 (N, 128).

        Partials above 24 kHz fold as the 48 kHz render folds them; the low-pass
        gain and the Hann window's main lobe (spread over its neighbouring bins) are
        applied before the mel bank. Coinciding partials add in power.
        """
        return self.power.astype(np.float64) @ _projection(float(f0_hz)).T


@lru_cache(maxsize=16)
def _projection(f0_hz: float) -> np.ndarray:
    """(128, TABLE_HARMONICS + 1) matrix from partial powers at h * f0 / 2 to mel
    power of one 16 kHz Hann frame."""
    h = np.arange(TABLE_HARMONICS + 1)
    f = (h * f0_hz / 2) % P.RENDER_SAMPLE_RATE
    f = np.where(f > P.RENDER_SAMPLE_RATE / 2, P.RENDER_SAMPLE_RATE - f, f)
    bin_hz = P.SAMPLE_RATE / FRAME_16K
    k = np.arange(FRAME_16K // 2 + 1)
    delta = k[None, :] - (f / bin_hz)[:, None]  # (H, 1025) in bins
    # |W(delta)| of a periodic Hann window of N samples, normalised to W(0) = N/2:
    # the Dirichlet-kernel form (exact for the periodic window).
    kernel = _hann_kernel(delta)
    lowpass = np.interp(f, k * bin_hz, _lowpass_gain(), right=0.0)
    amp2_to_bins = (0.5 * kernel * lowpass[:, None]) ** 2  # amplitude 1 -> |X_k|^2
    # A partial of power p has amplitude sqrt(2 p) (DC: amplitude sqrt(p)); the
    # table stores powers of a real signal's partials as a^2 / 2, DC as a^2.
    scale = np.where(h == 0, 1.0, 2.0)
    return _mel_basis_dense(_mel_sr()) @ (amp2_to_bins * scale[:, None]).T


def _hann_kernel(delta: np.ndarray) -> np.ndarray:
    """|DFT of the periodic Hann window of 2048 samples| at ``delta`` bins from a
    sinusoid (1024 at 0, so a unit-amplitude sine's bin is 0.5 * kernel = 512).

    The window is 0.5 - 0.5 cos, so its transform is three shifted Dirichlet
    kernels: D(d) * 0.5 - 0.25 * (D(d - 1) + D(d + 1)).
    """
    n = FRAME_16K

    def dirichlet(d):
        d = np.asarray(d, dtype=np.float64)
        out = np.empty_like(d)
        small = np.abs(np.sin(np.pi * d / n)) < 1e-12
        out[small] = n
        ds = d[~small]
        out[~small] = np.sin(np.pi * ds) / np.sin(np.pi * ds / n)
        return out

    # The linear phase of the three kernels is the same up to sign (e^{i pi d}
    # factors cancel for integer shifts), so the magnitudes combine with signs.
    kernel = 0.5 * dirichlet(delta) + 0.25 * (
        dirichlet(delta - 1) + dirichlet(delta + 1)
    )
    return np.abs(kernel)


def _table_patches(*, n_random: int, seed: int):
    """(carrier_multiple, ratios, indices) rows of the table: structured sparse
    patches (a sine; one modulator on a grid of ratios and indices) and random
    sparse patches, all harmonic-locked."""
    rng = np.random.default_rng(seed)
    rows = []
    index_grid = (0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.4, 2.0, 2.8, 4.0)
    for km in CARRIER_MULTIPLES:
        allowed = harmonic_ratios(km)
        rows.append((km, [1.0] * 5, [0.0] * 5))
        for r in allowed:
            for b in index_grid:
                rows.append((km, [r, 1.0, 1.0, 1.0, 1.0], [b, 0, 0, 0, 0]))
                rows.append((km, [1.0, 1.0, r, 1.0, 1.0], [0, 0, b, 0, 0]))
    weights = np.array([0.2, 0.6, 0.2])
    for _ in range(n_random):
        km = float(rng.choice(CARRIER_MULTIPLES, p=weights))
        allowed = np.array(harmonic_ratios(km))
        ratios = rng.choice(allowed, size=5)
        active = rng.random(5) < np.array([0.7, 0.4, 0.5, 0.35, 0.25])
        idx = np.exp(rng.uniform(np.log(0.05), np.log(5.0), size=5)) * active
        rows.append((km, ratios.tolist(), idx.tolist()))
    km = np.array([r[0] for r in rows])
    ratios = np.array([r[1] for r in rows], dtype=np.float64)
    indices = np.array([r[2] for r in rows], dtype=np.float64)
    return km, ratios, indices


@lru_cache(maxsize=2)
def harmonic_table(
    *, n_random: int = 4000, seed: int = 0, algorithm: str = "dx7_18"
) -> HarmonicTable:
    """Build (once per process) the table of harmonic line spectra.

    Each patch is rendered over exactly one period of f0/2 (2048 samples, every
    operator an integer number of cycles), so its DFT holds the partials at the
    multiples of f0/2 without leakage. About 1 s for the default 4,000 random
    entries plus 541 structured ones.
    """
    km, ratios, indices = _table_patches(n_random=n_random, seed=seed)
    alg = get_algorithm(algorithm)
    n = np.arange(_TABLE_PERIOD, dtype=np.float64) / _TABLE_PERIOD
    powers = []
    for lo in range(0, km.size, 256):
        sl = slice(lo, lo + 256)
        cycles = {CARRIER: 2 * km[sl]}
        gain = {CARRIER: np.ones(km[sl].size)}
        for i, name in enumerate(MODULATORS):
            cycles[name] = np.rint(ratios[sl, i] * 2 * km[sl] * 1e6) / 1e6
            gain[name] = indices[sl, i]
        out: dict[str, np.ndarray] = {}
        for op in alg.render_order():
            phase = 2 * np.pi * ((cycles[op][:, None] * n[None, :]) % 1.0)
            for src in alg.sources(op):
                phase += out[src]
            out[op] = gain[op][:, None] * np.sin(phase)
        spec = scipy.fft.rfft(out[CARRIER], axis=1) / _TABLE_PERIOD
        amp2 = np.abs(spec[:, : TABLE_HARMONICS + 1]) ** 2
        amp2[:, 1:] *= 2.0  # one-sided: a partial of amplitude a has power a^2 / 2
        powers.append(amp2.astype(np.float32))
    return HarmonicTable(km, ratios, indices, np.concatenate(powers))
