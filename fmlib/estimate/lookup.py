"""Table lookup: the harmonic-table patch whose spectrum is nearest to the note's.

An estimator with no training and no search. It analyses the note
(:func:`fmlib.audio.analysis.analyze`: f0, the fitted ADSR and level), reads its
spectrum on the f0-relative bands of :mod:`fmlib.audio.harmonic_features`, and takes
the entry of :func:`fmlib.audio.timbre.harmonic_table` (4,543 harmonic-locked
patches) whose line spectrum, read on the same bands at the same f0, is nearest
(:func:`feature_distance`). The carrier is the entry's multiple of f0.

It is a reference for the networks of :mod:`fmlib.estimate.fmnet` (design C,
:mod:`fmlib.estimate.fmnet_table`, is trained on its choices) and a strong
single-pass baseline: ``python -m fmlib evaluate --method lookup``.
"""

from __future__ import annotations

import collections

import numpy as np

from fmlib.audio import harmonic_features as HF
from fmlib.audio import timbre
from fmlib.errors import InputError
from fmlib.synth import params as P
from fmlib.synth.algorithms import DEFAULT_ALGORITHM
from fmlib.synth.patch import Patch, patch_from_vector

#: The table searched: :func:`fmlib.audio.timbre.harmonic_table` arguments.
TABLE_ARGS = {"n_random": 4000, "seed": 0}
#: Notes compared with the whole table at once (bounds one step's memory to about
#: 100 MB).
_CHUNK = 64


def table(n_random: int = TABLE_ARGS["n_random"], seed: int = TABLE_ARGS["seed"]):
    """The harmonic table whose entries are design C's classes."""
    return timbre.harmonic_table(n_random=n_random, seed=seed)


def _cutoff_key(f0_hz: float, n_partials: int) -> tuple[int, int]:
    """What :func:`fmlib.audio.harmonic_features.line_band_powers` depends on besides
    the partials: how many partials lie below 8 kHz and how many bands end below
    it (band edges are fixed multiples of f0)."""
    h = np.arange(n_partials)
    heard = int(np.count_nonzero(h * f0_hz / 2 < P.SAMPLE_RATE / 2))
    bands = int(np.count_nonzero(HF.band_edges_hz(f0_hz)[1:] <= P.SAMPLE_RATE / 2))
    return heard, bands


#: Table features kept per (cutoff, table): each is float32 (4,543, 88), 1.6 MB.
_CACHE_SIZE = 64
_FEATURE_CACHE: collections.OrderedDict = collections.OrderedDict()


def table_features(f0_hz: float, *, table_args: dict | None = None) -> np.ndarray:
    """Band features (as :func:`fmlib.audio.harmonic_features.note_features` reads
    them) of every table entry at fundamental ``f0_hz``.

    The band edges are fixed multiples of f0, so the features depend on f0 only
    through the 8 kHz cutoff (:func:`_cutoff_key`); they are cached by it (the last
    :data:`_CACHE_SIZE` cutoffs), not by f0.

    Returns:
        float32 (n_entries, 88), read-only.
    """
    args = {**TABLE_ARGS, **(table_args or {})}
    table_id = (int(args["n_random"]), int(args["seed"]))
    tab = table(*table_id)
    key = (_cutoff_key(float(f0_hz), tab.power.shape[1]), table_id)
    if key in _FEATURE_CACHE:
        _FEATURE_CACHE.move_to_end(key)
        return _FEATURE_CACHE[key]
    feats = HF.band_features(HF.line_band_powers(tab.power, float(f0_hz)))
    feats = feats.astype(np.float32)
    feats.flags.writeable = False
    _FEATURE_CACHE[key] = feats
    if len(_FEATURE_CACHE) > _CACHE_SIZE:
        _FEATURE_CACHE.popitem(last=False)
    return feats


