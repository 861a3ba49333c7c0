"""DX7 voices: the sysex format, and the mapping between fmlib patches and DX7 voices.

Format (Yamaha DX7 MIDI data format, written here from the documented layout, MIT):

* **Single voice** (163 bytes): ``F0 43 0n 00 01 1B``, 155 parameter bytes (the
  unpacked "VCED" layout below), checksum, ``F7``; ``n`` is the MIDI channel - 1.
* **32-voice bank** (4,104 bytes): ``F0 43 0n 09 20 00``, 32 packed voices of 128
  bytes ("VMEM"), checksum, ``F7``.
* The checksum is the two's complement of the 7-bit sum of the data bytes:
  ``(-sum(data)) & 0x7F``. Every data byte is < 0x80.

VCED layout, 155 bytes: six operators of 21 bytes, **OP6 first** (R1-R4, L1-L4,
breakpoint, left depth, right depth, left curve, right curve, rate scaling, amp-mod
sensitivity, velocity sensitivity, output level, mode, coarse, fine, detune), then
pitch EG R1-R4, L1-L4, algorithm (0-31), feedback, oscillator key sync, LFO speed,
delay, pitch-mod depth, amp-mod depth, sync, wave, pitch-mod sensitivity, transpose
(24 = none), and a 10-character ASCII name. VMEM packs each operator into 17 bytes
(curves, rate scaling with detune, AMS with velocity sensitivity, mode with coarse
share bytes) and the globals into 26.

Mapping (fmlib's ``dx7_18`` graph is DX7 algorithm 18 without feedback; see
``docs/DX7.md``): carrier = OP1, M1 = OP2, M2 = OP3 (feedback 0), M3 = OP4, M4 = OP5,
M5 = OP6. DX7 algorithm 18: OP2, OP3 (the feedback operator) and OP4 modulate OP1;
OP5 modulates OP4, OP6 modulates OP5; and ``dx7_18``: M1, M2 and M3 modulate the
carrier, M4 -> M3, M5 -> M4. Every conversion between fmlib units and DX7 values
reads tables measured from the Dexed engine (:mod:`fmlib.synth.dx7_tables`, written by
``tools/measure_dx7_tables.py``), never typed-in constants:

* ratio -> coarse/fine (ratio = coarse x (1 + fine / 100), coarse 0 = 0.5) and
  detune. Ratios below 0.5 **transpose** the voice: the carrier runs at an integer
  coarse ``M`` > 1 so that every operator's ratio x M is >= 0.5, the voice is played
  ``~12 log2 M`` semitones lower, and the voice's transpose parameter moves that back
  onto the key nearest the carrier's pitch (within its two octaves). Fixed-frequency
  mode would stop the modulators following the keyboard, and refusing would lose
  most paper-range patches (the sampler draws 1/8 .. 1/2 for 39 % of ratios).
  Only an operator that would sit below the DX7's lowest ratio-mode frequency
  (0.5 x key 0, 4.1 Hz; about 1 patch in 1,000 of the paper's range, a carrier
  below ~33 Hz with a ratio of 1/8) goes to fixed-frequency mode.
* index -> modulator output level through the measured level-to-index curve; the
  modulators' EGs are held at level 99 (all four levels 99, so note-off leaves them).
* carrier ADSR -> OP1's EG (L4 0 -> L1 99 at R1, -> L2 = L3 = sustain at R2, -> 0 at
  R4): each rate has an equivalent linear time (the fmlib segment closest to the
  rate's measured DX7 segment, :func:`time_for_rate`, :func:`segment_error`) and
  the export takes the rate whose time is nearest; ``level`` -> OP1's output level.
* ``carrier_hz`` -> the key to play (stored in the name as ``K###``), the voice's
  transpose, and the carrier's fine and detune, tuned to the measured key table.

Why one module of about 1,100 lines: the sysex byte layout, the voice <-> patch
mapping and its quantisation report are one format's reader and writer; the
measured numbers live apart, in :mod:`fmlib.synth.dx7_tables`.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from fmlib.errors import InputError, MissingFileError
from fmlib.synth import dx7_tables as T
from fmlib.synth import params as P
from fmlib.synth.patch import Patch, patch_from_dict

# --------------------------------------------------------------------------------
# The format
# --------------------------------------------------------------------------------

SYSEX_START = 0xF0
SYSEX_END = 0xF7
YAMAHA_ID = 0x43
#: Format byte and byte count of the two dumps.
VOICE_FORMAT, VOICE_COUNT = 0x00, (0x01, 0x1B)  # 155
BANK_FORMAT, BANK_COUNT = 0x09, (0x20, 0x00)  # 4096
VOICE_DATA_BYTES = 155
PACKED_VOICE_BYTES = 128
BANK_VOICES = 32
VOICE_SYSEX_BYTES = 6 + VOICE_DATA_BYTES + 2  # 163
BANK_SYSEX_BYTES = 6 + BANK_VOICES * PACKED_VOICE_BYTES + 2  # 4104
NAME_CHARS = 10
#: fmlib's graph in DX7 numbering (1-32) and its byte value (0-31).
DX7_ALGORITHM = 18


@dataclass(frozen=True)
class Operator:
    """One DX7 operator's parameters, as stored (integers in their DX7 ranges)."""

    rates: tuple[int, int, int, int] = (99, 99, 99, 99)
    levels: tuple[int, int, int, int] = (99, 99, 99, 0)
    breakpoint: int = 39
    left_depth: int = 0
    right_depth: int = 0
    left_curve: int = 0
    right_curve: int = 0
    rate_scaling: int = 0
    amp_mod_sensitivity: int = 0
    velocity_sensitivity: int = 0
    output_level: int = 0
    fixed_frequency: int = 0  # 0 ratio mode, 1 fixed
    coarse: int = 1
    fine: int = 0
    detune: int = 7  # 0..14, 7 = none


@dataclass(frozen=True)
class Voice:
    """One DX7 voice. ``operators[0]`` is OP1, ``operators[5]`` OP6; ``algorithm``
    is the DX7 panel number 1..32."""

    operators: tuple[Operator, ...]
    algorithm: int = 1
    feedback: int = 0
    osc_key_sync: int = 1
    pitch_rates: tuple[int, int, int, int] = (99, 99, 99, 99)
    pitch_levels: tuple[int, int, int, int] = (50, 50, 50, 50)
    lfo_speed: int = 35
    lfo_delay: int = 0
    lfo_pitch_depth: int = 0
    lfo_amp_depth: int = 0
    lfo_sync: int = 0
    lfo_wave: int = 0
    pitch_mod_sensitivity: int = 0
    transpose: int = 24
    name: str = "INIT VOICE"

    def __post_init__(self) -> None:
        # A DX7 name is exactly 10 characters, space padded (as stored).
        object.__setattr__(self, "name", self.name[:NAME_CHARS].ljust(NAME_CHARS))


