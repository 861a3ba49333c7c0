"""Sound matching by analysis and search: audio in, a patch that sounds like it out.

The estimator behind ``python -m fmlib match`` and ``evaluate --method match``. It
sees only the audio (no label), and works in four steps:

1. **Analysis** (:mod:`fmlib.audio.analysis`): f0, RMS envelope, an ADSR fitted
   with note-off at 3 s for each envelope curve (linear, exponential; the search
   scores timbres under the linear one, see :func:`_search_envelope`), and the
   carrier's ``level``.
2. **Starting hypotheses** from a precomputed table of harmonic spectra
   (:func:`fmlib.audio.timbre.harmonic_table`): a few thousand patches whose partials
   lie on the harmonics of f0 (carrier at f0/2, f0 or 2 f0; ratios from the discrete
   set that keep the partials harmonic), projected onto the mel bands at the
   measured f0 with one matrix product and ranked against the note's log-mel
   spectrogram at a dozen representative frames. Optionally the paper's CNN
   (``model_dir``) adds its own patch as one more hypothesis.
3. **Search**: CMA-ES (the maintained ``cma`` package) over the five modulation
   indices of each hypothesis, with successive halving (every hypothesis gets a few
   generations, the better half gets more, ...), then a pass that tries every
   allowed ratio for each modulator, then more CMA-ES on the winner. Each candidate
   costs one 128 ms frame rendered at 48 kHz
   (:func:`fmlib.audio.timbre.frame_mel_power`, batched), scored over the whole note
   through the envelope model ``log1p(gain(t) * mel_power(f))`` against the note's
   log-mel spectrogram: the paper's log-mel metric, predicted without rendering the
   note. When the note is inharmonic (partials more than :data:`INHARMONIC_CENTS` off
   the harmonics: bells, mallets) the winner's ratios are also freed (continuous) in a
   last CMA-ES run.
4. **Envelope refinement**: the ADSR and level are refitted by least squares on
   the same full log-mel model with the chosen timbre, once from each curve's
   analysis fit; the curve with the lower loss is kept (linear on a tie).

The budget counts candidate timbres rendered (one frame each). Everything is
seeded and single-threaded, so the same input, budget and seed give the same patch,
byte for byte.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.optimize

from fmlib.audio import timbre
from fmlib.audio.analysis import Analysis, analyze, fit_envelope  # noqa: F401
from fmlib.errors import InputError
from fmlib.synth import params as P
from fmlib.synth.algorithms import DEFAULT_ALGORITHM
from fmlib.synth.patch import Envelope, Patch, patch_from_vector

#: Candidate timbres rendered per note by default (about 0.4 s of CPU on one core
#: of the 2-core development machine; see ``benchmarks/bench_match.py``).
DEFAULT_BUDGET = 1500
#: Smallest budget accepted: enough for the table's hypotheses to be tried.
MIN_BUDGET = 50
MAX_BUDGET = 1_000_000
#: Table entries rendered exactly (the best of the ranking without rendering).
N_CANDIDATES = 48
#: Hypotheses searched first by successive halving; the rest are a reserve.
N_HYPOTHESES = 8
#: CMA-ES generations given to each reserve hypothesis.
RESERVE_GENERATIONS = 6
#: Representative frames used to rank the table.
N_RANK_FRAMES = 12
#: Upper bound of the searched modulation indices, rad.
MAX_INDEX = 12.0
#: Mean partial deviation from the harmonics above which ratios are freed, cents.
INHARMONIC_CENTS = 15.0
#: CMA-ES population (candidates rendered per generation).
POPSIZE = 10
#: Envelope curve under which the search scores timbres (see :func:`_search_envelope`).
SEARCH_CURVE = "linear"


@dataclass(frozen=True)
class MatchResult:
    """What :func:`match_note` found.

    Attributes:
        patch: The matched patch (algorithm ``dx7_18``, with ``level``).
        analysis: The note's :class:`~fmlib.audio.analysis.Analysis`.
        predicted_logmel: The search's estimate of the log-mel distance between the
            note and the patch's render (the metric itself is computed by
            :mod:`fmlib.evaluation.evaluate`).
        n_evaluations: Candidate timbres rendered.
        hypothesis: Where the winning timbre started ("table", "cnn").
    """

    patch: Patch
    analysis: Analysis
    predicted_logmel: float
    n_evaluations: int
    hypothesis: str = "table"
    history: list = field(default_factory=list, compare=False, repr=False)


class _Objective:
    """Full-note log-mel distance of candidate timbres, predicted from one frame.

    ``target`` is the note's log-mel spectrogram (128, n_frames); ``gains`` the
    envelope's power gain per frame.
    """

    def __init__(
        self, target: np.ndarray, gains: np.ndarray, f0_hz: float, budget: int
    ):
        self.budget = budget
        self.target = np.asarray(target, dtype=np.float64)
        self.gains = gains
        self.f0_hz = f0_hz
        self.n_evaluations = 0
        # Representative frames for ranking the table: quantile groups of the
        # active frames by gain, each weighted by its size.
        active = np.nonzero(gains > gains.max() * 1e-6)[0]
        order = active[np.argsort(gains[active], kind="stable")]
        groups = np.array_split(order, min(N_RANK_FRAMES, order.size))
        self.rank_frames = np.array([g[g.size // 2] for g in groups if g.size])
        self.rank_weights = np.array([g.size for g in groups if g.size], float)

    def full(self, mel_power: np.ndarray) -> np.ndarray:
        """Distance for each row of ``mel_power`` (K, 128): shape (K,)."""
        pred = timbre.predicted_log_mel(self.gains, mel_power)
        diff = pred - self.target[None]
        return np.sqrt(np.einsum("kft,kft->k", diff, diff))

    def ranked(self, mel_power: np.ndarray) -> np.ndarray:
        """Approximate distance from the representative frames: shape (K,)."""
        t = self.rank_frames
        pred = np.log1p(mel_power[:, :, None] * self.gains[None, None, t])
        diff = pred - self.target[None, :, t]
        return np.sqrt(np.einsum("kft,kft,t->k", diff, diff, self.rank_weights))

    def left(self) -> int:
        """Candidates that may still be rendered."""
        return self.budget - self.n_evaluations

    def render(self, carrier_hz, ratios, indices) -> np.ndarray:
        """Render and score candidates: shape (K,). Callers keep within
        :meth:`left`; the budget is a hard limit."""
        if len(indices) > self.left():
            raise AssertionError("match: a step asked for more renders than left")
        carrier_hz = np.broadcast_to(np.asarray(carrier_hz, float), (len(indices),))
        self.n_evaluations += len(indices)
        return self.full(timbre.frame_mel_power(carrier_hz, ratios, indices))


@dataclass
class _Hypothesis:
    carrier_multiple: float
    ratios: np.ndarray  # (5,)
    indices: np.ndarray  # (5,)
    source: str
    loss: float = math.inf
    es: object = None

    def key(self) -> tuple:
        active = self.indices > 0
        return (
            self.carrier_multiple,
            tuple(np.where(active, self.ratios, 0.0)),
            tuple(np.round(self.indices, 1)),
        )


def _start_es(h: _Hypothesis, *, seed: int, sigma: float = 0.6):
    import cma

    x0 = np.clip(h.indices, 0.0, MAX_INDEX)
    opts = {
        "bounds": [0.0, MAX_INDEX],
        "popsize": POPSIZE,
        "seed": int(seed) + 1,  # cma treats seed 0 as "random": never pass 0
        "verbose": -9,
        "CMA_diagonal": False,
        "tolfun": 1e-9,
    }
    return cma.CMAEvolutionStrategy(x0.tolist(), sigma, opts)


def _run_es(h: _Hypothesis, obj: _Objective, f0: float, generations: int) -> None:
    """Advance ``h``'s CMA-ES by up to ``generations`` generations."""
    es = h.es
    for _ in range(generations):
        if es.stop() or obj.left() < POPSIZE:
            break
        xs = np.array(es.ask())
        xs = np.clip(xs, 0.0, MAX_INDEX)
        losses = obj.render(
            h.carrier_multiple * f0, np.broadcast_to(h.ratios, xs.shape), xs
        )
        es.tell(list(xs), losses.tolist())
        i = int(np.argmin(losses))
        if losses[i] < h.loss:
            h.loss, h.indices = float(losses[i]), xs[i].copy()


