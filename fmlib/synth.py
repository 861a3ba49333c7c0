"""The 6-operator FM synthesizer: operators, ADSR envelope, anti-aliased downsampling.

Signal path for one note (paper, section 5.1.1):

1. Every operator is a sine at 48 kHz. A modulator runs at ``ratio x carrier_hz``;
   its output times its index (radians) is added to the *phase* of its target
   (phase modulation, as in the DX7). Parallel modulations are summed. The graph
   comes from :mod:`fmlib.algorithms`.
2. The carrier (amplitude 1.0) is multiplied by one linear ADSR envelope.
3. The 48 kHz signal is low-passed and decimated by 3 to 16 kHz.

Speed (see ``benchmarks/bench_synth.py``): the carrier phase of a 6 kHz tone reaches
1.5e5 rad after 4 s, where a float32 phase has an error of 0.01 rad. Computing the
whole phase in float64 is accurate but slow. Instead the sample index is split as
``n = a*B + b``: ``2*pi*frac(f*n/sr)`` equals ``2*pi*frac(f*a*B/sr) + 2*pi*frac(f*b/sr)``
modulo 2*pi. Both short tables are computed in float64, and only their broadcast sum,
a number in [0, 4*pi), is formed in float32 (error below 1e-6 rad), so the sine
itself runs in float32.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import scipy.fft

from fmlib import params as P
from fmlib.algorithms import CARRIER, MODULATORS, get_algorithm
from fmlib.errors import InputError
from fmlib.patch import Envelope, Patch, patch_from_dict

#: Decimation factor from the render rate to the output rate.
DOWNSAMPLE = P.RENDER_SAMPLE_RATE // P.SAMPLE_RATE
#: Anti-aliasing filter: flat to PASSBAND_HZ, raised-cosine to zero at STOPBAND_HZ,
#: zero above. STOPBAND_HZ is the output Nyquist frequency, so nothing above it
#: survives to alias; the 400 Hz transition keeps the filter's impulse response a few
#: milliseconds long (no audible ringing) while passing every carrier (<= 6 kHz).
PASSBAND_HZ = 7_600.0
STOPBAND_HZ = P.SAMPLE_RATE / 2
#: Phase table block length (see the module docstring).
_BLOCK = 1024
#: Longest note the renderer accepts, s.
MAX_DURATION_S = 60.0


def _check_timing(duration_s: float, note_off_s: float) -> int:
    """Validate the note's timing; return the number of 48 kHz samples."""
    for name, value in (("duration_s", duration_s), ("note_off_s", note_off_s)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
            raise InputError(f"{name}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise InputError(f"{name}: {value!r} is not valid; use a finite number of seconds")
    if not 0 < duration_s <= MAX_DURATION_S:
        raise InputError(
            f"duration_s: {duration_s!r} is not valid; valid: > 0 and <= {MAX_DURATION_S:g} s"
        )
    if note_off_s < 0:
        raise InputError(f"note_off_s: {note_off_s!r} is not valid; valid: >= 0 s")
    n_out = round(duration_s * P.SAMPLE_RATE)
    if n_out < 2:
        raise InputError(f"duration_s: {duration_s!r} is too short; valid: >= 2 output samples")
    return n_out * DOWNSAMPLE


def adsr_envelope(
    envelope: Envelope, n_samples: int, *, sample_rate: int, note_off_s: float
) -> np.ndarray:
    """Linear ADSR envelope.

    Rises 0 -> 1 over ``attack_s``, falls to ``sustain`` over ``decay_s``, holds until
    ``note_off_s``, then falls linearly from whatever level it has at note-off to 0
    over ``release_s``. A note-off during the attack or decay releases from there.

    Args:
        envelope: The ADSR settings (seconds and a level in [0, 1]).
        n_samples: Length of the output.
        sample_rate: Samples per second, Hz.
        note_off_s: Note-off time, s (may lie beyond the end: no release).

    Returns:
        float32 array of shape (n_samples,), values in [0, 1]; sample ``n`` is the
        envelope at time ``n / sample_rate``.
    """
    a, d, s, r = envelope.attack_s, envelope.decay_s, envelope.sustain, envelope.release_s

    def level(t: float) -> float:  # the envelope before any note-off
        if t < a:
            return t / a
        if t < a + d:
            return 1.0 - (1.0 - s) * (t - a) / d
        return s

    # Breakpoints (time, level) of the piecewise-linear curve, in order.
    points = [(0.0, 0.0 if a > 0 else 1.0)]
    for t, v in ((a, 1.0), (a + d, s)):
        if t < note_off_s:
            points.append((t, v))
    off_level = level(note_off_s)
    points += [(note_off_s, off_level), (note_off_s + r, 0.0)]
    t = np.arange(n_samples, dtype=np.float64) / sample_rate
    xp = np.array([p[0] for p in points])
    fp = np.array([p[1] for p in points])
    env = np.interp(t, xp, fp)
    if r == 0:  # the release is a step; interp would keep the level at exactly t_off
        env[t >= note_off_s] = 0.0
    return env.astype(np.float32)


@lru_cache(maxsize=8)
def _lowpass_response(n_render: int) -> np.ndarray:
    """Zero-phase low-pass gain for the first ``n_render // 6 + 1`` rfft bins (float32).

    Includes the 1/DOWNSAMPLE amplitude factor of the shorter inverse transform.
    """
    n_out = n_render // DOWNSAMPLE
    f = np.arange(n_out // 2 + 1) * (P.RENDER_SAMPLE_RATE / n_render)
    h = np.ones_like(f)
    band = (f > PASSBAND_HZ) & (f < STOPBAND_HZ)
    h[band] = 0.5 * (1 + np.cos(np.pi * (f[band] - PASSBAND_HZ) / (STOPBAND_HZ - PASSBAND_HZ)))
    h[f >= STOPBAND_HZ] = 0.0
    return (h / DOWNSAMPLE).astype(np.float32)


def downsample(x: np.ndarray) -> np.ndarray:
    """Anti-aliased downsampling from 48 kHz to 16 kHz.

    A zero-phase low-pass applied in the frequency domain: flat up to
    :data:`PASSBAND_HZ`, a raised-cosine transition, and exactly zero from
    :data:`STOPBAND_HZ` (the 16 kHz Nyquist frequency) up, so no component between 8
    and 24 kHz survives. Zero phase means no delay. Being a DFT filter it is
    circular: a note that does not end near silence leaks a few milliseconds of its
    end into its start (the impulse response decays within about 5 ms).

    Args:
        x: shape (..., n) at 48 kHz, n a multiple of 3; float32 or float64.

    Returns:
        shape (..., n // 3) at 16 kHz, same float dtype as ``x``.
    """
    x = np.asarray(x)
    n = x.shape[-1]
    if n % DOWNSAMPLE:
        raise InputError(f"downsample: length {n} is not a multiple of {DOWNSAMPLE}")
    n_out = n // DOWNSAMPLE
    spectrum = scipy.fft.rfft(x, axis=-1)[..., : n_out // 2 + 1]
    spectrum *= _lowpass_response(n)
    return scipy.fft.irfft(spectrum, n=n_out, axis=-1).astype(x.dtype, copy=False)


def _phase_tables(freq_hz: float, n_blocks: int) -> tuple[np.ndarray, np.ndarray]:
    """float32 tables whose broadcast sum is the phase 2*pi*frac(f*n/sr), n = a*B + b."""
    cycles_per_sample = freq_hz / P.RENDER_SAMPLE_RATE
    per_block = (np.arange(n_blocks, dtype=np.float64) * (_BLOCK * cycles_per_sample)) % 1.0
    in_block = (np.arange(_BLOCK, dtype=np.float64) * cycles_per_sample) % 1.0
    two_pi = 2 * np.pi
    return (
        (per_block * two_pi).astype(np.float32)[:, None],
        (in_block * two_pi).astype(np.float32)[None, :],
    )


def _active_operators(patch: Patch) -> list[str]:
    """Operators to compute, in render order. A modulator whose index is 0 contributes
    nothing, and neither does anything that only feeds it, so both are skipped."""
    alg = get_algorithm(patch.algorithm)
    index = {f"M{i + 1}": m.index for i, m in enumerate(patch.modulators)}
    needed = {CARRIER}
    for op in reversed(alg.render_order()):  # targets before their sources
        if op in needed:
            needed.update(src for src in alg.sources(op) if index[src] != 0.0)
    return [op for op in alg.render_order() if op in needed]


def render_48k(patch: Patch | dict, *, duration_s: float = P.DURATION_S,
               note_off_s: float = P.NOTE_OFF_S) -> np.ndarray:
    """The note at the 48 kHz render rate, envelope applied, before downsampling.

    Returns:
        float32 array of shape (round(duration_s * 16000) * 3,), values in [-1, 1].
    """
    patch = patch_from_dict(patch)
    n = _check_timing(duration_s, note_off_s)
    n_blocks = -(-n // _BLOCK)
    alg = get_algorithm(patch.algorithm)
    freq = {CARRIER: patch.carrier_hz}
    index = {}
    for name, m in zip(MODULATORS, patch.modulators):
        freq[name] = m.ratio * patch.carrier_hz
        index[name] = m.index
    outputs: dict[str, np.ndarray] = {}  # each modulator's output times its index
    for op in _active_operators(patch):
        block, offset = _phase_tables(freq[op], n_blocks)
        phase = np.add(block, offset).reshape(-1)[:n]
        for src in alg.sources(op):
            if src in outputs:
                phase += outputs.pop(src)
        y = np.sin(phase, out=phase)
        if op != CARRIER:
            y *= np.float32(index[op])
        outputs[op] = y
    carrier = outputs[CARRIER]
    carrier *= adsr_envelope(
        patch.envelope, n, sample_rate=P.RENDER_SAMPLE_RATE, note_off_s=note_off_s
    )
    return carrier


def render(patch: Patch | dict, *, duration_s: float = P.DURATION_S,
           note_off_s: float = P.NOTE_OFF_S) -> np.ndarray:
    """Render one note.

    Args:
        patch: A :class:`~fmlib.patch.Patch` or a dict in the patch JSON shape.
        duration_s: Length of the note, s (default 4.0, NSynth's).
        note_off_s: Note-off time, s (default 3.0, NSynth's); the release starts here.

    Returns:
        float32 array of shape (round(duration_s * 16000),) at 16 kHz, mono, peak
        amplitude at most about 1.0 (64,000 samples for the default 4 s).

    Raises:
        InputError: an invalid patch or timing, naming the field and what is valid.
    """
    return downsample(render_48k(patch, duration_s=duration_s, note_off_s=note_off_s))


def render_batch(patches, *, duration_s: float = P.DURATION_S,
                 note_off_s: float = P.NOTE_OFF_S) -> np.ndarray:
    """Render several notes; row ``i`` equals ``render(patches[i], ...)`` exactly.

    Returns:
        float32 array of shape (len(patches), round(duration_s * 16000)).
    """
    patches = list(patches)
    n_out = _check_timing(duration_s, note_off_s) // DOWNSAMPLE
    out = np.empty((len(patches), n_out), dtype=np.float32)
    for i, p in enumerate(patches):
        out[i] = render(p, duration_s=duration_s, note_off_s=note_off_s)
    return out


def render_reference(patch: Patch | dict, *, duration_s: float = P.DURATION_S,
                     note_off_s: float = P.NOTE_OFF_S) -> np.ndarray:
    """Straightforward float64 render, the accuracy reference for :func:`render`.

    Every phase is ``2*pi*f*t`` in float64, all operators are computed, and the same
    envelope and downsampling are applied in float64.

    Returns:
        float64 array of shape (round(duration_s * 16000),).
    """
    patch = patch_from_dict(patch)
    n = _check_timing(duration_s, note_off_s)
    alg = get_algorithm(patch.algorithm)
    t = np.arange(n, dtype=np.float64) / P.RENDER_SAMPLE_RATE
    freq = {CARRIER: patch.carrier_hz}
    index = {CARRIER: 1.0}
    for name, m in zip(MODULATORS, patch.modulators):
        freq[name], index[name] = m.ratio * patch.carrier_hz, m.index
    out: dict[str, np.ndarray] = {}
    for op in alg.render_order():
        mod = sum((out[src] for src in alg.sources(op)), np.zeros(n))
        out[op] = index[op] * np.sin(2 * np.pi * freq[op] * t + mod)
    env = adsr_envelope(patch.envelope, n, sample_rate=P.RENDER_SAMPLE_RATE,
                        note_off_s=note_off_s).astype(np.float64)
    return downsample(out[CARRIER] * env)