#: The DX7's initial voice (algorithm 1, OP1 at full level, the rest silent): pads a
#: bank of fewer than 32 patches, and is skipped by :func:`load_syx`.
INIT_VOICE = Voice(
    operators=(Operator(output_level=99),) + (Operator(),) * 5,
)

# (field, maximum) of the 21 VCED operator bytes, in order.
_OP_FIELDS: tuple[tuple[str, int], ...] = (
    ("rates", 99),
    ("levels", 99),
    ("breakpoint", 99),
    ("left_depth", 99),
    ("right_depth", 99),
    ("left_curve", 3),
    ("right_curve", 3),
    ("rate_scaling", 7),
    ("amp_mod_sensitivity", 3),
    ("velocity_sensitivity", 7),
    ("output_level", 99),
    ("fixed_frequency", 1),
    ("coarse", 31),
    ("fine", 99),
    ("detune", 14),
)
_GLOBAL_FIELDS: tuple[tuple[str, int], ...] = (
    ("pitch_rates", 99),
    ("pitch_levels", 99),
    ("algorithm", 31),  # stored 0-based
    ("feedback", 7),
    ("osc_key_sync", 1),
    ("lfo_speed", 99),
    ("lfo_delay", 99),
    ("lfo_pitch_depth", 99),
    ("lfo_amp_depth", 99),
    ("lfo_sync", 1),
    ("lfo_wave", 5),
    ("pitch_mod_sensitivity", 7),
    ("transpose", 48),
)


def _check(value: int, maximum: int, what: str) -> int:
    if not isinstance(value, (int, np.integer)) or not 0 <= value <= maximum:
        raise InputError(f"{what}: {value!r} is not valid; valid: 0..{maximum}")
    return int(value)


def voice_to_bytes(voice: Voice) -> bytes:
    """The 155 VCED bytes of ``voice`` (no header, no checksum).

    Raises:
        InputError: a parameter outside its DX7 range, or a name that is not
            printable ASCII.
    """
    data = bytearray()
    for number in range(6, 0, -1):
        op = voice.operators[number - 1]
        for name, maximum in _OP_FIELDS:
            value = getattr(op, name)
            values = value if isinstance(value, tuple) else (value,)
            for v in values:
                data.append(_check(v, maximum, f"OP{number} {name}"))
    for name, maximum in _GLOBAL_FIELDS:
        value = getattr(voice, name)
        if name == "algorithm":
            value = _check(value - 1, 31, "algorithm (1..32) - 1")
        values = value if isinstance(value, tuple) else (value,)
        for v in values:
            data.append(_check(v, maximum, name))
    data += _name_bytes(voice.name)
    assert len(data) == VOICE_DATA_BYTES
    return bytes(data)


def _name_bytes(name: str) -> bytes:
    text = name[:NAME_CHARS].ljust(NAME_CHARS)
    if not all(32 <= ord(c) < 127 for c in text):
        raise InputError(f"voice name {name!r}: use printable ASCII characters only")
    return text.encode("ascii")


def voice_from_bytes(data: bytes, *, where: str = "voice") -> Voice:
    """Parse 155 VCED bytes (inverse of :func:`voice_to_bytes`).

    Raises:
        InputError: a value out of its DX7 range, naming the voice and parameter.
    """
    if len(data) != VOICE_DATA_BYTES:
        raise InputError(
            f"{where}: {len(data)} voice bytes; expected {VOICE_DATA_BYTES}"
        )
    pos = 0

    def take(count: int, maximum: int, what: str):
        nonlocal pos
        vals = tuple(
            _check(b, maximum, f"{where} {what}") for b in data[pos : pos + count]
        )
        pos += count
        return vals if count > 1 else vals[0]

    ops: list[Operator] = []
    for number in range(6, 0, -1):
        kw = {}
        for name, maximum in _OP_FIELDS:
            count = 4 if name in ("rates", "levels") else 1
            kw[name] = take(count, maximum, f"OP{number} {name}")
        ops.append(Operator(**kw))
    kw = {}
    for name, maximum in _GLOBAL_FIELDS:
        count = (
            4 if name.startswith("pitch_") and name != "pitch_mod_sensitivity" else 1
        )
        kw[name] = take(count, maximum, name)
    kw["algorithm"] += 1
    name = bytes(data[pos : pos + NAME_CHARS]).decode("ascii", errors="replace")
    return Voice(operators=tuple(reversed(ops)), name=name, **kw)


def pack_voice(voice: Voice) -> bytes:
    """The 128 packed (VMEM) bytes of ``voice``, as stored in a 32-voice bank."""
    v = voice_to_bytes(voice)
    out = bytearray()
    for i in range(6):  # OP6 first, as in VCED
        o = v[21 * i : 21 * i + 21]
        out += o[0:11]
        out.append(o[11] | (o[12] << 2))  # left curve | right curve
        out.append(o[13] | (o[20] << 3))  # rate scaling | detune
        out.append(o[14] | (o[15] << 2))  # amp-mod sensitivity | velocity sens.
        out.append(o[16])  # output level
        out.append(o[17] | (o[18] << 1))  # mode | coarse
        out.append(o[19])  # fine
    g = v[126:]
    out += g[0:8]  # pitch EG rates and levels
    out.append(g[8])  # algorithm
    out.append(g[9] | (g[10] << 3))  # feedback | key sync
    out += g[11:15]  # LFO speed, delay, pitch depth, amp depth
    out.append(g[15] | (g[16] << 1) | (g[17] << 4))  # LFO sync | wave | PMS
    out.append(g[18])  # transpose
    out += g[19:29]  # name
    assert len(out) == PACKED_VOICE_BYTES
    return bytes(out)


