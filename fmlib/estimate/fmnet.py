"""fmnet: a pitch-normalised network that estimates FM patches (issue 12).

Audio in, patch out, in three steps (:class:`FMNetPredictor`):

1. analysis: the tracker's f0 (:func:`fmlib.audio.analysis.estimate_f0`) and the
   features of :mod:`fmlib.audio.harmonic_features` (a spectrum on a grid relative to
   f0, the RMS envelope, three scalars). Training reads the same features, computed
   from the same tracker, from the cache of :mod:`fmlib.datasets.feature_cache`.
2. a small Keras model (:func:`build_fmnet`) with three inputs (``bands`` (88,),
   ``envelope`` (126,), ``scalars`` (3,)) and four heads:

   * ``carrier``: a class over carrier / f0 multiples (fitted on the training notes,
     :func:`fmlib.estimate.fmnet_targets.fit_multiples`); carrier = f0 x multiple,
     so the fine pitch comes from the tracker;
   * ``ratios`` (5, 15): a class over :data:`fmlib.synth.params.DISCRETE_RATIOS` per
     modulator (continuous ratios are labelled with their nearest class);
   * ``indices`` (5,): index / 8, sigmoid, regression;
   * ``adsr`` (4,): attack, decay, sustain, release mapped to [0, 1] by their
     :class:`~fmlib.synth.params.ParamSpec`, sigmoid, regression.

3. decoding: argmax classes, indices and envelope scaled back, and the carrier's
   ``level`` set analytically from the note's RMS (:func:`level_for`).

The loss ignores inaudible targets (:mod:`fmlib.estimate.fmnet_targets`): masked
ratios carry label -1 (``SparseCategoricalCrossentropy(ignore_class=-1)``), masked
indices NaN (:class:`MaskedMSE`). Interchangeable modulators are put in canonical
order (audible first, then by ratio).

Two architectures (``config["arch"]``): ``"mlp"`` (design A: the three inputs
concatenated into dense layers) and ``"conv"`` (design B: 1-D convolutions along the
f0-relative frequency axis of ``bands``, weights shared across harmonics, then dense
layers with the envelope and scalars).

Two heads (``config["head"]``): ``"params"`` (above: designs A and B) or ``"table"``
(design C, the shipped model: one class over entries of the harmonic table, trained
on the table lookup's choices, :mod:`fmlib.estimate.fmnet_table`; the classes are
listed in ``model.json``'s ``"classes"``).

A model folder (kind ``"fmnet"``) holds ``model.keras`` (loads with
``safe_mode=True``), ``model.json`` (``"kind": "fmnet"``, the config, the carrier
multiples, the training notes and times, the test metrics, ``"complete": true``),
``history.csv`` and, while training, ``checkpoint/`` (Keras ``BackupAndRestore``:
rerunning the same command resumes at the last finished epoch).
"""

from __future__ import annotations

import copy
import functools
import json
import os
import platform
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from fmlib import files
from fmlib.audio.harmonic_features import N_FEATURES, SLICES
from fmlib.errors import InputError
from fmlib.estimate import fmnet_targets as T
from fmlib.synth import params as P
from fmlib.synth.algorithms import DEFAULT_ALGORITHM
from fmlib.synth.patch import Patch, patch_from_vector

KIND = "fmnet"
N_BANDS = SLICES["wide"].stop
N_ENV = SLICES["envelope"].stop - SLICES["envelope"].start
N_SCALARS = SLICES["scalars"].stop - SLICES["scalars"].start
N_RATIO_CLASSES = len(T.RATIO_CLASSES)
ENV_SPECS = P.ENVELOPE_PARAMS
INDEX_SCALE = P.INDEX.high  # indices are predicted as index / 8

#: Every option of the model and of its training; the saved config is compared with
#: the requested one on resume.
FMNET_CONFIG: dict[str, Any] = {
    "arch": "mlp",
    "hidden": [512, 512, 256],
    "dropout": 0.1,
    "conv_filters": [32, 64, 64],
    "conv_kernel": 5,
    "learning_rate": 1e-3,
    "batch_size": 128,
    "epochs": 60,
    "patience": 8,
    "val_fraction": 0.1,
    "loss_weights": {"carrier": 1.0, "ratios": 1.0, "indices": 10.0, "adsr": 10.0},
    "mask_inaudible": True,
    "multiple_min_share": 5e-4,
    "head": "params",
    "augment_mix": 0.0,
    "envelope": "paper",
}
ARCHS = ("mlp", "conv")
#: Output heads: ``"params"`` (designs A, B: carrier class, ratio classes, indices)
#: or ``"table"`` (design C, :mod:`fmlib.estimate.fmnet_table`: one class over the
#: harmonic table's entries); both also predict the ADSR.
HEADS = ("params", "table")
#: How the ``adsr`` head reads envelopes (config ``"envelope"``): ``"paper"`` (the
#: paper's ranges, decoded with the linear curve: what synthetic notes are made of)
#: or ``"analysis"`` (the ranges of the analysis's exponential-curve fit,
#: :func:`fmlib.audio.analysis.envelope_bounds`, times on a log scale from 1 ms,
#: decoded with the exponential curve: real notes decay for seconds; teacher notes
#: then keep their fitted envelopes unclipped).
ENVELOPES = ("paper", "analysis")


