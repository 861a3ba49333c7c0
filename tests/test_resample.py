"""One 48 -> 16 kHz path: the synthesizer, the SoundFont set and predict share it."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import resample_poly

import fmlib
from fmlib.audio.analysis import prepare_audio
from fmlib.audio.resample import downsample_48k_to_16k, to_16k
from fmlib.datasets import soundfont
from fmlib.synth.engine import downsample, render, render_48k

EXAMPLE = fmlib.load_patch(fmlib.paths.PROJECT_ROOT / "examples" / "patch.json")


def _tone(freq_hz: float, n: int, rate: int = 48_000) -> np.ndarray:
    return 0.5 * np.sin(2 * np.pi * freq_hz * np.arange(n) / rate)


def test_the_synth_output_is_its_48k_render_through_this_path():
    np.testing.assert_array_equal(
        render(EXAMPLE), downsample_48k_to_16k(render_48k(EXAMPLE))
    )


@pytest.mark.parametrize("n", [48_000, 48_001, 48_002])
def test_any_length_is_zero_padded_to_a_multiple_of_3(n, rng):
    x = rng.standard_normal(n)
    y = downsample_48k_to_16k(x)
    assert y.shape == (-(-n // 3),) == resample_poly(x, 1, 3).shape
    assert y.dtype == np.float64
    padded = np.concatenate([x, np.zeros(-n % 3)])
    np.testing.assert_array_equal(y, downsample(padded))


def test_passband_kept_and_nothing_from_8_khz_survives():
    n = 48_000
    core = slice(2_000, 14_000)  # away from the edges
    low = to_16k(_tone(1_000.0, n), 48_000)
    np.testing.assert_allclose(
        low[core], _tone(1_000.0, 16_000, 16_000)[core], atol=1e-6
    )
    # 7.9 kHz sits in the synthesizer's transition band (7.6-8 kHz): attenuated;
    # 8.5 kHz would alias to 7.5 kHz: removed entirely (resample_poly lets some in)
    above = to_16k(_tone(8_500.0, n), 48_000)
    assert np.abs(above[core]).max() < 1e-6
    assert np.abs(resample_poly(_tone(8_500.0, n), 1, 3)[core]).max() > 1e-4


def test_other_rates_use_resample_poly_and_16k_is_untouched():
    x = _tone(440.0, 44_100, 44_100)
    np.testing.assert_array_equal(to_16k(x, 44_100), resample_poly(x, 160, 441))
    y = _tone(440.0, 16_000, 16_000)
    np.testing.assert_array_equal(to_16k(y, 16_000), y)


def test_prepare_audio_and_the_soundfont_set_use_the_synth_filter():
    x = _tone(3_000.0, 3 * 64_000)
    prepared, changes = prepare_audio(x, 48_000)
    np.testing.assert_array_equal(prepared, downsample_48k_to_16k(x).astype(np.float32))
    assert "resampled from 48000 Hz to 16000 Hz" in changes
    stereo = np.stack([x, 0.5 * x], axis=1)
    note = soundfont._finish(stereo)
    expected = downsample_48k_to_16k(stereo.mean(axis=1))
    expected = expected * (soundfont.PEAK / np.abs(expected).max())
    np.testing.assert_allclose(note, expected.astype(np.float32), rtol=1e-6)
