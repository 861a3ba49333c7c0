"""The FM lesson's helpers (fmlib.notebook.teaching) against closed forms: PM = FM with
deviation beta f_m, Bessel sideband levels, C:M harmonic numbers, Carson's rule and
the 98 % power bandwidth, the folding of frequencies and fmlib's aliases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special

from fmlib import files
from fmlib.errors import InputError
from fmlib.notebook.teaching import (
    alias_frequency,
    alias_table,
    bessel_bandwidth,
    bessel_levels,
    beta_sweep,
    carson_bandwidth,
    fm_index,
    fm_signal,
    fundamental_hz,
    harmonic_numbers,
    measured_bandwidth,
    peak_frequency,
    pm_signal,
    sideband_frequencies,
    sideband_table,
    steady_tone,
    two_operator_patch,
)
from fmlib.synth import params as P
from fmlib.synth.engine import render

T48 = np.arange(48_000) / 48_000.0  # 1 s at 48 kHz


# ----------------------------------------------------------------- PM and FM
def test_pm_with_index_beta_equals_fm_with_deviation_beta_fm():
    pm = pm_signal(T48, carrier_hz=1000.0, modulator_hz=250.0, beta=2.0)
    fm = fm_signal(T48, carrier_hz=1000.0, modulator_hz=250.0, deviation_hz=500.0)
    assert np.max(np.abs(pm - fm)) < 1e-3  # the trapezoid rule's error only
    wrong = fm_signal(T48, carrier_hz=1000.0, modulator_hz=250.0, deviation_hz=2.0)
    assert np.max(np.abs(pm - wrong)) > 1.0  # deviation is not the index
    assert fm_index(500.0, 250.0) == 2.0


def test_a_dc_offset_detunes_fm_but_not_pm():
    kw = {"carrier_hz": 1000.0, "modulator_hz": 250.0}
    pm = pm_signal(T48, beta=2.0, offset=0.2, **kw)
    fm = fm_signal(T48, deviation_hz=500.0, offset=0.2, **kw)
    # strongest line: PM's spectrum is the offset-free one (J_1(2) at 750/1250 Hz)
    assert peak_frequency(pm, sample_rate=48_000) in (
        pytest.approx(750.0, abs=0.5),
        pytest.approx(1250.0, abs=0.5),
    )
    # FM: everything moves up by deviation x offset = 100 Hz
    assert peak_frequency(fm, sample_rate=48_000) in (
        pytest.approx(850.0, abs=0.5),
        pytest.approx(1350.0, abs=0.5),
    )


def test_fmlib_renders_phase_modulation():
    """fmlib's two-operator note is sin(2 pi f_c t + beta sin(2 pi f_m t))."""
    audio = steady_tone(2.0, carrier_hz=1000.0, ratio=0.25, duration_s=1.0)
    t = np.arange(audio.size) / P.SAMPLE_RATE
    want = pm_signal(t, carrier_hz=1000.0, modulator_hz=250.0, beta=2.0)
    middle = slice(1000, audio.size - 1000)  # after the 5 ms attack, before the end
    assert np.max(np.abs(audio[middle] - want[middle])) < 2e-3


# ----------------------------------------------------------------- Bessel
def test_measured_sidebands_are_bessel_levels_within_0_1_db():
    table = sideband_table([0.5, 1.0, 2.4, 4.0], max_order=4)
    assert len(table) == 4 * 9
    assert table["frequency_hz"].tolist()[:9] == [1000.0 + 250 * k for k in range(9)]
    strong = table[table["bessel_abs"] > 0.01]
    assert len(strong) > 20
    assert strong["error_db"].abs().max() < 0.1
    # known values: J_0(2.4) is almost a zero of J_0, J_1(1) = 0.44005
    row = table[(table["beta"] == 1.0) & (table["n"] == 1)].iloc[0]
    assert row["bessel_abs"] == pytest.approx(0.4400505857, abs=1e-9)
    assert row["measured"] == pytest.approx(0.44005, abs=1e-3)
    j0 = table[(table["beta"] == 2.4) & (table["n"] == 0)]["measured"].iloc[0]
    assert j0 < 0.01