@functools.cache
def _analysis_env_specs() -> tuple[P.ParamSpec, ...]:
    from fmlib.audio.analysis import envelope_bounds

    low, high = envelope_bounds("exponential")
    return tuple(
        replace(
            spec,
            low=float(max(low[i], 1e-3)) if spec.unit == "s" else float(low[i]),
            high=float(high[i]),
            scale="log" if spec.unit == "s" else "linear",
        )
        for i, spec in enumerate(P.ENVELOPE_PARAMS)
    )


def env_specs(envelope: str = "paper") -> tuple[P.ParamSpec, ...]:
    """The ranges and scales the ``adsr`` head maps to [0, 1] (see
    :data:`ENVELOPES`): attack, decay, sustain, release."""
    if envelope not in ENVELOPES:
        raise InputError(
            f"envelope: {envelope!r} is not valid; valid: {', '.join(ENVELOPES)}"
        )
    return ENV_SPECS if envelope == "paper" else _analysis_env_specs()


def env_curve(envelope: str = "paper") -> str:
    """The envelope curve of the patches a model decodes (see :data:`ENVELOPES`)."""
    return P.DEFAULT_ENVELOPE_CURVE if envelope == "paper" else "exponential"


#: Design C's options (``train --arch fmnet-table``): the table head, four mixtures
#: per training note (:func:`fmlib.estimate.fmnet_table.mix_bands`), dropout 0.3, the
#: analysis's envelope ranges. Chosen on the dev and SoundFont notes (single-pass
#: log-mel gain, seeds 0 / 1): dropout 0.1 with two mixtures 51.1 / 54.6 % and
#: 48.4 / 57.4 %; dropout 0.3 with two mixtures 54.9 / 55.8 % and 53.7 / 54.9 %,
#: with four 58.2 / 56.5 % and 59.8 / 54.9 %, with eight (seed 0) 56.7 % and 50.9 %.
#: Teacher notes are data, not options (``train_fmnet(teacher_notes=...)``): with
#: them, four mixtures reach 63.2 % and 71.2 % with the paper's envelope ranges, and
#: 65.5 % and 75.4 % with the analysis's (seed 0, the shipped model).
TABLE_DESIGN = {
    "head": "table",
    "augment_mix": 4.0,
    "dropout": 0.3,
    "envelope": "analysis",
}


def merge_config(config: dict[str, Any] | None = None) -> dict[str, Any]:
    """:data:`FMNET_CONFIG` updated with ``config``; an unknown key or arch is an
    error."""
    merged = copy.deepcopy(FMNET_CONFIG)
    for key, value in (config or {}).items():
        if key not in FMNET_CONFIG:
            valid = ", ".join(sorted(FMNET_CONFIG))
            raise InputError(f"fmnet config: unknown key {key!r}; valid: {valid}")
        merged[key] = copy.deepcopy(value)
    if merged["arch"] not in ARCHS:
        raise InputError(
            f"arch: {merged['arch']!r} is not valid; valid: {', '.join(ARCHS)}"
        )
    if merged["head"] not in HEADS:
        raise InputError(
            f"head: {merged['head']!r} is not valid; valid: {', '.join(HEADS)}"
        )
    env_specs(merged["envelope"])  # refuses an unknown envelope
    return merged


# --------------------------------------------------------------------------- inputs
def split_features(features) -> dict[str, np.ndarray]:
    """The model's three inputs from feature vectors.

    Args:
        features: float (n, N_FEATURES), from
            :func:`fmlib.audio.harmonic_features.note_features`.

    Returns:
        {"bands": (n, 88), "envelope": (n, 126), "scalars": (n, 3)}, float32.
    """
    f = np.asarray(features, dtype=np.float32)
    if f.ndim != 2 or f.shape[1] != N_FEATURES:
        raise InputError(f"features: expected shape (n, {N_FEATURES}), got {f.shape}")
    return {
        "bands": f[:, :N_BANDS],
        "envelope": f[:, SLICES["envelope"]],
        "scalars": f[:, SLICES["scalars"]],
    }


