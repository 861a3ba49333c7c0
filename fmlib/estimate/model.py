"""The paper's CNN (section 4.1, Tables 2-3), its target scaler and post-processing.

The model reads 4 s of raw 16 kHz audio, shape (batch, 64000, 1) float32, and
predicts the 15 synthesizer parameters of :data:`fmlib.synth.params.TARGET_NAMES`,
standardised by a :class:`TargetScaler` fitted on the training split.

Architecture (defaults in :data:`PAPER_CONFIG`; n is the flattened size)::

    Input (64000, 1)
    BatchNormalization                                  (on the raw input)
    Conv1D  16 filters, kernel   5, stride  2, relu, L2 -> (31998, 16)
    Conv1D  32 filters, kernel 128, stride 16, relu, L2 -> (1992, 32)
    Conv1D  64 filters, kernel 512, stride 32, relu, L2 -> (47, 64)
    Flatten                                             -> n = 3008
    Dense   n/2 = 1504, relu, L2
    Dropout 0.2
    Dense   n/4 = 752, relu
    Dense   15, no activation

Decisions the paper leaves open (documented in the README):

* Table 3's "variable" activation and bias of the dense layers are config options
  (``dense_activation``, ``dense_use_bias``), default relu with bias.
* The L2 factor (``l2``) defaults to 0.01, Keras' default for ``"l2"``; the paper's
  tables print "l2" as the regulariser. Its Table 4 shows loss - MSE ~= 0.05 at epochs
  41-45, a penalty term consistent with a strong factor that has shrunk the weights.
* Dense layer 2 and the output layer carry no regulariser (Table 3 lists none).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from fmlib.errors import InputError
from fmlib.synth import params as P
from fmlib.synth.algorithms import get_algorithm

#: Number of targets (the flat parameter vector).
N_TARGETS = len(P.TARGET_NAMES)
#: Model input length: 4 s at 16 kHz.
INPUT_LENGTH = int(P.DURATION_S * P.SAMPLE_RATE)

#: Every default of the architecture and of the training protocol (paper, 5.2).
#: ``train`` / ``ensure_model`` compare the merged config with the one saved in
#: ``model.json``, so changing a value here invalidates trained models.
PAPER_CONFIG: dict[str, Any] = {
    # architecture (Tables 2-3)
    "input_length": INPUT_LENGTH,
    "input_batchnorm": True,
    "conv_filters": [16, 32, 64],
    "conv_kernels": [5, 128, 512],
    "conv_strides": [2, 16, 32],
    "conv_activation": "relu",
    "conv_use_bias": True,
    "padding": "valid",
    "l2": 0.01,
    "dense_divisors": [2, 4],
    "dense_activation": "relu",
    "dense_use_bias": True,
    "dense_l2": [True, False],
    "dropout": 0.2,
    "output_use_bias": True,
    "n_targets": N_TARGETS,
    # training protocol (section 5.2)
    "optimizer": "adamax",
    "learning_rate": 0.001,
    "loss": "mse",
    "metrics": ["mse", "mae"],
    "epochs": 200,
    "batch_size": 32,
    "early_stopping_patience": 10,
    "early_stopping_monitor": "val_loss",
    "restore_best_weights": True,
    "test_fraction": 0.25,
    "val_fraction": 0.2,
    "canonical_m1_m2": True,
}


def merge_config(config: dict[str, Any] | None = None) -> dict[str, Any]:
    """:data:`PAPER_CONFIG` updated with ``config``; unknown keys are an error.

    Raises:
        InputError: a key that is not in :data:`PAPER_CONFIG`.
    """
    merged = copy.deepcopy(PAPER_CONFIG)
    for key, value in (config or {}).items():
        if key not in PAPER_CONFIG:
            valid = ", ".join(sorted(PAPER_CONFIG))
            raise InputError(f"model config: unknown key {key!r}; valid: {valid}")
        merged[key] = copy.deepcopy(value)
    return merged


def conv_output_length(length: int, kernel: int, stride: int) -> int:
    """Output length of a 'valid' Conv1D: floor((length - kernel) / stride) + 1."""
    return (length - kernel) // stride + 1


def flattened_size(config: dict[str, Any] | None = None) -> int:
    """n, the number of features after Flatten (3008 for the paper's config)."""
    c = merge_config(config)
    length = c["input_length"]
    for kernel, stride in zip(c["conv_kernels"], c["conv_strides"], strict=True):
        if c["padding"] == "valid":
            length = conv_output_length(length, kernel, stride)
        else:  # 'same'
            length = -(-length // stride)
    return length * c["conv_filters"][-1]


def build_model(config: dict[str, Any] | None = None):
    """Build (not compile) the CNN described by ``config`` (defaults: the paper's).

    Args:
        config: Overrides of :data:`PAPER_CONFIG` keys.

    Returns:
        An uncompiled ``keras.Model`` mapping (batch, input_length, 1) float32 audio
        to (batch, n_targets) float32 standardised parameters. Layer names follow the
        paper's Table 2 (``extractor1``, ``extractor1_2``, ``extractor1_3``).
    """
    import keras

    c = merge_config(config)
    reg = keras.regularizers.L2(c["l2"]) if c["l2"] else None
    inputs = keras.Input(shape=(c["input_length"], 1), name="audio")
    x = inputs
    if c["input_batchnorm"]:
        x = keras.layers.BatchNormalization(name="input_batchnorm")(x)
    names = ["extractor1", "extractor1_2", "extractor1_3"]
    for i, (filters, kernel, stride) in enumerate(
        zip(c["conv_filters"], c["conv_kernels"], c["conv_strides"], strict=True)
    ):
        x = keras.layers.Conv1D(
            filters,
            kernel,
            strides=stride,
            padding=c["padding"],
            activation=c["conv_activation"],
            use_bias=c["conv_use_bias"],
            kernel_regularizer=reg,
            name=names[i] if i < len(names) else f"extractor1_{i + 1}",
        )(x)
    x = keras.layers.Flatten(name="flatten")(x)
    n = int(x.shape[-1])
    for i, (divisor, use_l2) in enumerate(
        zip(c["dense_divisors"], c["dense_l2"], strict=True)
    ):
        x = keras.layers.Dense(
            max(1, n // divisor),
            activation=c["dense_activation"],
            use_bias=c["dense_use_bias"],
            kernel_regularizer=reg if use_l2 else None,
            name=f"regressor_{i + 1}",
        )(x)
        if i == 0 and c["dropout"]:
            x = keras.layers.Dropout(c["dropout"], name="dropout")(x)
    outputs = keras.layers.Dense(
        c["n_targets"], activation=None, use_bias=c["output_use_bias"], name="output"
    )(x)
    return keras.Model(inputs, outputs, name="fm_cnn")


def compile_model(model, config: dict[str, Any] | None = None):
    """Compile ``model`` with the config's optimizer, loss and metrics; returns it.

    Metrics are logged as ``mse`` and ``mae`` (``val_mse``, ``val_mae``); ``loss`` is
    the MSE plus the L2 penalty.
    """
    import keras

    c = merge_config(config)
    optimizers = {"adamax": keras.optimizers.Adamax, "adam": keras.optimizers.Adam}
    if c["optimizer"] not in optimizers:
        raise InputError(
            f"optimizer: {c['optimizer']!r} is not supported; valid: "
            + ", ".join(sorted(optimizers))
        )
    model.compile(
        optimizer=optimizers[c["optimizer"]](learning_rate=c["learning_rate"]),
        loss=c["loss"],
        metrics=list(c["metrics"]),
    )
    return model


class TargetScaler:
    """Per-target standardisation: z = (x - mean) / std, fitted on the training split.

    Attributes:
        mean, std: float64 arrays of shape (15,), in each parameter's original unit.
            A constant target gets std 1 so that it maps to 0 without dividing by 0.
    """

    def __init__(self, mean=None, std=None):
        self.mean = None if mean is None else np.asarray(mean, dtype=np.float64)
        self.std = None if std is None else np.asarray(std, dtype=np.float64)

    def fit(self, vectors) -> TargetScaler:
        """Fit on vectors of shape (n, 15) float in original units; returns self."""
        v = _as_vectors(vectors)
        if v.shape[0] == 0:
            raise InputError("TargetScaler.fit: no vectors to fit")
        self.mean = v.mean(axis=0)
        std = v.std(axis=0)
        self.std = np.where(std > 0, std, 1.0)
        return self

    def _check(self) -> None:
        if self.mean is None or self.std is None:
            raise InputError(
                "TargetScaler: not fitted; call fit() or from_dict() first"
            )

    def transform(self, vectors) -> np.ndarray:
        """(n, 15) original units -> (n, 15) float32 standardised targets."""
        self._check()
        return ((_as_vectors(vectors) - self.mean) / self.std).astype(np.float32)

    def inverse_transform(self, z) -> np.ndarray:
        """(n, 15) standardised -> (n, 15) float64 in original units."""
        self._check()
        return _as_vectors(z) * self.std + self.mean

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: names, mean and std as plain float lists."""
        self._check()
        return {
            "names": list(P.TARGET_NAMES),
            "mean": [float(x) for x in self.mean],
            "std": [float(x) for x in self.std],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TargetScaler:
        """Inverse of :meth:`to_dict`; checks the target names and lengths."""
        if not isinstance(d, dict) or not {"mean", "std"} <= set(d):
            raise InputError("scaler: expected an object with 'mean' and 'std'")
        names = d.get("names", list(P.TARGET_NAMES))
        if list(names) != list(P.TARGET_NAMES):
            raise InputError(f"scaler: targets {names} differ from {P.TARGET_NAMES}")
        mean = np.asarray(d["mean"], dtype=np.float64)
        std = np.asarray(d["std"], dtype=np.float64)
        if mean.shape != (N_TARGETS,) or std.shape != (N_TARGETS,):
            raise InputError(f"scaler: expected {N_TARGETS} means and stds")
        if not (np.all(np.isfinite(mean)) and np.all(std > 0)):
            raise InputError("scaler: means must be finite and stds positive")
        return cls(mean, std)


def _as_vectors(vectors) -> np.ndarray:
    v = np.asarray(vectors, dtype=np.float64)
    if v.ndim == 1:
        v = v[None, :]
    if v.ndim != 2 or v.shape[1] != N_TARGETS:
        raise InputError(
            f"parameter vectors: expected shape (n, {N_TARGETS}), "
            f"got {np.shape(vectors)}"
        )
    return v


def _modulator_columns(ops: tuple[str, ...]) -> tuple[list[int], list[int]]:
    """Columns of the ratios and of the indices of modulators ``ops`` ("M1"...)."""
    ks = [op[1:] for op in ops]
    return (
        [P.TARGET_NAMES.index(f"ratio_{k}") for k in ks],
        [P.TARGET_NAMES.index(f"index_{k}") for k in ks],
    )


def canonicalize(vectors, *, algorithm) -> np.ndarray:
    """Put interchangeable modulators in canonical order.

    Which modulators are interchangeable is read from the operator graph
    (:meth:`fmlib.synth.algorithms.Algorithm.interchangeable`): in ``dx7_18`` M1 and M2
    each modulate the carrier directly and nothing modulates them, so swapping
    their (ratio, index) pairs gives the same sound; ``serial`` has no such pair.
    Within each group the (ratio, index) pairs are sorted by ratio, ties by index:
    afterwards ``ratio_1 <= ratio_2`` in ``dx7_18``. Training targets and
    evaluation ground truth both go through this function, so the network never
    has to guess an arbitrary order.

    Args:
        vectors: (n, 15) or (15,) float parameter vectors, original units.
        algorithm: An algorithm name for all rows, or a sequence of n names.

    Returns:
        float64 array of the input's shape (a copy).

    Raises:
        InputError: an unknown algorithm name, or a name count other than 1 or n.
    """
    v = np.array(vectors, dtype=np.float64)
    one = v.ndim == 1
    v = _as_vectors(v).copy()
    if isinstance(algorithm, str):
        names = np.full(len(v), algorithm, dtype=object)
    else:
        names = np.asarray(list(algorithm), dtype=object)
        if len(names) != len(v):
            raise InputError(
                f"algorithm: expected 1 or {len(v)} names, got {len(names)}"
            )
    for name in sorted(set(names.tolist())):
        groups = get_algorithm(name).interchangeable()
        rows = np.flatnonzero(names == name)
        for group in groups:
            r_cols, i_cols = _modulator_columns(group)
            r, i = v[np.ix_(rows, r_cols)], v[np.ix_(rows, i_cols)]
            order = np.lexsort((i, r), axis=-1)  # by ratio, ties by index
            v[np.ix_(rows, r_cols)] = np.take_along_axis(r, order, axis=-1)
            v[np.ix_(rows, i_cols)] = np.take_along_axis(i, order, axis=-1)
    return v[0] if one else v


_RATIO_COLS = [i for i, name in enumerate(P.TARGET_NAMES) if name.startswith("ratio_")]
_LOG_DISCRETE = np.log(np.asarray(P.DISCRETE_RATIOS, dtype=np.float64))
_LOW = np.array([P.PARAMS[n].low for n in P.TARGET_NAMES])
_HIGH = np.array([P.PARAMS[n].high for n in P.TARGET_NAMES])


def snap_ratios(ratios) -> np.ndarray:
    """Each ratio replaced by the nearest value of
    :data:`fmlib.synth.params.DISCRETE_RATIOS` in log space (ratios are musical
    intervals: 0.7 is nearer 1/2 than 1 in octaves). Non-positive inputs snap to the
    smallest ratio, 1/8.

    Args:
        ratios: array of any shape, float.

    Returns:
        float64 array of the same shape, every value in DISCRETE_RATIOS.
    """
    r = np.asarray(ratios, dtype=np.float64)
    logr = np.log(np.maximum(r, np.finfo(np.float64).tiny))
    nearest = np.abs(logr[..., None] - _LOG_DISCRETE).argmin(axis=-1)
    return np.asarray(P.DISCRETE_RATIOS, dtype=np.float64)[nearest]


def postprocess(vectors, *, snap: bool = True) -> np.ndarray:
    """The paper's post-processing of predictions before re-synthesis.

    Every parameter is clipped to the paper's range (``PARAMS[name].low/high``), then
    each ratio is snapped to the nearest discrete ratio in log space (see
    :func:`snap_ratios`; every discrete ratio lies inside the ratio range).

    Args:
        vectors: (n, 15) or (15,) float, original units (e.g. ``inverse_transform``
            output). NaN is not accepted.
        snap: Set False to clip only.

    Returns:
        float64 array of the input's shape, valid for :func:`fmlib.patch_from_vector`.
    """
    v = np.array(vectors, dtype=np.float64)
    one = v.ndim == 1
    v = _as_vectors(v)
    if not np.all(np.isfinite(v)):
        raise InputError("postprocess: predictions contain NaN or infinity")
    v = np.clip(v, _LOW, _HIGH)
    if snap:
        v[:, _RATIO_COLS] = snap_ratios(v[:, _RATIO_COLS])
    return v[0] if one else v
