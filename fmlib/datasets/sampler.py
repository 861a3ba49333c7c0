"""The paper's random patches (section 5.1.2): one documented function per distribution.

Every note of a dataset is drawn from its own random stream, seeded by the pair
(dataset seed, note number)::

    rng = numpy.random.Generator(PCG64(SeedSequence(seed, spawn_key=(note_index,))))

which is exactly the stream of ``SeedSequence(seed).spawn(n)[note_index]``. A note's
parameters therefore never depend on how many workers render the dataset, on the
shard size or on which notes were drawn before it. Inside a note the draws happen in
a fixed order: carrier, the five ratios, the five indices, then the envelope.

Distributions (limits come from :data:`fmlib.synth.params.PARAMS` unless configured):

=============  =========================================================================
parameter      distribution
=============  =========================================================================
carrier_hz     prior ``paper``: Uniform[20, 6000] Hz (uniform in Hz, as the paper
               states, not in pitch); prior ``musical``: uniform in MIDI note number
               over [21, 108] (A0-C8), i.e. log-uniform over [27.5, 4186.01] Hz
ratio_k        p = 0.9: uniform choice from :data:`fmlib.synth.params.DISCRETE_RATIOS`
               {1/8, ..., 1/2, 1, 2, ..., 8}; p = 0.1: log-uniform on [1/8, 8]
index_k        p = 0.2: U[0, 0.5]; p = 0.6: U[0.5, 3]; p = 0.2: U[3, 8] (radians)
attack_s       U[0.005, 0.5] s
decay_s        U[0.02, 0.6] s
sustain        U[0.1, 0.9]
release_s      U[0.05, 0.8] s
amplitude      fixed at 1.0 (not a parameter of the synthesizer)
algorithm      fixed per dataset (``dx7_18`` by default)
=============  =========================================================================

Priors. The paper's carrier prior puts 67 % of the notes above 2 kHz and 30 % above
the piano's top key (4186 Hz), where few instruments play (measured with
``benchmarks/diagnose_priors.py``: ``docs/PRIORS.md``). The ``musical`` prior keeps
every other distribution and only spaces the carrier like musical pitch over the
piano's range (:data:`fmlib.synth.params.MUSICAL_MIDI_RANGE`). The carrier is one
uniform draw in both priors, so a note's ratios, indices and envelope are the same
under either prior for the same (seed, note index). The ``paper`` prior is the
default and is not written into :meth:`SamplerConfig.to_dict`, so the manifests of
datasets made before priors existed (and their hashes) are unchanged: a sampler
configuration without ``prior`` is the paper's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from fmlib.errors import InputError
from fmlib.synth import params as P
from fmlib.synth.algorithms import DEFAULT_ALGORITHM, get_algorithm

#: Index bins of the paper: (low, high, probability), radians.
PAPER_INDEX_BINS: tuple[tuple[float, float, float], ...] = (
    (0.0, 0.5, 0.2),
    (0.5, 3.0, 0.6),
    (3.0, 8.0, 0.2),
)
#: Probability that a ratio comes from the discrete set (paper: 0.9).
PAPER_P_DISCRETE = 0.9


#: Carrier priors, by name: how the carrier frequency is spaced (module docstring).
PRIORS: tuple[str, ...] = ("paper", "musical")
#: The prior of every dataset made before priors existed, and the default.
DEFAULT_PRIOR = "paper"


def _range(name: str) -> tuple[float, float]:
    spec = P.PARAMS[name]
    return (spec.low, spec.high)


def check_prior(prior: str) -> str:
    """``prior`` when it names a prior of :data:`PRIORS`; InputError listing them."""
    if not isinstance(prior, str) or prior not in PRIORS:
        raise InputError(f"prior: unknown prior {prior!r}; valid: {', '.join(PRIORS)}")
    return prior


def prior_carrier_range(prior: str) -> tuple[float, float]:
    """Default carrier range of a prior, Hz: (low, high).

    ``paper``: the declared range of ``carrier_hz`` (20-6000 Hz). ``musical``: MIDI
    21-108 converted to Hz (27.5-4186.009 Hz), inside the declared range.
    """
    if check_prior(prior) == "musical":
        lo, hi = P.MUSICAL_MIDI_RANGE
        return (float(P.midi_to_hz(lo)), float(P.midi_to_hz(hi)))
    return _range("carrier_hz")


@dataclass(frozen=True)
class SamplerConfig:
    """Every setting of the sampler; stored in a dataset's manifest.

    Attributes:
        algorithm: Operator graph of every note (a key of ``fmlib.ALGORITHMS``).
        ratio_set: Discrete ratios, each chosen with equal probability.
        p_discrete: Probability in [0, 1] that a ratio is drawn from ``ratio_set``
            rather than log-uniformly from ``ratio_range``.
        ratio_range: (low, high) of the log-uniform ratio branch, both > 0.
        index_bins: ((low, high, probability), ...) radians; probabilities sum to 1.
        carrier_range: (low, high) of the carrier frequency, Hz (default: the
            prior's, :func:`prior_carrier_range`).
        attack_range, decay_range, release_range: uniform ranges, s.
        sustain_range: uniform range of the sustain level, in [0, 1].
        prior: How the carrier is spaced over ``carrier_range``: ``"paper"``
            uniform in Hz, ``"musical"`` uniform in pitch (log-uniform in Hz).
    """

    algorithm: str = DEFAULT_ALGORITHM
    ratio_set: tuple[float, ...] = P.DISCRETE_RATIOS
    p_discrete: float = PAPER_P_DISCRETE
    ratio_range: tuple[float, float] = field(default_factory=lambda: _range("ratio_1"))
    index_bins: tuple[tuple[float, float, float], ...] = PAPER_INDEX_BINS
    carrier_range: tuple[float, float] | None = None
    attack_range: tuple[float, float] = field(
        default_factory=lambda: _range("attack_s")
    )
    decay_range: tuple[float, float] = field(default_factory=lambda: _range("decay_s"))
    sustain_range: tuple[float, float] = field(
        default_factory=lambda: _range("sustain")
    )
    release_range: tuple[float, float] = field(
        default_factory=lambda: _range("release_s")
    )
    prior: str = DEFAULT_PRIOR

    def __post_init__(self) -> None:
        get_algorithm(self.algorithm)
        check_prior(self.prior)
        if self.carrier_range is None:  # frozen: set the prior's default once
            object.__setattr__(self, "carrier_range", prior_carrier_range(self.prior))
        if not self.ratio_set or any(not P.RATIO.is_valid(r) for r in self.ratio_set):
            raise InputError(
                f"ratio_set: every ratio must be {P.RATIO.valid_text()}; "
                f"got {self.ratio_set!r}"
            )
        if not 0.0 <= self.p_discrete <= 1.0:
            raise InputError(f"p_discrete: {self.p_discrete!r} is not in [0, 1]")
        lo, hi = self.ratio_range
        if not (P.RATIO.is_valid(lo) and P.RATIO.is_valid(hi) and lo <= hi):
            raise InputError(f"ratio_range: {self.ratio_range!r} is not a valid range")
        probs = [b[2] for b in self.index_bins]
        if (
            not self.index_bins
            or any(p < 0 for p in probs)
            or abs(sum(probs) - 1) > 1e-9
        ):
            raise InputError(
                f"index_bins: probabilities must be >= 0 and sum to 1; got {probs!r}"
            )
        for lo, hi, _ in self.index_bins:
            if not (P.INDEX.is_valid(lo) and P.INDEX.is_valid(hi) and lo <= hi):
                raise InputError(f"index_bins: bad bin ({lo!r}, {hi!r})")
        for name, spec in (
            ("carrier_range", P.CARRIER),
            ("attack_range", P.ATTACK),
            ("decay_range", P.DECAY),
            ("sustain_range", P.SUSTAIN),
            ("release_range", P.RELEASE),
        ):
            lo, hi = getattr(self, name)
            if not (spec.is_valid(lo) and spec.is_valid(hi) and lo <= hi):
                raise InputError(f"{name}: {(lo, hi)!r} is not a valid range")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (tuples become lists).

        ``prior`` is left out when it is ``"paper"``: the dict (and so every
        manifest of a paper-prior dataset) is then exactly what it was before priors
        existed; :meth:`from_dict` reads a missing ``prior`` as ``"paper"``.
        """
        d = asdict(self)
        if d["prior"] == DEFAULT_PRIOR:
            del d["prior"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SamplerConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise :class:`InputError`."""
        names = set(cls.__dataclass_fields__)
        unknown = set(d) - names
        if unknown:
            raise InputError(f"sampler config: unknown keys {sorted(unknown)}")
        kw: dict[str, Any] = {}
        for k, v in d.items():
            if k == "index_bins":
                v = tuple(tuple(float(x) for x in b) for b in v)
            elif v is not None and (k == "ratio_set" or k.endswith("_range")):
                v = tuple(float(x) for x in v)
            kw[k] = v
        return cls(**kw)


def note_rng(seed: int, note_index: int) -> np.random.Generator:
    """The random stream of one note: PCG64 seeded by SeedSequence(seed, (note_index,)).

    Args:
        seed: Dataset seed, an integer >= 0.
        note_index: Note number in the dataset, an integer >= 0.
    """
    if seed < 0 or note_index < 0:
        raise InputError(f"seed and note index must be >= 0; got {seed}, {note_index}")
    ss = np.random.SeedSequence(int(seed), spawn_key=(int(note_index),))
    return np.random.Generator(np.random.PCG64(ss))


def sample_uniform(
    rng: np.random.Generator, low_high: tuple[float, float], *, size: int | None = None
) -> np.ndarray | float:
    """Uniform on [low, high): carrier frequency (Hz) and the four ADSR values."""
    low, high = low_high
    return rng.uniform(low, high, size=size)


def sample_carrier(rng: np.random.Generator, config: SamplerConfig) -> float:
    """The carrier frequency, Hz, from one uniform draw of ``rng``.

    ``paper``: uniform in Hz over ``config.carrier_range``. ``musical``: uniform in
    (fractional) MIDI note number between the range's two ends, converted to Hz and
    clipped to the range (the round trip through log2 can land one ulp outside).
    """
    if config.prior == "musical":
        lo, hi = config.carrier_range
        note = rng.uniform(float(P.hz_to_midi(lo)), float(P.hz_to_midi(hi)))
        return float(np.clip(P.midi_to_hz(note), lo, hi))
    return sample_uniform(rng, config.carrier_range)


def sample_ratios(
    rng: np.random.Generator, config: SamplerConfig, *, size: int = P.N_MODULATORS
) -> np.ndarray:
    """Modulator ratios: a mixture of a discrete choice and a log-uniform draw.

    Each ratio independently: with probability ``config.p_discrete`` a uniform choice
    from ``config.ratio_set``; otherwise exp(U[log low, log high)) over
    ``config.ratio_range``. All three arrays are always drawn so that the stream
    layout (and thus every later draw of the note) does not depend on the branches.

    Returns:
        float64 array of shape (size,), ratios (dimensionless, > 0).
    """
    discrete = rng.random(size) < config.p_discrete
    choice = np.asarray(config.ratio_set, dtype=np.float64)[
        rng.integers(0, len(config.ratio_set), size=size)
    ]
    lo, hi = config.ratio_range
    log_uniform = np.exp(rng.uniform(np.log(lo), np.log(hi), size=size))
    # exp(log(hi)) can land one ulp above hi; keep the declared range exact.
    log_uniform = np.clip(log_uniform, lo, hi)
    return np.where(discrete, choice, log_uniform)


def sample_indices(
    rng: np.random.Generator, config: SamplerConfig, *, size: int = P.N_MODULATORS
) -> np.ndarray:
    """Modulation indices: pick a bin by its probability, then uniform inside it.

    Returns:
        float64 array of shape (size,), radians, within the union of the bins.
    """
    bins = np.asarray(config.index_bins, dtype=np.float64)
    which = rng.choice(len(bins), size=size, p=bins[:, 2])
    u = rng.random(size)
    return bins[which, 0] + u * (bins[which, 1] - bins[which, 0])


def sample_note_with_rng(rng: np.random.Generator, config: SamplerConfig) -> np.ndarray:
    """One note's 15 parameters from ``rng`` (draw order documented in the module).

    Returns:
        float64 array of shape (15,) in :data:`fmlib.synth.params.TARGET_NAMES` order.
    """
    carrier = sample_carrier(rng, config)
    ratios = sample_ratios(rng, config)
    indices = sample_indices(rng, config)
    env = [
        sample_uniform(rng, r)
        for r in (
            config.attack_range,
            config.decay_range,
            config.sustain_range,
            config.release_range,
        )
    ]
    return np.concatenate([[carrier], ratios, indices, env]).astype(np.float64)


def sample_note(
    seed: int, note_index: int, *, config: SamplerConfig | None = None
) -> np.ndarray:
    """The parameters of note ``note_index`` of the dataset seeded with ``seed``.

    Returns:
        float64 array of shape (15,) in :data:`fmlib.synth.params.TARGET_NAMES` order.
    """
    return sample_note_with_rng(note_rng(seed, note_index), config or SamplerConfig())


def sample_vectors(
    n: int, *, seed: int, start: int = 0, config: SamplerConfig | None = None
) -> np.ndarray:
    """Parameters of notes ``start .. start + n - 1`` of the dataset seeded ``seed``.

    Row ``i`` equals ``sample_note(seed, start + i, config=config)`` exactly.

    Returns:
        float64 array of shape (n, 15) in :data:`fmlib.synth.params.TARGET_NAMES` order.
    """
    config = config or SamplerConfig()
    out = np.empty((n, len(P.TARGET_NAMES)), dtype=np.float64)
    for i in range(n):
        out[i] = sample_note_with_rng(note_rng(seed, start + i), config)
    return out