def _ratio_pass(h: _Hypothesis, obj: _Objective, f0: float) -> None:
    """Try every harmonic-locked ratio for each modulator (indices kept); keep
    improvements, modulator by modulator."""
    allowed = np.array(timbre.harmonic_ratios(h.carrier_multiple))
    for i in range(P.N_MODULATORS):
        if h.indices[i] <= 0 or obj.left() < allowed.size:
            continue
        cands = np.repeat(h.ratios[None, :], allowed.size, axis=0)
        cands[:, i] = allowed
        idx = np.repeat(h.indices[None, :], allowed.size, axis=0)
        losses = obj.render(h.carrier_multiple * f0, cands, idx)
        j = int(np.argmin(losses))
        if losses[j] < h.loss:
            h.loss, h.ratios = float(losses[j]), cands[j].copy()


def _free_ratio_search(
    h: _Hypothesis, obj: _Objective, f0: float, *, evaluations: int, seed: int
) -> None:
    """CMA-ES over log-ratios and indices together (inharmonic sounds)."""
    import cma

    x0 = np.concatenate([np.log2(h.ratios), np.clip(h.indices, 0, MAX_INDEX)])
    lo = np.concatenate([np.full(5, math.log2(P.RATIO.low)), np.zeros(5)])
    hi = np.concatenate([np.full(5, math.log2(P.RATIO.high)), np.full(5, MAX_INDEX)])
    es = cma.CMAEvolutionStrategy(
        x0.tolist(),
        0.3,
        {
            "bounds": [lo.tolist(), hi.tolist()],
            "popsize": POPSIZE,
            "seed": int(seed) + 2,
            "verbose": -9,
        },
    )
    while obj.n_evaluations + POPSIZE <= evaluations and not es.stop():
        xs = np.clip(np.array(es.ask()), lo, hi)
        ratios, idx = 2.0 ** xs[:, :5], xs[:, 5:]
        losses = obj.render(h.carrier_multiple * f0, ratios, idx)
        es.tell(list(xs), losses.tolist())
        i = int(np.argmin(losses))
        if losses[i] < h.loss:
            h.loss, h.ratios, h.indices = float(losses[i]), ratios[i], idx[i]


