"""Reference signals every re-synthesis is compared against.

* :func:`sine_440`: the paper's baseline, a unit-amplitude 440 Hz sine (A4), 4 s.
* :func:`pitch_sine`: a unit-amplitude sine at the note's true MIDI pitch
  (``440 * 2 ** ((pitch - 69) / 12)`` Hz, equal temperament).
* :func:`enveloped_pitch_sine`: that sine shaped by the note's own RMS envelope.
  The envelope is :func:`fmlib.audio.metrics.rms_envelope` (frames of 2048 samples every
  512, centred, so frame ``i`` sits at sample ``512 * i``), linearly interpolated to
  every sample (``np.interp``, held constant past the last frame centre) and scaled by
  ``sqrt(2)``: a sine of amplitude ``A`` has RMS ``A / sqrt(2)``, so the baseline's
  RMS envelope follows the note's.

All sines start at phase 0 (``sin``); all signals are float32, 16 kHz, shape (n,).
"""

from __future__ import annotations

import numpy as np

from fmlib.audio.metrics import HOP_LENGTH, rms_envelope
from fmlib.errors import InputError
from fmlib.synth import params as P
from fmlib.synth.params import DURATION_S, SAMPLE_RATE

#: Number of samples of an NSynth note (4 s at 16 kHz).
N_SAMPLES = round(DURATION_S * SAMPLE_RATE)
#: Names of the baselines, in table order.
BASELINE_NAMES: tuple[str, ...] = ("sine_440", "sine_pitch", "sine_pitch_env")


def midi_to_hz(pitch: float) -> float:
    """Equal-tempered frequency of a MIDI note number (69 = A4 = 440 Hz), as a
    Python float (:func:`fmlib.synth.params.midi_to_hz`)."""
    return float(P.midi_to_hz(float(pitch)))


def sine(freq_hz: float, *, n_samples: int = N_SAMPLES) -> np.ndarray:
    """Unit-amplitude sine ``sin(2 pi f n / 16000)``.

    Returns:
        float32 shape (n_samples,), values in [-1, 1].
    """
    f = float(freq_hz)
    if not 0 < f < SAMPLE_RATE / 2:
        raise InputError(
            f"sine frequency {f!r} Hz is not valid; valid: 0 < f < 8000 Hz"
        )
    t = np.arange(n_samples, dtype=np.float64) / SAMPLE_RATE
    return np.sin(2 * np.pi * f * t).astype(np.float32)


def sine_440(*, n_samples: int = N_SAMPLES) -> np.ndarray:
    """The paper's baseline: unit-amplitude 440 Hz sine, float32 shape (n_samples,)."""
    return sine(440.0, n_samples=n_samples)


def pitch_sine(pitch: float, *, n_samples: int = N_SAMPLES) -> np.ndarray:
    """Unit-amplitude sine at MIDI ``pitch``, float32 shape (n_samples,).

    Pitches at or above the 8 kHz Nyquist limit (MIDI >= 120) are invalid.
    """
    return sine(midi_to_hz(pitch), n_samples=n_samples)


def envelope_per_sample(note) -> np.ndarray:
    """The note's RMS envelope at every sample, float32 shape (n,), linear amplitude."""
    x = np.asarray(note, dtype=np.float32)
    env = rms_envelope(x)
    centres = np.arange(env.size, dtype=np.float64) * HOP_LENGTH
    return np.interp(np.arange(x.size, dtype=np.float64), centres, env).astype(
        np.float32
    )


def enveloped_pitch_sine(note, pitch: float) -> np.ndarray:
    """Sine at MIDI ``pitch`` whose RMS envelope follows ``note``'s.

    Args:
        note: The original note, shape (n,), float in [-1, 1], 16 kHz.
        pitch: Its MIDI pitch.

    Returns:
        float32 shape (n,).
    """
    x = np.asarray(note, dtype=np.float32)
    return (
        np.sqrt(2.0) * envelope_per_sample(x) * pitch_sine(pitch, n_samples=x.size)
    ).astype(np.float32)


def baselines(note, pitch: float) -> dict[str, np.ndarray]:
    """All three baselines for one note, keyed by :data:`BASELINE_NAMES`."""
    x = np.asarray(note, dtype=np.float32)
    return {
        "sine_440": sine_440(n_samples=x.size),
        "sine_pitch": pitch_sine(pitch, n_samples=x.size),
        "sine_pitch_env": enveloped_pitch_sine(x, pitch),
    }