def unpack_voice(packed: bytes, *, where: str = "voice") -> Voice:
    """Inverse of :func:`pack_voice`: 128 VMEM bytes to a :class:`Voice`.

    Raises:
        InputError: a field out of range (including bits set above a packed field).
    """
    if len(packed) != PACKED_VOICE_BYTES:
        raise InputError(f"{where}: {len(packed)} packed bytes; expected 128")
    v = bytearray()
    for i in range(6):
        o = packed[17 * i : 17 * i + 17]
        if o[11] >> 4 or o[13] >> 5 or o[15] >> 6:
            raise InputError(f"{where} OP{6 - i}: unused bits set in a packed byte")
        v += o[0:11]
        v += bytes((o[11] & 3, o[11] >> 2, o[12] & 7, o[13] & 3, o[13] >> 2, o[14]))
        v += bytes((o[15] & 1, o[15] >> 1, o[16], o[12] >> 3))
    g = packed[102:]
    if g[9] >> 4:
        raise InputError(f"{where}: unused bits set in the feedback/key-sync byte")
    v += g[0:8]
    v.append(g[8])
    v += bytes((g[9] & 7, g[9] >> 3))
    v += g[10:14]
    v += bytes((g[14] & 1, (g[14] >> 1) & 7, g[14] >> 4))
    v.append(g[15])
    v += g[16:26]
    return voice_from_bytes(bytes(v), where=where)


def checksum(data: bytes) -> int:
    """DX7 checksum: the 7-bit two's complement of the sum of ``data``."""
    return (-sum(data)) & 0x7F


def voice_sysex(voice: Voice, *, channel: int = 1) -> bytes:
    """A 163-byte single-voice dump of ``voice`` on MIDI ``channel`` (1..16)."""
    data = voice_to_bytes(voice)
    head = bytes((SYSEX_START, YAMAHA_ID, channel - 1, VOICE_FORMAT, *VOICE_COUNT))
    return head + data + bytes((checksum(data), SYSEX_END))


def bank_sysex(voices: Sequence[Voice], *, channel: int = 1) -> bytes:
    """A 4,104-byte 32-voice bank; fewer than 32 voices are padded with
    :data:`INIT_VOICE`."""
    if not 1 <= len(voices) <= BANK_VOICES:
        raise InputError(f"a bank holds 1..32 voices, got {len(voices)}")
    voices = list(voices) + [INIT_VOICE] * (BANK_VOICES - len(voices))
    data = b"".join(pack_voice(v) for v in voices)
    head = bytes((SYSEX_START, YAMAHA_ID, channel - 1, BANK_FORMAT, *BANK_COUNT))
    return head + data + bytes((checksum(data), SYSEX_END))


def parse_sysex(blob: bytes, *, where: str = "sysex") -> list[Voice]:
    """Voices of a single-voice dump (one) or a 32-voice bank (32).

    Raises:
        InputError: one line naming the problem: not sysex, wrong manufacturer,
            not a voice or bank dump, wrong length, a data byte >= 0x80, a bad
            checksum, or a value out of range.
    """
    n = len(blob)
    if n == 0 or blob[0] != SYSEX_START:
        first = f"0x{blob[0]:02X}" if n else "nothing (empty file)"
        raise InputError(
            f"{where}: not sysex (starts with {first}; a DX7 dump starts with 0xF0)"
        )
    if n < 7:
        raise InputError(
            f"{where}: wrong length {n} bytes; expected {VOICE_SYSEX_BYTES} (one "
            f"voice) or {BANK_SYSEX_BYTES} (32-voice bank)"
        )
    if blob[1] != YAMAHA_ID:
        raise InputError(
            f"{where}: wrong manufacturer 0x{blob[1]:02X}; expected Yamaha (0x43)"
        )
    if blob[2] & 0xF0:
        raise InputError(
            f"{where}: not a DX7 data dump (sub-status 0x{blob[2]:02X}; "
            "expected 0x00-0x0F)"
        )
    fmt = blob[3]
    if fmt == VOICE_FORMAT:
        count, expected, kind = VOICE_COUNT, VOICE_SYSEX_BYTES, "single voice"
    elif fmt == BANK_FORMAT:
        count, expected, kind = BANK_COUNT, BANK_SYSEX_BYTES, "32-voice bank"
    else:
        raise InputError(
            f"{where}: format 0x{fmt:02X} is not a DX7 voice (0x00) or 32-voice "
            "bank (0x09) dump"
        )
    if n != expected:
        raise InputError(
            f"{where}: wrong length {n} bytes for a {kind}; expected {expected}"
        )
    if tuple(blob[4:6]) != count:
        raise InputError(f"{where}: byte count {blob[4]:02X} {blob[5]:02X} is wrong")
    if blob[-1] != SYSEX_END:
        raise InputError(f"{where}: does not end with 0xF7")
    data = blob[6:-2]
    bad = next((i for i, b in enumerate(data) if b > 0x7F), None)
    if bad is not None:
        raise InputError(f"{where}: data byte {bad} is 0x{data[bad]:02X} (> 0x7F)")
    if checksum(data) != blob[-2]:
        raise InputError(
            f"{where}: bad checksum 0x{blob[-2]:02X}; the data sums to "
            f"0x{checksum(data):02X}"
        )
    if fmt == VOICE_FORMAT:
        return [voice_from_bytes(data, where=f"{where}: voice 1")]
    return [
        unpack_voice(
            data[i * PACKED_VOICE_BYTES : (i + 1) * PACKED_VOICE_BYTES],
            where=f"{where}: voice {i + 1}",
        )
        for i in range(BANK_VOICES)
    ]


def read_syx(path: str | os.PathLike) -> list[Voice]:
    """Read a ``.syx`` file: one voice, or 32 for a bank (see :func:`parse_sysex`).

    Raises:
        MissingFileError: no such file. InputError: not a valid DX7 dump.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path}: no such sysex file")
    if path.stat().st_size > 2 * BANK_SYSEX_BYTES:
        raise InputError(
            f"{path}: wrong length {path.stat().st_size} bytes; expected "
            f"{VOICE_SYSEX_BYTES} (one voice) or {BANK_SYSEX_BYTES} (32-voice bank)"
        )
    return parse_sysex(path.read_bytes(), where=str(path))


def write_bytes_atomic(path: str | os.PathLike, blob: bytes) -> Path:
    """Write ``blob`` to ``path`` through a temporary file and a rename.

    Raises:
        MissingFileError: the folder does not exist.
        InputError: ``path`` exists and is not a regular file (a folder, a device).
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise MissingFileError(f"{parent}: output folder does not exist")
    if path.exists() and not path.is_file():
        raise InputError(f"{path}: exists and is not a regular file; refusing to write")
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_bytes(blob)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


