"""The 6-operator FM synthesizer: operators, ADSR envelope, anti-aliased downsampling.

Signal path for one note (paper, section 5.1.1):

1. Every operator is a sine at 48 kHz. A modulator runs at ``ratio x carrier_hz``;
   its output times its index (radians) is added to the *phase* of its target
   (phase modulation, as in the DX7). Parallel modulations are summed. The graph
   comes from :mod:`fmlib.synth.algorithms`.
2. The carrier (amplitude 1.0) is multiplied by one ADSR envelope (linear, or
   exponential: decay and release straight lines in dB) and by the
   patch's ``level`` (1.0 unless the patch says otherwise: then nothing is multiplied,
   so such notes are bit-identical to notes rendered before ``level`` existed).
3. The 48 kHz signal is low-passed and decimated by 3 to 16 kHz.

Accuracy and speed (see ``benchmarks/bench_synth.py``; per-note costs below are CPU
times on a shared 2-core machine):

* **Phase split.** The carrier phase of a 6 kHz tone reaches 1.5e5 rad after 4 s,
  where a float32 phase has an error of 0.01 rad, and a float64 sine costs about
  9x a float32 one. So the sample index is split as ``n = a*B + b``
  (B = 1024): ``2*pi*frac(f*n/sr)`` equals ``2*pi*frac(f*a*B/sr) +
  2*pi*frac(f*b/sr)`` modulo 2*pi. Both short tables are computed in float64, and
  only their broadcast sum, a number in [0, 4*pi), is formed in float32 (error
  below 1e-6 rad), so the sine itself runs in float32. SNR against the float64
  reference: 136 dB for a 6 kHz sine, over 100 dB for random patches.
* **Unmodulated operators cost no sine.** An operator nothing modulates (M1, M2,
  M5 of ``dx7_18``) is ``sin(p_a + q_b) = sin(p_a) cos(q_b) + cos(p_a) sin(q_b)``
  over (block a, sample b): a rank-2 matrix built from float64 tables. Its target's
  phase (its own split phase plus those sines times their indices) is one small
  float32 matrix product, so ``dx7_18`` needs 3 float32 sines per sample, not 6.
* **Cache-sized chunks.** The operators are computed 32 blocks at a time, so every
  intermediate array stays in the CPU's L2 cache instead of streaming 768 kB
  arrays through memory (about 3x faster than whole-note arrays).
* **Silent tail skipped.** After ``note_off_s + release_s`` the envelope is 0, so
  no operator is computed there (the output is exactly 0 either way).
* **Polyphase FFTs.** The low-pass is a zero-padded FFT filter computed as four
  short FFTs each way (pocketfft vectorises a batch of rows): see
  :func:`downsample`. Together: about 0.6 ms for the operators and envelope and
  0.6 ms for the downsampling of a 4 s note.

Why one module of over 600 lines: the renderer's speed comes from a few tightly
coupled tricks (phase split, rank-2 unmodulated operators, blocked einsum, the
polyphase low-pass) that share block sizes and dtypes; they are one job.
"""

from __future__ import annotations

import math
import threading
from functools import lru_cache

import numpy as np
import scipy.fft

from fmlib.errors import InputError
from fmlib.synth import params as P
from fmlib.synth.algorithms import CARRIER, MODULATORS, get_algorithm
from fmlib.synth.patch import Envelope, Patch, patch_from_dict

#: Decimation factor from the render rate to the output rate.
DOWNSAMPLE = P.RENDER_SAMPLE_RATE // P.SAMPLE_RATE
#: Anti-aliasing filter: flat to PASSBAND_HZ, raised-cosine to zero at STOPBAND_HZ,
#: zero above. STOPBAND_HZ is the output Nyquist frequency, so nothing above it
#: survives to alias; the 400 Hz transition keeps the filter's impulse response short
#: (-80 dB after 5 ms, -115 dB after 20 ms: no audible ringing) while passing every
#: carrier (<= 6 kHz).
PASSBAND_HZ = 7_600.0
STOPBAND_HZ = P.SAMPLE_RATE / 2
#: Zero padding appended before filtering, in 16 kHz samples (20 ms, where the
#: filter's impulse response is below -115 dB), so the filter acts as a linear, not
#: circular, convolution: the end of a note does not leak into its start.
MIN_PAD = 320
#: Phase table block length (see the module docstring).
_BLOCK = 1024
#: Blocks per chunk: 32 x 1024 float32 = 128 kB per operator buffer, so the buffers
#: of the modulated modulators and the carrier's chunk fit in a 1 MB L2 cache.
_CHUNK_BLOCKS = 32
#: Longest note the renderer accepts, s.
MAX_DURATION_S = 60.0


