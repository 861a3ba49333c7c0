"""The parameter specification: every synthesizer parameter declared once.

Validation (:mod:`fmlib.synth.patch`), the dataset sampler
(:mod:`fmlib.datasets.sampler`), the CNN's target order and post-processing
(:mod:`fmlib.estimate.model`) and the notebook sliders (:mod:`fmlib.notebook.widgets`)
all read :data:`PARAMS`; nothing else repeats a range.

Two kinds of limits are declared for each parameter:

* ``low``/``high``: the paper's range (section 5.1.2 and Table 1). The sampler draws
  inside it, predictions are clipped to it, sliders span it.
* ``valid_low``/``valid_high`` (+ ``low_inclusive``): what the renderer accepts. It is
  wider, because values outside the paper's range can still be meaningful (an index
  of 10, a 2 s release), but nonsense (a negative time, a zero ratio) is rejected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

#: Sample rate of the internal render, Hz (paper, section 5.1.1).
RENDER_SAMPLE_RATE = 48_000
#: Sample rate of every output, dataset and model input, Hz (NSynth's rate).
SAMPLE_RATE = 16_000
#: Default note length and note-off time, s (NSynth: 4 s notes released at 3 s).
DURATION_S = 4.0
NOTE_OFF_S = 3.0
#: Number of modulators M1..M5 (plus one carrier makes 6 operators).
N_MODULATORS = 5

#: The discrete ratios drawn with probability 0.9 and used to snap predictions.
#: The paper prints "1/8, 1/6, ..., 2, 3, 54, ..., 8" (garbled); our reading is every
#: 1/k and every k for k = 1..8. Configurable through the sampler's ``ratio_set``.
DISCRETE_RATIOS: tuple[float, ...] = tuple(
    sorted(
        {float(Fraction(1, k)) for k in range(1, 9)} | {float(k) for k in range(1, 9)}
    )
)


@dataclass(frozen=True)
class ParamSpec:
    """One synthesizer parameter.

    Attributes:
        name: Column name in ``params.csv`` and key in the flat parameter vector.
        unit: Physical unit ("Hz", "ratio", "rad", "s", "level").
        low, high: The paper's range; sampler, clipping and sliders use it.
        scale: "linear" or "log": how a slider or a [0, 1] mapping spaces values.
        description: One sentence for docs and widget tooltips.
        valid_low, valid_high: Hard limits the renderer accepts.
        low_inclusive: Whether ``valid_low`` itself is accepted.
    """

    name: str
    unit: str
    low: float
    high: float
    scale: str
    description: str
    valid_low: float
    valid_high: float
    low_inclusive: bool

    def to_unit(self, value: float) -> float:
        """Map a value in [low, high] to [0, 1] on this parameter's scale."""
        if self.scale == "log":
            return (math.log(value) - math.log(self.low)) / (
                math.log(self.high) - math.log(self.low)
            )
        return (value - self.low) / (self.high - self.low)

    def from_unit(self, u: float) -> float:
        """Inverse of :meth:`to_unit`."""
        if self.scale == "log":
            return math.exp(
                math.log(self.low) + u * (math.log(self.high) - math.log(self.low))
            )
        return self.low + u * (self.high - self.low)

    def is_valid(self, value: float) -> bool:
        """True when the renderer accepts ``value`` (finite, within the hard limits)."""
        if not math.isfinite(value):
            return False
        above = (
            value >= self.valid_low if self.low_inclusive else value > self.valid_low
        )
        return above and value <= self.valid_high

    def valid_text(self) -> str:
        """Human-readable statement of the hard limits, for error messages."""
        op = ">=" if self.low_inclusive else ">"
        low, high = f"{self.valid_low:g}", f"{self.valid_high:g}"
        return f"a finite number {op} {low} and <= {high} {self.unit}"


CARRIER = ParamSpec(
    name="carrier_hz",
    unit="Hz",
    low=20.0,
    high=6000.0,
    scale="log",
    description="Carrier frequency; modulators run at ratio x carrier.",
    valid_low=0.0,
    valid_high=RENDER_SAMPLE_RATE / 2,
    low_inclusive=False,
)
#: Concert pitch: MIDI note 69 (A4) sounds at 440 Hz (equal temperament).
A4_MIDI = 69
A4_HZ = 440.0
#: MIDI note numbers of the piano's lowest and highest keys, A0 (27.5 Hz) and C8
#: (4186.01 Hz): the carrier range of the sampler's ``musical`` prior. It spans the
#: fundamentals of nearly every orchestral instrument.
MUSICAL_MIDI_RANGE: tuple[int, int] = (21, 108)


def midi_to_hz(note: float | np.ndarray) -> float | np.ndarray:
    """Equal-tempered frequency of a (fractional) MIDI note number, Hz.

    Args:
        note: MIDI note number(s), any shape; 69 is A4 = 440 Hz.

    Returns:
        Frequency in Hz, a float (or a float64 array of the same shape).
    """
    return A4_HZ * 2.0 ** ((np.asarray(note, dtype=np.float64) - A4_MIDI) / 12.0)


def hz_to_midi(hz: float | np.ndarray) -> float | np.ndarray:
    """Inverse of :func:`midi_to_hz`: (fractional) MIDI note number of ``hz`` > 0."""
    return A4_MIDI + 12.0 * np.log2(np.asarray(hz, dtype=np.float64) / A4_HZ)