# --------------------------------------------------------------------------------
# Measured curves and the envelope-matching criterion
# --------------------------------------------------------------------------------

#: Soft floor, dB re full scale, of the comparison between a linear and a DX7
#: envelope segment: levels are compared as ``10 log10(1 + K a^2)`` with
#: ``K = 10 ** (-FLOOR_DB / 10)``, i.e. in dB above the floor and fading out
#: below it, like ``log1p`` of a mel power in
#: :func:`fmlib.audio.metrics.logmel_distance`. Chosen by the median log-mel distance
#: between fmlib's and Dexed's renders of 40 random paper-range patches (seed 2026,
#: notes 0-39; the benchmark reports other seeds): soft floor at -30, -20, -15, -12,
#: -10, -8 dB: 31.9, 30.9, 30.1, 30.6, 30.6, 30.6; a hard floor (max(dB, floor)) at -60,
#: -40, -30, -20, -15, -10, -6 dB: 37.0, 34.4, 33.1, 31.1, 31.1, 34.7, 45.8.
FLOOR_DB = -15.0
#: Grid points of a segment comparison.
_GRID = 128
#: Candidate linear times (s) for the equivalent time of a rate.
_TIMES = np.geomspace(1e-4, 600.0, 200)

_EG_GAIN = np.asarray(T.EG_LEVEL_GAIN, dtype=np.float64)
_OL_GAIN = np.asarray(T.OUTPUT_LEVEL_GAIN, dtype=np.float64)
_INDEX = np.asarray(T.MOD_INDEX_RAD, dtype=np.float64)
_ATTACK_T = np.asarray(T.ATTACK_TIME_S, dtype=np.float64)
_SHAPE = np.asarray(T.ATTACK_SHAPE, dtype=np.float64)
_SLOPE = np.asarray(T.DECAY_DB_PER_S, dtype=np.float64)
_KEY_HZ = np.asarray(T.KEY_HZ, dtype=np.float64)
_DETUNE = np.asarray(T.DETUNE_CENTS, dtype=np.float64)  # (128, 15)
_FIXED = np.asarray(T.FIXED_HZ, dtype=np.float64)  # (4, 100)


def _db(x: np.ndarray) -> np.ndarray:
    """20 log10 of a linear amplitude, -240 dB for 0."""
    return 20.0 * np.log10(np.maximum(np.asarray(x, dtype=np.float64), 1e-12))


def _level(amplitude: np.ndarray) -> np.ndarray:
    """Soft-floored level, dB above :data:`FLOOR_DB` (0 for silence)."""
    k = 10.0 ** (-FLOOR_DB / 10.0)
    return 10.0 * np.log10(1.0 + k * np.square(amplitude))


def _dx7_attack(t: np.ndarray, rates: np.ndarray) -> np.ndarray:
    """Amplitude (0..1) of the measured DX7 attack; ``t`` shape (..., m, g) s,
    ``rates`` shape (m,)."""
    u = np.clip(t / _ATTACK_T[rates][:, None], 0.0, 1.0)
    grid = np.linspace(0.0, 1.0, _SHAPE.size)
    return np.interp(u, grid, _SHAPE)


def segment_error(
    kind: str,
    time_s,
    rates,
    *,
    sustain: float,
    curve: str = P.DEFAULT_ENVELOPE_CURVE,
) -> np.ndarray:
    """Squared level difference (dB above a soft floor), integrated over time,
    between fmlib's segment and DX7's.

    fmlib's segment is a straight line in amplitude (the attack, and every segment
    of the linear curve) or, for the exponential curve's decay and release, a
    straight line in dB (:data:`fmlib.synth.params.ENVELOPE_CURVES`: a decay to
    the sustain's dB, a release to -96 dB, then 0); DX7's is the measured one: the
    attack follows ``ATTACK_SHAPE`` stretched to ``ATTACK_TIME_S[rate]``, a decay or
    release falls in a straight line in dB at ``DECAY_DB_PER_S[rate]``. Both are
    compared as soft-floored levels (:func:`_level`, :data:`FLOOR_DB`) on
    ``_GRID`` points over twice the longer of the two segments; after that both
    have settled to the same level.

    Args:
        kind: ``"attack"`` (0 -> 1), ``"decay"`` (1 -> sustain) or ``"release"``
            (sustain -> 0).
        time_s: fmlib's segment length(s), s: scalar, shape (k,), or shape (k, m)
            (one column of lengths per rate).
        rates: DX7 rates 0..99, int array shape (m,).
        sustain: Linear sustain level (0..1) of a decay or release.
        curve: fmlib's envelope curve, one of
            :data:`fmlib.synth.params.ENVELOPE_CURVES`.

    Returns:
        float64 shape (k, m) (or (m,) for a scalar ``time_s``), dB squared x s.
    """
    times = np.asarray(time_s, dtype=np.float64)
    times = times.reshape(times.shape + (1,) * (3 - times.ndim - (times.ndim == 0)))
    times = times if times.ndim == 3 else times[None]
    rates = np.atleast_1d(np.asarray(rates, dtype=np.int64))
    slope = _SLOPE[rates][:, None]
    s_db = float(_db(sustain))
    # How long DX7's segment lasts: to the sustain, or for a release to 20 dB
    # below the soft floor (where the level is 0.04 dB above silence).
    end_db = FLOOR_DB - 20.0
    if kind == "attack":
        dx7_len = _ATTACK_T[rates]
    elif kind == "decay":
        dx7_len = (0.0 - s_db) / _SLOPE[rates]
    elif kind == "release":
        dx7_len = np.maximum(s_db - end_db, 0.0) / _SLOPE[rates]
    else:
        raise ValueError(kind)
    span = 2.0 * np.maximum(dx7_len[None, :, None], times)  # (k, m, 1)
    t = np.linspace(0.0, 1.0, _GRID)[None, None, :] * span  # (k, m, g)
    u = np.clip(t / np.maximum(times, 1e-12), 0.0, 1.0)
    if kind == "attack":
        a = _level(u)
        b = _level(_dx7_attack(t, rates))
    elif kind == "decay":
        if curve == "exponential":
            a = _level(_exponential_decay(u, sustain))
        else:
            a = _level(1.0 + (sustain - 1.0) * u)
        b = _level(10.0 ** (np.maximum(-slope * t, s_db) / 20.0))
    else:
        if curve == "exponential":
            a = _level(_exponential_release(u, sustain))
        else:
            a = _level(sustain * (1.0 - u))
        b = _level(10.0 ** ((s_db - slope * t) / 20.0))
    # Integrated over time (dB^2 s): outside the span both curves have settled
    # and agree, so this is the squared L2 distance of the two curves.
    out = np.mean((a - b) ** 2, axis=-1) * span[..., 0]
    return out if np.ndim(time_s) else out[0]


