"""Measure the DX7 tables of :mod:`fmlib.synth.dx7_tables` from the Dexed engine
(dexed-py).

Every number fmlib's DX7 export uses to convert between its units and DX7 parameter
values is measured here by rendering single operators or two-operator stacks in Dexed
at 48 kHz and analysing the audio; nothing is typed in from memory. The script writes
``fmlib/synth/dx7_tables.py`` (plain Python literals, so fmlib never needs dexed-py at
run time) and prints the checks behind the model the export assumes.

Every voice is DX7 algorithm 18 (dexed-py's 0-based 17), feedback 0, LFO and pitch EG
neutral, velocity sensitivity 0, every operator at output level 0 except the ones
measured, EG rates 99 and levels 99/99/99/0 unless stated.

What is measured (``OP1`` is the carrier, ``OP2`` a modulator feeding it):

* ``KEY_HZ``: frequency of OP1 (coarse 1, fine 0, detune 7) for MIDI keys 0..127,
  from the slope of the unwrapped phase of the analytic signal (Hilbert transform).
* ``DETUNE_CENTS``: frequency change, cents, of detune 0..14 against 7, per key.
  Checked at coarse 0 and 8 on a few keys (printed): it depends on the key only.
* ``FIXED_HZ``: OP1's frequency in fixed-frequency mode for coarse 0..3 and fine
  0..99 (checked on other keys: printed).
* ``OUTPUT_LEVEL_GAIN``: OP1's steady amplitude for output level 0..99, relative to
  level 99 (``FULL_SCALE``, absolute, Dexed's output for level 99).
* ``EG_LEVEL_GAIN``: OP1's sustain amplitude for EG level 0..99 (L2 = L3), relative
  to 99.
* ``MOD_INDEX_RAD``: the modulation index (radians of phase deviation) OP2 gives OP1
  for OP2 output level 0..99. OP1 runs at coarse 31 and OP2 at coarse 1 on key 24,
  so the sidebands ``(31 + n) f`` never fold over 0 Hz; their amplitudes, normalised,
  are fitted by ``|J_n(beta)|`` (Bessel functions of the first kind).
* ``ATTACK_TIME_S``: time from note-on until OP1's amplitude first reaches 99 % of
  its final value, EG L4 = 0 -> L1 = 99 at rate R1 = 0..99; ``ATTACK_SHAPE``: the
  amplitude at 0, 1/64, ..., 1 of that time, measured at ``SHAPE_RATE``.
* ``DECAY_DB_PER_S``: slope (dB per second, > 0) of OP1's falling EG, L1 = 99 ->
  L2 = 0 at rate R2, fitted between -3 dB and -40 dB (or the end of a 120 s note).
  Release (R4) is checked to use the same slope (printed).

Usage::

    .venv/bin/python tools/measure_dx7_tables.py [--out fmlib/synth/dx7_tables.py]

Takes about a minute on one core. dexed-py is GPL-3 and a dev extra: this tool runs
it as a measuring instrument; the generated file holds only measured numbers.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import os
import sys
from pathlib import Path

import numpy as np
from scipy.signal import hilbert
from scipy.special import jv

try:
    import dexed
except ImportError:  # pragma: no cover - a dev extra
    sys.exit("error: dexed-py is not installed (pip install -e '.[dev]')")

SR = 48_000
ALG18 = 17  # DX7 algorithm 18, dexed-py's 0-based numbering
SHAPE_RATE = 40
SHAPE_POINTS = 65
ROOT = Path(__file__).resolve().parent.parent


def voice(**ops) -> dexed.Patch:
    """A neutral algorithm-18 voice; ``ops`` maps ``"op1"``.. to dicts of settings."""
    p = dexed.Patch("MEASURE")
    p.algorithm = ALG18
    p.feedback = 0
    p.transpose = 24
    for i in range(6):
        op = p.op[i]
        op.output_level = 0
        op.envelope.rates = [99, 99, 99, 99]
        op.envelope.levels = [99, 99, 99, 0]
    for name, settings in ops.items():
        op = p.op[int(name[2:]) - 1]
        for key, value in settings.items():
            if key in ("rates", "levels"):
                setattr(op.envelope, key, list(value))
            else:
                setattr(op, key, value)
    return p


_SYNTH = dexed.DexedSynth(SR)


def render(p: dexed.Patch, *, key=69, note_off_s=3.0, duration_s=4.0) -> np.ndarray:
    _SYNTH.load_patch(p)
    return _SYNTH.render(key, 127, note_off_s, duration_s).astype(np.float64)


def frequency_hz(y: np.ndarray) -> float:
    """Frequency of a pure tone from its analytic phase's linear fit, Hz."""
    ph = np.unwrap(np.angle(hilbert(y)))[2000:-2000]
    t = np.arange(ph.size) / SR
    return float(np.polyfit(t, ph, 1)[0] / (2 * np.pi))