def feature_distance(entries, bands) -> np.ndarray:
    """The projection's distance between band features: ``sum w^2 (a - b)^2`` with
    ``w = max(a, b)``.

    Why weighted: a band's feature is 0 at -60 dB and 1 at the whole power, so the
    weight counts a band in proportion to how loud it is in either spectrum, as the
    log-mel metric (``log1p`` of the power) counts loud bands more than quiet ones.
    On the 110 dev notes, the nearest entry re-synthesised with the analysis's
    envelope gains 69.1 % (log-mel, over the 440 Hz sine) by this distance, 66.3 %
    by the plain squared distance and 67.3 % with ``w`` not squared.

    Args:
        entries: float (E, 88) band features.
        bands: float (n, 88) band features.

    Returns:
        float64 (n, E), computed in float32: 2.6 times faster than float64 on the
        development machine, and the largest difference seen (4e-6, on random
        features) is far below the gaps between entries that matter.
    """
    a = np.asarray(entries, dtype=np.float32)[None]
    b = np.asarray(bands, dtype=np.float32)[:, None]
    d = np.maximum(a, b) * (a - b)
    return np.einsum("neb,neb->ne", d, d).astype(np.float64)


def nearest_entries(
    bands, f0_hz, *, k: int = 1, table_args: dict | None = None, progress=None
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` table entries nearest to each note by :func:`feature_distance`.

    Args:
        bands: float (n, 88) the notes' band features (the first 88 values of
            :func:`fmlib.audio.harmonic_features.note_features`).
        f0_hz: float (n,) their fundamentals, Hz.
        k: Entries returned per note, nearest first (ties: lower index first).
        table_args: Overrides of :data:`TABLE_ARGS`.
        progress: Optional callable given the number of notes done after each step.

    Returns:
        (indices int64 (n, k), distances float64 (n, k)).
    """
    b = np.asarray(bands, dtype=np.float64)
    f0 = np.asarray(f0_hz, dtype=np.float64)
    if b.ndim != 2 or b.shape[1] != HF.SLICES["wide"].stop or f0.shape != (len(b),):
        raise InputError(
            f"bands, f0_hz: expected shapes (n, {HF.SLICES['wide'].stop}) and (n,), "
            f"got {b.shape} and {f0.shape}"
        )
    if not np.all(np.isfinite(f0) & (f0 > 0)):
        raise InputError("f0_hz: every fundamental must be a positive frequency")
    idx = np.empty((len(b), k), dtype=np.int64)
    dist = np.empty((len(b), k))
    n_partials = table(**{**TABLE_ARGS, **(table_args or {})}).power.shape[1]
    keys = [_cutoff_key(x, n_partials) for x in f0]
    groups: dict[tuple[int, int], list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    for key in sorted(groups):
        rows = np.asarray(groups[key])
        entries = table_features(f0[rows[0]], table_args=table_args)
        for lo in range(0, rows.size, _CHUNK):
            r = rows[lo : lo + _CHUNK]
            d = feature_distance(entries, b[r])
            if k == 1:
                top = np.argmin(d, axis=1)[:, None]  # the first minimum on a tie
            else:
                top = np.argsort(d, axis=1, kind="stable")[:, :k]
            idx[r] = top
            dist[r] = np.take_along_axis(d, top, axis=1)
            if progress is not None:
                progress(r.size)
    return idx, dist


def lookup_note(x, *, table_args: dict | None = None) -> Patch:
    """The table lookup's patch for one note.

    Args:
        x: float shape (64000,), 16 kHz mono (see
            :func:`fmlib.audio.analysis.prepare_audio`), not silent.
        table_args: Overrides of :data:`TABLE_ARGS`.

    Returns:
        A ``dx7_18`` patch: the nearest entry's carrier multiple of f0, ratios and
        indices, with the analysis's envelope (its better curve) and level.
    """
    from fmlib.audio.analysis import analyze

    a = np.asarray(x, dtype=np.float32)
    an = analyze(a)
    f0 = an.f0_hz
    bands = HF.note_features(a, f0)[None, : HF.SLICES["wide"].stop]
    k = int(nearest_entries(bands, np.array([f0]), table_args=table_args)[0][0, 0])
    tab = table(**{**TABLE_ARGS, **(table_args or {})})
    e = an.envelope
    carrier_hz = float(
        np.clip(tab.carrier_multiple[k] * f0, P.CARRIER.low, P.CARRIER.high)
    )
    return patch_from_vector(
        [
            carrier_hz,
            *tab.ratios[k],
            *tab.indices[k],
            e.attack_s,
            e.decay_s,
            e.sustain,
            e.release_s,
        ],
        algorithm=DEFAULT_ALGORITHM,
        level=an.level,
        curve=e.curve,
    )