def _exponential_decay(u: np.ndarray, sustain: float) -> np.ndarray:
    """fmlib's exponential decay from 1 to ``sustain`` at fraction ``u`` (0..1,
    clipped) of its length (as :func:`fmlib.synth.engine.envelope_breakpoints`)."""
    floor = P.EXPONENTIAL_FLOOR
    end, held = (floor, 0.0) if sustain <= floor else (sustain, sustain)
    return np.where(u < 1.0, end**u, held)


def _exponential_release(u: np.ndarray, start: float) -> np.ndarray:
    """fmlib's exponential release from ``start`` at fraction ``u`` (0..1, clipped)
    of its length: a straight line in dB to -96 dB, then 0 (linear in amplitude
    from a start at or below -96 dB)."""
    floor = P.EXPONENTIAL_FLOOR
    if start <= floor:
        return start * (1.0 - u)
    return np.where(u < 1.0, start * (floor / start) ** u, 0.0)


_RATES = np.arange(100)


@lru_cache(maxsize=1024)
def _rate_times(
    kind: str, sustain: float, curve: str = P.DEFAULT_ENVELOPE_CURVE
) -> np.ndarray:
    """:func:`time_for_rate` of every rate 0..99, float64 shape (100,), s.

    The minimum of :func:`segment_error` over a log grid of 200 times from 0.1 ms
    to 600 s, refined twice on 41-point grids between each minimum's neighbours
    (relative precision about 1e-5), all rates at once."""
    grid = np.broadcast_to(_TIMES[:, None], (_TIMES.size, 100))
    cols = np.arange(100)
    for _ in range(3):
        err = segment_error(kind, grid, _RATES, sustain=sustain, curve=curve)
        i = np.argmin(err, axis=0)
        best = grid[i, cols]
        lo = grid[np.maximum(i - 1, 0), cols]
        hi = grid[np.minimum(i + 1, grid.shape[0] - 1), cols]
        grid = np.exp(np.linspace(np.log(lo), np.log(hi), 41))
    best = best.copy()
    best.flags.writeable = False
    return best


def _curve_key(kind: str, sustain: float, curve: str) -> tuple[str, float, str]:
    """Arguments of :func:`_rate_times`: the attack is the same for every curve."""
    if curve not in P.ENVELOPE_CURVES:
        raise InputError(
            f"curve: {curve!r} is not valid; valid: "
            + ", ".join(repr(c) for c in P.ENVELOPE_CURVES)
        )
    if kind == "attack":
        return kind, 0.0, P.DEFAULT_ENVELOPE_CURVE
    return kind, sustain, curve


def time_for_rate(
    kind: str, rate: int, *, sustain: float, curve: str = P.DEFAULT_ENVELOPE_CURVE
) -> float:
    """The fmlib segment length, s, equivalent to DX7 ``rate``: the one whose
    segment (of envelope curve ``curve``) is closest to the rate's measured DX7
    segment (:func:`segment_error`). These times are the grid :func:`rate_for_time`
    quantises to. ``sustain`` (linear) and ``curve`` matter for decay and release
    only."""
    return float(_rate_times(*_curve_key(kind, sustain, curve))[rate])


def rate_for_time(
    kind: str, time_s: float, *, sustain: float, curve: str = P.DEFAULT_ENVELOPE_CURVE
) -> int:
    """The DX7 rate whose equivalent time (:func:`time_for_rate`) is nearest to
    ``time_s`` on a log scale (the lowest of equal rates), so that exporting the
    time of a rate gives that rate back."""
    times = _rate_times(*_curve_key(kind, sustain, curve))
    dist = np.abs(np.log(times) - math.log(max(time_s, 1e-6)))
    return int(np.flatnonzero(dist <= dist.min() + 1e-12)[0])


def _nearest(table: np.ndarray, value: float) -> int:
    return int(np.argmin(np.abs(table - value)))


# --------------------------------------------------------------------------------
# Frequencies
# --------------------------------------------------------------------------------


def op_ratio(coarse: int, fine: int) -> float:
    """DX7 ratio-mode frequency ratio: coarse x (1 + fine / 100), coarse 0 = 0.5."""
    return (0.5 if coarse == 0 else float(coarse)) * (1.0 + fine / 100.0)


def op_hz(key: int, op: Operator) -> float:
    """Frequency, Hz, of an operator at internal key ``key``: ratio mode through
    the measured key and detune tables, fixed mode through the measured fixed
    table (detune, measured at 7, is not applied there)."""
    if op.fixed_frequency:
        return float(_FIXED[op.coarse & 3, op.fine])
    cents = _DETUNE[key, op.detune]
    return float(_KEY_HZ[key] * op_ratio(op.coarse, op.fine) * 2 ** (cents / 1200))


_COARSE = np.array([0.5] + list(range(1, 32)), dtype=np.float64)
_ALL_RATIOS = (_COARSE[:, None] * (1 + np.arange(100) / 100.0)[None, :]).ravel()
MAX_OP_RATIO = float(_ALL_RATIOS.max())


