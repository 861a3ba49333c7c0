"""The Keras side of the dataset: batches of (audio, targets) for ``model.fit``.

This module imports Keras (and so TensorFlow) at the top; :mod:`fmlib.datasets.dataset`,
which dataset workers import, never does. Audio streams from a dataset's
memory-mapped shards (:class:`fmlib.datasets.dataset.Dataset`), one batch at a time.
"""

from __future__ import annotations

import os
from typing import Any

import keras
import numpy as np

from fmlib.datasets.dataset_reader import Dataset, check_int, open_dataset
from fmlib.errors import InputError


class AudioParamsSequence(keras.utils.PyDataset):
    """Keras batches (audio, targets) read lazily from a :class:`Dataset`.

    Args:
        dataset: A :class:`Dataset` or a dataset folder.
        indices: Note numbers to serve (1-D ints in [0, n)), e.g. a training split.
        targets: Optional array of shape (len(indices), m) aligned with
            ``indices`` (row j belongs to note ``indices[j]``), e.g. scaled
            targets; default: the notes' 15 parameters in original units.
        batch_size: Notes per batch; the last batch may be smaller.
        shuffle: Visit the notes in a new random order every epoch; the order of
            epoch e is a permutation drawn from ``default_rng([seed, e])``.
        seed: Seed of the shuffling.
        initial_epoch: Epoch number of the first epoch served (pass Keras'
            ``initial_epoch`` when resuming, so a resumed training run sees the
            same orders as an uninterrupted one).
        **kwargs: ``workers``, ``use_multiprocessing``, ``max_queue_size`` of
            ``keras.utils.PyDataset``.

    Batch ``i`` is ``(x, y)``: x float32 of shape (b, 64000, 1) (16 kHz audio),
    y float32 of shape (b, m) (m = 15 by default).
    """

    def __init__(
        self,
        dataset: Dataset | str | os.PathLike,
        indices,
        *,
        targets=None,
        batch_size: int = 32,
        shuffle: bool = False,
        seed: int = 0,
        initial_epoch: int = 0,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        ds = dataset if isinstance(dataset, Dataset) else open_dataset(dataset)
        idx = np.asarray(indices)
        if idx.ndim != 1 or idx.size == 0 or not np.issubdtype(idx.dtype, np.integer):
            raise InputError("indices: expected a non-empty 1-D array of note numbers")
        if idx.min() < 0 or idx.max() >= ds.n:
            raise InputError(f"indices: note numbers must be in [0, {ds.n})")
        if targets is None:
            targets = ds.vectors()[idx]
        targets = np.asarray(targets, dtype=np.float32)
        if targets.ndim != 2 or len(targets) != len(idx):
            raise InputError(
                f"targets: expected shape ({len(idx)}, m), got {targets.shape}"
            )
        self.dataset = ds
        self.indices = idx.astype(np.int64)
        self.targets = targets
        self.batch_size = check_int("batch_size", batch_size, low=1)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.epoch = check_int("initial_epoch", initial_epoch, low=0)
        self._order = self._permutation()

    def _permutation(self) -> np.ndarray:
        if not self.shuffle:
            return np.arange(len(self.indices))
        return np.random.default_rng([self.seed, self.epoch]).permutation(
            len(self.indices)
        )

    def __len__(self) -> int:
        return -(-len(self.indices) // self.batch_size)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        if not 0 <= i < len(self):
            raise IndexError(f"batch {i} out of range [0, {len(self)})")
        pos = self._order[i * self.batch_size : (i + 1) * self.batch_size]
        x = self.dataset.read(self.indices[pos])[:, :, None]
        return x, self.targets[pos]

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self._order = self._permutation()