def amplitude(y: np.ndarray) -> float:
    """Amplitude of a steady sine: sqrt(2) x RMS."""
    return float(np.sqrt(2.0 * np.mean(y * y)))


def analytic_amplitude(y: np.ndarray) -> np.ndarray:
    """|analytic signal| of ``y``; 0.1 s of silence is padded on both sides so the
    transform's edges fall outside the note (the note starts at sample 0)."""
    pad = SR // 10
    a = np.abs(hilbert(np.concatenate([np.zeros(pad), y, np.zeros(pad)])))
    return a[pad:-pad]


def envelope_db(y: np.ndarray) -> np.ndarray:
    return 20 * np.log10(np.maximum(analytic_amplitude(y), 1e-9))


def measure_keys() -> list[float]:
    out = []
    for key in range(128):
        y = render(voice(op1={"output_level": 99}), key=key, duration_s=1.0)
        out.append(frequency_hz(y[12000:]))
    return out


def measure_detune(key_hz: list[float]) -> list[list[float]]:
    table = []
    for key in range(128):
        row = []
        for det in range(15):
            y = render(
                voice(op1={"output_level": 99, "detune": det}), key=key, duration_s=1.0
            )
            row.append(1200 * np.log2(frequency_hz(y[12000:]) / key_hz[key]))
        table.append(row)
    # Check: the same cents at other coarse settings (the offset depends on the key).
    worst = 0.0
    for key in (24, 45, 69, 100):
        for coarse in (0, 8):
            ratio = 0.5 if coarse == 0 else float(coarse)
            for det in (0, 4, 10, 14):
                y = render(
                    voice(
                        op1={
                            "output_level": 99,
                            "detune": det,
                            "frequency_coarse": coarse,
                        }
                    ),
                    key=key,
                    duration_s=2.5,
                )
                c = 1200 * np.log2(frequency_hz(y[12000:]) / (key_hz[key] * ratio))
                worst = max(worst, abs(c - table[key][det]))
    print(
        f"detune: largest deviation at coarse 0/8 from the coarse-1 table: "
        f"{worst:.3f} cents"
    )
    return table


def measure_fixed() -> list[list[float]]:
    """Frequency, Hz, of OP1 in fixed-frequency mode, coarse 0..3 x fine 0..99."""
    table = []
    for coarse in range(4):
        row = []
        for fine in range(100):
            settings = {
                "output_level": 99,
                "frequency_mode": 1,
                "frequency_coarse": coarse,
                "frequency_fine": fine,
            }
            y = render(voice(op1=settings), key=69, duration_s=3.0)
            row.append(frequency_hz(y[12000:]))
        table.append(row)
    worst = 0.0
    for coarse, fine in ((0, 50), (1, 0), (2, 33), (3, 99)):
        for key in (30, 100):
            settings = {
                "output_level": 99,
                "frequency_mode": 1,
                "frequency_coarse": coarse,
                "frequency_fine": fine,
            }
            y = render(voice(op1=settings), key=key, duration_s=3.0)
            f = frequency_hz(y[12000:])
            worst = max(worst, abs(1200 * np.log2(f / table[coarse][fine])))
    print(f"fixed frequency: largest change with the key: {worst:.3f} cents")
    return table