# --------------------------------------------------------------------------- targets
def make_targets(
    vectors,
    f0_hz,
    multiples,
    *,
    algorithm: str,
    mask_inaudible: bool = True,
    envelope: str = "paper",
) -> dict[str, np.ndarray]:
    """Training targets of notes.

    Args:
        vectors: float (n, 15) true parameters, TARGET_NAMES order.
        f0_hz: float (n,) the tracker's f0 of each note.
        multiples: The carrier classes (carrier / f0).
        algorithm: The notes' algorithm (audibility and canonical order).
        mask_inaudible: Mask inaudible ratios (-1) and indices (NaN).
        envelope: How the ``adsr`` head reads envelopes (:data:`ENVELOPES`).

    Returns:
        {"carrier": int64 (n,), "ratios": int64 (n, 5), "indices": float32 (n, 5),
        "adsr": float32 (n, 4)}.
    """
    v = T.canonical_order(vectors, algorithm=algorithm)
    ratio_ok, index_ok = T.audibility(v, algorithm=algorithm)
    ratios = T.ratio_labels(v[:, T.RATIO_COLS])
    indices = (v[:, T.INDEX_COLS] / INDEX_SCALE).astype(np.float32)
    if mask_inaudible:
        ratios = np.where(ratio_ok, ratios, -1)
        indices = np.where(index_ok, indices, np.nan).astype(np.float32)
    env = adsr_targets(v, envelope=envelope)
    return {
        "carrier": T.carrier_labels(v[:, T.CARRIER_COL], f0_hz, multiples),
        "ratios": ratios.astype(np.int64),
        "indices": indices,
        "adsr": env,
    }


def adsr_targets(vectors, *, envelope: str = "paper") -> np.ndarray:
    """The ``adsr`` head's targets: float32 (n, 4), each envelope column of the
    parameter vectors (n, 15), clipped to its range of :func:`env_specs` and mapped
    to [0, 1] by that :class:`~fmlib.synth.params.ParamSpec`."""
    v = np.asarray(vectors, dtype=np.float64)
    specs = env_specs(envelope)
    return (
        np.stack(
            [
                [spec.to_unit(min(max(x, spec.low), spec.high)) for x in v[:, c]]
                for spec, c in zip(specs, T.ENV_COLS, strict=True)
            ],
            axis=1,
        )
        .reshape(len(v), len(specs))
        .astype(np.float32)
    )


def table_labels(features, f0_hz, *, progress: bool = False) -> np.ndarray:
    """Design C's labels: the nearest table entry of each note
    (:func:`fmlib.estimate.lookup.nearest_entries`).

    Args:
        features: float (n, N_FEATURES).
        f0_hz: float (n,).

    Returns:
        int64 (n,) table entries.
    """
    from fmlib.estimate.lookup import nearest_entries

    feats = np.asarray(features)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(feats), desc="table labels", unit="note")
    try:
        idx, _ = nearest_entries(
            feats[:, :N_BANDS], f0_hz, progress=bar.update if bar else None
        )
    finally:
        if bar is not None:
            bar.close()
    return idx[:, 0]


# --------------------------------------------------------------------------- model
@functools.cache
def _keras_objects():
    """Keras and the registered custom loss (imported on first use only)."""
    import keras
    from keras import ops

    @keras.saving.register_keras_serializable(package="fmlib")
    class MaskedMSE(keras.losses.Loss):
        """Mean squared error over the targets that are not NaN (masked ones add
        nothing, and the mean is over the unmasked count of each note)."""

        def __init__(self, name="masked_mse", **kwargs):
            super().__init__(name=name, **kwargs)

        def call(self, y_true, y_pred):
            y_true = ops.cast(y_true, y_pred.dtype)
            ok = ops.logical_not(ops.isnan(y_true))
            w = ops.cast(ok, y_pred.dtype)
            diff = ops.where(ok, y_pred - ops.where(ok, y_true, 0.0), 0.0)
            return ops.sum(w * diff**2, axis=-1) / ops.maximum(ops.sum(w, axis=-1), 1.0)

    return keras, MaskedMSE


def masked_mse():
    """A :class:`MaskedMSE` loss instance (see :func:`_keras_objects`)."""
    return _keras_objects()[1]()


