"""fmnet design C: a classifier over the harmonic table, trained on projected labels.

Designs A and B (:mod:`fmlib.estimate.fmnet`) regress the 15 parameters. Their ratios
stay unlearned whenever several modulators sound (docs/FMNET.md): many patches sound
alike, so a note's "true" ratios are not identifiable, and a regression to their
mean is a brighter, busier timbre than the note. Design C removes the ambiguity from
the targets instead of the network: every training note is labelled with the entry of
:func:`fmlib.audio.timbre.harmonic_table` (4,543 harmonic-locked patches) whose line
spectrum is nearest to the note's spectrum in the network's own input features
(:func:`fmlib.estimate.lookup.nearest_entries`), and the network classifies
entries. A patch that sounds like the note is then the target, whether or not it is
the patch that made the note.

The nearest entry is also an estimator on its own, with no network and no training
(:mod:`fmlib.estimate.lookup`, ``evaluate --method lookup``): the labels' source,
and the reference the network is measured against.

Training notes of a synthesizer prior are all FM spectra; real notes are not. So the
training set is augmented in feature space (no audio is rendered): mixtures of two
notes' band powers with a random tilt (:func:`mix_bands`), labelled by the same
projection. Real notes help more: sampled instruments of a SoundFont that no
evaluation uses (``soundfont-set --plan train``, FluidR3_GM), labelled by the lookup
(the teacher) and given the analysis's envelope (:func:`teacher_vectors`), are added
to the training notes before the mixtures. Everything is numpy; the Keras head lives
in :mod:`fmlib.estimate.fmnet`.
"""

from __future__ import annotations

import numpy as np

from fmlib.audio import harmonic_features as HF
from fmlib.estimate.lookup import table
from fmlib.synth import params as P


def mix_bands(features, *, n: int, seed: int, tilt_db: float = 1.5) -> np.ndarray:
    """Augmented feature vectors: the band powers of two random notes mixed, tilted.

    Each new vector takes note a's envelope and scalars (so its envelope target is
    a's) and, as its bands, ``w * s_a + (1 - w) * s_b`` (band shares, w uniform in
    [0.2, 0.8]) tilted by ``g * log2(band number) / 6`` dB with g ~ N(0, tilt_db),
    renormalised; bands a cannot hear (above 8 kHz) stay 0. The harmonicity scalar
    is a's (both notes are harmonic under a harmonic prior).

    Why mixtures: a synthesizer prior gives only FM spectra, whose nearest table
    entry is almost exact; real notes are not FM spectra. Measured on the dev notes
    (a classifier over the table, sparse-low prior, 20,000 notes): 47.7 % log-mel
    gain without mixtures, 59.0 % with 40,000 (SoundFont 40.9 % -> 52.5 %); random
    additive spectra (slope, formants, odd/even balance) instead gave 57.5 % / 47.6 %.

    Args:
        features: float (N, 217) feature vectors.
        n: Vectors to make.
        seed: Seeds the choice of pairs, weights and tilts.

    Returns:
        (float32 (n, 217), int64 (n,)): the vectors and the row of note a.
    """
    f = np.asarray(features, dtype=np.float32)
    rng = np.random.default_rng(seed)
    a = rng.integers(0, len(f), n)
    b = rng.integers(0, len(f), n)
    nb = HF.SLICES["wide"].stop
    sa = HF.band_shares(f[a, :nb])
    sb = HF.band_shares(f[b, :nb])
    w = rng.uniform(0.2, 0.8, (n, 1))
    s = w * sa + (1 - w) * sb
    tilt = rng.normal(0.0, tilt_db, (n, 1)) * np.log2(np.arange(1, nb + 1))[None] / 6
    s = s * 10 ** (tilt / 10)
    s[f[a, :nb] == 0] = 0.0
    s /= np.maximum(s.sum(axis=1, keepdims=True), 1e-30)
    out = f[a].copy()
    out[:, :nb] = HF.band_features(s)
    return out, a.astype(np.int64)


def entry_vectors(entries, f0_hz, envelope_vectors) -> np.ndarray:
    """Parameter vectors (n, 15) of table entries at fundamentals ``f0_hz`` with
    the given envelope columns (n, 4): carrier = multiple x f0, the entry's ratios
    and indices."""
    tab = table()
    e = np.asarray(entries, dtype=np.int64)
    f0 = np.asarray(f0_hz, dtype=np.float64)
    v = np.empty((len(e), len(P.TARGET_NAMES)))
    v[:, 0] = tab.carrier_multiple[e] * f0
    v[:, 1 : 1 + P.N_MODULATORS] = tab.ratios[e]
    v[:, 1 + P.N_MODULATORS : 1 + 2 * P.N_MODULATORS] = tab.indices[e]
    v[:, 1 + 2 * P.N_MODULATORS :] = np.asarray(envelope_vectors, dtype=np.float64)
    return v


def teacher_vectors(
    features, f0_hz, envelope, *, specs=P.ENVELOPE_PARAMS
) -> np.ndarray:
    """Parameter vectors (n, 15) of real notes taught by the table lookup.

    A real note has no true parameters; its targets are the teacher's answer: the
    nearest table entry (:func:`fmlib.estimate.lookup.nearest_entries`, so its label
    is the lookup's patch) and the analysis's fitted envelope, each envelope value
    clipped to the range the ``adsr`` head predicts in (``specs``; with the paper's
    ranges, the default, a real note's decay of 10 s becomes the longest the head can
    say, 0.6 s; see :data:`fmlib.estimate.fmnet.ENVELOPES`).

    Args:
        features: float (n, 217) the notes' features.
        f0_hz: float (n,) their tracked f0.
        envelope: float (n, 4) fitted attack_s, decay_s, sustain, release_s.
        specs: The four envelope :class:`~fmlib.synth.params.ParamSpec` whose
            ``low``/``high`` clip the envelope.

    Returns:
        float64 (n, 15).
    """
    from fmlib.estimate.lookup import nearest_entries

    f = np.asarray(features, dtype=np.float32)
    env = np.asarray(envelope, dtype=np.float64)
    clipped = np.stack(
        [np.clip(env[:, c], spec.low, spec.high) for c, spec in enumerate(specs)],
        axis=1,
    ).reshape(len(env), len(specs))
    if len(f) == 0:
        return np.zeros((0, len(P.TARGET_NAMES)))
    entries, _ = nearest_entries(f[:, : HF.SLICES["wide"].stop], f0_hz)
    return entry_vectors(entries[:, 0], f0_hz, clipped)