def measure_output_levels() -> tuple[float, list[float]]:
    amps = []
    for level in range(100):
        y = render(voice(op1={"output_level": level}))
        amps.append(amplitude(y[48_000:144_000]))
    full = amps[99]
    return full, [a / full for a in amps]


def measure_eg_levels() -> list[float]:
    amps = []
    for level in range(100):
        y = render(voice(op1={"output_level": 99, "levels": [99, level, level, 0]}))
        amps.append(amplitude(y[48_000:144_000]))
    return [a / amps[99] for a in amps]


def fit_index(y: np.ndarray, f_mod: float, f_car: float) -> float:
    """Modulation index from the sideband amplitudes at f_car + n f_mod."""
    seg = y * np.hanning(y.size)
    spec = np.abs(np.fft.rfft(seg))
    n = np.arange(-25, 26)
    bins = np.round((f_car + n * f_mod) * y.size / SR).astype(int)
    amps = np.array([spec[b - 3 : b + 4].max() for b in bins])
    amps /= np.linalg.norm(amps)
    beta, model = _bessel_model()
    err = ((model - amps[None, :]) ** 2).sum(axis=1)
    return float(beta[np.argmin(err)])


@functools.lru_cache(maxsize=1)
def _bessel_model() -> tuple[np.ndarray, np.ndarray]:
    """|J_n(beta)| for n = -25..25 on a 0.001 rad grid of beta, rows normalised."""
    n = np.arange(-25, 26)
    beta = np.linspace(0.0, 30.0, 30001)
    model = np.abs(jv(n[None, :], beta[:, None]))
    model /= np.linalg.norm(model, axis=1, keepdims=True)
    return beta, model


def measure_mod_index(key_hz: list[float]) -> list[float]:
    key = 24
    f_mod, f_car = key_hz[key], 31 * key_hz[key]
    out = []
    for level in range(100):
        p = voice(
            op1={"output_level": 99, "frequency_coarse": 31},
            op2={"output_level": level, "frequency_coarse": 1},
        )
        y = render(p, key=key)[48_000:168_000]
        out.append(fit_index(y, f_mod, f_car))
    # Checks: OP4 -> OP1 gives the same index; the EG level scales it like the
    # carrier's EG level scales amplitude.
    for level in (50, 80, 99):
        p = voice(
            op1={"output_level": 99, "frequency_coarse": 31},
            op4={"output_level": level, "frequency_coarse": 1},
        )
        b = fit_index(render(p, key=key)[48_000:168_000], f_mod, f_car)
        print(f"mod index: OP4 at level {level}: {b:.4f} rad (OP2: {out[level]:.4f})")
    return out


def check_eg_scales_index(mod_index: list[float], eg_gain: list[float], key_hz):
    key = 24
    f_mod, f_car = key_hz[key], 31 * key_hz[key]
    for eg in (60, 80, 90):
        p = voice(
            op1={"output_level": 99, "frequency_coarse": 31},
            op2={"output_level": 99, "frequency_coarse": 1, "levels": [99, eg, eg, 0]},
        )
        b = fit_index(render(p, key=key)[48_000:168_000], f_mod, f_car)
        print(
            f"mod index: OP2 level 99, EG level {eg}: {b:.4f} rad; "
            f"index(99) x EG gain = {mod_index[99] * eg_gain[eg]:.4f}"
        )