def build_fmnet(
    config: dict[str, Any] | None = None,
    *,
    n_multiples: int,
    features=None,
    n_entries: int = 0,
):
    """Build (not compile) fmnet.

    Args:
        config: Overrides of :data:`FMNET_CONFIG`.
        n_multiples: Number of carrier classes (``"params"`` head).
        n_entries: Number of classes of table entries (``"table"`` head).
        features: float (n, N_FEATURES) training features: each input is
            standardised by a ``Normalization`` layer adapted to them (None: left
            unadapted, to be filled by loading saved weights).

    Returns:
        A ``keras.Model`` with inputs ``bands`` (n, 88), ``envelope`` (n, 126),
        ``scalars`` (n, 3) and outputs ``carrier`` (n, n_multiples) softmax,
        ``ratios`` (n, 5, 15) softmax, ``indices`` (n, 5) and ``adsr`` (n, 4)
        sigmoid; with the ``"table"`` head, ``entry`` (n, n_entries) softmax (one
        class per entry of the model's ``classes``) and ``adsr``.
    """
    keras, _ = _keras_objects()
    layers = keras.layers
    c = merge_config(config)
    bands = keras.Input((N_BANDS,), name="bands")
    env = keras.Input((N_ENV,), name="envelope")
    scalars = keras.Input((N_SCALARS,), name="scalars")
    parts = split_features(features) if features is not None else None
    norm = {}
    for name, shape in (
        ("bands", N_BANDS),
        ("envelope", N_ENV),
        ("scalars", N_SCALARS),
    ):
        layer = layers.Normalization(axis=-1, name=f"norm_{name}")
        if parts is not None:
            layer.adapt(parts[name])
        else:
            layer.build((None, shape))
        norm[name] = layer
    nb, ne, ns = norm["bands"](bands), norm["envelope"](env), norm["scalars"](scalars)
    if c["arch"] == "conv":
        x = layers.Reshape((N_BANDS, 1), name="bands_axis")(nb)
        for i, filters in enumerate(c["conv_filters"]):
            x = layers.Conv1D(
                filters,
                c["conv_kernel"],
                padding="same",
                activation="relu",
                name=f"conv_{i + 1}",
            )(x)
            x = layers.MaxPooling1D(2, name=f"pool_{i + 1}")(x)
        x = layers.Flatten(name="bands_flat")(x)
        h = layers.Concatenate(name="inputs")([x, ne, ns])
    else:
        h = layers.Concatenate(name="inputs")([nb, ne, ns])
    for i, units in enumerate(c["hidden"]):
        h = layers.Dense(units, activation="relu", name=f"dense_{i + 1}")(h)
        if c["dropout"]:
            h = layers.Dropout(c["dropout"], name=f"dropout_{i + 1}")(h)
    inputs = {"bands": bands, "envelope": env, "scalars": scalars}
    if c["head"] == "table":
        entry = layers.Dense(n_entries, activation="softmax", name="entry")(h)
        adsr = layers.Dense(len(ENV_SPECS), activation="sigmoid", name="adsr")(h)
        return keras.Model(inputs, {"entry": entry, "adsr": adsr}, name="fmnet")
    carrier = layers.Dense(n_multiples, activation="softmax", name="carrier")(h)
    r = layers.Dense(P.N_MODULATORS * N_RATIO_CLASSES, name="ratio_logits")(h)
    r = layers.Reshape((P.N_MODULATORS, N_RATIO_CLASSES), name="ratio_grid")(r)
    ratios = layers.Softmax(axis=-1, name="ratios")(r)
    indices = layers.Dense(P.N_MODULATORS, activation="sigmoid", name="indices")(h)
    adsr = layers.Dense(len(ENV_SPECS), activation="sigmoid", name="adsr")(h)
    return keras.Model(
        inputs,
        {
            "carrier": carrier,
            "ratios": ratios,
            "indices": indices,
            "adsr": adsr,
        },
        name="fmnet",
    )


def compile_fmnet(model, config: dict[str, Any] | None = None):
    """Compile with Adam, the masked losses and the config's loss weights."""
    keras, _ = _keras_objects()
    c = merge_config(config)
    optimizer = keras.optimizers.Adam(learning_rate=c["learning_rate"])
    if c["head"] == "table":
        model.compile(
            optimizer=optimizer,
            loss={
                "entry": keras.losses.SparseCategoricalCrossentropy(ignore_class=-1),
                "adsr": keras.losses.MeanSquaredError(),
            },
            loss_weights={"entry": 1.0, "adsr": c["loss_weights"]["adsr"]},
        )
        return model
    model.compile(
        optimizer=optimizer,
        loss={
            "carrier": keras.losses.SparseCategoricalCrossentropy(ignore_class=-1),
            "ratios": keras.losses.SparseCategoricalCrossentropy(ignore_class=-1),
            "indices": masked_mse(),
            "adsr": keras.losses.MeanSquaredError(),
        },
        loss_weights=dict(c["loss_weights"]),
    )
    return model


# --------------------------------------------------------------------------- decoding
def level_for(envelope, rms) -> float:
    """The carrier level whose note has the RMS of the analysed one: the
    least-squares gain ``sqrt(sum rms^2 / sum m^2)``, m the frame RMS of the
    envelope at level 1 (:func:`fmlib.audio.analysis.envelope_frame_rms`: a PM note's
    RMS does not depend on its timbre). Clipped to the valid level range."""
    from fmlib.audio.analysis import envelope_frame_rms

    m = envelope_frame_rms(envelope, 1.0)
    y = np.asarray(rms, dtype=np.float64)
    num, den = float(np.sum(y**2)), float(np.sum(m**2))
    level = np.sqrt(num / den) if den > 0 else P.DEFAULT_LEVEL
    return float(np.clip(level, 1e-4, P.LEVEL.valid_high))


