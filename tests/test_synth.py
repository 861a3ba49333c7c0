"""Tests of the FM synthesizer (fmlib.synth.engine, fmlib.synth.algorithms): spectra
against Bessel functions, the operator graphs, envelope timing, anti-aliasing, accuracy
against the float64 reference, determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import jv

from fmlib.errors import InputError
from fmlib.synth import params as P
from fmlib.synth.algorithms import ALGORITHMS, CARRIER, MODULATORS
from fmlib.synth.engine import (
    PASSBAND_HZ,
    adsr_envelope,
    downsample,
    envelope_breakpoints,
    envelope_levels,
    render,
    render_48k,
    render_batch,
    render_reference,
)
from fmlib.synth.patch import Envelope, patch_from_dict

SR = P.SAMPLE_RATE
SR_48K = P.RENDER_SAMPLE_RATE
#: An envelope that is 1.0 from the first sample on (no attack, no decay, sustain 1):
#: with note_off_s = duration_s the note is a steady tone.
FLAT = {"attack_s": 0.0, "decay_s": 0.0, "sustain": 1.0, "release_s": 0.0}


def make_patch(
    *,
    carrier_hz: float,
    ratios=(1.0,) * 5,
    indices=(0.0,) * 5,
    envelope=None,
    algorithm: str = "dx7_18",
) -> dict:
    return {
        "algorithm": algorithm,
        "carrier_hz": carrier_hz,
        "modulators": [
            {"ratio": float(r), "index": float(i)}
            for r, i in zip(ratios, indices, strict=True)
        ],
        "envelope": dict(envelope or FLAT),
    }


def random_patch(rng: np.random.Generator, algorithm: str = "dx7_18") -> dict:
    """Every parameter uniform on its paper range (log axis for log-scaled ones)."""
    v = {name: spec.from_unit(rng.random()) for name, spec in P.PARAMS.items()}
    return make_patch(
        carrier_hz=v["carrier_hz"],
        ratios=[v[f"ratio_{i}"] for i in range(1, 6)],
        indices=[v[f"index_{i}"] for i in range(1, 6)],
        envelope={s.name: v[s.name] for s in P.ENVELOPE_PARAMS},
        algorithm=algorithm,
    )


def steady(patch: dict, *, skip_s: float = 0.25, seconds: int = 1) -> np.ndarray:
    """A steady 16 kHz stretch of ``seconds`` whole seconds, taken after ``skip_s``
    so the filter's edge effects are excluded. Every component at a whole number of
    Hz then lies exactly on a DFT bin of the stretch (1 Hz apart): no window needed."""
    duration = skip_s + seconds + 0.25
    y = render(patch, duration_s=duration, note_off_s=duration)
    start = round(skip_s * SR)
    return y[start : start + seconds * SR].astype(np.float64)


def amplitudes(x: np.ndarray) -> np.ndarray:
    """Amplitude of each whole-Hz sine in a 1 s stretch (index = frequency in Hz)."""
    return np.abs(np.fft.rfft(x)) * 2 / x.size


def db(x) -> np.ndarray:
    return 20 * np.log10(np.maximum(np.abs(x), 1e-300))


def snr_db(reference: np.ndarray, test: np.ndarray) -> float:
    err = np.sum((test.astype(np.float64) - reference) ** 2)
    return float(10 * np.log10(np.sum(reference**2) / err))


# --------------------------------------------------------------------------- spectrum


def expected_sidebands(carrier_hz: int, mod_hz: int, beta: float) -> dict[int, float]:
    """Amplitude at each positive frequency of sin(wc t + beta sin(wm t)) =
    sum_n J_n(beta) sin((wc + n wm) t), a negative frequency folding with a sign
    change (sin(-x) = -sin(x)); n over every order that matters."""
    out: dict[int, float] = {}
    for n in range(-60, 61):
        f = carrier_hz + n * mod_hz
        if f != 0:
            out[abs(f)] = out.get(abs(f), 0.0) + math.copysign(1, f) * jv(n, beta)
    return out


@pytest.mark.parametrize(
    ("carrier_hz", "ratio", "beta"),
    [
        (3200, 0.125, 0.5),
        (3200, 0.125, 3.0),
        (3000, 0.25, 1.0),
        (2000, 0.75, 2.0),
        (1000, 2.0, 1.5),  # lower sidebands fold onto upper ones: J_n summed
        (500, 3.0, 8.0),
        (440, 1.0, 2.4),  # near the first zero of J_0
    ],
)
def test_sidebands_match_bessel_functions(carrier_hz, ratio, beta):
    """Only M1 active: the sideband at fc + n fm has amplitude |J_n(beta)|, within
    1 dB for |n| <= 3 (where that sideband is not negligible)."""
    mod_hz = round(carrier_hz * ratio)
    x = steady(
        make_patch(
            carrier_hz=carrier_hz,
            ratios=(ratio, 1, 1, 1, 1),
            indices=(beta, 0, 0, 0, 0),
        )
    )
    measured = amplitudes(x)
    expected = expected_sidebands(carrier_hz, mod_hz, beta)
    checked = 0
    for n in range(-3, 4):
        f = abs(carrier_hz + n * mod_hz)
        if f == 0 or f >= PASSBAND_HZ:
            continue
        want = abs(expected[f])
        if want < 1e-3:  # a zero of J_n: check it is small, not its dB
            assert measured[f] < 2e-3, (n, f, measured[f])
            continue
        assert abs(db(measured[f]) - db(want)) <= 1.0, (n, f, measured[f], want)
        checked += 1
    assert checked >= 3
    # Nothing anywhere else: every other bin is below -80 dB.
    others = np.ones(measured.size, bool)
    others[[f for f in expected if f < measured.size]] = False
    assert measured[others].max() < 1e-4


def test_sidebands_match_exactly_with_finer_tolerance():
    """The same measurement is accurate far beyond 1 dB: every sideband within
    1e-5 of its Bessel amplitude."""
    carrier_hz, mod_hz, beta = 2400, 600, 2.5
    x = steady(
        make_patch(
            carrier_hz=carrier_hz, ratios=(0.25, 1, 1, 1, 1), indices=(beta, 0, 0, 0, 0)
        )
    )
    measured = amplitudes(x)
    for f, a in expected_sidebands(carrier_hz, mod_hz, beta).items():
        if f < PASSBAND_HZ:
            assert abs(measured[f] - abs(a)) < 1e-5, f


def peaks(x: np.ndarray, *, floor_db: float = -50.0) -> np.ndarray:
    """Frequencies (Hz, 1 Hz resolution) of the local maxima of a 1 s stretch's
    Hann-windowed spectrum that are within ``floor_db`` of the strongest."""
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    level = db(spec / spec.max())
    is_peak = (spec[1:-1] > spec[:-2]) & (spec[1:-1] >= spec[2:])
    idx = np.nonzero(is_peak & (level[1:-1] > floor_db))[0] + 1
    return idx.astype(float)


def fits_harmonic_series(freqs: np.ndarray, *, min_f0: float, tol_hz: float) -> bool:
    """True when some f0 >= min_f0 makes every frequency a multiple of f0 (within
    tol_hz). f0 must divide the lowest one, so only lowest/k is tried."""
    lowest = freqs.min()
    for k in range(1, int(lowest // min_f0) + 1):
        f0 = lowest / k
        if np.all(np.abs(freqs - f0 * np.round(freqs / f0)) <= tol_hz):
            return True
    return False


def test_integer_ratio_gives_harmonic_spectrum():
    x = steady(
        make_patch(carrier_hz=220, ratios=(2, 1, 1, 1, 1), indices=(3, 0, 0, 0, 0))
    )
    f = peaks(x)
    assert len(f) >= 5
    assert np.all(np.abs(f / 220 - np.round(f / 220)) < 1e-9)  # odd harmonics of 220
    assert fits_harmonic_series(f, min_f0=100, tol_hz=1)


def test_irrational_ratio_gives_inharmonic_partials():
    ratio = math.sqrt(2)
    x = steady(
        make_patch(carrier_hz=440, ratios=(ratio, 1, 1, 1, 1), indices=(2, 0, 0, 0, 0))
    )
    f = peaks(x)
    assert len(f) >= 5
    # Every peak sits at |fc + n fm| ...
    partials = np.abs(440 + np.arange(-10, 11) * 440 * ratio)
    assert np.all(np.min(np.abs(f[:, None] - partials[None, :]), axis=1) <= 1.5)
    # ... and they are no harmonic series of any audible fundamental.
    assert not fits_harmonic_series(f, min_f0=20, tol_hz=2)


# --------------------------------------------------------------------------- topology

EXPECTED_EDGES = {
    "serial": {("M5", "M4"), ("M4", "M3"), ("M3", "M2"), ("M2", "M1"), ("M1", "C")},
    "dx7_18": {("M5", "M4"), ("M4", "M3"), ("M3", "C"), ("M1", "C"), ("M2", "C")},
}


def test_registry_holds_both_algorithms():
    assert set(EXPECTED_EDGES) <= set(ALGORITHMS)


@pytest.mark.parametrize("name", sorted(EXPECTED_EDGES))
def test_graph_has_exactly_the_expected_edges(name):
    alg = ALGORITHMS[name]
    assert set(alg.edges) == EXPECTED_EDGES[name]
    assert len(alg.edges) == len(EXPECTED_EDGES[name])  # no duplicates
    for op in (CARRIER, *MODULATORS):  # sources() agrees with the edge list
        assert set(alg.sources(op)) == {s for s, d in EXPECTED_EDGES[name] if d == op}
    order = alg.render_order()
    assert sorted(order) == sorted((CARRIER, *MODULATORS))
    for src, dst in alg.edges:
        assert order.index(src) < order.index(dst)


def hand_written(name: str, t: np.ndarray, fc: float, ratios, betas) -> np.ndarray:
    """Each algorithm written out as one formula, independently of the registry."""
    w = [2 * np.pi * fc * r * t for r in ratios]
    if name == "dx7_18":
        m5 = betas[4] * np.sin(w[4])
        m4 = betas[3] * np.sin(w[3] + m5)
        m3 = betas[2] * np.sin(w[2] + m4)
        m1 = betas[0] * np.sin(w[0])
        m2 = betas[1] * np.sin(w[1])
        return np.sin(2 * np.pi * fc * t + m3 + m1 + m2)
    if name == "serial":
        m5 = betas[4] * np.sin(w[4])
        m4 = betas[3] * np.sin(w[3] + m5)
        m3 = betas[2] * np.sin(w[2] + m4)
        m2 = betas[1] * np.sin(w[1] + m3)
        m1 = betas[0] * np.sin(w[0] + m2)
        return np.sin(2 * np.pi * fc * t + m1)
    raise AssertionError(name)


@pytest.mark.parametrize("name", sorted(EXPECTED_EDGES))
def test_render_matches_the_graph_written_out_by_hand(name, rng):
    """With every modulator active at a different ratio, the 48 kHz render equals the
    hand-written formula of the graph; a missing or extra edge anywhere would change
    the signal by far more than the tolerance."""
    fc = 330.0
    ratios = rng.choice([0.5, 1.5, 2.0, 3.0, 0.25, 1.3, 2.7], 5, replace=False)
    betas = rng.uniform(0.5, 2.5, 5)
    y = render_48k(
        make_patch(carrier_hz=fc, ratios=ratios, indices=betas, algorithm=name),
        duration_s=0.25,
        note_off_s=0.25,
    )
    t = np.arange(y.size) / SR_48K
    assert np.max(np.abs(y - hand_written(name, t, fc, ratios, betas))) < 2e-5
    # The other algorithm's formula is far off, so the comparison discriminates.
    other = "serial" if name == "dx7_18" else "dx7_18"
    assert np.max(np.abs(y - hand_written(other, t, fc, ratios, betas))) > 0.5


def modulators_reaching_carrier_alone(name: str) -> set[str]:
    """Modulators that change the sound when they are the only active one: those with
    a direct edge to the carrier (any other path passes through a zero index)."""
    return {s for s, d in EXPECTED_EDGES[name] if d == CARRIER}


@pytest.mark.parametrize("name", sorted(EXPECTED_EDGES))
@pytest.mark.parametrize("active", range(5))
def test_single_active_modulator(name, active):
    """Only M(active+1) has a nonzero index. If it feeds the carrier the tone is
    frequency-modulated; otherwise it feeds a modulator whose index is 0, nothing
    reaches the carrier and the output is a pure sine (e.g. M5 alone in dx7_18)."""
    fc = 500.0
    indices = [0.0] * 5
    indices[active] = 2.0
    y = render_48k(
        make_patch(carrier_hz=fc, ratios=(1.5,) * 5, indices=indices, algorithm=name),
        duration_s=0.1,
        note_off_s=0.1,
    )
    t = np.arange(y.size) / SR_48K
    pure = np.sin(2 * np.pi * fc * t)
    modulated = np.sin(2 * np.pi * fc * t + 2.0 * np.sin(2 * np.pi * 1.5 * fc * t))
    if MODULATORS[active] in modulators_reaching_carrier_alone(name):
        assert np.max(np.abs(y - modulated)) < 1e-5
    else:
        assert np.max(np.abs(y - pure)) < 1e-5


# --------------------------------------------------------------------------- envelope

ENV = Envelope(attack_s=0.01, decay_s=0.2, sustain=0.6, release_s=0.3)


def test_adsr_levels_at_known_samples():
    env = adsr_envelope(ENV, 4 * SR_48K, sample_rate=SR_48K, note_off_s=3.0)
    assert env.dtype == np.float32 and env.shape == (4 * SR_48K,)
    a, d, r, off = 480, 9600, 14400, 144000  # segment lengths in samples at 48 kHz
    cases = {
        0: 0.0,
        a // 2: 0.5,
        a: 1.0,  # attack ends exactly on sample 480
        a + d // 2: 0.8,
        a + d: 0.6,
        off - 1: 0.6,
        off: 0.6,
        off + r // 2: 0.3,
        off + r: 0.0,
        off + r + 1: 0.0,
        env.size - 1: 0.0,
    }
    for n, want in cases.items():
        assert env[n] == pytest.approx(want, abs=1e-6), n
    assert np.argmax(env) == a
    assert np.all(np.diff(env[: a + 1]) > 0)
    assert np.all(np.diff(env[a : a + d + 1]) < 0)
    assert np.all(env[a + d : off + 1] == np.float32(0.6))
    assert np.all(np.diff(env[off : off + r + 1]) < 0)


@pytest.mark.parametrize(
    ("attack_s", "decay_s", "release_s"),
    [(0.0101, 0.0333, 0.0505), (0.3, 0.45, 0.8), (0.005, 0.02, 0.05)],
)
def test_adsr_segment_times_within_one_sample(attack_s, decay_s, release_s):
    """Times that fall between samples: each corner is on the first sample at or
    after it, so every segment boundary is off by less than one 48 kHz sample."""
    env_spec = Envelope(attack_s, decay_s, 0.5, release_s)
    note_off = 1.0
    env = adsr_envelope(env_spec, 2 * SR_48K, sample_rate=SR_48K, note_off_s=note_off)
    t = np.arange(env.size) / SR_48K
    peak = np.argmax(env)
    assert 0 <= peak / SR_48K - attack_s < 1 / SR_48K
    assert env[peak] == pytest.approx(1.0, abs=1e-4)
    sustain_start = peak + np.argmax(env[peak:] <= 0.5 + 1e-6)
    assert 0 <= sustain_start / SR_48K - (attack_s + decay_s) < 1 / SR_48K
    silent = np.argmax((env == 0) & (t > note_off))
    assert 0 <= silent / SR_48K - (note_off + release_s) < 1 / SR_48K
    # Every sample is the linear segment's value at its time.
    want = np.interp(
        t,
        [0, attack_s, attack_s + decay_s, note_off, note_off + release_s],
        [0, 1, 0.5, 0.5, 0],
    )
    assert np.max(np.abs(env - want)) < 1e-6


def test_adsr_note_off_during_attack_releases_from_there():
    env_spec = Envelope(attack_s=0.5, decay_s=0.1, sustain=0.5, release_s=0.25)
    env = adsr_envelope(env_spec, SR_48K, sample_rate=SR_48K, note_off_s=0.25)
    off = round(0.25 * SR_48K)
    assert env[off] == pytest.approx(0.5, abs=1e-6)  # halfway up the attack
    assert env.max() == pytest.approx(0.5, abs=1e-6)
    assert env[off + round(0.125 * SR_48K)] == pytest.approx(0.25, abs=1e-6)
    assert np.all(env[off + round(0.25 * SR_48K) :] == 0)


def test_adsr_zero_times_are_steps():
    env_spec = Envelope(attack_s=0.0, decay_s=0.0, sustain=0.7, release_s=0.0)
    env = adsr_envelope(env_spec, 1000, sample_rate=1000, note_off_s=0.5)
    assert np.all(env[:500] == np.float32(0.7))
    assert np.all(env[500:] == 0)


def test_adsr_note_off_beyond_the_end_has_no_release():
    env = adsr_envelope(ENV, SR_48K, sample_rate=SR_48K, note_off_s=5.0)
    assert env[-1] == np.float32(0.6)


def test_render_48k_applies_the_envelope_sample_exactly():
    """Dividing the 48 kHz render of an unmodulated carrier by its sine gives back the
    envelope, sample for sample (so every segment time is exact to one sample)."""
    fc = 1234.5
    patch = make_patch(carrier_hz=fc, envelope=vars(ENV))
    y = render_48k(patch)
    t = np.arange(y.size) / SR_48K
    s = np.sin(2 * np.pi * fc * t)
    env = adsr_envelope(ENV, y.size, sample_rate=SR_48K, note_off_s=P.NOTE_OFF_S)
    ok = np.abs(s) > 0.2
    assert np.max(np.abs(y[ok] / s[ok] - env[ok])) < 1e-5
    silent_from = round((P.NOTE_OFF_S + ENV.release_s) * SR_48K)
    assert np.all(y[silent_from:] == 0)


def test_render_keeps_envelope_timing_after_resampling():
    """At 16 kHz the note equals sine x envelope sampled at 16 kHz (zero-phase filter:
    no delay) to within 1e-3 everywhere except within 5 ms of a corner, where the
    low-pass rounds the corner off; after the release it is silent."""
    fc = 440.0
    y = render(make_patch(carrier_hz=fc, envelope=vars(ENV))).astype(np.float64)
    t = np.arange(y.size) / SR
    want = np.sin(2 * np.pi * fc * t) * adsr_envelope(
        ENV, y.size, sample_rate=SR, note_off_s=P.NOTE_OFF_S
    )
    corners = np.array([0.0, 0.01, 0.21, 3.0, 3.3])
    near = np.min(np.abs(t[:, None] - corners[None, :]), axis=1) < 0.005
    err = np.abs(y - want)
    assert err[~near].max() < 1e-3
    assert err[near].max() < 0.05
    # A shift of even one 16 kHz sample would be visible: the error becomes ~0.17.
    shifted = np.roll(want, 1)
    assert np.abs(y - shifted)[~near].max() > 0.1
    assert np.abs(y[t > 3.3 + 0.005]).max() < 1e-4


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sustain_is_the_flat_tone_times_the_sustain_level(seed):
    """Once attack and decay are over, a note is its flat-envelope tone times the
    sustain level, sample for sample: the envelope only scales, and every
    operator's phase runs on from t = 0 through it (what
    ``benchmarks/free_ratio_search.py`` relies on). A one-sample shift of the tone
    would not match."""
    patch = random_patch(np.random.default_rng(seed))
    patch["envelope"] = {
        "attack_s": 0.3,
        "decay_s": 0.5,
        "sustain": 0.4,
        "release_s": 0.2,
    }
    note = render(patch).astype(np.float64)
    flat = render({**patch, "envelope": FLAT}, duration_s=1.45, note_off_s=1.45)
    seg = slice(round(1.15 * SR), round(1.40 * SR))
    want = 0.4 * flat.astype(np.float64)
    assert np.max(np.abs(note[seg] - want[seg])) < 1e-5
    shifted = 0.4 * flat[seg.start - 1 : seg.stop - 1]
    assert np.max(np.abs(note[seg] - shifted)) > 1e-2


# ------------------------------------------------------------------ exponential curve

EXP = Envelope(
    attack_s=0.01, decay_s=0.2, sustain=0.25, release_s=0.3, curve="exponential"
)
FLOOR = P.EXPONENTIAL_FLOOR


def test_exponential_floor_is_minus_96_db():
    assert P.EXPONENTIAL_FLOOR_DB == -96.0
    assert 20 * math.log10(FLOOR) == pytest.approx(-96.0, abs=1e-12)
    assert P.DEFAULT_ENVELOPE_CURVE == "linear" == P.ENVELOPE_CURVES[0]


def test_exponential_levels_at_known_samples():
    """Attack linear in amplitude; the decay a straight line in dB (halfway: the
    geometric mean sqrt(sustain)); the release a straight line in dB from the level
    at note-off to -96 dB, then exactly 0 from the end of the release."""
    env = adsr_envelope(EXP, 4 * SR_48K, sample_rate=SR_48K, note_off_s=3.0)
    a, d, r, off = 480, 9600, 14400, 144000
    cases = {
        0: 0.0,
        a // 2: 0.5,  # linear attack
        a: 1.0,
        a + d // 4: 0.25**0.25,
        a + d // 2: 0.5,  # sqrt(0.25)
        a + d: 0.25,
        off: 0.25,
        off + r // 2: math.sqrt(0.25 * FLOOR),  # halfway in dB to -96 dB
        off + r - 1: 0.25 * (FLOOR / 0.25) ** ((r - 1) / r),
        off + r: 0.0,
        env.size - 1: 0.0,
    }
    for n, want in cases.items():
        assert env[n] == pytest.approx(want, rel=1e-6, abs=1e-9), n
    db_decay = 20 * np.log10(env[a : a + d + 1].astype(np.float64))
    assert np.max(np.abs(np.diff(db_decay, 2))) < 1e-5  # straight in dB
    db_release = 20 * np.log10(env[off : off + r].astype(np.float64))
    assert np.max(np.abs(np.diff(db_release, 2))) < 1e-4
    assert np.all(env[off + r :] == 0)


def test_exponential_note_off_during_decay_is_continuous():
    e = Envelope(0.01, 1.0, 0.01, 0.5, "exponential")
    off_s = 0.51  # halfway through the decay: -20 dB of the -40 dB
    env = adsr_envelope(e, SR_48K * 2, sample_rate=SR_48K, note_off_s=off_s)
    off = round(off_s * SR_48K)
    assert env[off - 1] == pytest.approx(0.1, rel=1e-3)
    assert env[off] == pytest.approx(0.1, rel=1e-6)
    assert env[off + 1] / env[off] == pytest.approx(env[off] / env[off - 1], rel=1e-3)
    # the release then falls from -20 dB to -96 dB in 0.5 s
    quarter = off + round(0.125 * SR_48K)
    assert 20 * math.log10(env[quarter]) == pytest.approx(-20 - 76 / 4, abs=1e-3)
    assert np.all(env[off + round(0.5 * SR_48K) :] == 0)


@pytest.mark.parametrize("sustain", [0.0, 1e-6, FLOOR])
def test_exponential_silent_sustain_decays_to_the_floor_then_zero(sustain):
    e = Envelope(0.0, 0.5, sustain, 0.3, "exponential")
    assert envelope_breakpoints(e, note_off_s=3.0) == [
        (0.0, 1.0),
        (0.0, 1.0),
        (0.5, FLOOR),
        (0.5, 0.0),
        (3.0, 0.0),
        (3.3, 0.0),
    ]
    env = adsr_envelope(e, SR_48K, sample_rate=SR_48K, note_off_s=3.0)
    half = round(0.25 * SR_48K)
    assert env[half] == pytest.approx(math.sqrt(FLOOR), rel=1e-6)  # -48 dB
    assert np.all(env[round(0.5 * SR_48K) :] == 0)


def test_exponential_release_at_the_floor_is_linear_to_zero():
    """A note released at or below -96 dB (10 us into a 1 s attack: -100 dB) falls
    linearly in amplitude to 0 (no corner at the floor)."""
    e = Envelope(1.0, 0.1, 0.5, 0.2, "exponential")
    pts = envelope_breakpoints(e, note_off_s=1e-5)
    assert pts == [(0.0, 0.0), (1e-5, 1e-5), (pytest.approx(0.20001), 0.0)]


def test_exponential_note_off_during_attack_releases_in_db():
    e = Envelope(0.5, 0.1, 0.5, 0.25, "exponential")
    env = adsr_envelope(e, SR_48K, sample_rate=SR_48K, note_off_s=0.25)
    off = round(0.25 * SR_48K)
    assert env[off] == pytest.approx(0.5, abs=1e-6)
    mid = off + round(0.125 * SR_48K)
    assert env[mid] == pytest.approx(math.sqrt(0.5 * FLOOR), rel=1e-5)
    assert np.all(env[off + round(0.25 * SR_48K) :] == 0)


@pytest.mark.parametrize(
    "e",
    [
        EXP,
        Envelope(0.0, 0.0, 0.7, 0.0, "exponential"),
        Envelope(0.3, 2.5, 0.0, 0.8, "exponential"),
        Envelope(0.0101, 0.0333, 0.9, 0.0505, "exponential"),
        Envelope(0.5, 3.0, 0.1, 0.2, "exponential"),  # note-off during the decay
    ],
)
@pytest.mark.parametrize("note_off_s", [3.0, 0.2])
def test_exponential_fast_envelope_matches_the_reference_envelope(e, note_off_s):
    """The float32 ramp of the renderer equals the independent float64
    segment-by-segment evaluation (:func:`envelope_levels`) to float32 rounding."""
    n = 4 * SR_48K
    fast = adsr_envelope(e, n, sample_rate=SR_48K, note_off_s=note_off_s)
    ref = envelope_levels(e, np.arange(n) / SR_48K, note_off_s=note_off_s)
    np.testing.assert_allclose(fast, ref, rtol=2e-6, atol=1e-7)


@pytest.mark.parametrize("algorithm", ["dx7_18", "serial"])
def test_random_exponential_patches_snr_against_float64_reference(algorithm, rng):
    for _ in range(3):
        patch = random_patch(rng, algorithm)
        patch["envelope"]["curve"] = "exponential"
        assert snr_db(render_reference(patch), render(patch)) >= 80, patch


def test_render_48k_applies_the_exponential_envelope_sample_exactly():
    fc = 1234.5
    patch = make_patch(carrier_hz=fc, envelope=vars(EXP))
    y = render_48k(patch)
    t = np.arange(y.size) / SR_48K
    s = np.sin(2 * np.pi * fc * t)
    env = envelope_levels(EXP, t, note_off_s=P.NOTE_OFF_S)
    ok = np.abs(s) > 0.2
    assert np.max(np.abs(y[ok] / s[ok] - env[ok])) < 1e-5
    assert np.all(y[round((P.NOTE_OFF_S + EXP.release_s) * SR_48K) :] == 0)


#: sha256 of renders of 12 linear patches (4 envelopes x 3 carriers, two timings)
#: and 4 ADSR curves, taken before envelope curves existed (commit 80d3d37).
LINEAR_RENDERS_SHA256 = (
    "88ade95dc75122b342d7acd29ff47df90065b15a9c2c89d5af3c5ff28f1d5051"
)


def test_linear_patches_render_bit_identically_to_before_curves():
    import hashlib

    mods = [(2.0, 1.5), (1.0, 0.0), (3.0, 0.7), (1.0, 0.0), (0.5, 2.0)]
    envs = [
        {"attack_s": 0.01, "decay_s": 0.2, "sustain": 0.6, "release_s": 0.3},
        {"attack_s": 0.0, "decay_s": 0.0, "sustain": 0.7, "release_s": 0.0},
        {"attack_s": 0.5, "decay_s": 2.9, "sustain": 0.0, "release_s": 0.8},
        {"attack_s": 0.3, "decay_s": 0.1, "sustain": 0.2, "release_s": 0.05},
    ]
    h = hashlib.sha256()
    for i, e in enumerate(envs):
        for hz in (110.0, 440.0, 3000.0):
            p = make_patch(
                carrier_hz=hz,
                ratios=[r for r, _ in mods],
                indices=[b for _, b in mods],
                envelope=e,
            )
            if i == 3:
                p["level"] = 0.5
            h.update(render(p).tobytes())
            h.update(render(p, duration_s=1.0, note_off_s=0.2).tobytes())
        env = Envelope(**e)
        h.update(
            adsr_envelope(env, 4 * SR_48K, sample_rate=SR_48K, note_off_s=3.0).tobytes()
        )
    assert h.hexdigest() == LINEAR_RENDERS_SHA256


# ------------------------------------------------------------------------ anti-aliasing


@pytest.mark.parametrize(
    "freq_hz",
    [
        8000.0,
        8100.0,
        9123.4,
        12000.0,
        15999.0,
        16000.0,
        16001.0,
        20000.0,
        23987.6,
        24000.0 - 1e-3,
    ],
)
def test_downsample_removes_everything_between_8_and_24_khz(freq_hz):
    """A steady tone between 8 and 24 kHz at 48 kHz is attenuated by at least 60 dB
    at 16 kHz (measured away from the ends, where a truncated tone's own onset is
    broadband)."""
    t = np.arange(SR_48K) / SR_48K
    x = np.sin(2 * np.pi * freq_hz * t + 0.3).astype(np.float32)
    y = downsample(x)
    assert y.shape == (SR,) and y.dtype == np.float32
    interior = y[400:-400]  # 25 ms from each end
    rms_in = np.sqrt(np.mean(x.astype(np.float64) ** 2))
    rms_out = np.sqrt(np.mean(interior.astype(np.float64) ** 2))
    assert db(rms_out / rms_in) <= -60


def test_downsample_removes_aliases_from_a_mixture():
    """Several high tones mixed with a 1 kHz tone: only the 1 kHz tone survives."""
    t = np.arange(2 * SR_48K) / SR_48K
    low = np.sin(2 * np.pi * 1000 * t)
    high = sum(np.sin(2 * np.pi * f * t) for f in (8500, 11000, 15000, 17000, 23000))
    y = downsample((low + high).astype(np.float32)).astype(np.float64)
    want = low[::3]
    assert db(np.abs(y - want)[400:-400].max()) < -60


@pytest.mark.parametrize("freq_hz", [50.0, 1000.0, 4321.0, 7000.0, 7500.0])
def test_downsample_passes_the_passband_with_zero_phase(freq_hz):
    """Below 7.6 kHz the output is the input sampled at every third sample: unit
    gain and no delay (to -80 dB, 25 ms from the ends of the truncated tone)."""
    t = np.arange(SR_48K) / SR_48K
    x = np.sin(2 * np.pi * freq_hz * t + 0.7)
    y = downsample(x)
    assert y.dtype == np.float64
    assert np.abs(y - x[::3])[400:-400].max() < 1e-4


def test_render_of_a_carrier_above_8_khz_is_silent():
    y = render(make_patch(carrier_hz=10_000.0), duration_s=1.0, note_off_s=1.0)
    assert (
        db(np.sqrt(np.mean(y[400:-400].astype(np.float64) ** 2)) / np.sqrt(0.5)) < -60
    )


def test_downsample_batch_shape_and_length_check(rng):
    x = rng.standard_normal((2, 3, 3000)).astype(np.float32)
    y = downsample(x)
    assert y.shape == (2, 3, 1000) and y.dtype == np.float32
    # Equal up to float32 rounding (pocketfft vectorises across rows differently).
    np.testing.assert_allclose(y[1, 2], downsample(x[1, 2]), atol=1e-6)
    with pytest.raises(InputError, match="multiple of 3"):
        downsample(np.zeros(1000))


# --------------------------------------------------------------------------- accuracy


def test_6khz_carrier_snr_against_float64_reference():
    """The phase of a 6 kHz carrier stays accurate over the whole 4 s note."""
    patch = make_patch(carrier_hz=6000.0, envelope=vars(ENV))
    assert snr_db(render_reference(patch), render(patch)) >= 80


def test_6khz_fm_patch_snr_against_float64_reference():
    patch = make_patch(
        carrier_hz=6000.0,
        ratios=(0.125, 0.25, 1.0, 0.5, 1 / 3),
        indices=(1.0, 0.5, 2.0, 1.5, 3.0),
        envelope=vars(ENV),
    )
    assert snr_db(render_reference(patch), render(patch)) >= 80


@pytest.mark.parametrize("algorithm", ["dx7_18", "serial"])
def test_random_patches_snr_against_float64_reference(algorithm, rng):
    """Random paper-range patches (all operators active, index up to 8, silent tails
    of different lengths) render within 80 dB of the reference."""
    for _ in range(3):
        patch = random_patch(rng, algorithm)
        assert snr_db(render_reference(patch), render(patch)) >= 80, patch


def test_example_patch_with_unused_modulators_matches_reference():
    """Modulators with index 0 (and what only feeds them) are skipped; the
    reference computes everything."""
    from fmlib.paths import PROJECT_ROOT
    from fmlib.synth.patch import load_patch

    patch = load_patch(PROJECT_ROOT / "examples" / "patch.json")
    assert snr_db(render_reference(patch), render(patch)) >= 80


# --------------------------------------------------------------------------- API


def test_output_dtype_shape_and_range(rng):
    y = render(random_patch(rng))
    assert y.dtype == np.float32 and y.shape == (64000,)
    # The low-pass may overshoot a little where it removes strong partials > 8 kHz.
    assert np.all(np.isfinite(y)) and np.abs(y).max() <= 1.5
    assert render(random_patch(rng), duration_s=1.5, note_off_s=1.0).shape == (24000,)
    assert render_48k(random_patch(rng), duration_s=1.0).shape == (48000,)


def test_render_is_deterministic_and_patch_dependent(rng):
    patch = random_patch(rng)
    a = render(patch)
    assert a.tobytes() == render(patch).tobytes()
    assert a.tobytes() == render(patch_from_dict(patch)).tobytes()
    other = dict(patch, carrier_hz=patch["carrier_hz"] * 1.01)
    assert not np.array_equal(a, render(other))


def test_render_batch_equals_render_note_by_note(rng):
    patches = [random_patch(rng) for _ in range(3)] + [
        patch_from_dict(random_patch(rng, "serial"))
    ]
    batch = render_batch(patches, duration_s=2.0, note_off_s=1.5)
    assert batch.shape == (4, 32000) and batch.dtype == np.float32
    for row, p in zip(batch, patches, strict=True):
        assert np.array_equal(row, render(p, duration_s=2.0, note_off_s=1.5))
    assert render_batch([]).shape == (0, 64000)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"duration_s": 0.0}, "duration_s"),
        ({"duration_s": -1.0}, "duration_s"),
        ({"duration_s": float("nan")}, "duration_s"),
        ({"duration_s": 1e6}, "duration_s"),
        ({"duration_s": "4"}, "duration_s"),
        ({"note_off_s": -0.5}, "note_off_s"),
        ({"note_off_s": float("inf")}, "note_off_s"),
    ],
)
def test_render_rejects_bad_timing(kwargs, field):
    with pytest.raises(InputError, match=field):
        render(make_patch(carrier_hz=440.0), **kwargs)


def test_outputs_are_not_overwritten_by_later_calls(rng):
    """Scratch arrays are reused between notes; returned arrays never are."""
    p1, p2 = random_patch(rng), random_patch(rng)
    a = render(p1, duration_s=1.0)
    a_copy = a.copy()
    x = render_48k(p1, duration_s=1.0)
    x_copy = x.copy()
    d = downsample(x)
    d_copy = d.copy()
    render(p2, duration_s=1.0)
    render_48k(p2, duration_s=1.0)
    downsample(render_48k(p2, duration_s=1.0))
    assert np.array_equal(a, a_copy)
    assert np.array_equal(x, x_copy)
    assert np.array_equal(d, d_copy)


def test_threads_render_the_same_notes(rng):
    from concurrent.futures import ThreadPoolExecutor

    patches = [random_patch(rng) for _ in range(6)]
    serial = [render(p, duration_s=1.0) for p in patches]
    with ThreadPoolExecutor(max_workers=3) as pool:
        threaded = list(pool.map(lambda p: render(p, duration_s=1.0), patches))
    for a, b in zip(serial, threaded, strict=True):
        assert np.array_equal(a, b)


def test_render_does_not_depend_on_blas_thread_count(rng):
    """BLAS sums in another order with another thread count; render must not care."""
    from threadpoolctl import threadpool_limits

    patches = [random_patch(rng) for _ in range(4)]
    batch = rng.standard_normal((8, 3 * 64000)).astype(np.float32)
    results = []
    for threads in (1, 2, 4):
        with threadpool_limits(threads):
            results.append(
                ([render(p, duration_s=1.0) for p in patches], downsample(batch))
            )
    for notes, down in results[1:]:
        assert all(
            np.array_equal(a, b) for a, b in zip(results[0][0], notes, strict=True)
        )
        assert np.array_equal(results[0][1], down)