RATIO = ParamSpec(
    name="ratio",
    unit="ratio",
    low=1 / 8,
    high=8.0,
    scale="log",
    description="Modulator frequency divided by carrier frequency.",
    valid_low=0.0,
    valid_high=64.0,
    low_inclusive=False,
)
INDEX = ParamSpec(
    name="index",
    unit="rad",
    low=0.0,
    high=8.0,
    scale="linear",
    description="Modulation index beta: peak phase deviation the modulator adds to "
    "its target.",
    valid_low=0.0,
    valid_high=100.0,
    low_inclusive=True,
)
ATTACK = ParamSpec(
    name="attack_s",
    unit="s",
    low=0.005,
    high=0.5,
    scale="linear",
    description="Linear rise from 0 to 1 at note-on.",
    valid_low=0.0,
    valid_high=60.0,
    low_inclusive=True,
)
DECAY = ParamSpec(
    name="decay_s",
    unit="s",
    low=0.02,
    high=0.6,
    scale="linear",
    description="Fall from 1 to the sustain level after the attack (a straight "
    "line in amplitude, or in dB for the exponential curve).",
    valid_low=0.0,
    valid_high=60.0,
    low_inclusive=True,
)
SUSTAIN = ParamSpec(
    name="sustain",
    unit="level",
    low=0.1,
    high=0.9,
    scale="linear",
    description="Level held from the end of the decay until note-off (0 to 1).",
    valid_low=0.0,
    valid_high=1.0,
    low_inclusive=True,
)
RELEASE = ParamSpec(
    name="release_s",
    unit="s",
    low=0.05,
    high=0.8,
    scale="linear",
    description="Fall from the level at note-off to 0 (a straight line in "
    "amplitude, or in dB to -96 dB for the exponential curve).",
    valid_low=0.0,
    valid_high=60.0,
    low_inclusive=True,
)

ENVELOPE_PARAMS: tuple[ParamSpec, ...] = (ATTACK, DECAY, SUSTAIN, RELEASE)

#: Shapes of the envelope's decay and release (the attack is always a straight line
#: in amplitude from 0 to 1):
#:
#: * ``"linear"`` (the default, the paper's ADSR): straight lines in amplitude.
#: * ``"exponential"``: straight lines in dB, as a DX7's envelope generator moves
#:   (a constant rate in log-amplitude). The decay goes from 0 dB to the sustain
#:   level's dB over ``decay_s`` (halfway through it the level is
#:   ``sqrt(sustain)``); the release goes from the level at note-off down to
#:   :data:`EXPONENTIAL_FLOOR_DB` over ``release_s`` and is exactly 0 from the end
#:   of the release on. A level at or below the floor is silence: a sustain of 0
#:   (or any sustain at or below the floor) makes the decay end at the floor and
#:   the level step to 0 there, and a note released at or below the floor falls
#:   linearly in amplitude to 0 (it is inaudible either way).
#:
#: Optional in a patch (``"curve"`` inside ``"envelope"``); not one of the paper's
#: 15 targets.
ENVELOPE_CURVES: tuple[str, ...] = ("linear", "exponential")
#: Curve of a patch that does not name one: the paper's linear ADSR.
DEFAULT_ENVELOPE_CURVE = "linear"
#: Level, dB re full scale, at which the exponential curve ends (the release lands
#: there, a sustain at or below it is silence). -96 dB is the range of the DX7's
#: envelope generator (a 12-bit log-amplitude value in steps of 0.0235 dB, 4096 x
#: 0.0235 = 96 dB) and of 16-bit audio; a finite floor is needed because a straight
#: line in dB never reaches 0.
EXPONENTIAL_FLOOR_DB = -96.0
#: :data:`EXPONENTIAL_FLOOR_DB` as a linear amplitude (1.58e-5).
EXPONENTIAL_FLOOR = 10.0 ** (EXPONENTIAL_FLOOR_DB / 20.0)

LEVEL = ParamSpec(
    name="level",
    unit="gain",
    low=0.0,
    high=1.0,
    scale="linear",
    description="Linear output gain of the carrier (1.0: the paper's amplitude). "
    "Optional in a patch; not one of the paper's 15 targets.",
    valid_low=0.0,
    valid_high=16.0,
    low_inclusive=True,
)
#: Value of :data:`LEVEL` for a patch that does not give one (the paper's patches).
DEFAULT_LEVEL = 1.0

#: The 15 parameters of one note in the canonical flat order used by ``params.csv``,
#: the CNN's targets and its predictions.
TARGET_NAMES: tuple[str, ...] = (
    ("carrier_hz",)
    + tuple(f"ratio_{i}" for i in range(1, N_MODULATORS + 1))
    + tuple(f"index_{i}" for i in range(1, N_MODULATORS + 1))
    + tuple(p.name for p in ENVELOPE_PARAMS)
)


def spec_for(name: str) -> ParamSpec:
    """The :class:`ParamSpec` behind a flat name such as ``"ratio_3"`` or
    ``"sustain"``."""
    base = name.rsplit("_", 1)[0] if name[-1].isdigit() else name
    for p in (CARRIER, RATIO, INDEX, *ENVELOPE_PARAMS, LEVEL):
        if p.name == base:
            return p
    raise KeyError(name)


#: Every flat parameter name mapped to its spec, in :data:`TARGET_NAMES` order.
PARAMS: dict[str, ParamSpec] = {name: spec_for(name) for name in TARGET_NAMES}
