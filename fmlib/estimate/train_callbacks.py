"""Keras callbacks of training: resumable early stopping, epoch timing, checkpoints.

Imports Keras (and so TensorFlow) at the top; :mod:`fmlib.estimate.train` imports this
module only once it trains. Together with the full model saved after every epoch
(weights and optimizer state; the dropout layers' seed-generator states, which Keras
does not save, go in ``state.json``) and the epoch
number passed to :class:`fmlib.estimate.keras_data.AudioParamsSequence`, these make a
resumed run follow an uninterrupted one (tests/test_train.py measures how closely).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import keras

from fmlib import files

#: Files of the checkpoint folder.
LAST_MODEL = "last.keras"
BEST_WEIGHTS = "best.weights.h5"
STATE_JSON = "state.json"


def seed_states(model) -> list[list[int]]:
    """The state of every random seed generator of ``model`` (its dropout layers').

    Keras saves a model's seed-generator states nowhere (a loaded model draws new
    seeds), so a resumed run would draw other dropout masks than an uninterrupted
    one. The checkpoint keeps them in ``state.json`` instead.

    Returns:
        One ``[seed, counter]`` pair of ints per generator, in the model's variable
        order.
    """
    return [
        [int(x) for x in keras.ops.convert_to_numpy(v.value)]
        for v in model.non_trainable_variables
        if v.path.endswith("seed_generator_state")
    ]


def restore_seed_states(model, states: list[list[int]]) -> None:
    """Put back what :func:`seed_states` returned (same architecture)."""
    variables = [
        v
        for v in model.non_trainable_variables
        if v.path.endswith("seed_generator_state")
    ]
    if len(variables) != len(states):
        raise ValueError(
            f"{len(states)} seed-generator states for {len(variables)} generators"
        )
    for v, state in zip(variables, states, strict=True):
        v.assign(keras.ops.convert_to_tensor(state, dtype=v.dtype))


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """EarlyStopping whose counters and best weights survive a restart.

    Attributes:
        resume_state: The checkpoint's ``state.json`` (``wait``, ``best``,
            ``best_epoch``), or None for a fresh run.
        resume_best_weights: The best epoch's weights (a list of arrays), or None.
    """

    resume_state: dict[str, Any] | None = None
    resume_best_weights: list | None = None

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.resume_state:
            self.wait = int(self.resume_state["wait"])
            self.best = self.resume_state["best"]
            self.best_epoch = int(self.resume_state["best_epoch"])
            self.best_weights = self.resume_best_weights


class EpochTimer(keras.callbacks.Callback):
    """Adds the epoch's wall time, s, to the logs (a column of history.csv)."""

    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["seconds"] = time.perf_counter() - self.t0


class Checkpoint(keras.callbacks.Callback):
    """After every epoch: the full model with optimizer, the best weights and the
    early-stopping state, each written atomically. It runs after CSVLogger, so an
    interruption between the two leaves a history row that resuming drops.

    Args:
        folder: The checkpoint folder (exists).
        early_stopping: The run's :class:`ResumableEarlyStopping`.
        seconds_before: Training seconds of the epochs run before a resume.
    """

    def __init__(self, folder: Path, early_stopping, seconds_before: float):
        super().__init__()
        self.folder = folder
        self.es = early_stopping
        self.seconds = seconds_before

    def on_epoch_end(self, epoch, logs=None):
        self.seconds += float((logs or {}).get("seconds", 0.0))
        if self.es.best_epoch == epoch:
            best = self.folder / BEST_WEIGHTS
            with files.atomic_path(best, suffix=".weights.h5") as tmp:
                self.model.save_weights(tmp)
        last = self.folder / LAST_MODEL
        with files.atomic_path(last, suffix=".keras") as tmp:
            self.model.save(tmp)
        state = {
            "epoch": int(epoch),
            "wait": int(self.es.wait),
            "best": None if self.es.best is None else float(self.es.best),
            "best_epoch": int(self.es.best_epoch),
            "stopped": bool(self.model.stop_training),
            "train_seconds": self.seconds,
            "seed_states": seed_states(self.model),
        }
        files.write_json(self.folder / STATE_JSON, state)