def _attack_curve(rate: int) -> tuple[np.ndarray, float]:
    """Hilbert amplitude of an attack at ``rate`` and its 99 % time."""
    duration = 2.0
    while True:
        p = voice(
            op1={
                "output_level": 99,
                "frequency_coarse": 4,
                "rates": [rate, 99, 99, 99],
                "levels": [99, 99, 99, 0],
            }
        )
        y = render(p, key=69, note_off_s=duration, duration_s=duration)
        a = analytic_amplitude(y)
        final = np.median(a[-SR // 10 : -SR // 50])
        reached = np.flatnonzero(a >= 0.99 * final)
        if reached.size and reached[0] < a.size - SR // 5 and final > 0.9:
            return a / final, reached[0] / SR
        if duration >= 240:
            raise RuntimeError(f"attack rate {rate} did not finish in {duration} s")
        duration *= 2


def measure_attack() -> tuple[list[float], list[float]]:
    times = [_attack_curve(r)[1] for r in range(100)]
    curve, t_end = _attack_curve(SHAPE_RATE)
    u = np.linspace(0.0, 1.0, SHAPE_POINTS)
    idx = np.minimum((u * t_end * SR).round().astype(int), curve.size - 1)
    shape = curve[idx]
    shape = np.clip(shape, 0.0, 1.0)
    # Check: the shape at other rates, each scaled to its own time.
    worst = 0.0
    for r in (20, 30, 50, 60, 70):
        c, t = _attack_curve(r)
        i = np.minimum((u * t * SR).round().astype(int), c.size - 1)
        worst = max(worst, float(np.max(np.abs(np.clip(c[i], 0, 1) - shape))))
    print(f"attack: largest shape deviation at rates 20..70: {worst:.3f} (amplitude)")
    return times, [float(v) for v in shape]


def _falling_slope(y: np.ndarray, start: int) -> float:
    """dB/s between the first -3 dB and -40 dB crossings after ``start`` (a line
    fit over that span when it is long, the two crossing times when it is short)."""
    d = envelope_db(y)[start:]
    below3 = np.flatnonzero(d <= -3.0)
    if not below3.size:
        raise RuntimeError("the envelope never fell 3 dB")
    i0 = below3[0]
    below40 = np.flatnonzero(d[i0:] <= -40.0)
    i1 = i0 + below40[0] if below40.size else d.size - SR // 20
    if i1 - i0 >= 200:
        t = np.arange(i0, i1) / SR
        return float(-np.polyfit(t, d[i0:i1], 1)[0])
    # Fast rates fall within one or two EG blocks: time the whole fall from the
    # first sample below -0.1 dB, at least one sample.
    j0 = min(np.flatnonzero(d <= -0.1)[0], i1 - 1)
    return float((d[j0] - d[i1]) / ((i1 - j0) / SR))


def measure_decay() -> list[float]:
    slopes = []
    for rate in range(100):
        duration = 4.0
        while True:
            p = voice(
                op1={
                    "output_level": 99,
                    "frequency_coarse": 4,
                    "rates": [99, rate, 99, 99],
                    "levels": [99, 0, 0, 0],
                }
            )
            y = render(p, key=69, note_off_s=duration, duration_s=duration)
            d = envelope_db(y)
            if d[-SR // 10 :].max() < -40 or duration >= 120:
                break
            duration *= 2
        # The fall starts at the attack's peak (R1 = 99: about 1.4 ms).
        peak = int(np.argmax(analytic_amplitude(y[: SR // 50])))
        slopes.append(_falling_slope(y, peak))
    # Check: the release (R4) falls at the decay's slope, from 99 and from 70.
    worst = 0.0
    for rate in (30, 50, 70, 85):
        for sus in (99, 70):
            p = voice(
                op1={
                    "output_level": 99,
                    "frequency_coarse": 4,
                    "rates": [99, 99, 99, rate],
                    "levels": [99, sus, sus, 0],
                }
            )
            y = render(p, key=69, note_off_s=1.0, duration_s=30.0)
            d = envelope_db(y)[SR:]
            start = d[0]
            t = np.arange(d.size) / SR
            sel = (d <= start - 3) & (d >= -40) & (np.cumsum(d <= -40) == 0)
            s = float(-np.polyfit(t[sel], d[sel], 1)[0])
            worst = max(worst, abs(s / slopes[rate] - 1))
    print(f"release: largest relative slope deviation from the decay's: {worst:.3%}")
    return slopes


def _fmt(values, per_line=8, digits=6) -> str:
    items = [f"{v:.{digits}g}" for v in values]
    lines = [
        "    " + ", ".join(items[i : i + per_line]) + ","
        for i in range(0, len(items), per_line)
    ]
    return "(\n" + "\n".join(lines) + "\n)"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "fmlib" / "synth" / "dx7_tables.py"))
    args = ap.parse_args()
    key_hz = measure_keys()
    dev = [
        1200 * np.log2(f / (440 * 2 ** ((k - 69) / 12))) for k, f in enumerate(key_hz)
    ]
    print(
        f"keys: largest deviation from 440 Hz equal temperament: "
        f"{max(map(abs, dev)):.3f} cents"
    )
    detune = measure_detune(key_hz)
    fixed = measure_fixed()
    full, ol_gain = measure_output_levels()
    eg_gain = measure_eg_levels()
    mod_index = measure_mod_index(key_hz)
    check_eg_scales_index(mod_index, eg_gain, key_hz)
    attack_t, shape = measure_attack()
    decay = measure_decay()
    version = getattr(dexed, "__version__", "") or "0.3.0"
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
    detune_rows = ",\n".join(
        "    (" + ", ".join(f"{c:.4g}" for c in row) + ")" for row in detune
    )
    fixed_rows = ",\n".join("    " + _fmt(row, digits=7) for row in fixed)
    text = f'''"""DX7 tables measured from the Dexed engine; GENERATED, do not edit.

Written by ``tools/measure_dx7_tables.py`` (dexed-py {version}, 48 kHz, {stamp});
rerun it to regenerate. Every value is a measurement of Dexed's audio (see that
script's docstring for how), used by :mod:`fmlib.synth.dx7` to convert fmlib units to
DX7 parameter values and back. Indices are DX7 parameter values (0..99, keys 0..127).
"""

#: Dexed's output amplitude for one carrier at output level 99, EG level 99.
FULL_SCALE = {full:.6g}

#: Frequency, Hz, of MIDI key k (coarse 1, fine 0, detune 7, transpose 24).
KEY_HZ: tuple[float, ...] = {_fmt(key_hz, digits=9)}

#: Frequency offset, cents, of detune d (0..14) against 7, at MIDI key k:
#: ``DETUNE_CENTS[k][d]``.
DETUNE_CENTS: tuple[tuple[float, ...], ...] = (
{detune_rows},
)

#: Frequency, Hz, of an operator in fixed-frequency mode: ``FIXED_HZ[coarse][fine]``
#: for coarse 0..3 (the DX7 uses coarse modulo 4) and fine 0..99, detune 7.
FIXED_HZ: tuple[tuple[float, ...], ...] = (
{fixed_rows},
)

#: Carrier amplitude for output level 0..99, relative to level 99.
OUTPUT_LEVEL_GAIN: tuple[float, ...] = {_fmt(ol_gain)}

#: Operator amplitude for EG level 0..99 (sustain), relative to level 99.
EG_LEVEL_GAIN: tuple[float, ...] = {_fmt(eg_gain)}

#: Modulation index, radians, of a modulator at output level 0..99 (EG level 99).
MOD_INDEX_RAD: tuple[float, ...] = {_fmt(mod_index)}

#: Time, s, from note-on to 99 % of full amplitude, EG 0 -> 99 at rate 0..99.
ATTACK_TIME_S: tuple[float, ...] = {_fmt(attack_t)}

#: Attack amplitude (0..1) at 0, 1/{SHAPE_POINTS - 1}, ..., 1 of ATTACK_TIME_S
#: (measured at rate {SHAPE_RATE}).
ATTACK_SHAPE: tuple[float, ...] = {_fmt(shape, digits=4)}

#: Slope, dB per second, of a falling EG (decay or release) at rate 0..99.
DECAY_DB_PER_S: tuple[float, ...] = {_fmt(decay)}
'''
    out = Path(args.out)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