class _Scratch(threading.local):
    """Per-thread scratch arrays, reused from note to note.

    Allocating and freeing several megabytes per note costs more than the arithmetic:
    glibc hands large freed blocks back to the OS, and touching fresh ones
    page-faults (measured in a plain render loop: 1,200 page faults and 3.0 ms CPU
    per note, against 1.2 ms with reuse). Only single notes use it, never batches,
    so it holds a few MB per thread.
    """

    def get(self, name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
        """An uninitialised array of ``shape`` and ``dtype``, reused by ``name``."""
        size = math.prod(shape)
        buf = getattr(self, name, None)
        if buf is None or buf.dtype != dtype or buf.size < size:
            buf = np.empty(size, dtype=dtype)
            setattr(self, name, buf)
        return buf[:size].reshape(shape)

    def indices(self, count: int) -> np.ndarray:
        """float64 ``[0, 1, ..., count - 1]`` (read-only, shared)."""
        table = getattr(self, "_indices", None)
        if table is None or table.size < count:
            table = np.arange(max(count, 1 << 16), dtype=np.float64)
            table.flags.writeable = False
            self._indices = table
        return table[:count]


_SCRATCH = _Scratch()


def _small_matmul(left: np.ndarray, right: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out = left @ right`` for a small inner dimension, in a fixed order.

    BLAS changes its summation order with the number of threads and the CPU kernel,
    which changes the last bit of float32 results, and a note must not depend on how
    many threads happened to be available. NumPy's own ``einsum`` (with
    ``optimize=False`` it never calls BLAS) sums the inner dimension in order in one
    thread: bit-identical to adding the outer products one by one, and about 3x
    slower than BLAS on these shapes (the inner dimension is 2 to 6 here), which
    costs about 0.15 ms per note.

    Args:
        left: shape (r, k).
        right: shape (k, c) or (..., k, c).
        out: shape (r, c) or (..., r, c), overwritten.
    """
    return np.einsum("rk,...kc->...rc", left, right, out=out, optimize=False)


def _check_timing(duration_s: float, note_off_s: float) -> int:
    """Validate the note's timing; return the number of 48 kHz samples."""
    for name, value in (("duration_s", duration_s), ("note_off_s", note_off_s)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
            raise InputError(f"{name}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise InputError(
                f"{name}: {value!r} is not valid; use a finite number of seconds"
            )
    if not 0 < duration_s <= MAX_DURATION_S:
        raise InputError(
            f"duration_s: {duration_s!r} is not valid; "
            f"valid: > 0 and <= {MAX_DURATION_S:g} s"
        )
    if note_off_s < 0:
        raise InputError(f"note_off_s: {note_off_s!r} is not valid; valid: >= 0 s")
    n_out = round(duration_s * P.SAMPLE_RATE)
    if n_out < 2:
        raise InputError(
            f"duration_s: {duration_s!r} is too short; valid: >= 2 output samples"
        )
    return n_out * DOWNSAMPLE


def envelope_breakpoints(
    envelope: Envelope, *, note_off_s: float
) -> list[tuple[float, float]]:
    """Corners ``(time_s, level)`` of the ADSR curve, in time order.

    The curve rises 0 -> 1 over ``attack_s``, falls to ``sustain`` over ``decay_s``,
    holds until ``note_off_s``, then falls from whatever level it has at note-off to
    0 over ``release_s``; it is 0 after the last corner. A note-off during the
    attack or decay releases from there. Two corners may share a time (a zero-length
    segment): the level then steps to the later corner's level.

    Between two corners the level is a straight line in amplitude, except, for the
    ``"exponential"`` curve (:data:`fmlib.synth.params.ENVELOPE_CURVES`), between two
    corners whose levels are both above 0: there it is a straight line in dB (see
    :func:`segment_is_exponential`). The exponential curve's decay to a sustain at or
    below :data:`fmlib.synth.params.EXPONENTIAL_FLOOR` ends at the floor and steps
    to 0, and its release ends at the floor and steps to 0 at ``note_off_s +
    release_s`` (two corners at that time); a release from a level at or below the
    floor is a straight line in amplitude to 0.
    """
    a, d, s, r = (
        envelope.attack_s,
        envelope.decay_s,
        envelope.sustain,
        envelope.release_s,
    )
    exponential = envelope.curve == "exponential"
    floor = P.EXPONENTIAL_FLOOR
    # The decay's last level (the floor for a silent exponential sustain) and the
    # level held after it.
    decay_end, held = (floor, 0.0) if exponential and s <= floor else (s, s)

    def level(t: float) -> float:  # the envelope before any note-off
        if t < a:
            return t / a
        if t < a + d:
            if exponential:
                return decay_end ** ((t - a) / d)
            return 1.0 - (1.0 - s) * (t - a) / d
        return held

    points = [(0.0, 0.0 if a > 0 else 1.0)]
    corners = [(a, 1.0), (a + d, decay_end)]
    if held != decay_end:  # an exponential decay to silence steps to 0
        corners.append((a + d, held))
    for t, v in corners:
        if t < note_off_s:
            points.append((t, v))
    at_off = level(note_off_s)
    points.append((note_off_s, at_off))
    if exponential and at_off > floor:
        points.append((note_off_s + r, floor))
    return points + [(note_off_s + r, 0.0)]


def segment_is_exponential(curve: str, v0: float, v1: float) -> bool:
    """Whether the segment between corner levels ``v0`` and ``v1`` of
    :func:`envelope_breakpoints` is a straight line in dB (else in amplitude): for
    the exponential curve, when both levels are above 0 and differ."""
    return curve == "exponential" and v0 > 0.0 and v1 > 0.0 and v0 != v1


def _apply_envelope(
    y: np.ndarray,
    points: list[tuple[float, float]],
    *,
    sample_rate: int,
    curve: str = P.DEFAULT_ENVELOPE_CURVE,
) -> None:
    """Multiply ``y`` (float32, sample ``n`` at time ``n / sample_rate``) in place by
    the curve through ``points`` (0 after the last one); ``curve`` says which
    segments are straight lines in dB (:func:`segment_is_exponential`).

    Sample ``n`` belongs to the segment ``[t0, t1)`` holding ``n / sample_rate``, so
    every corner lands on the first sample at or after its time. Flat segments are a
    scalar multiply; only the sloped ones (attack, decay, release) need a ramp.
    """
    n = y.shape[-1]

    def first_sample(t: float) -> int:
        return min(n, math.ceil(t * sample_rate))

    for (t0, v0), (t1, v1) in zip(points[:-1], points[1:], strict=True):
        i0, i1 = first_sample(t0), first_sample(t1)
        if i1 <= i0:
            continue
        if v0 == v1:
            y[..., i0:i1] *= np.float32(v0)
            continue
        # Position of sample i in samples from t0: offsets kept small for float64
        # accuracy, then one float32 multiply.
        ramp = _SCRATCH.get("ramp", (i1 - i0,), np.float64)
        np.add(_SCRATCH.indices(i1 - i0), i0 - t0 * sample_rate, out=ramp)
        if segment_is_exponential(curve, v0, v1):
            # v0 * (v1 / v0) ** (position / length), as exp of a line in log level
            ramp *= math.log(v1 / v0) / ((t1 - t0) * sample_rate)
            np.exp(ramp, out=ramp)
            ramp *= v0
        else:
            ramp *= (v1 - v0) / ((t1 - t0) * sample_rate)
            ramp += v0
        y[..., i0:i1] *= ramp
    y[..., first_sample(points[-1][0]) :] *= np.float32(points[-1][1])


def adsr_envelope(
    envelope: Envelope, n_samples: int, *, sample_rate: int, note_off_s: float
) -> np.ndarray:
    """ADSR envelope, linear or exponential as ``envelope.curve`` says (see
    :func:`envelope_breakpoints` for its shape).

    Args:
        envelope: The ADSR settings (seconds, a level in [0, 1] and a curve).
        n_samples: Length of the output.
        sample_rate: Samples per second, Hz.
        note_off_s: Note-off time, s (may lie beyond the end: no release).

    Returns:
        float32 array of shape (n_samples,), values in [0, 1]; sample ``n`` is the
        envelope at time ``n / sample_rate``.
    """
    env = np.ones(n_samples, dtype=np.float32)
    points = envelope_breakpoints(envelope, note_off_s=note_off_s)
    _apply_envelope(env, points, sample_rate=sample_rate, curve=envelope.curve)
    return env


def envelope_levels(
    envelope: Envelope, t: np.ndarray, *, note_off_s: float
) -> np.ndarray:
    """The envelope at times ``t``, float64, evaluated segment by segment (an
    implementation independent of :func:`_apply_envelope`; for the reference
    render, the analysis and tests).

    Args:
        envelope: The ADSR settings.
        t: float64 shape (n,), seconds, ascending.
        note_off_s: Note-off time, s.

    Returns:
        float64 shape (n,), in [0, 1]. A time on a corner takes the later segment's
        value, as :func:`_apply_envelope` does.
    """
    points = envelope_breakpoints(envelope, note_off_s=note_off_s)
    t = np.asarray(t, dtype=np.float64)
    env = np.zeros(t.shape)
    for (t0, v0), (t1, v1) in zip(points[:-1], points[1:], strict=True):
        i0, i1 = np.searchsorted(t, [t0, t1], side="left")
        if i1 <= i0:
            continue
        part = t[i0:i1]
        if segment_is_exponential(envelope.curve, v0, v1):
            env[i0:i1] = v0 * (v1 / v0) ** ((part - t0) / (t1 - t0))
        else:
            env[i0:i1] = np.interp(part, [t0, t1], [v0, v1])
    env[np.searchsorted(t, points[-1][0], side="left") :] = points[-1][1]
    return env


def _silent_after(envelope: Envelope, *, note_off_s: float, sample_rate: int) -> int:
    """First sample index from which the envelope is 0 for good."""
    return math.ceil((note_off_s + envelope.release_s) * sample_rate)


#: Polyphase branches of the forward FFT in :func:`downsample`. pocketfft vectorises
#: a batch of transforms across rows; four rows of a quarter length each run about
#: three times faster than one long transform (measured: 0.25 ms vs 0.73 ms for
#: 196,608 float32 samples).
_BRANCHES = 4


@lru_cache(maxsize=8)
def _fft_size(n_out: int) -> int:
    """Padded output length for :func:`downsample`: at least ``n_out + MIN_PAD`` and a
    multiple of 8 (so the 48 kHz length splits into :data:`_BRANCHES` even-length
    branches); a power of two (pocketfft's fastest) unless a 2-3-5-smooth size is
    more than 10% shorter."""
    need = n_out + MIN_PAD
    pow2 = 1 << (need - 1).bit_length()
    smooth = 8 * scipy.fft.next_fast_len(-(-need // 8), real=True)
    return pow2 if pow2 <= 1.1 * smooth else smooth


@lru_cache(maxsize=8)
def _polyphase_weights(m: int, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """Weights combining the branch spectra in :func:`downsample`, padded output
    length ``m``, complex ``dtype``.

    At output bin ``f`` branch ``k`` gets ``H(f) * exp(-2j*pi*f*k / (3*m)) / 3``,
    where ``H`` is the low-pass gain: the length-3m DFT of ``x`` at bin ``f`` is the
    sum over k of that phase times the DFT of the branch ``x[k::_BRANCHES]``, and
    the 1/3 is the amplitude factor of the three-times shorter inverse transform.

    Returns:
        ``(low, high)``: shapes (_BRANCHES, half + 1) for bins 0..half (the bins a
        branch's rfft has, ``half = 3 * m // 8``) and (_BRANCHES, m // 2 - half),
        conjugated, for the bins above.
    """
    f_bin = np.arange(m // 2 + 1, dtype=np.float64)
    f_hz = f_bin * (P.SAMPLE_RATE / m)
    h = np.ones_like(f_hz)
    band = (f_hz > PASSBAND_HZ) & (f_hz < STOPBAND_HZ)
    h[band] = 0.5 * (
        1 + np.cos(np.pi * (f_hz[band] - PASSBAND_HZ) / (STOPBAND_HZ - PASSBAND_HZ))
    )
    h[f_hz >= STOPBAND_HZ] = 0.0
    k = np.arange(_BRANCHES, dtype=np.float64)[:, None]
    w = (h / DOWNSAMPLE * np.exp(-2j * np.pi * f_bin * k / (DOWNSAMPLE * m))).astype(
        dtype
    )
    half = DOWNSAMPLE * m // _BRANCHES // 2
    return w[:, : half + 1].copy(), w[:, half + 1 :].conj()


def downsample(x: np.ndarray) -> np.ndarray:
    """Anti-aliased downsampling from 48 kHz to 16 kHz.

    A zero-phase low-pass applied in the frequency domain: flat up to
    :data:`PASSBAND_HZ` (7.6 kHz), a raised-cosine transition, and exactly zero from
    :data:`STOPBAND_HZ` (8 kHz, the output Nyquist frequency) up, so no component
    between 8 and 24 kHz survives. Zero phase means no delay. The signal is
    zero-padded by at least 20 ms (:data:`MIN_PAD`) before the transform, so the
    filter acts as a linear convolution: samples before 0 and after the end count as
    silence, and the end of a note does not leak into its start. (Only the filter's
    tail beyond 20 ms, below -115 dB, still wraps around.)

    Removing partials above 8 kHz can raise a note's peak: bright notes reach about
    1.5 at 16 kHz although the 48 kHz signal stays within [-1, 1].

    The long forward FFT is computed as :data:`_BRANCHES` shorter real FFTs of the
    branches ``x[k::4]`` (decimation in time), combined at the output bins only; the
    inverse FFT likewise as four short ones (:func:`_inverse_polyphase`).

    Args:
        x: shape (..., n) at 48 kHz, n a multiple of 3; float32 or float64.

    Returns:
        shape (..., n // 3) at 16 kHz, same float dtype as ``x`` (float32 for other
        input dtypes). A new array.
    """
    x = np.asarray(x)
    if x.dtype != np.float64:
        x = x.astype(np.float32, copy=False)
    n = x.shape[-1]
    if n % DOWNSAMPLE:
        raise InputError(f"downsample: length {n} is not a multiple of {DOWNSAMPLE}")
    n_out = n // DOWNSAMPLE
    m = _fft_size(n_out)
    batch = x.shape[:-1]
    reuse = not batch  # scratch arrays for single notes only

    def buffer(name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
        return _SCRATCH.get(name, shape, dtype) if reuse else np.empty(shape, dtype)

    branch_len = DOWNSAMPLE * m // _BRANCHES
    half = branch_len // 2  # last rfft bin of a branch; below m // 2
    padded = buffer("padded", (*batch, DOWNSAMPLE * m), x.dtype)
    padded[..., :n] = x
    padded[..., n:] = 0.0
    branches = np.swapaxes(padded.reshape(*batch, branch_len, _BRANCHES), -1, -2)
    spectra = scipy.fft.rfft(branches, axis=-1)  # (..., _BRANCHES, half + 1)
    w_low, w_high = _polyphase_weights(m, spectra.dtype.name)
    spectrum = buffer("spectrum", (*batch, m // 2 + 1), spectra.dtype)
    product = buffer("product", (*batch, m // 2 + 1), spectra.dtype)
    low, p_low = spectrum[..., : half + 1], product[..., : half + 1]
    np.multiply(spectra[..., 0, :], w_low[0], out=low)
    for k in range(1, _BRANCHES):
        low += np.multiply(spectra[..., k, :], w_low[k], out=p_low)
    # Bins above ``half``: a real branch's DFT there is conj(DFT[branch_len - f]),
    # and sum(conj(s) * w) == conj(sum(s * conj(w))).
    high, p_high = spectrum[..., half + 1 :], product[..., half + 1 :]
    mirror = slice(branch_len - half - 1, branch_len - m // 2 - 1, -1)
    np.multiply(spectra[..., 0, mirror], w_high[0], out=high)
    for k in range(1, _BRANCHES):
        high += np.multiply(spectra[..., k, mirror], w_high[k], out=p_high)
    np.conjugate(high, out=high)
    y = _inverse_polyphase(spectrum, m, buffer)
    return y[..., :n_out].astype(x.dtype, copy=True)


@lru_cache(maxsize=8)
def _inverse_twiddles(m: int, dtype: str) -> np.ndarray:
    """(4, m // 8 + 1) twiddles of :func:`_inverse_polyphase` (the 1/4 of the
    shorter transforms included), complex ``dtype``."""
    q = np.arange(_BRANCHES)
    g = np.arange(m // (2 * _BRANCHES) + 1)
    return (np.exp(2j * np.pi * np.outer(q, g) / m) / _BRANCHES).astype(dtype)


def _inverse_polyphase(spectrum: np.ndarray, m: int, buffer) -> np.ndarray:
    """``irfft(spectrum, n=m)`` as four short inverse FFTs, one per output branch.

    With ``M = m / 4``, sample ``4*j + k`` of the output is sample ``j`` of the
    length-M inverse DFT of ``Z_k[g] = exp(2j*pi*g*k/m) * sum_q i**(q*k) *
    Y[g + q*M] / 4``, where ``Y`` is the full Hermitian spectrum (its bins above
    m/2 are conjugates of the bins below). Batched, the four transforms run about
    three times faster than the one long transform.

    Args:
        spectrum: complex, shape (..., m // 2 + 1), m a multiple of 8.
        m: Output length.
        buffer: ``buffer(name, shape, dtype)`` returns a scratch array.

    Returns:
        real, shape (..., m); a scratch array.
    """
    quarter, eighth = m // _BRANCHES, m // (2 * _BRANCHES)
    batch = spectrum.shape[:-1]
    twiddles = _inverse_twiddles(m, spectrum.dtype.name)
    parts = buffer("parts", (*batch, _BRANCHES, eighth + 1), spectrum.dtype)
    parts[..., 0, :] = spectrum[..., : eighth + 1]  # Y[g]
    parts[..., 1, :] = spectrum[..., quarter : quarter + eighth + 1]  # Y[g + M]
    np.conjugate(
        spectrum[..., 2 * quarter : 2 * quarter - eighth - 1 : -1], out=parts[..., 2, :]
    )  # Y[g + 2M]
    np.conjugate(
        spectrum[..., quarter : quarter - eighth - 1 : -1], out=parts[..., 3, :]
    )  # Y[g + 3M]
    # mixed[k] = sum_q i**(k*q) * parts[q]: a 4-point DFT, as an exact butterfly
    # (multiplying by +-1 and +-i rounds nothing, and the order is fixed).
    mixed = buffer("mixed", parts.shape, spectrum.dtype)
    even_sum = parts[..., 0, :] + parts[..., 2, :]
    even_diff = parts[..., 0, :] - parts[..., 2, :]
    odd_sum = parts[..., 1, :] + parts[..., 3, :]
    odd_diff_i = (parts[..., 1, :] - parts[..., 3, :]) * 1j
    np.add(even_sum, odd_sum, out=mixed[..., 0, :])
    np.add(even_diff, odd_diff_i, out=mixed[..., 1, :])
    np.subtract(even_sum, odd_sum, out=mixed[..., 2, :])
    np.subtract(even_diff, odd_diff_i, out=mixed[..., 3, :])
    mixed *= twiddles
    branches = scipy.fft.irfft(mixed, n=quarter, axis=-1)  # (..., 4, M)
    out = buffer("interleaved", (*batch, quarter, _BRANCHES), branches.dtype)
    np.copyto(out, np.swapaxes(branches, -1, -2))
    return out.reshape(*batch, m)


def _block_phases(freq_hz: float, n_blocks: int) -> tuple[np.ndarray, np.ndarray]:
    """Phase 2*pi*frac(f*n/sr) of sample ``n = a*B + b`` split into two float64 parts.

    Returns:
        ``(per_block, in_block)``: float64 arrays of shapes (n_blocks,) and (B,),
        radians in [0, 2*pi), whose sum is the phase of sample ``a*B + b`` modulo
        2*pi. Each is exact to float64 rounding, however long the note.
    """
    cycles_per_sample = freq_hz / P.RENDER_SAMPLE_RATE
    a = np.arange(n_blocks, dtype=np.float64)
    per_block = (a * (_BLOCK * cycles_per_sample)) % 1.0
    in_block = (np.arange(_BLOCK, dtype=np.float64) * cycles_per_sample) % 1.0
    return 2 * np.pi * per_block, 2 * np.pi * in_block


def _phase_factors(freq_hz: float, n_blocks: int) -> tuple[np.ndarray, np.ndarray]:
    """Rank-2 factors of an operator's own phase: ``left @ right`` is the phase.

    ``left[a] = (per_block[a], 1)`` and ``right[:, b] = (1, in_block[b])``, so the
    product is the broadcast sum ``per_block[a] + in_block[b]`` in [0, 4*pi), formed
    in float32 (error below 1e-6 rad) from float64-exact parts.

    Returns:
        float32 arrays of shapes (n_blocks, 2) and (2, B).
    """
    per_block, in_block = _block_phases(freq_hz, n_blocks)
    left = np.stack([per_block, np.ones_like(per_block)], axis=1)
    right = np.stack([np.ones_like(in_block), in_block])
    return left.astype(np.float32), right.astype(np.float32)


def _sine_factors(
    freq_hz: float, n_blocks: int, gain: float
) -> tuple[np.ndarray, np.ndarray]:
    """Rank-2 factors of an unmodulated sine: ``left @ right`` is ``gain * sin(phase)``.

    By ``sin(p + q) = sin(p) cos(q) + cos(p) sin(q)`` with ``p`` the per-block and
    ``q`` the in-block phase, the whole sine needs only ``n_blocks + B`` float64
    sines and cosines, and its error is that of a few float32 roundings (about
    1e-7 x gain).

    Returns:
        float32 arrays of shapes (n_blocks, 2) and (2, B).
    """
    p, q = _block_phases(freq_hz, n_blocks)
    left = gain * np.stack([np.sin(p), np.cos(p)], axis=1)
    right = np.stack([np.cos(q), np.sin(q)])
    return left.astype(np.float32), right.astype(np.float32)


def _active_operators(patch: Patch) -> list[str]:
    """Operators to compute, in render order. A modulator whose index is 0
    contributes nothing, and neither does anything that only feeds it, so both are
    skipped."""
    alg = get_algorithm(patch.algorithm)
    index = {f"M{i + 1}": m.index for i, m in enumerate(patch.modulators)}
    needed = {CARRIER}
    for op in reversed(alg.render_order()):  # targets before their sources
        if op in needed:
            needed.update(src for src in alg.sources(op) if index[src] != 0.0)
    return [op for op in alg.render_order() if op in needed]


def _render_operators(patch: Patch, out: np.ndarray) -> None:
    """Write the carrier's output (before the envelope) into ``out``.

    An operator that nothing modulates (a "leaf", e.g. M1, M2 and M5 of ``dx7_18``)
    is an unmodulated sine, a rank-2 matrix over (block, sample in block); see
    :func:`_sine_factors`. Every other operator's phase is its own rank-2 phase plus
    its leaf sources, so one small matrix product gives all of that at once, and
    only the outputs of modulated modulators are added on top before its sine. For
    ``dx7_18`` this takes three float32 sines per sample instead of six.

    Args:
        patch: The patch.
        out: float32 array of shape (n_blocks, _BLOCK), overwritten with samples
            ``0 .. n_blocks * _BLOCK - 1``, values in [-1, 1].
    """
    n_blocks = out.shape[0]
    alg = get_algorithm(patch.algorithm)
    ops = _active_operators(patch)
    freq = {CARRIER: patch.carrier_hz}
    gain = {CARRIER: 1.0}
    for name, m in zip(MODULATORS, patch.modulators, strict=True):
        freq[name] = m.ratio * patch.carrier_hz
        gain[name] = m.index
    sources = {op: [s for s in alg.sources(op) if s in ops] for op in ops}
    leaves = {op for op in ops if not sources[op]}
    if CARRIER in leaves:  # an unmodulated carrier is a plain sine: no np.sin at all
        left, right = _sine_factors(patch.carrier_hz, n_blocks, 1.0)
        _small_matmul(left, right, out)
        return
    # For each modulated operator: factors of (own phase + its leaves' outputs), and
    # the modulated sources whose computed outputs are added to that.
    plan = []
    for op in ops:
        if op in leaves:
            continue
        factors = [_phase_factors(freq[op], n_blocks)]
        factors += [
            _sine_factors(freq[s], n_blocks, gain[s])
            for s in sources[op]
            if s in leaves
        ]
        left = np.concatenate([f[0] for f in factors], axis=1)
        right = np.concatenate([f[1] for f in factors], axis=0)
        inputs = [s for s in sources[op] if s not in leaves]
        plan.append((op, left, right, inputs))
    work = {
        op: _SCRATCH.get(f"work_{op}", (_CHUNK_BLOCKS, _BLOCK), np.float32)
        for op, *_ in plan
        if op != CARRIER
    }
    for r0 in range(0, n_blocks, _CHUNK_BLOCKS):
        r1 = min(n_blocks, r0 + _CHUNK_BLOCKS)
        for op, left, right, inputs in plan:  # modulators before their targets
            y = out[r0:r1] if op == CARRIER else work[op][: r1 - r0]
            _small_matmul(left[r0:r1], right, y)
            for src in inputs:
                y += work[src][: r1 - r0]  # already scaled by its index
            np.sin(y, out=y)
            if op != CARRIER:
                y *= np.float32(gain[op])


def _render_48k_into(
    blocks: np.ndarray, patch: Patch, n: int, *, note_off_s: float
) -> np.ndarray:
    """Render ``n`` samples at 48 kHz into ``blocks`` (float32, shape (>= n / B, B)).

    Returns:
        float32 view of shape (n,) into ``blocks``: the note, envelope applied.
    """
    sr = P.RENDER_SAMPLE_RATE
    n_sound = min(
        n, _silent_after(patch.envelope, note_off_s=note_off_s, sample_rate=sr)
    )
    _render_operators(patch, blocks[: -(-n_sound // _BLOCK)])
    y = blocks.reshape(-1)[:n]
    y[n_sound:] = 0.0  # the envelope is 0 there: nothing was computed
    points = envelope_breakpoints(patch.envelope, note_off_s=note_off_s)
    _apply_envelope(y[:n_sound], points, sample_rate=sr, curve=patch.envelope.curve)
    if patch.level != P.DEFAULT_LEVEL:
        y[:n_sound] *= np.float32(patch.level)
    return y


def render_48k(
    patch: Patch | dict,
    *,
    duration_s: float = P.DURATION_S,
    note_off_s: float = P.NOTE_OFF_S,
) -> np.ndarray:
    """The note at the 48 kHz render rate, envelope applied, before downsampling.

    Args:
        patch: A :class:`~fmlib.synth.patch.Patch` or a dict in the patch JSON shape.
        duration_s: Length of the note, s.
        note_off_s: Note-off time, s.

    Returns:
        float32 array of shape (round(duration_s * 16000) * 3,), values in [-1, 1].
    """
    patch = patch_from_dict(patch)
    n = _check_timing(duration_s, note_off_s)
    blocks = np.empty((-(-n // _BLOCK), _BLOCK), dtype=np.float32)
    return _render_48k_into(blocks, patch, n, note_off_s=note_off_s)


def render(
    patch: Patch | dict,
    *,
    duration_s: float = P.DURATION_S,
    note_off_s: float = P.NOTE_OFF_S,
) -> np.ndarray:
    """Render one note.

    Args:
        patch: A :class:`~fmlib.synth.patch.Patch` or a dict in the patch JSON shape.
        duration_s: Length of the note, s (default 4.0, NSynth's).
        note_off_s: Note-off time, s (default 3.0, NSynth's); the release starts here.

    Returns:
        float32 array of shape (round(duration_s * 16000),) at 16 kHz, mono, peak
        amplitude about 1.0 (up to about 1.5 for bright notes, see
        :func:`downsample`); 64,000 samples for the default 4 s.

    Raises:
        InputError: an invalid patch or timing, naming the field and what is valid.
    """
    patch = patch_from_dict(patch)
    n = _check_timing(duration_s, note_off_s)
    blocks = _SCRATCH.get("blocks", (-(-n // _BLOCK), _BLOCK), np.float32)
    return downsample(_render_48k_into(blocks, patch, n, note_off_s=note_off_s))


def render_batch(
    patches,
    *,
    duration_s: float = P.DURATION_S,
    note_off_s: float = P.NOTE_OFF_S,
) -> np.ndarray:
    """Render several notes; row ``i`` equals ``render(patches[i], ...)`` exactly.

    Args:
        patches: An iterable of patches or patch dicts.
        duration_s, note_off_s: As for :func:`render`, shared by every note.

    Returns:
        float32 array of shape (len(patches), round(duration_s * 16000)).
    """
    patches = list(patches)
    n_out = _check_timing(duration_s, note_off_s) // DOWNSAMPLE
    out = np.empty((len(patches), n_out), dtype=np.float32)
    for i, p in enumerate(patches):
        out[i] = render(p, duration_s=duration_s, note_off_s=note_off_s)
    return out


def render_reference(
    patch: Patch | dict,
    *,
    duration_s: float = P.DURATION_S,
    note_off_s: float = P.NOTE_OFF_S,
) -> np.ndarray:
    """Straightforward float64 render, the accuracy reference for :func:`render`.

    Every phase is ``2*pi*f*t`` in float64, all operators are computed over the
    whole note, the envelope is :func:`envelope_levels` in float64, and the same
    downsampling is applied in float64.

    Returns:
        float64 array of shape (round(duration_s * 16000),).
    """
    patch = patch_from_dict(patch)
    n = _check_timing(duration_s, note_off_s)
    alg = get_algorithm(patch.algorithm)
    t = np.arange(n, dtype=np.float64) / P.RENDER_SAMPLE_RATE
    freq = {CARRIER: patch.carrier_hz}
    index = {CARRIER: 1.0}
    for name, m in zip(MODULATORS, patch.modulators, strict=True):
        freq[name], index[name] = m.ratio * patch.carrier_hz, m.index
    out: dict[str, np.ndarray] = {}
    for op in alg.render_order():
        mod = sum((out[src] for src in alg.sources(op)), np.zeros(n))
        out[op] = index[op] * np.sin(2 * np.pi * freq[op] * t + mod)
    env = envelope_levels(patch.envelope, t, note_off_s=note_off_s)
    return downsample(out[CARRIER] * env * patch.level)