def test_sideband_table_is_byte_stable(tmp_path):
    first = files.write_table(sideband_table([0.5, 2.4]), tmp_path / "a", "s")
    second = files.write_table(sideband_table([0.5, 2.4]), tmp_path / "b", "s")
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes()


def test_bessel_levels_known_values():
    np.testing.assert_allclose(
        bessel_levels(1.0, [0, 1, -1, 2]),
        [0.7651976866, 0.4400505857, 0.4400505857, 0.1149034849],
        atol=1e-9,
    )


def test_beta_sweep_is_one_clip_of_steady_segments():
    betas = [0.0, 1.0, 4.0]
    clip = beta_sweep(betas, carrier_hz=440.0, ratio=1.0, segment_s=0.25)
    assert clip.dtype == np.float32 and clip.shape == (3 * 4000,)
    assert clip[0] == 0.0 and abs(clip[3999]) < 1e-3  # faded, no clicks
    middle = slice(1000, 3000)
    seg = [clip[i * 4000 : (i + 1) * 4000] for i in range(3)]
    steady = steady_tone(4.0, carrier_hz=440.0, ratio=1.0, duration_s=0.25)
    np.testing.assert_array_equal(seg[2][middle], steady[middle])
    # beta 0 is a pure 440 Hz sine
    assert peak_frequency(seg[0]) == pytest.approx(440.0, abs=2.0)


# ----------------------------------------------------------------- C:M
def test_cm_1_to_2_gives_odd_harmonics_only():
    orders = range(-4, 5)
    np.testing.assert_array_equal(
        harmonic_numbers(440.0, 2.0, orders), [7, 5, 3, 1, 1, 3, 5, 7, 9]
    )
    assert fundamental_hz(440.0, 2.0) == 440.0
    # measured: the even harmonics of a 1:2 tone are silent
    audio = steady_tone(2.0, carrier_hz=400.0, ratio=2.0)
    f = np.fft.rfftfreq(audio.size, 1 / P.SAMPLE_RATE)
    a = np.abs(np.fft.rfft(audio * np.hanning(audio.size)))
    level = {k: a[np.argmin(np.abs(f - 400.0 * k))] for k in range(1, 9)}
    assert min(level[k] for k in (1, 3, 5)) > 100 * max(level[k] for k in (2, 4, 6))


def test_fundamental_of_ratios():
    assert fundamental_hz(300.0, 1.5) == 150.0  # C:M = 2:3
    assert fundamental_hz(440.0, 1.0) == 440.0  # all harmonics
    assert fundamental_hz(440.0, math.sqrt(2)) is None  # inharmonic (bell)
    assert harmonic_numbers(440.0, math.sqrt(2), range(3)) is None
    np.testing.assert_allclose(
        sideband_frequencies(100.0, 3.0, [-2, -1, 0, 1]), [500, 200, 100, 400]
    )


# ----------------------------------------------------------------- Carson
@pytest.mark.parametrize(
    ("beta", "bessel"), [(1.0, 1000.0), (2.4, 1500.0), (4.0, 2500.0)]
)
def test_carson_against_the_98_percent_bandwidth(beta, bessel):
    assert carson_bandwidth(beta, 250.0) == 2 * (beta + 1) * 250.0
    assert bessel_bandwidth(beta, 250.0) == bessel
    audio = steady_tone(beta, carrier_hz=2000.0, ratio=0.125)
    assert measured_bandwidth(audio, carrier_hz=2000.0, modulator_hz=250.0) == bessel
    # Carson's rule is within one sideband pair of the 98 % bandwidth
    assert abs(carson_bandwidth(beta, 250.0) - bessel) <= 2 * 250.0