def _best_op(target_ratio: float, key: int) -> tuple[int, int, int, float]:
    """(coarse, fine, detune, cents error) nearest to ``target_ratio`` at ``key``."""
    cents = 1200 * np.log2(_ALL_RATIOS[:, None] / target_ratio) + _DETUNE[key][None, :]
    # Equal frequencies (2 x 1.59 = 3 x 1.06) tie exactly after rounding; the
    # smallest fine, then the detune nearest 7, wins.
    cost = (
        np.round(np.abs(cents), 6)
        + 1e-9 * np.tile(np.arange(100), 32)[:, None]
        + 1e-11 * np.abs(np.arange(15) - 7)[None, :]
    )
    i, d = np.unravel_index(int(np.argmin(cost)), cost.shape)
    return int(i // 100), int(i % 100), int(d), float(cents[i, d])


#: Cost, in cents of tuning error, of every semitone the played key lies below
#: the carrier's nearest key (see :func:`_tuning`).
KEY_SHIFT_CENTS = 0.1


def _tuning(
    carrier_hz: float, multiplier: int, *, max_factor: float = 2.0
) -> tuple[int, int, int, float]:
    """(internal key, fine, detune, cents error) playing ``carrier_hz`` with the
    carrier at coarse ``multiplier``: keys within reach of the voice's transpose,
    every fine and detune searched against the measured tables."""
    target = carrier_hz / multiplier
    ideal = 69 + 12 * math.log2(target / 440.0)
    keys = np.arange(128)
    # Keys up to an octave below (fine up to 99 climbs back). A key more than two
    # octaves below the carrier's own key cannot be moved back onto it by the
    # voice's transpose; each semitone beyond costs KEY_SHIFT_CENTS, so the voice
    # is played off its nearest key only where that buys real tuning accuracy (at
    # high keys, where detune steps are small).
    reach = (keys >= ideal - 13) & (keys <= ideal + 1)
    played = round(69 + 12 * math.log2(carrier_hz / 440.0))
    beyond = np.maximum(0, (played - 24) - keys).astype(np.float64)
    ratio = 1 + np.arange(100) / 100.0
    cents = (
        1200 * np.log2(_KEY_HZ[:, None, None] * ratio[None, :, None] / target)
        + _DETUNE[:, None, :]
    )
    cost = (
        np.round(np.abs(cents) + KEY_SHIFT_CENTS * beyond[:, None, None], 6)
        + 1e-9 * np.arange(100)[None, :, None]
        + 1e-11 * np.abs(np.arange(15) - 7)[None, None, :]
    )
    cost[~reach] = np.inf
    # The carrier's fine multiplies every exact operator's ratio: keep the largest
    # within the DX7's range.
    cost[:, ratio > max_factor * (1 + 1e-12), :] = np.inf
    k, f, d = np.unravel_index(int(np.argmin(cost)), cost.shape)
    return int(k), int(f), int(d), float(cents[k, f, d])


def _multiplier(ratios: Sequence[float], carrier_hz: float) -> int:
    """Carrier coarse M (1..31) for the voice.

    Valid: every ratio x M at most the largest DX7 ratio, and ``carrier_hz / M``
    playable on a key (at least key 0's frequency). Preferred, in order: fewest
    operators left below the lowest DX7 ratio 0.5 (they go to fixed-frequency
    mode), most operators on an exact coarse value (0.5, 1..31, so that they share
    the carrier's fine and detune and keep their ratio exactly), smallest M.
    """
    best, best_key = None, None
    for m in range(1, 32):
        scaled = [r * m for r in ratios]
        # Room for the carrier's fine up to one semitone (1.06) above coarse.
        if max(scaled) * 1.06 > MAX_OP_RATIO or carrier_hz / m < _KEY_HZ[0]:
            continue
        below = sum(s < 0.5 * (1 - 1e-9) for s in scaled)
        exact = sum(any(abs(s - c) <= 1e-9 * c for c in _COARSE) for s in scaled)
        key = (below, -exact, m)
        if best_key is None or key < best_key:
            best, best_key = m, key
    if best is None:
        raise InputError(
            f"ratios {[round(r, 4) for r in ratios]}: the largest is above the "
            f"DX7's largest ratio {MAX_OP_RATIO / 1.06:.4g} (with room for tuning)"
        )
    return best


def _fixed_op(target_hz: float) -> tuple[int, int]:
    """(coarse, fine) of the fixed frequency nearest ``target_hz`` (in cents)."""
    cents = np.abs(1200 * np.log2(_FIXED / target_hz))
    c, f = np.unravel_index(int(np.argmin(np.round(cents, 6))), cents.shape)
    return int(c), int(f)


def midi_note_name(key: int) -> str:
    """Note name of a MIDI key, e.g. 69 -> 'A4' (MIDI 60 = C4)."""
    names = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
    return f"{names[key % 12]}{key // 12 - 1}"


# --------------------------------------------------------------------------------
# Patch <-> voice
# --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Quantised:
    """One parameter's export: the value asked for, the value the voice holds
    (converted back to fmlib units with the measured tables), the DX7 setting."""

    name: str
    unit: str
    requested: float
    represented: float
    dx7: str
    clipped: bool = False

    @property
    def error(self) -> float:
        return self.represented - self.requested


@dataclass(frozen=True)
class QuantisationReport:
    """Per-parameter quantisation of one exported patch, and the key to play it."""

    entries: tuple[Quantised, ...]
    key: int
    name: str
    notes: tuple[str, ...] = field(default_factory=tuple)

    def __getitem__(self, name: str) -> Quantised:
        for e in self.entries:
            if e.name == name:
                return e
        raise KeyError(name)

    def lines(self) -> list[str]:
        """Human-readable table, one parameter a line."""
        note = midi_note_name(self.key)
        out = [f"voice {self.name!r}: play MIDI key {self.key} ({note})"]
        for e in self.entries:
            err = e.error
            if e.name == "carrier_hz" or e.name.startswith("ratio"):
                rel = 1200 * math.log2(e.represented / e.requested)
                err_text = f"{rel:+.2f} cents"
            else:
                err_text = f"{err:+.4g} {e.unit}"
            clip = "  CLIPPED" if e.clipped else ""
            out.append(
                f"  {e.name:<11} {e.requested:>10.4g} -> {e.represented:>10.4g}  "
                f"({err_text}; {e.dx7}){clip}"
            )
        out += [f"  note: {n}" for n in self.notes]
        return out


_KEY_IN_NAME = re.compile(r"K(\d{3})$")
#: Key assumed when a voice's name does not carry one (DX7 middle C).
DEFAULT_KEY = 60


def voice_name(stem: str, key: int) -> str:
    """A 10-character voice name: up to 6 characters of ``stem`` and ``K###``."""
    clean = "".join(c if 32 <= ord(c) < 127 else "_" for c in stem)[:6]
    return f"{clean:<6}K{key:03d}"


def _modulator_voice_op(
    coarse: int, fine: int, detune: int, level: int, fixed: bool
) -> Operator:
    return Operator(
        rates=(99, 99, 99, 99),
        levels=(99, 99, 99, 99),
        output_level=level,
        fixed_frequency=int(fixed),
        coarse=coarse,
        fine=fine,
        detune=detune,
    )


def patch_to_voice(
    patch, *, name: str | None = None
) -> tuple[Voice, QuantisationReport]:
    """Map a ``dx7_18`` patch onto a DX7 algorithm-18 voice.

    Args:
        patch: A :class:`~fmlib.synth.patch.Patch` or a patch dict.
        name: Up to 6 characters for the voice name (default ``"FMLIB"``); the key
            to play is appended as ``K###``.

    Returns:
        ``(voice, report)``: the voice and the per-parameter quantisation.

    Raises:
        InputError: another algorithm, or ratios no voice can hold.
    """
    p = patch_from_dict(patch)
    if p.algorithm != "dx7_18":
        raise InputError(
            f"algorithm {p.algorithm!r}: only 'dx7_18' (DX7 algorithm 18 without "
            "feedback) has a DX7 equivalent"
        )
    notes: list[str] = []
    ratios = [m.ratio for m in p.modulators]
    mult = _multiplier(ratios, p.carrier_hz)
    key, fine, detune, _ = _tuning(
        p.carrier_hz, mult, max_factor=MAX_OP_RATIO / (max(ratios) * mult)
    )
    # Played key: the key nearest the carrier's pitch, reached through the voice's
    # transpose (24 = none, 0..48) when it lies within two octaves of the internal key.
    carrier_hz_q = op_hz(key, Operator(coarse=mult, fine=fine, detune=detune))
    # The key nearest the represented pitch (not the requested one, so that
    # exporting an imported voice chooses the same key).
    ideal = round(69 + 12 * math.log2(carrier_hz_q / 440.0))
    transpose = int(np.clip(24 + key - ideal, 0, 48))
    played = key + 24 - transpose
    if not 0 <= played <= 127:
        raise InputError(
            f"carrier_hz {p.carrier_hz:g}: the voice would need MIDI key {played}"
        )
    if mult > 1:
        notes.append(
            f"ratios below 0.5: carrier at coarse {mult}, played "
            f"{played - key} semitones above its internal key {key}"
        )
    carrier_op_ratio = op_ratio(mult, fine)
    entries = [
        Quantised(
            "carrier_hz",
            "Hz",
            p.carrier_hz,
            carrier_hz_q,
            f"key {played}, transpose {transpose - 24:+d}, coarse {mult}, fine "
            f"{fine}, detune {detune - 7:+d}",
        )
    ]
    mod_ops = []
    for i, m in enumerate(p.modulators, start=1):
        target = m.ratio * carrier_op_ratio
        scaled = m.ratio * mult
        exact = [c for c in range(32) if abs(_COARSE[c] - scaled) <= 1e-9 * scaled]
        fixed = scaled < 0.5 * (1 - 1e-9)
        if fixed:
            coarse, ofine = _fixed_op(m.ratio * carrier_hz_q)
            odet = 7
            notes.append(
                f"OP{i + 1} at {m.ratio * carrier_hz_q:.3g} Hz is below the DX7's "
                "lowest ratio at this key: fixed-frequency mode"
            )
        elif exact:
            coarse, ofine, odet = exact[0], fine, detune
        else:
            coarse, ofine, odet, _ = _best_op(
                target * 2 ** (_DETUNE[key, detune] / 1200), key
            )
        op = Operator(
            coarse=coarse, fine=ofine, detune=odet, fixed_frequency=int(fixed)
        )
        op_freq = op_hz(key, op)
        entries.append(
            Quantised(
                f"ratio_{i}",
                "ratio",
                m.ratio,
                op_freq / carrier_hz_q,
                f"OP{i + 1} {'fixed ' if fixed else ''}coarse {coarse}, fine {ofine}, "
                f"detune {odet - 7:+d}",
            )
        )
        level = _nearest(_INDEX, m.index)
        entries.append(
            Quantised(
                f"index_{i}",
                "rad",
                m.index,
                float(_INDEX[level]),
                f"OP{i + 1} output level {level}",
                clipped=not _INDEX.min() <= m.index <= _INDEX.max(),
            )
        )
        mod_ops.append(_modulator_voice_op(coarse, ofine, odet, level, fixed))
    # Carrier: output level, EG.
    ol = _nearest(_OL_GAIN, p.level)
    entries.append(
        Quantised(
            "level",
            "gain",
            p.level,
            float(_OL_GAIN[ol]),
            f"OP1 output level {ol}",
            clipped=p.level > 1.0,
        )
    )
    e = p.envelope
    sus_level = _nearest(_EG_GAIN, e.sustain)
    s_q = float(_EG_GAIN[sus_level])
    curve = e.curve
    r1 = rate_for_time("attack", e.attack_s, sustain=s_q)
    r2 = rate_for_time("decay", e.decay_s, sustain=s_q, curve=curve)
    r4 = rate_for_time("release", e.release_s, sustain=s_q, curve=curve)
    for pname, kind, value, rate in (
        ("attack_s", "attack", e.attack_s, r1),
        ("decay_s", "decay", e.decay_s, r2),
    ):
        entries.append(
            Quantised(
                pname,
                "s",
                value,
                time_for_rate(kind, rate, sustain=s_q, curve=curve),
                f"OP1 R{1 if kind == 'attack' else 2} {rate}",
            )
        )
    entries.append(
        Quantised("sustain", "level", e.sustain, s_q, f"OP1 L2 = L3 = {sus_level}")
    )
    entries.append(
        Quantised(
            "release_s",
            "s",
            e.release_s,
            time_for_rate("release", r4, sustain=s_q, curve=curve),
            f"OP1 R4 {r4}",
        )
    )
    if sus_level == 99:
        notes.append("sustain rounds to EG level 99: decay_s has no effect")
    carrier = Operator(
        rates=(r1, r2, 99, r4),
        levels=(99, sus_level, sus_level, 0),
        output_level=ol,
        coarse=mult,
        fine=fine,
        detune=detune,
    )
    vname = voice_name("FMLIB" if name is None else name, played)
    voice = Voice(
        operators=(carrier, *mod_ops),
        algorithm=DX7_ALGORITHM,
        feedback=0,
        osc_key_sync=1,
        transpose=transpose,
        name=vname,
    )
    report = QuantisationReport(tuple(entries), played, vname, tuple(notes))
    return voice, report


def played_key(voice: Voice) -> int | None:
    """The key stored in the voice name (``K###``), or None."""
    m = _KEY_IN_NAME.search(voice.name.rstrip())
    return int(m.group(1)) if m else None


def why_not_representable(voice: Voice) -> str | None:
    """One line saying why ``voice`` has no fmlib patch, or None when it has one."""
    if voice.algorithm != DX7_ALGORITHM:
        return f"algorithm {voice.algorithm}; fmlib's dx7_18 is DX7 algorithm 18 only"
    if voice.feedback != 0:
        return f"OP3 feedback {voice.feedback}; fmlib's dx7_18 has no feedback (0)"
    c = voice.operators[0]
    if c.levels[3] != 0:
        return f"OP1 EG level 4 is {c.levels[3]}: the note never ends (must be 0)"
    if c.levels[0] == 0:
        return "OP1 EG level 1 is 0: the carrier never sounds"
    return None


#: Envelope curve of an imported voice: exponential, as a DX7's EG moves (straight
#: lines in dB). Measured against Dexed's renders of 40 exported random paper-range
#: patches (seed 2026), the median log-mel distance of fmlib's render of the
#: imported voice is 16.3 against 18.5 for a linear import, and lower on 40 of 40
#: voices (docs/DX7.md). A voice whose exponential decay or release would exceed
#: the valid 60 s (rates below about 18) is imported linear instead.
IMPORT_CURVE = "exponential"


def voice_to_patch(voice: Voice, *, curve: str | None = None) -> Patch:
    """The nearest fmlib ``dx7_18`` patch to a DX7 algorithm-18 voice.

    Exact inverse of :func:`patch_to_voice` on its voices (within quantisation).
    For other voices: the modulators' index is their output level's index times
    their EG's sustain (L3) gain; the carrier's level is its output level's gain
    times its L1 gain; attack = R1, decay = R2 to L3, release = R4; keyboard
    scaling, velocity, LFO and pitch EG are ignored. Every operator's frequency
    (ratio or fixed mode) is taken at the key in the name (``K###``, else
    :data:`DEFAULT_KEY`) and the voice's transpose.

    Args:
        voice: The voice.
        curve: The patch's envelope curve (:data:`fmlib.synth.params.ENVELOPE_CURVES`);
            None: :data:`IMPORT_CURVE`, or linear when that curve's decay or
            release time would exceed the renderer's valid range.

    Raises:
        InputError: one line saying why the voice cannot be represented.
    """
    why = why_not_representable(voice)
    if why:
        raise InputError(f"voice {voice.name.rstrip()!r}: {why}")
    key = played_key(voice)
    key = DEFAULT_KEY if key is None else key
    internal = key + voice.transpose - 24
    if not 0 <= internal <= 127:
        raise InputError(
            f"voice {voice.name.rstrip()!r}: key {key} with transpose "
            f"{voice.transpose - 24:+d} is outside the keyboard"
        )
    c = voice.operators[0]
    carrier_hz = op_hz(internal, c)
    modulators = []
    for op in voice.operators[1:]:
        ratio = op_hz(internal, op) / carrier_hz
        index = float(_INDEX[op.output_level] * _EG_GAIN[op.levels[2]])
        modulators.append({"ratio": ratio, "index": index})
    peak = float(_EG_GAIN[c.levels[0]])
    sustain = float(_EG_GAIN[c.levels[2]]) / peak
    sustain = min(sustain, 1.0)
    if curve is None:
        curve = IMPORT_CURVE
        if not all(
            spec.is_valid(time_for_rate(kind, rate, sustain=sustain, curve=curve))
            for kind, rate, spec in (
                ("decay", c.rates[1], P.DECAY),
                ("release", c.rates[3], P.RELEASE),
            )
        ):
            curve = P.DEFAULT_ENVELOPE_CURVE
    envelope = {
        "attack_s": time_for_rate("attack", c.rates[0], sustain=sustain),
        "decay_s": time_for_rate("decay", c.rates[1], sustain=sustain, curve=curve),
        "sustain": sustain,
        "release_s": time_for_rate("release", c.rates[3], sustain=sustain, curve=curve),
        "curve": curve,
    }
    d = {
        "algorithm": "dx7_18",
        "carrier_hz": carrier_hz,
        "modulators": modulators,
        "envelope": envelope,
        "level": float(_OL_GAIN[c.output_level]) * peak,
    }
    try:
        return patch_from_dict(d)
    except InputError as exc:
        raise InputError(f"voice {voice.name.rstrip()!r}: {exc}") from None


# --------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------


def save_syx(
    patches: Patch | dict | Iterable[Patch | dict],
    path: str | os.PathLike,
    *,
    names: Sequence[str] | None = None,
) -> Path:
    """Write one patch as a single-voice dump, 2..32 patches as a 32-voice bank.

    Args:
        patches: A patch (or dict), or a sequence of 1..32 of them.
        path: Destination ``.syx``; written atomically, its folder must exist.
        names: Optional voice-name stems, one per patch (6 characters kept).

    Returns:
        The path written.
    """
    if isinstance(patches, (Patch, dict)):
        patches = [patches]
    patches = list(patches)
    if not 1 <= len(patches) <= BANK_VOICES:
        raise InputError(f"give 1..32 patches for a .syx file, got {len(patches)}")
    names = list(names) if names is not None else [None] * len(patches)
    voices = [patch_to_voice(p, name=n)[0] for p, n in zip(patches, names, strict=True)]
    blob = voice_sysex(voices[0]) if len(voices) == 1 else bank_sysex(voices)
    return write_bytes_atomic(path, blob)


def load_syx(path: str | os.PathLike, *, skip: bool = False) -> list[Patch]:
    """Read a ``.syx`` file and convert its voices to fmlib patches.

    Bank slots holding exactly :data:`INIT_VOICE` (the padding of
    :func:`save_syx`) are skipped.

    Args:
        path: A single-voice dump or a 32-voice bank.
        skip: Skip voices that fmlib cannot represent instead of raising.

    Raises:
        InputError: a bad file, or (unless ``skip``) a voice that is not
            algorithm 18 with OP3 feedback 0 (one line saying why).
    """
    out = []
    for i, v in enumerate(read_syx(path), start=1):
        if v == INIT_VOICE:
            continue
        try:
            out.append(voice_to_patch(v))
        except InputError as exc:
            if not skip:
                raise InputError(f"{path}: voice {i}: {exc}") from None
    return out


__all__ = [
    "INIT_VOICE",
    "Operator",
    "QuantisationReport",
    "Quantised",
    "Voice",
    "bank_sysex",
    "checksum",
    "load_syx",
    "pack_voice",
    "parse_sysex",
    "patch_to_voice",
    "read_syx",
    "save_syx",
    "unpack_voice",
    "voice_from_bytes",
    "voice_sysex",
    "voice_to_bytes",
    "voice_to_patch",
    "why_not_representable",
]
