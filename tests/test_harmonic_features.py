"""fmnet's input features: known values on sines, and the feature cache."""

from __future__ import annotations

import numpy as np
import pytest

from fmlib.audio import harmonic_features as H
from fmlib.errors import InputError
from fmlib.synth import params as P

T = np.arange(H.N_SAMPLES) / P.SAMPLE_RATE


def _sine(hz, amp=0.5):
    return (amp * np.sin(2 * np.pi * hz * T)).astype(np.float32)


def test_band_edges_are_half_f0_steps_then_sixth_octaves():
    e = H.band_edges_hz(100.0)
    assert e.shape == (H.N_HARMONIC_BANDS + H.N_WIDE_BANDS + 1,)
    np.testing.assert_allclose(e[:3], [25.0, 75.0, 125.0])
    assert e[H.N_HARMONIC_BANDS] == pytest.approx(64.5 * 50.0)
    np.testing.assert_allclose(e[-1] / e[H.N_HARMONIC_BANDS], 2.0**4)
    with pytest.raises(InputError, match="f0_hz"):
        H.band_edges_hz(0.0)


def test_a_sine_at_f0_fills_band_2_only():
    f = H.note_features(_sine(440.0), 440.0)
    assert f.shape == (H.N_FEATURES,) and f.dtype == np.float32
    bands = f[H.SLICES["harmonic"]]
    assert bands[1] == pytest.approx(1.0, abs=1e-3)  # band 2 is centred on 2 f0/2
    others = np.delete(bands, 1)
    assert others.max() < 0.35  # -40 dB or less (Hann leakage)
    # log2(f0 / 440) / 4 is the first scalar; a constant sine's envelope is flat.
    assert f[H.SLICES["scalars"]][0] == pytest.approx(0.0)
    env = f[H.SLICES["envelope"]]
    np.testing.assert_allclose(env[5:-5], 1.0, atol=1e-3)


def test_two_partials_split_the_power_in_known_shares():
    x = _sine(200.0, 0.4) + _sine(600.0, 0.2)  # powers 0.16 : 0.04, i.e. 0.8 : 0.2
    p = H.band_powers(H.power_spectrum(x), 200.0)
    assert p[1] == pytest.approx(0.8, abs=2e-3)  # 200 Hz = 2 x f0/2
    assert p[5] == pytest.approx(0.2, abs=2e-3)  # 600 Hz = 6 x f0/2
    assert p.sum() == pytest.approx(1.0, abs=1e-3)


def test_bands_above_nyquist_read_zero():
    f0 = 2000.0  # 64 x 1000 Hz reaches far above 8 kHz
    p = H.band_powers(H.power_spectrum(_sine(f0)), f0)
    edges = H.band_edges_hz(f0)
    assert np.all(p[edges[1:] > 8000] == 0)
    f = H.note_features(_sine(f0), f0)
    assert np.all(f[: H.N_HARMONIC_BANDS + H.N_WIDE_BANDS][edges[1:] > 8000] == 0)


def test_envelope_feature_reads_db_below_the_peak():
    x = _sine(300.0)
    x[len(x) // 2 :] *= 0.1  # -20 dB in the second half
    env = H.note_features(x, 300.0)[H.SLICES["envelope"]]
    assert env[20] == pytest.approx(1.0, abs=1e-3)
    assert env[100] == pytest.approx(0.8, abs=1e-3)


def test_bad_input_is_refused():
    with pytest.raises(InputError, match="expected shape"):
        H.note_features(np.zeros(100, dtype=np.float32), 440.0)
    with pytest.raises(InputError, match="silent"):
        H.note_features(np.zeros(H.N_SAMPLES, dtype=np.float32), 440.0)


def test_feature_cache_resumes_and_reads_prefixes(tiny_dataset, tmp_path, monkeypatch):
    from fmlib.datasets import feature_cache as C

    monkeypatch.setattr(C, "CHUNK", 16)
    f20, p20 = C.ensure_features(tiny_dataset, tmp_path / "c", n=20, progress=False)
    assert f20.shape == (20, H.N_FEATURES) and p20.shape == (20, 2)
    assert sorted(q.name for q in (tmp_path / "c").glob("features_*.npy")) == [
        "features_00000.npy",
        "features_00001.npy",  # chunks are whole (16 notes) even for n = 20
    ]

    def fail(audio):
        raise AssertionError("recomputed a cached chunk")

    monkeypatch.setattr(C, "compute_features", fail)
    f16, _ = C.ensure_features(tiny_dataset, tmp_path / "c", n=16, progress=False)
    np.testing.assert_array_equal(f16, f20[:16])
    # The cache of one dataset is not reused for another feature version.
    monkeypatch.setattr(C, "FEATURE_VERSION", C.FEATURE_VERSION + 1)
    with pytest.raises(InputError, match="another dataset or feature version"):
        C.ensure_features(tiny_dataset, tmp_path / "c", n=16, progress=False)


def test_cached_features_equal_direct_ones(tiny_dataset, tmp_path):
    from fmlib.audio.analysis import estimate_f0
    from fmlib.datasets.dataset_reader import open_dataset
    from fmlib.datasets.feature_cache import ensure_features

    f, p = ensure_features(tiny_dataset, tmp_path / "c", n=3, progress=False)
    x = open_dataset(tiny_dataset).read([2])[0]
    f0 = estimate_f0(x).f0_hz
    assert p[2, 0] == f0
    np.testing.assert_array_equal(f[2], H.note_features(x, f0))


def test_line_band_powers_read_a_rendered_table_entry_as_note_features_do():
    """The features of a rendered harmonic patch agree with those computed from
    its line spectrum (the table's), on every band above -30 dB."""
    from fmlib.audio import timbre
    from fmlib.synth.engine import render
    from fmlib.synth.patch import patch_from_vector

    tab = timbre.harmonic_table()
    f0 = 196.0
    for k in (0, 150, 2000, 4000):
        v = [tab.carrier_multiple[k] * f0, *tab.ratios[k], *tab.indices[k]]
        x = render(patch_from_vector([*v, 0.01, 0.1, 1.0, 0.5], algorithm="dx7_18"))
        got = H.note_features(x, f0)[: H.SLICES["wide"].stop]
        want = H.band_features(H.line_band_powers(tab.power[k], f0))
        loud = want > 0.5
        assert loud.any()
        np.testing.assert_allclose(got[loud], want[loud], atol=0.03)


def test_line_band_powers_known_shares_and_cutoff():
    p = np.zeros(257)
    p[2], p[6] = 0.8, 0.2  # f0 and 3 f0
    b = H.line_band_powers(p, 100.0)
    assert b[1] == pytest.approx(0.8) and b[5] == pytest.approx(0.2)
    assert b.sum() == pytest.approx(1.0)
    # at f0 = 4 kHz, 3 f0 = 12 kHz is above the 8 kHz Nyquist: all power at f0
    b = H.line_band_powers(p, 4000.0)
    assert b[1] == pytest.approx(1.0) and b[5] == 0.0
    np.testing.assert_allclose(H.band_shares(H.band_features(b)), b, atol=1e-12)