def _search_envelope(an: Analysis) -> tuple[Envelope, float]:
    """The envelope and level the timbre search scores candidates under: the
    analysis's fit with :data:`SEARCH_CURVE` (linear).

    Why not the better-fitting curve: the curve is chosen afterwards on the full
    log-mel model (:func:`_refine_envelopes`), and searching under the linear fit
    keeps the search exactly as it was before curves existed. Measured at budget
    1500, seed 0: searching under the better fit instead gave the same means
    (dev log-mel 41.35 either way, SoundFont 27.44 against 27.30) but moved single
    notes both ways (dev: 62 better, 25 worse by up to 11.7, against 73 better, 2
    worse by at most 0.5 with the linear search; SoundFont: 90 better, 39 worse,
    against 121 better, 0 worse).
    """
    for fit in an.fits:
        if fit.envelope.curve == SEARCH_CURVE:
            return fit.envelope, fit.level
    return an.envelope, an.level


def _refine_envelope(
    obj: _Objective, mel_power: np.ndarray, envelope: Envelope, level: float, n: int
) -> tuple[Envelope, float, float]:
    """Least-squares refit of ADSR + level on the full log-mel model, keeping the
    envelope's curve.

    Returns:
        (envelope, level, loss): the refit, or the start when the refit is not
        lower; ``loss`` is the predicted log-mel distance.
    """
    from fmlib.audio.analysis import envelope_bounds

    low, high = envelope_bounds(envelope.curve)

    def residual(v):
        env = Envelope(*v[:4], envelope.curve)
        g = timbre.frame_gains(env, v[4], n_samples=n)
        return (timbre.predicted_log_mel(g, mel_power[None])[0] - obj.target).ravel()

    x0 = np.array([*_env_tuple(envelope), level])
    x0 = np.minimum(np.maximum(x0, low + 1e-6), high - 1e-6)
    res = scipy.optimize.least_squares(
        residual, x0, bounds=(low, high), x_scale="jac", max_nfev=60
    )
    before = float(np.linalg.norm(residual(x0)))
    after = float(np.linalg.norm(res.fun))
    if after >= before:
        return envelope, level, before
    v = res.x
    return Envelope(*map(float, v[:4]), envelope.curve), float(v[4]), after