def test_bandwidth_refuses_bad_fraction_and_a_band_beyond_nyquist():
    audio = steady_tone(4.0, carrier_hz=2000.0, ratio=0.125)
    with pytest.raises(InputError, match="between 0 and 1"):
        measured_bandwidth(audio, carrier_hz=2000.0, modulator_hz=250.0, fraction=1)
    with pytest.raises(InputError, match="between 0 and 1"):
        bessel_bandwidth(1.0, 250.0, fraction=0.0)
    low = steady_tone(4.0, carrier_hz=300.0, ratio=1.0)
    with pytest.raises(InputError, match="0 Hz or Nyquist"):
        measured_bandwidth(low, carrier_hz=300.0, modulator_hz=300.0)


# ----------------------------------------------------------------- aliasing
def test_alias_frequency_formula():
    assert alias_frequency(1000.0, 16000) == 1000.0
    assert alias_frequency(9000.0, 16000) == 7000.0
    assert alias_frequency(17000.0, 16000) == 1000.0
    assert alias_frequency(-2500.0, 48000) == 2500.0
    np.testing.assert_allclose(
        alias_frequency([42500.0, 50000.0, 27500.0], 48000), [5500, 2000, 20500]
    )


def test_fmlib_aliases_sound_where_the_formula_says():
    """A 5 kHz carrier with ratio 1.5 and index 8: sidebands 5 and 6 (42.5 and
    50 kHz) fold at 48 kHz to 5.5 and 2 kHz, below the low-pass, and are heard
    there at their Bessel level."""
    audio = steady_tone(8.0, carrier_hz=5000.0, ratio=1.5)
    table = alias_table(8.0, carrier_hz=5000.0, ratio=1.5, audio=audio).set_index("n")
    aliased = table[table["aliased"]]
    assert set(aliased.index) == {-8, -7, 5, 6}
    assert aliased.loc[5, "heard_hz"] == 5500.0 and aliased.loc[6, "heard_hz"] == 2000.0
    heard = table.dropna(subset=["heard_hz"])
    err_db = 20 * np.log10(heard["measured"] / heard["bessel_abs"])
    assert np.max(np.abs(err_db)) < 0.1
    # removed by the low-pass: nothing at 12.5 kHz's image, it is above 8 kHz
    assert np.isnan(table.loc[1, "heard_hz"])
    # the same note rendered directly: a line at 5.5 kHz that no harmonic explains
    f = np.fft.rfftfreq(audio.size, 1 / P.SAMPLE_RATE)
    a = (
        np.abs(np.fft.rfft(audio * np.hanning(audio.size)))
        * 2
        / np.hanning(audio.size).sum()
    )
    assert a[np.argmin(np.abs(f - 5500.0))] == pytest.approx(
        abs(scipy.special.jv(5, 8.0)), rel=0.02
    )


def test_two_operator_patch_uses_only_m1():
    patch = two_operator_patch(2.4, carrier_hz=500.0, ratio=2.0)
    assert patch.modulators[0].index == 2.4 and patch.modulators[0].ratio == 2.0
    assert all(m.index == 0.0 for m in patch.modulators[1:])
    np.testing.assert_array_equal(
        steady_tone(2.4, carrier_hz=500.0, ratio=2.0, duration_s=0.5),
        render(patch, duration_s=0.5, note_off_s=1.5),
    )


def test_notebook_01_has_exercises_with_collapsed_solutions():
    import nbformat

    from fmlib.paths import NOTEBOOKS_DIR

    nb = nbformat.read(NOTEBOOKS_DIR / "01_synth_exploration.ipynb", as_version=4)
    exercises = [c for c in nb.cells if "**Exercise " in c.source]
    assert len(exercises) >= 3
    for ex in exercises:
        i = nb.cells.index(ex)
        solution = nb.cells[i + 1 : i + 3]  # the worked answer, then its code
        assert [c.cell_type for c in solution] == ["markdown", "code"]
        for c in solution:
            assert c.metadata["jupyter"]["source_hidden"] is True
            assert "solution" in c.metadata["tags"]
        assert solution[1].metadata["jupyter"]["outputs_hidden"] is True
    # the lesson's sections
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    for section in ("Phase modulation", "Carson", "Aliasing", "C:M", "sweep"):
        assert section in text, section
