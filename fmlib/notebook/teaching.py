"""Helpers of the FM lesson in notebook 01: PM against FM, Bessel sidebands, C:M
ratios, Carson's rule and aliasing, each measured on fmlib's own synthesizer.

Every sound is rendered by :func:`fmlib.synth.engine.render` from a two-operator patch
(:func:`two_operator_patch`: only modulator M1 active, on the carrier), so what a
student hears is what the dataset and the CNN see. The closed forms (Chowning's
Bessel sidebands, Carson's rule, the folding of frequencies) are computed next to
the measurements so the notebook can put theory and measurement side by side, and
``tests/test_teaching.py`` checks them against each other.

Audio arrays are float32 of shape (n,) at 16 kHz
(:data:`fmlib.synth.params.SAMPLE_RATE`) unless said otherwise; frequencies in Hz;
modulation indices in radians.

Why one module of about 600 lines: each lesson of notebook 01 is a pair (a
measurement and its plot) that only makes sense together; splitting measurements
from plots would scatter one lesson over two files.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import scipy.integrate
import scipy.special

from fmlib.errors import InputError
from fmlib.notebook.plots import magnitude_spectrum, measure_sidebands
from fmlib.synth import params as P
from fmlib.synth.engine import render
from fmlib.synth.patch import Patch, patch_from_dict

#: A steady envelope: 5 ms attack, full sustain, so a 1 s note is a steady tone.
STEADY_ENVELOPE = {
    "attack_s": 0.005,
    "decay_s": 0.02,
    "sustain": 1.0,
    "release_s": 0.05,
}


# ----------------------------------------------------------------- the patch
def two_operator_patch(
    beta: float,
    *,
    carrier_hz: float = 2000.0,
    ratio: float = 0.125,
    sustain: float = 1.0,
) -> Patch:
    """The simplest FM voice: y(t) = sin(2 pi f_c t + beta sin(2 pi ratio f_c t)).

    Only modulator M1 is active (index ``beta``); the others have index 0, so the
    algorithm does not matter. The default 2000 Hz carrier with ratio 1/8 (f_m =
    250 Hz) keeps sidebands up to order 7 inside (0, 8000) Hz and on whole-Hz bins.

    Args:
        beta: Modulation index, rad (0 to :data:`fmlib.synth.params.INDEX`
        ``valid_high``). carrier_hz: Carrier frequency, Hz.
        ratio: Modulator frequency over carrier frequency.
        sustain: Sustain level of the envelope (1.0: a steady tone).

    Returns:
        A validated :class:`~fmlib.synth.patch.Patch`.
    """
    mods = [{"ratio": ratio, "index": beta}] + [{"ratio": 1.0, "index": 0.0}] * (
        P.N_MODULATORS - 1
    )
    env = {**STEADY_ENVELOPE, "sustain": sustain}
    return patch_from_dict(
        {"carrier_hz": carrier_hz, "modulators": mods, "envelope": env}
    )


def steady_tone(
    beta: float,
    *,
    carrier_hz: float = 2000.0,
    ratio: float = 0.125,
    duration_s: float = 1.0,
) -> np.ndarray:
    """A steady two-operator tone (no release inside ``duration_s``).

    Returns:
        float32 array of shape (round(duration_s * 16000),).
    """
    patch = two_operator_patch(beta, carrier_hz=carrier_hz, ratio=ratio)
    return render(patch, duration_s=duration_s, note_off_s=duration_s + 1.0)


# ----------------------------------------------------------------- PM and FM
def pm_signal(
    t: np.ndarray,
    *,
    carrier_hz: float,
    modulator_hz: float,
    beta: float,
    offset: float = 0.0,
) -> np.ndarray:
    """Phase modulation, as in the DX7 and fmlib.

    y(t) = sin(2 pi f_c t + beta (sin(2 pi f_m t) + offset)): the modulator is
    added to the carrier's *phase*.

    Args:
        t: Times, s, shape (n,).
        offset: A constant (DC) added to the modulator, e.g. from feedback or an
            asymmetric waveform. In PM it only shifts the phase: same pitch.

    Returns:
        float64 array of shape (n,).
    """
    t = np.asarray(t, dtype=np.float64)
    modulator = np.sin(2 * np.pi * modulator_hz * t) + offset
    return np.sin(2 * np.pi * carrier_hz * t + beta * modulator)


def fm_signal(
    t: np.ndarray,
    *,
    carrier_hz: float,
    modulator_hz: float,
    deviation_hz: float,
    offset: float = 0.0,
) -> np.ndarray:
    """Frequency modulation: the modulator is added to the carrier's *frequency*.

    The instantaneous frequency is f(t) = f_c + deviation (cos(2 pi f_m t) +
    offset), and the phase is its integral, 2 pi int_0^t f(u) du (computed
    numerically with the trapezoid rule, as a textbook FM oscillator does). With
    ``deviation = beta f_m`` this is exactly :func:`pm_signal` with index beta: the
    integral of cos is sin / (2 pi f_m). A DC ``offset`` here *detunes* the carrier
    by ``deviation * offset`` Hz.

    Args:
        t: Times, s, shape (n,), increasing, starting at 0, finely sampled (the
            integral is numerical).

    Returns:
        float64 array of shape (n,).
    """
    t = np.asarray(t, dtype=np.float64)
    freq = carrier_hz + deviation_hz * (np.cos(2 * np.pi * modulator_hz * t) + offset)
    phase = 2 * np.pi * scipy.integrate.cumulative_trapezoid(freq, t, initial=0.0)
    return np.sin(phase)


def fm_index(deviation_hz: float, modulator_hz: float) -> float:
    """The modulation index of FM with a given frequency deviation: deviation / f_m.

    In FM a fixed deviation gives a *different* index, hence a different timbre,
    for every modulator frequency; in PM the index is the knob itself.
    """
    return float(deviation_hz) / float(modulator_hz)


def peak_frequency(
    audio: np.ndarray, *, sample_rate: int = P.SAMPLE_RATE, min_hz: float = 0.0
) -> float:
    """Frequency of the strongest spectral line above ``min_hz``, Hz, refined by
    parabolic interpolation of the log-magnitude around the peak bin."""
    f, a = magnitude_spectrum(audio, sample_rate=sample_rate)
    valid = np.flatnonzero(f >= min_hz)
    k = int(valid[np.argmax(a[valid])])
    if 0 < k < len(a) - 1:
        lo, mid, hi = np.log(np.maximum(a[k - 1 : k + 2], 1e-300))
        denom = lo - 2 * mid + hi
        shift = 0.5 * (lo - hi) / denom if denom != 0 else 0.0
    else:
        shift = 0.0
    return float(f[k] + shift * (f[1] - f[0]))


# ----------------------------------------------------------------- Bessel sidebands
def bessel_levels(beta: float, orders) -> np.ndarray:
    """|J_n(beta)| for each order n: Chowning's sideband amplitudes.

    Returns:
        float64 array of shape (len(orders),), linear amplitudes.
    """
    return np.abs(scipy.special.jv(np.asarray(list(orders)), float(beta)))


def sideband_table(
    betas,
    *,
    carrier_hz: float = 2000.0,
    ratio: float = 0.125,
    max_order: int = 4,
):
    """Measured sideband amplitudes of steady two-operator tones next to |J_n(beta)|.

    Each tone is 1 s long, so with whole-Hz frequencies every partial sits on a bin.

    Returns:
        pandas DataFrame with one row per (beta, n), n in [-max_order, max_order]:
        ``beta``, ``n``, ``frequency_hz`` (f_c + n f_m), ``measured`` and
        ``bessel_abs`` (linear), ``error_db`` (20 log10 measured / theory, both
        floored at 1e-9).
    """
    import pandas as pd

    modulator_hz = carrier_hz * ratio
    orders = list(range(-max_order, max_order + 1))
    rows = []
    for beta in betas:
        tone = steady_tone(beta, carrier_hz=carrier_hz, ratio=ratio)
        measured = measure_sidebands(
            tone, carrier_hz=carrier_hz, modulator_hz=modulator_hz, orders=orders
        )
        theory = bessel_levels(beta, orders)
        for n, amp, want in zip(orders, measured, theory, strict=True):
            rows.append(
                {
                    "beta": float(beta),
                    "n": n,
                    "frequency_hz": carrier_hz + n * modulator_hz,
                    "measured": float(amp),
                    "bessel_abs": float(want),
                    "error_db": 20
                    * math.log10(max(float(amp), 1e-9) / max(float(want), 1e-9)),
                }
            )
    return pd.DataFrame(rows)


def beta_sweep(
    betas,
    *,
    carrier_hz: float = 440.0,
    ratio: float = 1.0,
    segment_s: float = 0.5,
    fade_s: float = 0.01,
) -> np.ndarray:
    """One audio clip of steady tones at increasing index, to *hear* sidebands appear.

    Args:
        betas: Indices, one segment each, in order.
        segment_s: Length of each segment, s.
        fade_s: Raised-cosine fade in and out of each segment, s (no clicks).

    Returns:
        float32 array of shape (len(betas) * round(segment_s * 16000),).
    """
    n = round(segment_s * P.SAMPLE_RATE)
    k = max(1, round(fade_s * P.SAMPLE_RATE))
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(k) / k)
    fade = np.ones(n)
    fade[:k], fade[n - k :] = ramp, ramp[::-1]
    segments = [
        steady_tone(b, carrier_hz=carrier_hz, ratio=ratio, duration_s=segment_s) * fade
        for b in betas
    ]
    return np.concatenate(segments).astype(np.float32)


# ----------------------------------------------------------------- C:M ratios
def sideband_frequencies(carrier_hz: float, ratio: float, orders) -> np.ndarray:
    """Where the sidebands of order n land: |f_c + n f_m|, negative ones reflected.

    A sideband below 0 Hz reappears at its absolute value (with inverted phase),
    which is why C:M = 1:2 fills in the odd harmonics from both sides.

    Returns:
        float64 array of shape (len(orders),), Hz.
    """
    n = np.asarray(list(orders), dtype=np.float64)
    return np.abs(carrier_hz + n * carrier_hz * ratio)


def fundamental_hz(
    carrier_hz: float, ratio: float, *, max_denominator: int = 16
) -> float | None:
    """The fundamental of a C:M tone, or None when it is inharmonic.

    With ratio = f_m / f_c = q / p in lowest terms, every partial
    |f_c + n f_m| = (f_c / p) |p + n q| is a whole multiple of f_c / p, and since
    gcd(p, q) = 1 no larger frequency divides them all: the fundamental is f_c / p.

    Args:
        ratio: f_m / f_c.
        max_denominator: Ratios that are not within 1e-9 of a fraction with a
            denominator this small count as inharmonic (sqrt(2), for example).

    Returns:
        Hz, or None.
    """
    frac = Fraction(ratio).limit_denominator(max_denominator)
    if abs(float(frac) - ratio) > 1e-9 * max(1.0, ratio):
        return None
    return carrier_hz / frac.denominator


def harmonic_numbers(carrier_hz: float, ratio: float, orders) -> np.ndarray | None:
    """The sidebands as multiples of :func:`fundamental_hz` (None if inharmonic).

    For C:M = 1:2 these are 1, 3, 5, ...: odd harmonics only, the clarinet's
    spectrum.

    Returns:
        int64 array of shape (len(orders),), or None.
    """
    f0 = fundamental_hz(carrier_hz, ratio)
    if f0 is None:
        return None
    return np.rint(sideband_frequencies(carrier_hz, ratio, orders) / f0).astype(
        np.int64
    )


# ----------------------------------------------------------------- Carson's rule
def carson_bandwidth(beta: float, modulator_hz: float) -> float:
    """Carson's rule: an FM tone's bandwidth is about 2 (beta + 1) f_m, Hz."""
    return 2.0 * (float(beta) + 1.0) * float(modulator_hz)


def bessel_bandwidth(beta: float, modulator_hz: float, *, fraction: float = 0.98):
    """Theoretical bandwidth holding ``fraction`` of the power: 2 N f_m, with N the
    fewest sideband pairs such that J_0^2 + 2 sum_{n=1..N} J_n^2 >= fraction.

    (The power of all sidebands, sum over n of J_n^2, is exactly 1.)

    Returns:
        Hz.
    """
    _check_fraction(fraction)
    power = scipy.special.jv(0, beta) ** 2
    n = 0
    while power < fraction:
        n += 1
        power += 2 * scipy.special.jv(n, beta) ** 2
    return 2.0 * n * float(modulator_hz)


def measured_bandwidth(
    audio: np.ndarray,
    *,
    carrier_hz: float,
    modulator_hz: float,
    fraction: float = 0.98,
    sample_rate: int = P.SAMPLE_RATE,
) -> float:
    """Bandwidth of a measured spectrum: 2 N f_m for the fewest sideband pairs N
    whose band [f_c - (N + 1/2) f_m, f_c + (N + 1/2) f_m] holds ``fraction`` of the
    signal's power (read from the Hann-windowed power spectrum).

    Args:
        audio: A steady tone, shape (n,).

    Returns:
        Hz.

    Raises:
        InputError: ``fraction`` outside (0, 1), or the band reaches 0 Hz or Nyquist
            before holding it (choose a higher carrier or a lower index).
    """
    _check_fraction(fraction)
    f, a = magnitude_spectrum(audio, sample_rate=sample_rate)
    power = a**2
    total = power.sum()
    n = 0
    while True:
        half = (n + 0.5) * modulator_hz
        if carrier_hz - half <= 0 or carrier_hz + half >= sample_rate / 2:
            raise InputError(
                f"the band around {carrier_hz:g} Hz reaches 0 Hz or Nyquist before "
                f"holding {fraction:.0%} of the power; choose a higher carrier or a "
                "lower index"
            )
        inside = power[(f > carrier_hz - half) & (f < carrier_hz + half)].sum()
        if inside >= fraction * total:
            return 2.0 * n * float(modulator_hz)
        n += 1


def _check_fraction(fraction: float) -> None:
    if not 0 < fraction < 1:
        raise InputError(f"fraction: {fraction!r} must lie strictly between 0 and 1")


# ----------------------------------------------------------------- aliasing
def alias_frequency(freq_hz, sample_rate: float):
    """Where a frequency lands after sampling at ``sample_rate``: folded into
    [0, sample_rate / 2] (f mod sr, mirrored above Nyquist).

    Args:
        freq_hz: Hz, a number or an array (negative frequencies fold like their
            absolute value).

    Returns:
        Same shape as ``freq_hz``, Hz.
    """
    f = np.mod(np.abs(np.asarray(freq_hz, dtype=np.float64)), sample_rate)
    folded = np.where(f > sample_rate / 2, sample_rate - f, f)
    return float(folded) if np.ndim(folded) == 0 else folded


def alias_table(
    beta: float, *, carrier_hz: float, ratio: float, max_order: int = 8, audio=None
):
    """Every sideband of a two-operator tone, where fmlib's renderer puts it.

    fmlib computes each operator at 48 kHz, low-passes (flat to 7.6 kHz, zero from
    8 kHz) and decimates to 16 kHz. A sideband above 24 kHz therefore folds at
    48 kHz first; if it lands below 8 kHz it survives the low-pass, an *alias*
    that no filter can remove afterwards.

    Args:
        beta: Index of M1, rad.
        carrier_hz: Carrier, Hz.
        ratio: f_m / f_c.
        max_order: Orders n in [-max_order, max_order].
        audio: The rendered steady tone (1 s, from :func:`steady_tone`); when given,
            the column ``measured`` holds the amplitude read at ``heard_hz``.

    Returns:
        pandas DataFrame, one row per order: ``n``, ``true_hz`` (f_c + n f_m,
        signed), ``at_48k_hz`` (folded at 48 kHz), ``heard_hz`` (where it sounds
        in the 16 kHz output, NaN when the low-pass removes it), ``aliased``
        (True when it sounds somewhere else than |true_hz|), ``bessel_abs``
        and, with ``audio``, ``measured``.
    """
    import pandas as pd

    orders = np.arange(-max_order, max_order + 1)
    true_hz = carrier_hz + orders * carrier_hz * ratio
    at_48k = alias_frequency(true_hz, P.RENDER_SAMPLE_RATE)
    kept = at_48k < P.SAMPLE_RATE / 2
    heard = np.where(kept, at_48k, np.nan)
    table = pd.DataFrame(
        {
            "n": orders,
            "true_hz": true_hz,
            "at_48k_hz": at_48k,
            "heard_hz": heard,
            "aliased": kept & ~np.isclose(at_48k, np.abs(true_hz)),
            "bessel_abs": bessel_levels(beta, orders),
        }
    )
    if audio is not None:
        f, a = magnitude_spectrum(audio)
        df = f[1] - f[0]
        table["measured"] = [
            float(a[max(int(round(h / df)) - 1, 0) : int(round(h / df)) + 2].max())
            if np.isfinite(h)
            else np.nan
            for h in heard
        ]
    return table


# ----------------------------------------------------------------- listening
#: C:M listening examples: (label, ratio f_m / f_c), harmonic first.
CM_EXAMPLES: tuple[tuple[str, float], ...] = (
    ("1:1, every harmonic (brassy)", 1.0),
    ("1:2, odd harmonics (clarinet-like)", 2.0),
    ("1:3, harmonics 1, 2, 4, 5, 7, ... (every third missing)", 3.0),
    ("1:1.4142, inharmonic (bell)", math.sqrt(2)),
    ("1:3.5, inharmonic (metallic)", 3.5),
)


# ----------------------------------------------------------------- plots
def plot_pm_vs_fm(
    axes,
    *,
    carrier_hz: float = 1000.0,
    modulator_hz: float = 250.0,
    beta: float = 2.0,
    offset: float = 0.2,
    sample_rate: int = P.RENDER_SAMPLE_RATE,
):
    """Three panels: PM and FM (deviation beta f_m) on top of each other, fmlib's
    own render on the same curve, and the spectra with a DC offset added to the
    modulator (PM keeps its lines, FM moves them by deviation x offset).

    Args:
        axes: Three matplotlib Axes.

    Returns:
        ``axes``.
    """
    from fmlib.notebook.plots import COLORS, plot_spectrum

    t = np.arange(sample_rate) / sample_rate
    pm = pm_signal(t, carrier_hz=carrier_hz, modulator_hz=modulator_hz, beta=beta)
    deviation = beta * modulator_hz
    fm = fm_signal(
        t, carrier_hz=carrier_hz, modulator_hz=modulator_hz, deviation_hz=deviation
    )
    ours = steady_tone(beta, carrier_hz=carrier_hz, ratio=modulator_hz / carrier_hz)
    window = slice(int(0.1 * sample_rate), int(0.108 * sample_rate))
    ax0, ax1, ax2 = axes
    ax0.plot(t[window] * 1e3, pm[window], color=COLORS["carrier"], lw=2.5, label="PM")
    ax0.plot(
        t[window] * 1e3, fm[window], color="k", lw=1, ls="--", label="FM, dev = β f_m"
    )
    t16 = np.arange(ours.size) / P.SAMPLE_RATE
    w16 = (t16 >= 0.1) & (t16 < 0.108)
    ax0.plot(t16[w16] * 1e3, ours[w16], "o", ms=3, color=COLORS["modulator"])
    ax0.plot([], [], "o", ms=3, color=COLORS["modulator"], label="fmlib.render")
    ax0.set_xlabel("time (ms)")
    ax0.set_title(f"PM (β={beta:g}) = FM (deviation {deviation:g} Hz)")
    ax0.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=3, fontsize=8)
    inst = carrier_hz + deviation * np.cos(2 * np.pi * modulator_hz * t)
    ax1.plot(t[: sample_rate // 100] * 1e3, inst[: sample_rate // 100], color="k")
    ax1.axhline(carrier_hz, color=COLORS["baseline"], ls=":")
    ax1.set_xlabel("time (ms)")
    ax1.set_ylabel("instantaneous frequency (Hz)")
    ax1.set_title("f(t) = f_c + β f_m cos(2π f_m t)")
    kw = {"carrier_hz": carrier_hz, "modulator_hz": modulator_hz, "offset": offset}
    plot_spectrum(
        ax2,
        pm_signal(t, beta=beta, **kw),
        sample_rate=sample_rate,
        max_hz=2.5 * carrier_hz,
        color=COLORS["carrier"],
        label=f"PM + offset {offset:g}",
    )
    plot_spectrum(
        ax2,
        fm_signal(t, deviation_hz=deviation, **kw),
        sample_rate=sample_rate,
        max_hz=2.5 * carrier_hz,
        color="k",
        label=f"FM + offset {offset:g}",
    )
    ax2.set_ylim(-80, 5)
    ax2.set_title(f"DC offset: FM detunes by {deviation * offset:g} Hz, PM does not")
    ax2.legend(loc="upper right", fontsize=8)
    return axes


def plot_bessel_levels(ax, table, *, max_order: int = 5, db: bool = True):
    """|J_n(beta)| curves for n = 0..max_order against beta, with the measured
    levels of ``table`` (from :func:`sideband_table`) as dots, n >= 0 only.

    Args:
        db: Plot in dB (floor -60 dB): the small sidebands a listener hears appear.

    Returns:
        ``ax``.
    """
    top = float(table["beta"].max()) * 1.1 or 1.0
    b = np.linspace(0.0, top, 400)

    def level(x):
        x = np.asarray(x, dtype=np.float64)
        return 20 * np.log10(np.maximum(x, 1e-3)) if db else x

    for n in range(max_order + 1):
        (line,) = ax.plot(b, level(np.abs(scipy.special.jv(n, b))), lw=1)
        pts = table[table["n"] == n]
        ax.plot(
            pts["beta"],
            level(pts["measured"]),
            "o",
            color=line.get_color(),
            label=f"n={n}",
        )
    ax.set_xlabel("modulation index β (rad)")
    ax.set_ylabel("sideband level (dB)" if db else "sideband amplitude")
    if db:
        ax.set_ylim(-60, 3)
    ax.set_title("lines: |J_n(β)|; dots: measured on fmlib's render")
    ax.legend(ncol=3, fontsize=8)
    return ax


def plot_bandwidth(
    ax, audio: np.ndarray, *, beta: float, carrier_hz: float, modulator_hz: float
):
    """Spectrum of a steady tone with the band holding 98 % of its power and
    Carson's band 2 (beta + 1) f_m shaded around the carrier.

    Returns:
        ``ax``.
    """
    from fmlib.notebook.plots import COLORS, plot_spectrum

    measured = measured_bandwidth(
        audio, carrier_hz=carrier_hz, modulator_hz=modulator_hz
    )
    carson = carson_bandwidth(beta, modulator_hz)
    plot_spectrum(ax, audio, max_hz=2 * carrier_hz, color="k")
    ax.axvspan(
        carrier_hz - carson / 2,
        carrier_hz + carson / 2,
        color=COLORS["theory"],
        alpha=0.15,
        label=f"Carson 2(β+1)f_m = {carson:g} Hz",
    )
    for edge in (carrier_hz - measured / 2, carrier_hz + measured / 2):
        ax.axvline(edge, color=COLORS["carrier"], ls="--", lw=1)
    ax.plot([], [], "--", color=COLORS["carrier"], label=f"98 % power: {measured:g} Hz")
    ax.set_ylim(-80, 5)
    ax.set_title(f"β = {beta:g}, f_m = {modulator_hz:g} Hz")
    ax.legend(loc="upper right", fontsize=8)
    return ax


def plot_aliases(ax, audio: np.ndarray, table):
    """Spectrum of a rendered tone with every sideband that sounds marked where it
    should (not aliased: green) or where it folded to (aliased: red, labelled with
    its true frequency).

    Args:
        table: :func:`alias_table` of the same tone.

    Returns:
        ``ax``.
    """
    from fmlib.notebook.plots import COLORS, plot_spectrum

    plot_spectrum(ax, audio, max_hz=P.SAMPLE_RATE / 2, color="k")
    for row in table.dropna(subset=["heard_hz"]).itertuples():
        color = COLORS["carrier"] if row.aliased else COLORS["theory"]
        level = 20 * np.log10(max(row.bessel_abs, 1e-6))
        ax.plot(row.heard_hz, level, "v", color=color, ms=8)
        if row.aliased:
            ax.annotate(
                f"n={row.n}: {row.true_hz / 1000:g} kHz",
                (row.heard_hz, level),
                xytext=(0, 10),
                textcoords="offset points",
                ha="center",
                fontsize=8,
                color=color,
            )
    ax.plot([], [], "v", color=COLORS["theory"], label="sideband where it belongs")
    ax.plot([], [], "v", color=COLORS["carrier"], label="alias (folded at 48 kHz)")
    ax.set_ylim(-80, 10)
    ax.legend(loc="lower right", fontsize=8)
    return ax