#: How :func:`decode` turns the ratio classes into ratios.
DECODE_MODES = ("argmax", "mean")


def decode(
    outputs: dict[str, np.ndarray],
    f0_hz,
    multiples,
    *,
    mode: str = "argmax",
    classes=None,
    envelope: str = "paper",
) -> np.ndarray:
    """Parameter vectors from the model's outputs.

    Args:
        outputs: The model's outputs for n notes (four heads, or ``entry`` and
            ``adsr`` for design C: the most probable entry, carrier at its multiple
            of f0; ``mode`` does not apply).
        f0_hz: float (n,) the tracker's f0.
        multiples: The model's carrier classes (unused by design C).
        classes: Design C: the table entry of each class of ``entry``.
        mode: "argmax" (the patch: each ratio the most probable discrete ratio) or
            "mean" (each ratio the expected value under the predicted class
            probabilities: the least-squares estimate, what R² rewards; not a
            discrete ratio).
        envelope: How the ``adsr`` head reads envelopes (:data:`ENVELOPES`).

    Returns:
        float64 (n, 15), TARGET_NAMES order, every value inside the paper's range
        (the envelope's inside the ranges of :func:`env_specs`).
    """
    if mode not in DECODE_MODES:
        raise InputError(f"mode: {mode!r} is not valid; valid: argmax, mean")
    f0 = np.asarray(f0_hz, dtype=np.float64)
    n = len(f0)
    env = _decode_adsr(outputs["adsr"], envelope=envelope)
    if "entry" in outputs:  # design C: the most probable table entry
        from fmlib.estimate.fmnet_table import entry_vectors

        if classes is None:
            raise InputError("decode: a table-head model needs its classes")
        entries = np.asarray(classes)[np.argmax(np.asarray(outputs["entry"]), axis=-1)]
        return _clip_to_ranges(entry_vectors(entries, f0, env), envelope)
    v = np.empty((n, len(P.TARGET_NAMES)))
    mult = np.asarray(multiples, dtype=np.float64)
    v[:, T.CARRIER_COL] = f0 * mult[np.argmax(outputs["carrier"], axis=-1)]
    probs = np.asarray(outputs["ratios"], dtype=np.float64)
    if mode == "mean":
        v[:, T.RATIO_COLS] = probs @ T.RATIO_CLASSES
    else:
        v[:, T.RATIO_COLS] = T.RATIO_CLASSES[np.argmax(probs, axis=-1)]
    v[:, T.INDEX_COLS] = np.asarray(outputs["indices"]) * INDEX_SCALE
    v[:, T.ENV_COLS] = env
    return _clip_to_ranges(v, envelope)


def _decode_adsr(adsr, *, envelope: str = "paper") -> np.ndarray:
    """ADSR columns (n, 4) from the ``adsr`` head's unit values."""
    e = np.asarray(adsr, dtype=np.float64)
    specs = env_specs(envelope)
    return np.stack(
        [[spec.from_unit(u) for u in e[:, j]] for j, spec in enumerate(specs)],
        axis=1,
    ).reshape(len(e), len(specs))


def _clip_to_ranges(v: np.ndarray, envelope: str = "paper") -> np.ndarray:
    low = np.array([P.PARAMS[name].low for name in P.TARGET_NAMES])
    high = np.array([P.PARAMS[name].high for name in P.TARGET_NAMES])
    specs = env_specs(envelope)
    low[T.ENV_COLS] = [s.low for s in specs]
    high[T.ENV_COLS] = [s.high for s in specs]
    return np.clip(v, low, high)