def _refine_envelopes(
    obj: _Objective, mel_power: np.ndarray, an: Analysis, n: int
) -> tuple[Envelope, float, float]:
    """:func:`_refine_envelope` from each curve's fit of the analysis
    (:attr:`~fmlib.audio.analysis.Analysis.fits`); the lowest loss wins, the
    earlier curve (linear) on a tie."""
    starts = [(f.envelope, f.level) for f in an.fits] or [(an.envelope, an.level)]
    best = None
    for envelope, level in starts:
        found = _refine_envelope(obj, mel_power, envelope, level, n)
        if best is None or found[2] < best[2]:
            best = found
    return best


def _env_tuple(e: Envelope) -> tuple[float, float, float, float]:
    return (e.attack_s, e.decay_s, e.sustain, e.release_s)


def _cnn_hypothesis(patch: Patch, f0: float) -> _Hypothesis:
    """The CNN's patch as a harmonic-locked hypothesis: its carrier moved to the
    nearest of f0/2, f0, 2 f0 and its ratios to the nearest allowed ratio."""
    km = min(
        timbre.CARRIER_MULTIPLES,
        key=lambda k: abs(math.log2(patch.carrier_hz / (k * f0))),
    )
    allowed = np.array(timbre.harmonic_ratios(km))
    ratios = np.array(
        [
            allowed[np.argmin(np.abs(np.log2(allowed / m.ratio)))]
            for m in patch.modulators
        ]
    )
    indices = np.array([m.index for m in patch.modulators])
    return _Hypothesis(km, ratios, indices, "cnn")


def check_budget(budget) -> int:
    """Validate a budget (candidate timbres per note)."""
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)):
        raise InputError(
            f"budget: {budget!r} is not valid; valid: an integer from {MIN_BUDGET} "
            f"to {MAX_BUDGET}"
        )
    if not MIN_BUDGET <= int(budget) <= MAX_BUDGET:
        raise InputError(
            f"budget: {budget} is not valid; valid: an integer from {MIN_BUDGET} "
            f"to {MAX_BUDGET}"
        )
    return int(budget)


