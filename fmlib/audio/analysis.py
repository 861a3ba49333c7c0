"""Analysis of a sound: input format, pitch (f0), RMS envelope and a fitted ADSR.

Everything an estimator measures from the audio alone, before it guesses a timbre:

* :func:`prepare_audio` brings any audio to the synthesizer's output format (mono,
  16 kHz, 4 s, starting at the note's onset), reporting every change.
* :func:`estimate_f0` measures the fundamental frequency, from MIDI 21 (27.5 Hz) up to
  4 kHz, in three steps:

  1. ``librosa.yin`` on every frame (2048 samples, hop 512: the metrics' framing),
     and the median over the frames within 25 dB of the loudest, in log frequency.
     YIN rather than pYIN: on the 110 dev notes both find the same pitch, but pYIN
     costs about 0.6 s a note and YIN 7 ms (``benchmarks/bench_match.py``
     compares them), and the match must stay under 1 s a note.
  2. Octave errors are settled on the long-term spectrum (:func:`_settle_octave`):
     among the octaves of the YIN value (and its third and fifth), the highest
     whose harmonics explain (nearly) as much of the power of the spectrum's main
     peaks as the best candidate wins. Then, from 500 Hz up, a twelfth or a
     seventeenth up (3 or 5 times the winner) is tried (:func:`_settle_twelfth`),
     since YIN's sub-harmonic errors are thirds and fifths of the pitch there.
  3. The value is refined to a fraction of a cent from the peaks of the harmonics
     in the spectrum of the whole note (0.24 Hz bins, parabolic interpolation of
     the log magnitude), weighted by their power: the re-synthesis's partials then
     land on the original's bins, which the whole-note FFT metric rewards.

* :func:`fit_envelope` fits the synthesizer's ADSR (note-off at 3 s) and a
  ``level`` to the note's RMS envelope, in the log domain with a floor (errors in
  the quiet tail below about -50 dBFS are inaudible and barely move the log-mel
  metric), by ``scipy.optimize.least_squares`` from several starting points, once
  for each envelope curve (linear, exponential), and keeps the better fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.fft
import scipy.optimize

from fmlib.errors import InputError
from fmlib.synth import params as P
from fmlib.synth.patch import Envelope

#: Samples of a note (4 s at 16 kHz).
N_SAMPLES = round(P.DURATION_S * P.SAMPLE_RATE)
#: Peak amplitude at or below which a signal counts as silent (-100 dBFS).
SILENCE_PEAK = 1e-5
#: Frame length and hop of the analysis, samples (the metrics' framing).
FRAME_LENGTH = 2048
HOP_LENGTH = 512
#: Range of the pitch tracker, Hz: below MIDI 21 (27.5 Hz) and above MIDI 107.
F0_MIN_HZ = 25.0
F0_MAX_HZ = 4200.0
#: Frames within this many dB of the loudest frame are "active" (used for pitch).
ACTIVE_DB = 25.0
#: Leading silence (:func:`leading_silence`): 1 ms blocks more than ONSET_DB below
#: the loudest block come before the onset; a silence shorter than ONSET_MIN_S is
#: kept (NSynth's notes start within 30 ms), and ONSET_MARGIN_S before the onset is
#: kept too, so that the attack's first samples stay.
ONSET_BLOCK = 16
ONSET_DB = 40.0
ONSET_MIN_S = 0.05
ONSET_MARGIN_S = 0.002
#: A DC offset (the signal's mean) at or above this level relative to the peak is
#: removed by :func:`prepare_note`: from about -40 dB on it makes the silent tail
#: look active to the pitch tracker (5 % of the peak moves f0 on a fifth of the dev
#: notes), and it holds the RMS envelope up after the note's release.
DC_OFFSET_DB = -60.0
#: Floor of the envelope fit, linear amplitude (-50 dBFS): differences below it
#: barely change log(1 + mel power) and are not audible at a normal listening level.
ENVELOPE_FLOOR = 10 ** (-50 / 20)
#: Resolution of the envelope model, samples (1 ms): the fitted curve is evaluated
#: at this step and box-averaged like ``librosa.feature.rms``.
_ENV_STEP = 16


# --------------------------------------------------------------------------- input


@dataclass(frozen=True)
class PreparedAudio:
    """Audio in the synthesizer's output format (:func:`prepare_note`).

    Attributes:
        x: float32 of shape (64000,), 16 kHz mono, from the note's onset.
        changes: One line per change made to the input (empty when none).
        onset: Samples at 16 kHz cut before the onset (0 when none): a rendering of
            the patch delayed by this many samples lines up with the input.
    """

    x: np.ndarray
    changes: list[str]
    onset: int = 0

    def align(self, y) -> np.ndarray:
        """``y`` (a rendering of the note, 16 kHz) delayed by :attr:`onset`
        samples, so that it lines up with the input: float32 (onset + len(y),)."""
        y = np.asarray(y, dtype=np.float32)
        return np.concatenate([np.zeros(self.onset, np.float32), y])


def prepare_audio(audio, sample_rate: int) -> tuple[np.ndarray, list[str]]:
    """``(x, changes)`` of :func:`prepare_note`."""
    prepared = prepare_note(audio, sample_rate)
    return prepared.x, prepared.changes


def prepare_note(audio, sample_rate: int) -> PreparedAudio:
    """Bring any audio to the synthesizer's output format.

    Steps, each reported in ``changes`` only when it changes something: mix the
    channels down to mono (their mean); resample to 16 kHz with
    :func:`fmlib.audio.resample.to_16k` (48 kHz through the synthesizer's own low-pass,
    other rates through ``scipy.signal.resample_poly`` with the exact rational
    factor 16000 / sample_rate); subtract a DC offset (the mean) when it is at least
    :data:`DC_OFFSET_DB` relative to the peak (a DC offset is inaudible and no patch
    can make one, but it misleads the pitch tracker and the envelope fit); cut the
    leading silence (:func:`leading_silence`:
    a patch's note starts when its key is pressed, so silence before the onset
    would be fitted as a slow attack); zero-pad or trim the end to 4 s (64,000
    samples). The level is left as it is.

    Args:
        audio: float array of shape (n,) or (n, channels), nominal range [-1, 1].
        sample_rate: Its sample rate, Hz (a positive integer).

    Returns:
        A :class:`PreparedAudio`: ``x`` float32 of shape (64000,), 16 kHz mono;
        ``changes`` one-line descriptions, empty when the input was already in the
        right format; ``onset`` the samples cut before the note.

    Raises:
        InputError: empty, non-finite or silent audio, or a bad sample rate.
    """
    from fmlib.audio.resample import to_16k

    x = np.asarray(audio, dtype=np.float64)
    if x.ndim not in (1, 2):
        raise InputError(f"audio: expected shape (n,) or (n, channels), got {x.shape}")
    if x.size == 0 or x.shape[0] == 0:
        raise InputError("audio: it is empty (0 samples)")
    if not np.all(np.isfinite(x)):
        raise InputError("audio: it contains NaN or infinite samples")
    if (
        isinstance(sample_rate, bool)
        or int(sample_rate) != sample_rate
        or sample_rate <= 0
    ):
        raise InputError(
            f"sample_rate: {sample_rate!r} is not valid; use a positive integer"
        )
    sample_rate = int(sample_rate)
    changes: list[str] = []
    if x.ndim == 2:
        if x.shape[1] > 1:
            changes.append(f"mixed {x.shape[1]} channels down to mono")
        x = x.mean(axis=1)
    if sample_rate != P.SAMPLE_RATE:
        x = to_16k(x, sample_rate)
        changes.append(f"resampled from {sample_rate} Hz to {P.SAMPLE_RATE} Hz")
    offset = float(np.mean(x))
    if abs(offset) >= np.max(np.abs(x)) * 10 ** (DC_OFFSET_DB / 20) > 0:
        x = x - offset
        changes.append(f"removed a DC offset of {offset:+.4f}")
    if np.max(np.abs(x)) <= SILENCE_PEAK:
        raise InputError(
            "audio: it is silent (peak <= -100 dBFS); give a sound to analyse"
        )
    start = leading_silence(x)
    if start:
        x = x[start:]
        changes.append(
            f"cut {start / P.SAMPLE_RATE:.3f} s of silence before the note's onset"
        )
    n = len(x)
    seconds = n / P.SAMPLE_RATE
    if n < N_SAMPLES:
        x = np.concatenate([x, np.zeros(N_SAMPLES - n)])
        changes.append(f"padded with silence from {seconds:.3f} s to 4 s")
    elif n > N_SAMPLES:
        x = x[:N_SAMPLES]
        changes.append(f"trimmed from {seconds:.3f} s to the first 4 s")
    return PreparedAudio(x.astype(np.float32), changes, start)


def leading_silence(x) -> int:
    """Samples of silence before a note's onset, to cut (0 when there is none).

    The onset is the first block of :data:`ONSET_BLOCK` samples (1 ms at 16 kHz)
    whose RMS is within :data:`ONSET_DB` dB of the loudest block's; the cut stops
    :data:`ONSET_MARGIN_S` before it, and a cut shorter than :data:`ONSET_MIN_S`
    is not made. Relative to the loudest block, so a quiet recording with its
    noise floor 40 dB or more below the note is cut as a loud one; a noisier one
    is left alone.

    Args:
        x: shape (n,), float, 16 kHz mono.

    Returns:
        A sample index in [0, n): where the note (with its margin) starts.
    """
    a = np.asarray(x, dtype=np.float64)
    n_blocks = a.size // ONSET_BLOCK
    if n_blocks == 0:
        return 0
    blocks = a[: n_blocks * ONSET_BLOCK].reshape(n_blocks, ONSET_BLOCK)
    rms = np.sqrt(np.mean(blocks**2, axis=1))
    onset = int(np.argmax(rms >= rms.max() * 10 ** (-ONSET_DB / 20)))
    start = onset * ONSET_BLOCK - round(ONSET_MARGIN_S * P.SAMPLE_RATE)
    return start if start >= round(ONSET_MIN_S * P.SAMPLE_RATE) else 0


def _as_note(x) -> np.ndarray:
    a = np.asarray(x, dtype=np.float32)
    if a.ndim != 1 or a.size < FRAME_LENGTH:
        raise InputError(
            f"audio: expected a mono 16 kHz signal of at least {FRAME_LENGTH} "
            f"samples, got shape {a.shape}"
        )
    if not np.all(np.isfinite(a)):
        raise InputError("audio: it contains NaN or infinite samples")
    if np.max(np.abs(a)) <= SILENCE_PEAK:
        raise InputError("audio: it is silent (peak <= -100 dBFS)")
    return a


def frame_rms(x) -> np.ndarray:
    """RMS of frames of 2048 samples every 512, centred with zero padding.

    The same numbers as ``librosa.feature.rms(y=x, frame_length=2048,
    hop_length=512, center=True)`` (:func:`fmlib.audio.metrics.rms_envelope`), computed
    from a cumulative sum (float64) so that the envelope fit can use the identical
    operator on its model curve.

    Args:
        x: shape (n,), float.

    Returns:
        float64 shape (1 + n // 512,), linear amplitude.
    """
    sq = np.asarray(x, dtype=np.float64) ** 2
    return np.sqrt(_box_mean(sq, step=1))


def _box_mean(values: np.ndarray, *, step: int) -> np.ndarray:
    """Mean of ``values`` (sampled every ``step`` samples of 16 kHz) over frames of
    2048 samples centred on samples ``0, 512, 1024, ...``, counting the signal as 0
    outside ``[0, n)``; one value per frame."""
    n = values.size * step
    n_frames = 1 + n // HOP_LENGTH
    c = np.concatenate([[0.0], np.cumsum(values, dtype=np.float64)])
    centres = np.arange(n_frames) * HOP_LENGTH
    lo = np.clip((centres - FRAME_LENGTH // 2) // step, 0, values.size)
    hi = np.clip((centres + FRAME_LENGTH // 2) // step, 0, values.size)
    return np.maximum(c[hi] - c[lo], 0.0) * step / FRAME_LENGTH


# --------------------------------------------------------------------------- pitch


@dataclass(frozen=True)
class Pitch:
    """Result of :func:`estimate_f0`.

    Attributes:
        f0_hz: Fundamental frequency, Hz, refined.
        confidence: Fraction of the active frames whose YIN estimate lies within
            50 cents of ``f0_hz`` (octave-folded), in [0, 1].
        inharmonicity_cents: Power-weighted mean deviation of the partials 2..10
            from exact multiples of ``f0_hz``, cents (mallets and bells are high).
    """

    f0_hz: float
    confidence: float
    inharmonicity_cents: float


def _spectrum(x: np.ndarray) -> tuple[np.ndarray, float]:
    """Magnitude spectrum of the Hann-windowed active part of ``x`` (zero padded to
    2**18 samples: 0.061 Hz bins), and the bin width in Hz."""
    rms = frame_rms(x)
    active = np.nonzero(rms >= rms.max() * 10 ** (-ACTIVE_DB / 20))[0]
    lo = max(0, active[0] * HOP_LENGTH - FRAME_LENGTH // 2)
    hi = min(x.size, active[-1] * HOP_LENGTH + FRAME_LENGTH // 2)
    seg = x[lo:hi].astype(np.float64)
    seg = seg * np.hanning(seg.size)
    n_fft = 1 << 18
    return np.abs(scipy.fft.rfft(seg, n=n_fft)), P.SAMPLE_RATE / n_fft


def _peak(mag: np.ndarray, bin_hz: float, f_hz: float, cents: float):
    """Largest magnitude within ``cents`` of ``f_hz``, and its interpolated
    frequency (parabola through the log magnitudes of the peak bin and its two
    neighbours). Returns (0.0, f_hz) beyond the spectrum."""
    lo = int(f_hz * 2 ** (-cents / 1200) / bin_hz)
    hi = int(math.ceil(f_hz * 2 ** (cents / 1200) / bin_hz)) + 1
    if lo < 1 or hi >= mag.size - 1:
        return 0.0, f_hz
    k = lo + int(np.argmax(mag[lo:hi]))
    a, b, c = np.log(mag[k - 1 : k + 2] + 1e-12)
    denom = a - 2 * b + c
    offset = 0.5 * (a - c) / denom if denom < 0 else 0.0
    return float(mag[k]), (k + float(np.clip(offset, -0.5, 0.5))) * bin_hz


def _spectral_peaks(mag: np.ndarray, bin_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """Frequencies (Hz) and powers of the local maxima of ``mag`` below 7.6 kHz
    within 40 dB of the largest, at most the 40 strongest."""
    top = int(7600 / bin_hz)
    m = mag[1:top]
    is_peak = (m[1:-1] > m[:-2]) & (m[1:-1] >= m[2:])
    idx = np.nonzero(is_peak)[0] + 2
    idx = idx[mag[idx] >= mag[idx].max() * 10 ** (-40 / 20)]
    idx = idx[np.argsort(mag[idx])[::-1][:40]]
    return idx * bin_hz, mag[idx].astype(np.float64) ** 2


def _explained(freqs, power, f0: float, *, max_multiple: int, cents: float) -> float:
    """Fraction of ``power`` at peaks within ``cents`` of a multiple 1..max_multiple
    of ``f0``."""
    k = np.maximum(np.rint(freqs / f0), 1)
    near = np.abs(1200 * np.log2(freqs / (k * f0))) <= cents
    return float(power[near & (k <= max_multiple)].sum() / power.sum())


def _settle_octave(mag: np.ndarray, bin_hz: float, f0: float) -> float:
    """Settle octave (and fifth) errors of a tracker's estimate ``f0``.

    Candidates are ``f0`` times 1/8 .. 4 in octaves, 1/3 and 1/5. Each is scored by
    the fraction of the power of the spectrum's main peaks that lies within 30 cents
    of its first 12 multiples; the result is the highest candidate within 0.05 of
    the best score. Taking the highest avoids the sub-octaves, which explain
    everything their octave does.
    """
    freqs, power = _spectral_peaks(mag, bin_hz)
    if power.size == 0 or power.sum() == 0:
        return f0
    cands = sorted(
        {f0 * 2.0**j for j in range(-3, 3)} | {f0 / 3, f0 / 5},
        reverse=True,
    )
    cands = [c for c in cands if F0_MIN_HZ <= c <= F0_MAX_HZ]
    scores = [_explained(freqs, power, c, max_multiple=12, cents=30.0) for c in cands]
    best = max(scores)
    return next(c for c, s in zip(cands, scores, strict=True) if s >= best - 0.05)


#: Lowest pitch, Hz, at which :func:`_settle_twelfth` tries 3 and 5 times the
#: octave-settled value (a period of 32 samples at 16 kHz).
TWELFTH_MIN_HZ = 500.0
#: Power share a candidate 3 or 5 times higher may leave unexplained and still win.
TWELFTH_MARGIN = 0.01


def _settle_twelfth(mag: np.ndarray, bin_hz: float, f0: float) -> float:
    """3 or 5 times ``f0`` when that pitch lies in [:data:`TWELFTH_MIN_HZ`,
    :data:`F0_MAX_HZ`] and, on the peaks up to ``f0``'s 12th harmonic (the ones
    ``f0`` is scored on), its harmonics explain all but :data:`TWELFTH_MARGIN` of
    the power that ``f0``'s explain; else ``f0``.

    Why: on high notes YIN's integer lags of a period of a few samples miss the
    period, and it returns f0/3 or f0/5, whose octaves never reach f0. Measured
    before this step: harmonic tones with random spectral slopes read f0/3 at
    MIDI 92 and 96 (1 in 6 of each); fmlib's own notes from 659 Hz up (the
    cases of tests/test_analysis.py that failed before); 4 of 275 FluidR3
    notes over MIDI 24-96 (brass, organ and reed at MIDI 78 and 96), all fixed by
    this step, with no other FluidR3, SoundFont-set or dev note moved from within
    50 cents of its label (two mallets already read a twelfth or more off moved
    further: inharmonic partials).
    Below 500 Hz the step would re-read real notes with sub-harmonic content (a
    synth lead of the dev notes read at 65 Hz would move to 196 Hz). The margin is
    strict (0.01 against the octave check's 0.05): a twelfth explains a third of
    the harmonics, so it must explain nearly everything to win. The band is
    ``f0``'s own: scored on all the peaks, a twelfth would also gain the harmonics
    above ``f0``'s 12th.
    """
    freqs, power = _spectral_peaks(mag, bin_hz)
    band = freqs <= 12.5 * f0
    if power[band].sum() <= 0:
        return f0
    fb, pb = freqs[band], power[band]
    base = _explained(fb, pb, f0, max_multiple=12, cents=30.0)
    wins = [
        c
        for c in (3 * f0, 5 * f0)
        if TWELFTH_MIN_HZ <= c <= F0_MAX_HZ
        and _explained(fb, pb, c, max_multiple=12, cents=30.0) >= base - TWELFTH_MARGIN
    ]
    return max(wins, default=f0)


#: Pitch, Hz, from which the refinement searches the harmonics' peaks within
#: :data:`REFINE_CENTS_HIGH` of the estimate instead of 30 cents: with a period of
#: 4-8 samples YIN's interpolated lag is up to 52 cents off (measured on fmlib's
#: own notes at MIDI 106-107), and there only the first 1-3 harmonics lie below
#: 8 kHz, an octave or more apart.
REFINE_HIGH_HZ = 2000.0
REFINE_CENTS_HIGH = 80.0


def _yin_log2(a: np.ndarray) -> np.ndarray:
    """Step 1 of :func:`estimate_f0`: ``log2`` of ``librosa.yin``'s f0 (Hz) on the
    frames within :data:`ACTIVE_DB` of the loudest; ``a`` as from :func:`_as_note`."""
    import librosa

    rms = frame_rms(a)
    active = rms >= rms.max() * 10 ** (-ACTIVE_DB / 20)
    track = librosa.yin(
        a,
        fmin=F0_MIN_HZ,
        fmax=F0_MAX_HZ,
        sr=P.SAMPLE_RATE,
        frame_length=FRAME_LENGTH,
        hop_length=HOP_LENGTH,
        center=True,
    )[: rms.size]
    return np.log2(track[active[: track.size]])


def estimate_f0(x, *, n_harmonics: int = 10) -> Pitch:
    """Fundamental frequency of a note (see the module docstring for the method).

    Args:
        x: Mono 16 kHz signal, shape (n,) with n >= 2048, float, not silent.
        n_harmonics: Harmonics used by the octave checks and the refinement.

    Returns:
        A :class:`Pitch`; ``f0_hz`` lies in [25, 4200] Hz.
    """
    a = _as_note(x)
    logs = _yin_log2(a)
    f0 = float(2 ** np.median(logs))
    mag, bin_hz = _spectrum(a)
    f0 = _settle_twelfth(mag, bin_hz, _settle_octave(mag, bin_hz, f0))
    k = np.arange(1, n_harmonics + 1)
    # Refinement from the harmonics' peaks, power-weighted.
    window = REFINE_CENTS_HIGH if f0 >= REFINE_HIGH_HZ else 30.0
    peaks = [(m, *_peak(mag, bin_hz, m * f0, window)) for m in k]
    peaks = [(m, amp, f) for m, amp, f in peaks if amp > 0]
    strongest = max(amp for _, amp, _ in peaks) if peaks else 0.0
    used = [(m, amp, f) for m, amp, f in peaks if amp >= strongest * 10 ** (-30 / 20)]
    if used:
        w = np.array([amp**2 for _, amp, _ in used])
        est = np.array([f / m for m, _, f in used])
        f0 = float(np.sum(w * est) / np.sum(w))
    dev = [(amp**2, abs(1200 * math.log2(f / (m * f0)))) for m, amp, f in used if m > 1]
    inharm = float(sum(w * d for w, d in dev) / sum(w for w, _ in dev)) if dev else 0.0
    folded = np.abs(((logs - math.log2(f0)) * 1200 + 600) % 1200 - 600)
    confidence = float(np.mean(folded <= 50.0)) if logs.size else 0.0
    return Pitch(float(np.clip(f0, F0_MIN_HZ, F0_MAX_HZ)), confidence, inharm)


# --------------------------------------------------------------------------- envelope


def _adsr_curve(
    attack_s,
    decay_s,
    sustain,
    release_s,
    level,
    *,
    n: int,
    note_off_s: float,
    curve: str = P.DEFAULT_ENVELOPE_CURVE,
) -> np.ndarray:
    """level x ADSR every :data:`_ENV_STEP` samples (same corners as
    :func:`fmlib.synth.engine.envelope_breakpoints`), float64 shape (n //
    _ENV_STEP,)."""
    from fmlib.synth.engine import envelope_breakpoints, envelope_levels

    env = Envelope(attack_s, decay_s, sustain, release_s, curve)
    t = (np.arange(n // _ENV_STEP) * _ENV_STEP + _ENV_STEP / 2) / P.SAMPLE_RATE
    # The linear curve keeps its original interpolation (below), so linear fits and
    # the patches matched with them stay bit-identical to before curves existed.
    if curve != "linear":
        return level * envelope_levels(env, t, note_off_s=note_off_s)
    pts = envelope_breakpoints(env, note_off_s=note_off_s)
    times = np.array([p[0] for p in pts])
    levels = np.array([p[1] for p in pts])
    # Zero-length segments are steps: nudge equal times apart for np.interp.
    times = times + np.arange(times.size) * 1e-9
    curve = np.interp(t, times, levels, right=0.0)
    return level * curve


def envelope_curve(
    envelope: Envelope,
    level: float,
    *,
    n_samples: int = N_SAMPLES,
    note_off_s: float = P.NOTE_OFF_S,
) -> np.ndarray:
    """The carrier's gain ``level * adsr(t)`` sampled every :data:`_ENV_STEP` samples
    of 16 kHz audio (at each step's centre), for the envelope's curve.

    Returns:
        float64 shape (n_samples // _ENV_STEP,), >= 0, linear amplitude.
    """
    return _adsr_curve(
        envelope.attack_s,
        envelope.decay_s,
        envelope.sustain,
        envelope.release_s,
        level,
        n=n_samples,
        note_off_s=note_off_s,
        curve=envelope.curve,
    )


def envelope_frame_rms(
    envelope: Envelope,
    level: float,
    *,
    n_samples: int = N_SAMPLES,
    note_off_s: float = P.NOTE_OFF_S,
) -> np.ndarray:
    """RMS per analysis frame of a phase-modulated note with this envelope and level.

    A PM carrier has constant amplitude, so a note ``level * adsr(t) * sin(...)`` has
    frame RMS ``sqrt(mean(level**2 * adsr**2)) / sqrt(2)`` over each frame (minus
    what the 8 kHz low-pass removes), whatever its timbre.

    Returns:
        float64 shape (1 + n_samples // 512,), linear amplitude.
    """
    curve = envelope_curve(envelope, level, n_samples=n_samples, note_off_s=note_off_s)
    return np.sqrt(_box_mean(curve**2 / 2.0, step=_ENV_STEP))


#: Bounds of the fitted envelope (attack, decay, sustain, release, level). Decay may
#: run past note-off (a note still decaying when released); times stay within the
#: renderer's valid range. The exponential release ends at -96 dB, so it gets the
#: decay's longer bound: a slow tail (-20 dB a second) is then still in range.
_ENV_LOW = np.array([0.0, 0.001, 0.0, 0.001, 1e-4])
_ENV_HIGH = np.array([3.0, 20.0, 1.0, 4.0, P.LEVEL.valid_high])
_ENV_HIGH_EXPONENTIAL = np.array([3.0, 20.0, 1.0, 20.0, P.LEVEL.valid_high])


def envelope_bounds(curve: str) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds of a fitted (attack_s, decay_s, sustain, release_s,
    level) for ``curve``: float64 shape (5,) each."""
    high = _ENV_HIGH if curve == "linear" else _ENV_HIGH_EXPONENTIAL
    return _ENV_LOW, high


@dataclass(frozen=True)
class EnvelopeFit:
    """One curve's fit of :func:`fit_envelopes`.

    Attributes:
        envelope: The fitted envelope (its ``curve`` says which).
        level: The carrier's output level, linear gain.
        cost: Half the sum of squared log residuals (the fit's objective).
    """

    envelope: Envelope
    level: float
    cost: float


def fit_envelopes(
    rms,
    *,
    n_samples: int = N_SAMPLES,
    note_off_s: float = P.NOTE_OFF_S,
    floor: float = ENVELOPE_FLOOR,
    curves: tuple[str, ...] = P.ENVELOPE_CURVES,
) -> tuple[EnvelopeFit, ...]:
    """Fit an ADSR and a level to a note's frame RMS, once for each curve.

    For each curve, minimises ``sum_t (log(floor + m_t) - log(floor + rms_t))**2``
    where ``m_t`` is :func:`envelope_frame_rms` of the candidate, by
    ``scipy.optimize.least_squares`` (trust region reflective, bounded) from three
    starting points derived from the curve (peak time, level at note-off, release
    time); the best start wins. The exponential curve's starts stretch the
    release (and one decay) about 4.8 times, the time it takes to fall 96 dB
    instead of 20.

    Args:
        rms: Frame RMS of the note, shape (1 + n_samples // 512,), linear.
        n_samples: Length of the note, samples at 16 kHz.
        note_off_s: Note-off time of the model, s (NSynth: 3 s).
        floor: Amplitude floor of the log, linear (default -50 dBFS).
        curves: The curves to fit, names of :data:`fmlib.synth.params.ENVELOPE_CURVES`.

    Returns:
        One :class:`EnvelopeFit` per curve, in the order of ``curves``.
    """
    y = np.asarray(rms, dtype=np.float64)
    if y.ndim != 1 or y.size != 1 + n_samples // HOP_LENGTH:
        raise InputError(
            f"rms: expected shape ({1 + n_samples // HOP_LENGTH},), got {y.shape}"
        )
    target = np.log(floor + y)
    t = np.arange(y.size) * HOP_LENGTH / P.SAMPLE_RATE
    peak_i = int(np.argmax(y))
    peak = float(y[peak_i]) * math.sqrt(2)
    off_i = min(y.size - 1, int(round(note_off_s * P.SAMPLE_RATE / HOP_LENGTH)))
    at_off = float(y[max(off_i - 1, 0)]) * math.sqrt(2)
    tail = np.nonzero((t > note_off_s) & (y * math.sqrt(2) < 0.1 * max(at_off, 1e-9)))
    release0 = float(t[tail[0][0]] - note_off_s) if tail[0].size else 0.5
    attack0 = float(t[peak_i])
    sustain0 = float(np.clip(at_off / max(peak, 1e-9), 0.0, 1.0))

    fits = []
    for curve in curves:
        if curve not in P.ENVELOPE_CURVES:
            raise InputError(
                f"curves: {curve!r} is not valid; valid: "
                + ", ".join(repr(c) for c in P.ENVELOPE_CURVES)
            )

        def residual(v: np.ndarray, curve=curve) -> np.ndarray:
            env = Envelope(*v[:4], curve)
            m = envelope_frame_rms(
                env, v[4], n_samples=n_samples, note_off_s=note_off_s
            )
            return np.log(floor + m) - target

        if curve == "linear":
            starts = [
                [attack0, 0.3, sustain0, release0, peak],
                [attack0, 2.0, 0.0, release0, peak],
                [min(attack0, 0.01), 0.05, sustain0, 0.1, peak],
            ]
        else:  # -96 dB instead of -20 dB: about 4.8 times longer
            stretch = P.EXPONENTIAL_FLOOR_DB / -20.0
            starts = [
                [attack0, 0.3, sustain0, stretch * release0, peak],
                [attack0, 2.0 * stretch, 0.0, stretch * release0, peak],
                [min(attack0, 0.01), 0.05, sustain0, 0.1 * stretch, peak],
            ]
        low, high = envelope_bounds(curve)
        best = None
        for x0 in starts:
            x0 = np.clip(np.array(x0, dtype=np.float64), low, high)
            x0 = np.minimum(np.maximum(x0, low + 1e-6), high - 1e-6)
            res = scipy.optimize.least_squares(
                residual, x0, bounds=(low, high), x_scale="jac", max_nfev=200
            )
            if best is None or res.cost < best.cost:
                best = res
        v = best.x
        env = Envelope(float(v[0]), float(v[1]), float(v[2]), float(v[3]), curve)
        fits.append(EnvelopeFit(env, float(v[4]), float(best.cost)))
    return tuple(fits)


def best_fit(fits: tuple[EnvelopeFit, ...]) -> EnvelopeFit:
    """The fit of lowest cost; the first one (linear) on a tie."""
    return min(fits, key=lambda f: f.cost)


def fit_envelope(
    rms,
    *,
    n_samples: int = N_SAMPLES,
    note_off_s: float = P.NOTE_OFF_S,
    floor: float = ENVELOPE_FLOOR,
    curves: tuple[str, ...] = P.ENVELOPE_CURVES,
) -> tuple[Envelope, float]:
    """Fit an ADSR and a level to a note's frame RMS: the better of the curves'
    fits (see :func:`fit_envelopes` for the method and the arguments).

    Returns:
        (envelope, level): the fitted :class:`~fmlib.synth.patch.Envelope` (its
        ``curve`` set) and the carrier's output level.
    """
    fit = best_fit(
        fit_envelopes(
            rms, n_samples=n_samples, note_off_s=note_off_s, floor=floor, curves=curves
        )
    )
    return fit.envelope, fit.level


# --------------------------------------------------------------------------- all


@dataclass(frozen=True)
class Analysis:
    """What :func:`analyze` measures of one note.

    Attributes:
        pitch: The :class:`Pitch` (``pitch.f0_hz`` in Hz).
        rms: Frame RMS, float64 shape (126,) for 4 s, linear.
        envelope: Fitted ADSR (note-off at 3 s), the better curve.
        level: Fitted carrier output level (linear gain).
        fits: Every curve's :class:`EnvelopeFit`, in
            :data:`fmlib.synth.params.ENVELOPE_CURVES` order.
    """

    pitch: Pitch
    rms: np.ndarray
    envelope: Envelope
    level: float
    fits: tuple[EnvelopeFit, ...] = ()

    @property
    def f0_hz(self) -> float:
        return self.pitch.f0_hz


def analyze(x, *, note_off_s: float = P.NOTE_OFF_S) -> Analysis:
    """Pitch, RMS envelope and fitted ADSR of a 16 kHz mono note.

    Args:
        x: shape (n,), float, 16 kHz (see :func:`prepare_audio`), not silent.
        note_off_s: Note-off time of the fitted ADSR, s.

    Returns:
        An :class:`Analysis`.
    """
    a = _as_note(x)
    rms = frame_rms(a)
    fits = fit_envelopes(rms, n_samples=a.size, note_off_s=note_off_s)
    best = best_fit(fits)
    return Analysis(estimate_f0(a), rms, best.envelope, best.level, fits)