def _outputs(model, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = model(inputs, training=False)
    return {k: np.asarray(v) for k, v in out.items()}


def predict_arrays(model, features, batch_size: int = 1024) -> dict[str, np.ndarray]:
    """The model's outputs for feature vectors (n, N_FEATURES), batched."""
    parts = [
        _outputs(model, split_features(features[i : i + batch_size]))
        for i in range(0, len(features), batch_size)
    ]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


@dataclass
class FMNetPredictor:
    """A trained fmnet with what decoding needs; the same interface as
    :class:`fmlib.estimate.predict.Predictor` (``predict_patches``).

    Attributes:
        model: The Keras model.
        multiples: Its carrier classes (carrier / f0).
        algorithm: Algorithm of the predicted patches.
        meta: The folder's ``model.json``.
    """

    model: Any
    multiples: list[float]
    algorithm: str = DEFAULT_ALGORITHM
    meta: dict[str, Any] = field(default_factory=dict)
    kind: str = KIND

    def analyse(self, audio) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """f0 (n,), features (n, N_FEATURES) and frame RMS (n, 126) of notes
        (float (n, 64000) or (64000,), 16 kHz)."""
        from fmlib.audio.analysis import estimate_f0, frame_rms
        from fmlib.audio.harmonic_features import note_features

        x = np.asarray(audio, dtype=np.float32)
        if x.ndim == 1:
            x = x[None, :]
        f0 = np.array([estimate_f0(a).f0_hz for a in x])
        feats = np.stack([note_features(a, f) for a, f in zip(x, f0, strict=True)])
        rms = np.stack([frame_rms(a) for a in x])
        return f0, feats, rms

    def decode_outputs(self, outputs, f0_hz, *, mode: str = "argmax") -> np.ndarray:
        """:func:`decode` with this model's carrier multiples and table classes."""
        return decode(
            outputs,
            f0_hz,
            self.multiples,
            mode=mode,
            classes=self.meta.get("classes"),
            envelope=self.envelope,
        )

    @property
    def envelope(self) -> str:
        """How this model's ``adsr`` head reads envelopes (:data:`ENVELOPES`)."""
        return self.meta.get("config", {}).get("envelope", "paper")

    def _decode(self, feats, f0) -> np.ndarray:
        return self.decode_outputs(predict_arrays(self.model, feats), f0)

    def predict_vectors(self, audio) -> np.ndarray:
        """Parameter vectors (n, 15) of notes (float (n, 64000), 16 kHz)."""
        f0, feats, _ = self.analyse(audio)
        return self._decode(feats, f0)

    def predict_patches(self, audio) -> list[Patch]:
        """Patches of notes (float (n, 64000) or (64000,), 16 kHz), each with its
        ``level`` fitted to the note's RMS."""
        f0, feats, rms = self.analyse(audio)
        vectors = self._decode(feats, f0)
        out = []
        curve = env_curve(self.envelope)
        for v, r in zip(vectors, rms, strict=True):
            patch = patch_from_vector(v, algorithm=self.algorithm, curve=curve)
            level = level_for(patch.envelope, r)
            out.append(
                patch_from_vector(v, algorithm=self.algorithm, level=level, curve=curve)
            )
        return out

    def mean_patch(self) -> Patch:
        """The constant patch of the evaluation's baseline: the mean of the training
        targets (saved in ``model.json``), as the paper's CNN uses its scaler mean."""
        return patch_from_vector(
            np.asarray(self.meta["target_mean"]), algorithm=self.algorithm
        )


def load_fmnet(model_dir: str | os.PathLike, meta: dict[str, Any]) -> FMNetPredictor:
    """Load an fmnet model folder (``model.keras`` with ``safe_mode=True``).

    Raises:
        InputError: a model that does not load or has the wrong inputs.
    """
    keras, _ = _keras_objects()
    path = Path(model_dir) / "model.keras"
    try:
        model = keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as exc:  # Keras raises many types for a damaged file
        text = " ".join(str(exc).split())[:160]
        raise InputError(
            f"{path}: cannot load the model ({type(exc).__name__}: {text})"
        ) from None
    mult = meta.get("multiples")
    head = merge_config(meta.get("config")).get("head")
    if head == "table":
        from fmlib.estimate.lookup import table

        classes = meta.get("classes")
        n_table = table().power.shape[0]
        if (
            not isinstance(classes, list)
            or len(classes) != int(model.output["entry"].shape[-1])
            or not all(isinstance(k, int) and 0 <= k < n_table for k in classes)
        ):
            raise InputError(f"{path}: model.json's classes do not match the model")
    elif not isinstance(mult, list) or len(mult) != int(
        model.output["carrier"].shape[-1]
    ):
        raise InputError(f"{path}: model.json's multiples do not match the model")
    return FMNetPredictor(
        model, [float(m) for m in mult], meta.get("algorithm", DEFAULT_ALGORITHM), meta
    )


def save_fmnet(model, path, *, config, n_multiples: int, n_entries: int = 0) -> None:
    """Save the weights of ``model`` in an uncompiled copy, atomically: no optimizer
    state in the file (a third of the size) and nothing custom to deserialise."""
    copy_ = build_fmnet(config, n_multiples=n_multiples, n_entries=n_entries)
    copy_.set_weights(model.get_weights())
    with files.atomic_path(path, suffix=".keras") as tmp:
        copy_.save(tmp)


# --------------------------------------------------------------------------- training
def train_fmnet(
    train_dataset: str | os.PathLike,
    test_dataset: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    n_train: int | None = None,
    config: dict[str, Any] | None = None,
    seed: int = 0,
    features_dir: str | os.PathLike | None = None,
    teacher_notes: str | os.PathLike | None = None,
    workers: int = 1,
    progress: bool = True,
) -> dict[str, Any]:
    """Train fmnet on the first ``n_train`` notes of a dataset, test on another.

    Features come from (and go to) the cache
    (:func:`fmlib.datasets.feature_cache.ensure_features`); a random
    ``val_fraction`` of the training notes (seeded) is held out for early stopping.
    Rerunning the same call resumes: finished features are reused, training restarts
    at the last finished epoch, and a finished folder is returned as it is.

    Args:
        train_dataset: Dataset folder of the training notes.
        test_dataset: Dataset folder of the test notes (another seed).
        out_dir: The model folder to write.
        n_train: Use the first n notes of ``train_dataset`` (default: all).
        config: Overrides of :data:`FMNET_CONFIG`.
        seed: Seeds the split, the weights and the shuffling.
        features_dir: Root of the feature caches (default
            :data:`fmlib.paths.FEATURES_DIR`); one sub-folder per dataset name.
        teacher_notes: Design C only: a folder of real notes in NSynth's layout
            (``soundfont-set --plan train``) added to the training notes, each
            labelled by the table lookup with the analysis's envelope
            (:func:`fmlib.estimate.fmnet_table.teacher_vectors`); never an
            evaluation set. Their features are cached under
            ``notes-<folder name>``.
        workers: Processes for missing features.
        progress: Show progress bars.

    Returns:
        The ``model.json`` content.
    """
    from fmlib import paths
    from fmlib.datasets.dataset_reader import open_dataset
    from fmlib.datasets.feature_cache import ensure_features
    from fmlib.estimate.train import software_versions

    c = merge_config(config)
    out = Path(out_dir)
    feat_root = Path(features_dir) if features_dir else paths.FEATURES_DIR
    if teacher_notes is not None and c["head"] != "table":
        raise InputError(
            "teacher notes: only design C (head 'table', train --arch fmnet-table) "
            "learns from them"
        )
    train_ds = open_dataset(train_dataset, n=n_train)
    test_ds = open_dataset(test_dataset)
    ident = {
        "kind": KIND,
        "config": c,
        "seed": int(seed),
        "train_dataset": str(Path(train_dataset).resolve()),
        "n_train_notes": int(train_ds.n),
        "test_dataset": str(Path(test_dataset).resolve()),
        "teacher_notes": (
            None if teacher_notes is None else str(Path(teacher_notes).resolve())
        ),
    }
    meta_path = out / "model.json"
    if meta_path.is_file():
        saved = json.loads(meta_path.read_text(encoding="utf-8"))
        if isinstance(saved.get("config"), dict):  # older folders lack newer keys
            saved["config"] = merge_config(saved["config"])
        if any(saved.get(k) != v for k, v in ident.items()):
            raise InputError(
                f"{out}: holds a model trained otherwise (config, data or seed); "
                "give another --out"
            )
        if saved.get("complete"):
            return saved
    t_start = time.time()
    cpu_start = time.process_time()
    t0 = time.time()
    feats, pitch = ensure_features(
        train_dataset,
        feat_root / Path(train_dataset).name,
        n=train_ds.n,
        workers=workers,
        progress=progress,
    )
    test_feats, test_pitch = ensure_features(
        test_dataset,
        feat_root / Path(test_dataset).name,
        workers=workers,
        progress=progress,
    )
    vectors = train_ds.vectors()
    n_teacher = 0
    if teacher_notes is not None:
        from fmlib.datasets.feature_cache import ensure_note_features
        from fmlib.estimate.fmnet_table import teacher_vectors

        real = ensure_note_features(
            teacher_notes,
            feat_root / f"notes-{Path(teacher_notes).name}",
            workers=workers,
            progress=progress,
        )
        keep = (
            np.all(np.isfinite(real.features), axis=1)
            & np.isfinite(real.pitch[:, 0])
            & np.all(np.isfinite(real.envelope), axis=1)
        )
        n_teacher = int(keep.sum())
        feats = np.concatenate([feats, real.features[keep]])
        pitch = np.concatenate([pitch, real.pitch[keep]])
        vectors = np.concatenate(
            [
                vectors,
                teacher_vectors(
                    real.features[keep],
                    real.pitch[keep, 0],
                    real.envelope[keep],
                    specs=env_specs(c["envelope"]),
                ),
            ]
        )
    feature_s = time.time() - t0
    algorithm = train_ds.algorithm
    ok = np.all(np.isfinite(feats), axis=1) & np.isfinite(pitch[:, 0])
    rng = np.random.default_rng(seed)
    order = rng.permutation(np.flatnonzero(ok))
    n_val = max(1, round(c["val_fraction"] * order.size))
    val_idx, train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
    table_head = c["head"] == "table"
    train_x, train_v, train_f0 = (
        feats[train_idx],
        vectors[train_idx],
        pitch[train_idx, 0],
    )
    classes: list[int] = []
    if table_head:
        from fmlib.estimate import fmnet_table as FT

        multiples: list[float] = []
        if c["augment_mix"]:
            n_mix = round(c["augment_mix"] * len(train_x))
            mixed, rows = FT.mix_bands(train_x, n=n_mix, seed=seed)
            train_x = np.concatenate([train_x, mixed])
            train_v = np.concatenate([train_v, train_v[rows]])
            train_f0 = np.concatenate([train_f0, train_f0[rows]])
    else:
        multiples = T.fit_multiples(
            train_v[:, 0], train_f0, min_share=c["multiple_min_share"]
        )

    t_labels = time.time()
    if table_head:
        # classes: the entries that label at least one training note (a smaller head:
        # most entries are nobody's nearest); a validation note whose entry is not a
        # class is ignored by the loss (-1)
        train_entries = table_labels(train_x, train_f0, progress=progress)
        val_entries = table_labels(feats[val_idx], pitch[val_idx, 0])
        classes = [int(k) for k in np.unique(train_entries)]
        position = {k: i for i, k in enumerate(classes)}
        train_y = {
            "entry": np.array([position[k] for k in train_entries], dtype=np.int64),
            "adsr": adsr_targets(train_v, envelope=c["envelope"]),
        }
        val_y = {
            "entry": np.array([position.get(k, -1) for k in val_entries], np.int64),
            "adsr": adsr_targets(vectors[val_idx], envelope=c["envelope"]),
        }
    else:
        train_y, val_y = (
            make_targets(
                v,
                f0,
                multiples,
                algorithm=algorithm,
                mask_inaudible=c["mask_inaudible"],
                envelope=c["envelope"],
            )
            for v, f0 in (
                (train_v, train_f0),
                (vectors[val_idx], pitch[val_idx, 0]),
            )
        )
    label_s = time.time() - t_labels

    keras, _ = _keras_objects()
    keras.utils.set_random_seed(seed)
    model = compile_fmnet(
        build_fmnet(
            c, n_multiples=len(multiples), features=train_x, n_entries=len(classes)
        ),
        c,
    )
    files.write_json(
        meta_path,
        {**ident, "complete": False, "multiples": multiples, "classes": classes},
    )
    ckpt = out / "checkpoint"
    t1 = time.time()
    model.fit(
        split_features(train_x),
        train_y,
        validation_data=(split_features(feats[val_idx]), val_y),
        epochs=c["epochs"],
        batch_size=c["batch_size"],
        shuffle=True,
        verbose=2 if progress else 0,
        callbacks=[
            keras.callbacks.BackupAndRestore(str(ckpt)),
            keras.callbacks.CSVLogger(str(out / "history.csv"), append=True),
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=c["patience"], restore_best_weights=True
            ),
        ],
    )
    train_s = time.time() - t1
    save_fmnet(
        model,
        out / "model.keras",
        config=c,
        n_multiples=len(multiples),
        n_entries=len(classes),
    )
    t_ok = np.all(np.isfinite(test_feats), axis=1)
    test_vec = T.canonical_order(test_ds.vectors(), algorithm=test_ds.algorithm)
    outputs = predict_arrays(model, test_feats[t_ok])
    metrics, metrics_mean = (
        T.parameter_metrics(
            decode(
                outputs,
                test_pitch[t_ok, 0],
                multiples,
                mode=mode,
                classes=classes,
                envelope=c["envelope"],
            ),
            test_vec[t_ok],
            algorithm=test_ds.algorithm,
        )
        for mode in DECODE_MODES
    )
    cover = (
        float(
            np.mean(
                T.carrier_labels(test_vec[t_ok, 0], test_pitch[t_ok, 0], multiples) >= 0
            )
        )
        if multiples
        else None  # design C has no carrier classes
    )
    meta = {
        **ident,
        "algorithm": algorithm,
        "multiples": multiples,
        "classes": classes,
        "n_teacher_notes": n_teacher,
        "n_train": int(train_idx.size),
        "n_train_augmented": int(len(train_x) - train_idx.size),
        "n_val": int(val_idx.size),
        "n_test": int(t_ok.sum()),
        "n_untracked_train_notes": int((~ok).sum()),
        "carrier_class_coverage_test": cover,
        "target_mean": [
            float(x) for x in vectors[train_idx[train_idx < train_ds.n]].mean(axis=0)
        ],
        "epochs_run": int(len(model.history.history.get("loss", []))),
        "timings": {
            "features_wall_s": round(feature_s, 1),
            "labels_wall_s": round(label_s, 1),
            "train_wall_s": round(train_s, 1),
            "total_wall_s": round(time.time() - t_start, 1),
            "process_cpu_s": round(time.process_time() - cpu_start, 1),
        },
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "versions": software_versions(),
        "test_metrics": metrics,
        "test_metrics_mean_decoding": metrics_mean,
        "complete": True,
    }
    files.write_json(meta_path, meta)
    import shutil

    shutil.rmtree(ckpt, ignore_errors=True)
    return meta