def match_note(
    x,
    *,
    budget: int = DEFAULT_BUDGET,
    seed: int = 0,
    cnn_patch: Patch | None = None,
) -> MatchResult:
    """Find a patch for one note.

    Args:
        x: The note, mono float shape (n,) at 16 kHz (see
            :func:`fmlib.audio.analysis.prepare_audio`), not silent.
        budget: Candidate timbres to render (>= 50).
        seed: Seed of the search (CMA-ES).
        cnn_patch: Optional patch of another estimator (the paper's CNN), tried as
            one more starting hypothesis.

    Returns:
        A :class:`MatchResult`.
    """
    from threadpoolctl import threadpool_limits

    from fmlib.audio.metrics import features

    budget = check_budget(budget)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed: {seed!r} is not valid; valid: an integer >= 0")
    with threadpool_limits(1):
        a = np.asarray(x, dtype=np.float32)
        an = analyze(a)
        f0 = an.f0_hz
        target = features(a).log_mel
        gains = timbre.frame_gains(*_search_envelope(an), n_samples=a.size)
        obj = _Objective(target, gains, f0, budget)

        # 2. hypotheses from the table: ranked without rendering, the best
        # N_CANDIDATES rendered, the best N_HYPOTHESES of those searched first
        table = timbre.harmonic_table()
        ranked = obj.ranked(table.mel_power(f0))
        pool: list[_Hypothesis] = []
        seen = set()
        for i in np.argsort(ranked, kind="stable"):
            h = _Hypothesis(
                float(table.carrier_multiple[i]),
                table.ratios[i].copy(),
                table.indices[i].copy(),
                "table",
            )
            if h.key() in seen:
                continue
            seen.add(h.key())
            pool.append(h)
            if len(pool) == min(N_CANDIDATES, budget // 2):
                break
        if cnn_patch is not None:
            pool[-1] = _cnn_hypothesis(cnn_patch, f0)  # keeps the pool's size
        losses = obj.render(
            np.array([h.carrier_multiple * f0 for h in pool]),
            np.array([h.ratios for h in pool]),
            np.array([h.indices for h in pool]),
        )
        for k, (h, loss) in enumerate(zip(pool, losses, strict=True)):
            h.loss = float(loss)
            h.es = _start_es(h, seed=seed * 1009 + k)
        pool.sort(key=lambda h: h.loss)
        hyps, reserve = pool[:N_HYPOTHESES], pool[N_HYPOTHESES:]

        # 3. successive halving of CMA-ES runs over the first hypotheses, a ratio
        # pass and more CMA-ES on the winner; then, while budget remains, the
        # reserve hypotheses one by one (a restart strategy), each winner polished
        # by a ratio pass.
        halving_budget = budget * 0.45
        alive = list(hyps)
        rounds = max(1, math.ceil(math.log2(len(alive))))
        while len(alive) > 1 and obj.n_evaluations < halving_budget:
            gens = max(1, int(halving_budget / rounds / len(alive) / POPSIZE))
            for h in alive:
                _run_es(h, obj, f0, gens)
            alive = sorted(alive, key=lambda h: h.loss)[: max(1, len(alive) // 2)]
        best = min(hyps, key=lambda h: h.loss)
        inharmonic = an.pitch.inharmonicity_cents > INHARMONIC_CENTS
        stop_at = budget * (0.7 if inharmonic else 1.0)
        polished = set()

        def polish(h: _Hypothesis) -> None:
            if obj.n_evaluations + 16 * P.N_MODULATORS <= stop_at:
                _ratio_pass(h, obj, f0)
            if obj.left() < POPSIZE:
                return
            h.es = _start_es(h, seed=seed * 1009 + 997 + len(polished), sigma=0.3)
            while obj.n_evaluations + POPSIZE <= stop_at and not h.es.stop():
                _run_es(h, obj, f0, 1)
                if obj.n_evaluations > stop_at * 0.5 + budget * 0.05 * len(polished):
                    break
            polished.add(id(h))

        polish(best)
        for h in reserve:
            if obj.n_evaluations + 3 * POPSIZE > stop_at:
                break
            _run_es(h, obj, f0, RESERVE_GENERATIONS)
            if h.loss < best.loss:
                best = h
                polish(best)
        if inharmonic:
            _free_ratio_search(best, obj, f0, evaluations=budget, seed=seed)

        # 4. envelope refinement with the chosen timbre
        mel = timbre.frame_mel_power(
            np.array([best.carrier_multiple * f0]),
            best.ratios[None],
            best.indices[None],
        )[0]
        envelope, level, loss = _refine_envelopes(obj, mel, an, a.size)
    carrier_hz = best.carrier_multiple * f0
    patch = patch_from_vector(
        [carrier_hz, *best.ratios, *best.indices, *_env_tuple(envelope)],
        algorithm=DEFAULT_ALGORITHM,
        level=level,
        curve=envelope.curve,
    )
    return MatchResult(patch, an, loss, obj.n_evaluations, best.source)


def match_audio(
    audio,
    sample_rate: int,
    *,
    budget: int = DEFAULT_BUDGET,
    seed: int = 0,
    cnn_patch: Patch | None = None,
) -> MatchResult:
    """:func:`match_note` for any audio: mixed to mono, resampled to 16 kHz, started
    at the note's onset and cut or padded to 4 s first
    (:func:`fmlib.audio.analysis.prepare_audio`).

    Args:
        audio: float array (n,) or (n, channels), nominal range [-1, 1].
        sample_rate: Hz.
    """
    from fmlib.audio.analysis import prepare_audio

    x, _ = prepare_audio(audio, sample_rate)
    return match_note(x, budget=budget, seed=seed, cnn_patch=cnn_patch)
