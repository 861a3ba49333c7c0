"""A network that picks an FM note's carrier among its spectral peaks (issue 12).

fmnet designs A and B predict the carrier as a multiple p/q of the tracked pitch;
under the musical prior (free ratios 1/8-8) that puts 34 % of the notes within
25 cents of the truth at best (docs/FMNET.md). The carrier is, however, always one
of the note's partials, so this estimator does not regress a frequency: it scores
each of the note's :data:`~fmlib.audio.carrier_peaks.N_CANDIDATES` loudest peaks
(:mod:`fmlib.audio.carrier_peaks`, the spectrum seen from each peak) with one
shared dense network, and a softmax over the candidates picks one. Its frequency is
the peak's, refined to a fraction of a 0.12 Hz bin, so a right pick is within a few
cents.

Input per candidate: the :data:`~fmlib.audio.carrier_peaks.N_FEATURES` features of
:func:`~fmlib.audio.carrier_peaks.candidate_features` and :data:`N_PITCH_FEATURES`
more from the tracked pitch f0 (:func:`pitch_features`), which is what designs A
and B see. Target: the candidate nearest the true carrier when it is within
:data:`HIT_CENTS` of it; notes with no such candidate (about 12 % under the musical
prior: the carrier partial is weak or hidden) are left out of training.

Each candidate is scored on its own inputs and on a note-level context: features
of the note's 24 loudest candidates pooled into one vector (``context``; it lifts
the share of test notes within 25 cents by about a point, docs/FMNET.md).

Training shows each note its carrier, its loudest candidates and a random sample of
the others, 48 in all by default, instead of all of them (``train_candidates``,
``train_loudest``; a sampled softmax: :func:`sample_candidates`), which cuts the cost
of an epoch by about 3; validation and picking always score every candidate.

Model folder: ``model.keras`` (loads with ``safe_mode=True``) and ``model.json``
(``"kind": "carrier-ranker"``, the configuration and the training record).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from fmlib import files
from fmlib.audio import carrier_peaks as CP

KIND = "carrier-ranker"
#: A candidate within this many cents of the true carrier is a hit.
HIT_CENTS = 25.0
#: Denominators q of the multiples p/q of f0 that :func:`pitch_features` checks.
MAX_DENOMINATOR = 8
N_PITCH_FEATURES = 3
#: Input features per candidate.
N_INPUT = CP.N_FEATURES + N_PITCH_FEATURES
DEFAULT_CONFIG: dict[str, Any] = {
    "width": 256,
    "dropout": 0.2,
    "batch_size": 64,
    "epochs": 12,
    "patience": 3,
    "learning_rate": 1e-3,
    "validation_share": 0.1,
    # Candidates a training note shows the network: its carrier, its
    # "train_loudest" loudest candidates and others drawn at random each epoch,
    # this many in all (None: all of them). 48 and 24 train 80,000 notes in
    # 23 min on 2 cores (26-27 min with the context), where all 192 took
    # 63 min (docs/FMNET.md).
    "train_candidates": 48,
    "train_loudest": 24,
    # A note-level context: every candidate also sees the max and the mean of
    # this many features of the note's "context_candidates" loudest candidates
    # (0: none, as the rankers trained before it had). The loudest are always
    # in a training sample (train_loudest >= context_candidates), so training
    # and picking see the same context.
    "context": 64,
    "context_candidates": 24,
}


def pitch_features(freqs_hz, f0_hz) -> np.ndarray:
    """How each candidate relates to the tracked pitch.

    Args:
        freqs_hz: Candidate frequencies, shape (..., K), Hz (0 for padding).
        f0_hz: Tracked pitch of each note, shape (...), Hz > 0.

    Returns:
        float32, shape (..., K, 3): ``log2(c / f0) / 4``; the distance in cents to
        the nearest ``p / q * f0`` (q = 1..8, p >= 1), capped at 100, / 100; and
        ``log2(f0 / 440)``.
    """
    f = np.maximum(np.asarray(freqs_hz, dtype=np.float64), 1e-3)
    f0 = np.asarray(f0_hz, dtype=np.float64)[..., None]
    r = f / f0
    best = np.full(r.shape, np.inf)
    for q in range(1, MAX_DENOMINATOR + 1):
        p = np.maximum(np.round(r * q), 1)
        best = np.minimum(best, np.abs(1200 * np.log2(r * q / p)))
    pitch = np.broadcast_to(np.log2(f0 / 440.0), r.shape)
    out = np.stack([np.log2(r) / 4, np.minimum(best, 100) / 100, pitch], axis=-1)
    return out.astype(np.float32)


def targets(freqs_hz, mask, carrier_hz) -> tuple[np.ndarray, np.ndarray]:
    """The index of the candidate nearest each true carrier, and whether it is a hit.

    Args:
        freqs_hz: (N, K) candidate frequencies, Hz.
        mask: (N, K) bool, real candidates.
        carrier_hz: (N,) true carriers, Hz.

    Returns:
        ``(index, hit)``: int64 (N,) and bool (N,) (within :data:`HIT_CENTS`).
    """
    f = np.maximum(np.asarray(freqs_hz, dtype=np.float64), 1e-3)
    cents = np.abs(
        1200 * np.log2(f / np.asarray(carrier_hz, dtype=np.float64)[:, None])
    )
    cents[~np.asarray(mask, bool)] = np.inf
    return cents.argmin(axis=1), cents.min(axis=1) < HIT_CENTS


def _inputs(features, mask, freqs_hz, f0_hz) -> tuple[np.ndarray, np.ndarray]:
    x = np.concatenate(
        [np.asarray(features, dtype=np.float32), pitch_features(freqs_hz, f0_hz)], -1
    )
    return x, np.asarray(mask, dtype=np.float32)


def build_ranker(sample_inputs: np.ndarray, *, config: dict[str, Any] | None = None):
    """The ranker: normalisation, dense layers shared by the candidates, a masked logit.

    Each candidate goes through a first dense layer; with ``context`` > 0 a second
    one of ``context`` ReLU units is pooled (maximum and mean) over the note's
    first ``context_candidates`` candidates, its loudest, and the pooled vector
    is joined to every candidate's before the last two layers. Without it each
    candidate is scored on its own features only; with it a candidate is scored
    knowing what the note's loud peaks look like (+1.0 and +2.1 points of test
    notes within 25 cents for seeds 0 and 1 at 80,000 training notes, about 15 %
    more time an epoch; docs/FMNET.md).

    Args:
        sample_inputs: float32 (n, N_INPUT) real candidates' inputs, to adapt the
            normalisation.
        config: Keys of :data:`DEFAULT_CONFIG` (``width``, ``dropout``,
            ``context``, ``context_candidates``).

    Returns:
        A Keras model ``[inputs (B, K, N_INPUT), mask (B, K)] -> logits (B, K)``,
        any K; a masked candidate's logit is -1e9. Candidates are in the order of
        :func:`~fmlib.audio.carrier_peaks.candidate_features`, loudest first.
    """
    import keras
    from keras import layers, ops

    cfg = {**DEFAULT_CONFIG, **(config or {})}
    # The candidate axis is left open: training may show a sample of a note's
    # candidates (``train_candidates``), picking shows all of them.
    inp = keras.Input((None, N_INPUT), name="candidates")
    mask = keras.Input((None,), name="mask")
    norm = layers.Normalization(axis=-1)
    norm.adapt(np.asarray(sample_inputs, dtype=np.float32))
    width, rate = int(cfg["width"]), float(cfg["dropout"])
    h = layers.Dropout(rate)(layers.Dense(width, activation="relu")(norm(inp)))
    n_context = int(cfg["context"])
    if n_context > 0:
        top = int(cfg["context_candidates"])
        real = mask[:, :top, None]
        # ReLU units are >= 0, so zeroing the padding leaves the maximum right.
        c = layers.Dense(n_context, activation="relu")(h)[:, :top] * real
        mean = ops.sum(c, axis=1) / ops.maximum(ops.sum(real, axis=1), 1.0)
        context = ops.concatenate([ops.max(c, axis=1), mean], axis=-1)
        h = ops.concatenate([h, ops.zeros_like(h[..., :1]) + context[:, None]], -1)
    for w in (width, width // 2):
        h = layers.Dropout(rate)(layers.Dense(w, activation="relu")(h))
    logit = layers.Dense(1)(h)[..., 0] + (mask - 1.0) * 1e9
    return keras.Model([inp, mask], logit, name="carrier_ranker")


def sample_candidates(
    mask, labels, k: int, rng, *, loudest: int = 0
) -> tuple[np.ndarray, ...]:
    """Each note's carrier, its ``loudest`` loudest candidates, and others at random,
    ``k`` in all.

    Training on a sample of the candidates instead of all K cuts the cost of an
    epoch by about K / k. The softmax over a sample is corrected as a sampled
    softmax is (Jean et al., 2015): the carrier and the loudest candidates are
    always kept; each of the n_rest other real candidates is drawn with
    probability ``q = s / n_rest`` (s of them drawn), so its logit gets ``-log q``
    added during training, and the expected loss is close to the one over all
    candidates. The loudest peaks are the likeliest carriers, hence the likeliest
    confusions (the carrier is among the 48 loudest of 78 % of the musical-prior
    notes), so keeping them makes the sample's loss less noisy. Picking is
    unchanged.

    Args:
        mask: (B, K) bool, real candidates (loudest first).
        labels: (B,) index of each note's carrier among its K candidates.
        k: Candidates kept per note, ``loudest + 2``..K.
        rng: ``numpy.random.Generator``.
        loudest: Candidates at the head of the list always kept, >= 0.

    Returns:
        ``(index, sub_mask, sub_labels, correction)``: int64 (B, k) indices into the
        K candidates, in their original (loudest-first) order; bool (B, k); int64
        (B,) the carrier's position in ``index``; float32 (B, k) the logit
        correction (0 for the candidates always kept and for padding).
    """
    mask = np.asarray(mask, bool)
    b, n_k = mask.shape
    if not 0 <= loudest <= k - 2:
        raise ValueError(f"loudest: must be 0..k - 2 = {k - 2}, got {loudest}")
    labels = np.asarray(labels, dtype=np.int64)
    rows = np.arange(b)
    kept = mask & (np.arange(n_k) < loudest)
    kept[rows, labels] = True
    key = rng.random((b, n_k))
    key[~mask] = 2.0  # padding last
    key[kept] = -1.0  # always
    index = np.sort(np.argsort(key, axis=1, kind="stable")[:, :k], axis=1)
    sub_mask = np.take_along_axis(mask, index, axis=1)
    sub_labels = np.argmax(index == labels[:, None], axis=1)
    n_kept = kept.sum(axis=1)
    n_rest = mask.sum(axis=1) - n_kept
    drawn = np.minimum(k - n_kept, n_rest)
    q = np.where(n_rest > 0, drawn / np.maximum(n_rest, 1), 1.0)
    correction = np.where(sub_mask, -np.log(q)[:, None], 0.0)
    correction[np.take_along_axis(kept, index, axis=1)] = 0.0
    return index, sub_mask, sub_labels, correction.astype(np.float32)


def _batches(
    features,
    mask,
    freqs_hz,
    f0_hz,
    labels,
    rows,
    *,
    batch_size,
    seed,
    sample=None,
    loudest=0,
    correction=False,
):
    """A Keras ``PyDataset`` that builds float32 inputs batch by batch.

    The features stay in their stored dtype (float16 for 40,000 notes is 7.4 GB)
    and only a batch is widened and joined with its pitch features. With ``sample``
    (k), each note shows :func:`sample_candidates`' k candidates, drawn anew each
    epoch; with ``correction``, the inputs end with the logit correction (zeros
    when nothing is sampled), for the training model of :func:`train_ranker`.
    """
    import keras

    class Batches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.rows = np.array(rows)
            self.rng = np.random.default_rng(seed) if seed is not None else None
            self.draw = np.random.default_rng([seed or 0, 1])
            if self.rng is not None:
                self.rng.shuffle(self.rows)

        def __len__(self):
            return math.ceil(len(self.rows) / batch_size)

        def __getitem__(self, i):
            j = np.sort(self.rows[i * batch_size : (i + 1) * batch_size])
            if sample is None:
                x, m = _inputs(features[j], mask[j], freqs_hz[j], f0_hz[j])
                y, corr = labels[j], None
            else:
                idx, _, y, corr = sample_candidates(
                    mask[j], labels[j], sample, self.draw, loudest=loudest
                )
                jj = j[:, None]
                x, m = _inputs(
                    features[jj, idx], mask[jj, idx], freqs_hz[jj, idx], f0_hz[j]
                )
            if not correction:
                return (x, m), y
            return (x, m, np.zeros_like(m) if corr is None else corr), y

        def on_epoch_end(self):
            if self.rng is not None:
                self.rng.shuffle(self.rows)

    return Batches()


def checked_config(config: dict[str, Any] | None = None) -> dict[str, Any]:
    """:data:`DEFAULT_CONFIG` updated by ``config``, its sampling keys checked.

    Raises:
        ValueError: ``train_candidates`` not None or 2..K, ``train_loudest`` not
            0..train_candidates - 2, ``context`` < 0, or ``context_candidates``
            not 1..K or (with sampled candidates) above ``train_loudest``; the
            message starts with the key's name.
    """
    cfg = {**DEFAULT_CONFIG, **(config or {})}
    k = cfg["train_candidates"]
    if k is not None and not 2 <= int(k) <= CP.N_CANDIDATES:
        raise ValueError(
            f"train_candidates: must be 2..{CP.N_CANDIDATES} or None, got {k!r}"
        )
    loudest = int(cfg["train_loudest"])
    if k is not None and not 0 <= loudest <= int(k) - 2:
        raise ValueError(
            f"train_loudest: must be 0..train_candidates - 2 = {int(k) - 2}, "
            f"got {loudest}"
        )
    context, top = int(cfg["context"]), int(cfg["context_candidates"])
    if context < 0:
        raise ValueError(f"context: must be >= 0 (0: none), got {context}")
    if context and not 1 <= top <= CP.N_CANDIDATES:
        raise ValueError(f"context_candidates: must be 1..{CP.N_CANDIDATES}, got {top}")
    if context and k is not None and int(k) < CP.N_CANDIDATES and top > loudest:
        # A training sample holds the loudest candidates first, then others
        # drawn at random: only the first train_loudest positions are the
        # note's loudest, which is what picking pools over.
        raise ValueError(
            f"context_candidates: must be <= train_loudest = {loudest} when "
            f"training on sampled candidates, got {top}"
        )
    cfg["train_candidates"] = None if k is None else int(k)
    cfg["train_loudest"] = loudest
    cfg["context"], cfg["context_candidates"] = context, top
    return cfg


def train_ranker(
    features,
    mask,
    freqs_hz,
    f0_hz,
    carrier_hz,
    *,
    seed: int = 0,
    config: dict[str, Any] | None = None,
    verbose: int = 2,
):
    """Train a ranker on the candidates of N synthetic notes.

    Args:
        features: (N, K, N_FEATURES), float16 or float32, from
            :func:`~fmlib.audio.carrier_peaks.candidate_features`.
        mask: (N, K) bool.
        freqs_hz: (N, K) candidate frequencies, Hz.
        f0_hz: (N,) tracked pitch, Hz.
        carrier_hz: (N,) true carriers, Hz.
        seed: Seeds the validation split, the shuffling, the sampled candidates
            and the weights.
        config: Keys of :data:`DEFAULT_CONFIG`; ``train_candidates`` (2..K or
            None for all) is how many candidates a training note shows
            (:func:`sample_candidates`), ``train_loudest`` how many of them are
            always the loudest; validation always shows all of them.

    Returns:
        ``(model, record)``: the best-validation model and a JSON-ready dict (notes,
        hits, epochs, validation accuracy).
    """
    import keras

    cfg = checked_config(config)
    k, loudest = cfg["train_candidates"], cfg["train_loudest"]
    labels, hit = targets(freqs_hz, mask, carrier_hz)
    rows = np.flatnonzero(hit)
    if rows.size < 10:
        raise ValueError(
            f"training: only {rows.size} notes have a candidate at their carrier; "
            "need >= 10"
        )
    rng = np.random.default_rng(seed)
    rng.shuffle(rows)
    n_val = max(1, int(round(len(rows) * float(cfg["validation_share"]))))
    val, train = np.sort(rows[:n_val]), rows[n_val:]
    keras.utils.set_random_seed(seed)
    sample = train[:3000]
    x, m = _inputs(features[sample], mask[sample], freqs_hz[sample], f0_hz[sample])
    model = build_ranker(x[m > 0], config=cfg)
    sampled = k is not None and k < CP.N_CANDIDATES
    fitted = model
    if sampled:
        # The same layers, with the sampled softmax's correction added to the
        # logits; the ranker itself is what is returned and saved.
        corr = keras.Input((None,), name="correction")
        inp, msk = keras.Input((None, N_INPUT)), keras.Input((None,))
        fitted = keras.Model([inp, msk, corr], model([inp, msk]) + corr)
    fitted.compile(
        keras.optimizers.Adam(float(cfg["learning_rate"])),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    bs = int(cfg["batch_size"])
    data = (features, mask, freqs_hz, f0_hz, labels)
    history = fitted.fit(
        _batches(
            *data,
            train,
            batch_size=bs,
            seed=seed,
            sample=k if sampled else None,
            loudest=loudest,
            correction=sampled,
        ),
        validation_data=_batches(
            *data, val, batch_size=256, seed=None, correction=sampled
        ),
        epochs=int(cfg["epochs"]),
        callbacks=[
            keras.callbacks.EarlyStopping(
                patience=int(cfg["patience"]), restore_best_weights=True
            )
        ],
        verbose=verbose,
    )
    acc = history.history["val_accuracy"]
    record = {
        "notes": int(len(labels)),
        "notes_with_a_hit": int(hit.sum()),
        "train": int(len(train)),
        "validation": int(len(val)),
        "epochs": len(acc),
        "best_validation_accuracy": float(max(acc)),
        "config": cfg,
        "seed": seed,
    }
    return model, record


def pick_index(
    model, features, mask, freqs_hz, f0_hz, *, batch_size: int = 256
) -> np.ndarray:
    """The candidate each note's ranker picks.

    Args:
        model: From :func:`train_ranker` or :func:`load_ranker`.
        features, mask, freqs_hz: (N, K, ...) as from
            :func:`~fmlib.audio.carrier_peaks.candidate_features`.
        f0_hz: (N,) tracked pitch, Hz.

    Returns:
        int64 (N,): the picked candidate's index in 0..K-1, -1 for a note with no
        candidate.
    """
    n = len(freqs_hz)
    out = np.full(n, -1, dtype=np.int64)
    for a in range(0, n, batch_size):
        s = slice(a, min(a + batch_size, n))
        x, m = _inputs(features[s], mask[s], freqs_hz[s], f0_hz[s])
        best = np.asarray(model.predict_on_batch((x, m))).argmax(axis=1)
        out[s] = np.where(m.any(axis=1), best, -1)
    return out


def pick(
    model, features, mask, freqs_hz, f0_hz, *, batch_size: int = 256
) -> np.ndarray:
    """The carrier each note's ranker picks: float64 (N,), the frequency (Hz) of
    :func:`pick_index`'s candidate, NaN for a note with no candidate."""
    k = pick_index(model, features, mask, freqs_hz, f0_hz, batch_size=batch_size)
    f = np.asarray(freqs_hz, dtype=np.float64)[np.arange(len(k)), np.maximum(k, 0)]
    return np.where(k >= 0, f, np.nan)


def save_ranker(model, out_dir: str | os.PathLike, record: dict[str, Any]) -> Path:
    """Write ``model.keras`` and ``model.json`` into ``out_dir`` (each atomically)."""
    out = Path(out_dir)  # atomic_path makes the folder, and removes it on failure
    with files.atomic_path(out / "model.keras", suffix=".keras") as tmp:
        model.save(tmp)
    files.write_json(out / "model.json", {"kind": KIND, **record})
    return out


def load_ranker(model_dir: str | os.PathLike):
    """Load a ranker folder (``safe_mode=True``); returns ``(model, record)``."""
    import keras

    d = Path(model_dir)
    meta_path = d / "model.json"
    if not meta_path.is_file() or not (d / "model.keras").is_file():
        raise FileNotFoundError(f"model: {d} has no model.json and model.keras")
    meta = json.loads(meta_path.read_text())
    if meta.get("kind") != KIND:
        raise ValueError(f"model: {d} is a {meta.get('kind')!r} model, not a {KIND!r}")
    model = keras.saving.load_model(d / "model.keras", safe_mode=True, compile=False)
    return model, meta
