"""Training the paper's CNN (section 5.2), with resumption and results as files.

Protocol (defaults in :data:`fmlib.estimate.model.PAPER_CONFIG`): split the notes 75/25
into train+validation and test, hold out 20% of the former for validation (5,000 notes
give 3,000 / 750 / 1,250, seeded); standardise the canonical targets on the training
split; Adamax, MSE loss, MSE and MAE metrics, batch 32, up to 200 epochs, EarlyStopping
on ``val_loss`` with patience 10 restoring the best weights. Audio streams from the
memory-mapped dataset through :class:`fmlib.estimate.keras_data.AudioParamsSequence`.

A model folder holds::

    model.keras        the trained model (best epoch), loads with safe_mode=True
    model.json         config, seed, scaler, dataset manifest hash, split, versions,
                       timings, "complete": true once everything below is written
    split.json         train / val / test note indices
    history.csv        one row per epoch (Keras CSVLogger, appended on resume)
    table4_last_epochs.{csv,md}, table5_test_metrics.{csv,md},
    per_parameter_mae.{csv,md}, carrier_cents.{csv,md}, results.json,
    test_predictions.csv
    fig10_mse.png, fig11_mae.png   written by the ``train`` command
                       (:func:`fmlib.cli.train_cli.plot_history_figures`); notebooks
                       draw them with :func:`fmlib.notebook.plots.plot_history`
    .lock              locked (flock) by the process training into the folder
    checkpoint/        last epoch's model + optimizer, best weights, early-stopping
                       and dropout-seed state; removed once training is complete

Interrupting and rerunning the same command resumes after the last completed epoch.
Resumption restores the weights and the optimizer's state
(``checkpoint/last.keras``), the dropout layers' random state and the early-stopping
state (``state.json``); the training sequence is told the epoch it resumes at, so it
shuffles as an uninterrupted run does. A resumed run therefore repeats an
uninterrupted one (to the last bit on one CPU thread; see
``tests/test_train.py::test_resumed_run_equals_uninterrupted``).

Modules: this one splits, fits, resumes and records;
:mod:`fmlib.estimate.train_callbacks` (Keras callbacks) and
:mod:`fmlib.estimate.keras_data` (the batch adapter) import Keras;
:mod:`fmlib.estimate.train_results` writes the tables; :mod:`fmlib.cli.train_cli` is the
``train`` command (and draws Figures 10-11).
"""

from __future__ import annotations

import csv
import io
import json
import os
import platform
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from fmlib import files
from fmlib.errors import InputError, MissingFileError
from fmlib.estimate.model import (
    TargetScaler,
    build_model,
    canonicalize,
    compile_model,
    merge_config,
)
from fmlib.estimate.train_results import (  # noqa: F401 (re-exported)
    HISTORY_CSV,
    carrier_cents,
    pooled_metrics,
    write_results,
)
from fmlib.synth import params as P

MODEL_FILE = "model.keras"
MODEL_JSON = "model.json"
SPLIT_JSON = "split.json"
CHECKPOINT_DIR = "checkpoint"
_OWN_FILES = (
    MODEL_FILE,
    MODEL_JSON,
    SPLIT_JSON,
    HISTORY_CSV,
    "table4_last_epochs.csv",
    "table4_last_epochs.md",
    "table5_test_metrics.csv",
    "table5_test_metrics.md",
    "per_parameter_mae.csv",
    "per_parameter_mae.md",
    "carrier_cents.csv",
    "carrier_cents.md",
    "results.json",
    "test_predictions.csv",
    "fig10_mse.png",
    "fig11_mae.png",
)


# --------------------------------------------------------------------------- split
def split_indices(
    n: int, *, seed: int, test_fraction: float = 0.25, val_fraction: float = 0.2
) -> dict[str, np.ndarray]:
    """The paper's split: test = ``test_fraction`` of the notes, validation =
    ``val_fraction`` of the rest, train = the remainder.

    Args:
        n: Number of notes (indices 0..n-1).
        seed: Seeds the permutation (``numpy.random.default_rng(seed)``).

    Returns:
        ``{"train", "val", "test"}`` -> sorted int64 index arrays, disjoint, covering
        0..n-1 (sorted so that reads from the memory-mapped shards are sequential;
        the training sequence shuffles). 5,000 notes give 3,000 / 750 / 1,250.
    """
    if n < 3:
        raise InputError(f"split: need at least 3 notes, got {n}")
    perm = np.random.default_rng(seed).permutation(n)
    n_test = int(round(n * test_fraction))
    rest = perm[n_test:]
    n_val = int(round(len(rest) * val_fraction))
    return {
        "train": np.sort(rest[n_val:]).astype(np.int64),
        "val": np.sort(rest[:n_val]).astype(np.int64),
        "test": np.sort(perm[:n_test]).astype(np.int64),
    }


def load_split(model_dir: str | os.PathLike) -> dict[str, np.ndarray]:
    """The train / val / test indices a model was trained with (from ``split.json``)."""
    path = Path(model_dir) / SPLIT_JSON
    if not path.is_file():
        raise MissingFileError(f"{path}: no split file; is {model_dir} a model folder?")
    d = json.loads(path.read_text(encoding="utf-8"))
    return {k: np.asarray(d[k], dtype=np.int64) for k in ("train", "val", "test")}


# --------------------------------------------------------------------------- helpers
_write_json = files.write_json
_write_text = files.write_text


def software_versions() -> dict[str, str]:
    """Versions of Python, fmlib, Keras, TensorFlow and NumPy (a model.json record)."""
    import keras
    import tensorflow as tf

    import fmlib

    return {
        "python": platform.python_version(),
        "fmlib": fmlib.__version__,
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
        "numpy": np.__version__,
    }


def _open(dataset_dir):
    from fmlib.datasets.dataset import open_dataset

    return open_dataset(dataset_dir)


def target_vectors(dataset, *, canonical: bool = True) -> np.ndarray:
    """All notes' parameter vectors, (n, 15) float64 in original units, M1/M2 in
    canonical order (see :func:`fmlib.estimate.model.canonicalize`) unless ``canonical``
    is False."""
    params = dataset.params
    v = params[list(P.TARGET_NAMES)].to_numpy(dtype=np.float64)
    if not canonical:
        return v
    if "algorithm" in params.columns:
        algorithm = params["algorithm"].astype(str).tolist()
    else:
        algorithm = str(dataset.manifest.get("algorithm", "dx7_18"))
    return canonicalize(v, algorithm=algorithm)


def _dataset_algorithm(dataset) -> str:
    """The dataset's algorithm name (predicted patches use it)."""
    params = dataset.params
    if "algorithm" in params.columns and params["algorithm"].nunique() == 1:
        return str(params["algorithm"].iloc[0])
    sampler = dataset.manifest.get("config", {}).get("sampler", {})
    return str(sampler.get("algorithm", "dx7_18"))


def _identity(config, seed, limit, dataset) -> dict[str, Any]:
    ident = {
        "config": config,
        "seed": int(seed),
        "limit": None if limit is None else int(limit),
        "dataset_manifest_hash": dataset.manifest_hash,
    }
    return json.loads(json.dumps(ident))


def _read_model_json(out_dir: Path) -> dict[str, Any] | None:
    path = out_dir / MODEL_JSON
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def _differences(saved: dict[str, Any], ident: dict[str, Any]) -> list[str]:
    diffs = []
    for key in ("seed", "limit", "dataset_manifest_hash"):
        if saved.get(key) != ident[key]:
            diffs.append(key)
    saved_cfg = saved.get("config") or {}
    for key, value in ident["config"].items():
        if saved_cfg.get(key) != value:
            diffs.append(f"config.{key}")
    diffs += [f"config.{k}" for k in saved_cfg if k not in ident["config"]]
    return diffs


def _clear(out_dir: Path) -> None:
    """Remove this module's files from ``out_dir`` (nothing else)."""
    for name in _OWN_FILES:
        (out_dir / name).unlink(missing_ok=True)
    shutil.rmtree(out_dir / CHECKPOINT_DIR, ignore_errors=True)


def is_complete(out_dir: str | os.PathLike) -> bool:
    """True when ``out_dir`` holds a finished model (model.keras and complete JSON)."""
    out_dir = Path(out_dir)
    meta = _read_model_json(out_dir)
    return bool(meta and meta.get("complete") and (out_dir / MODEL_FILE).is_file())


def _truncate_history(path: Path, n_epochs: int) -> None:
    """Keep the header and the rows of epochs < n_epochs (drop a row logged after the
    last checkpoint, so that resuming does not duplicate it)."""
    if not path.is_file():
        return
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows:
        return
    keep = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) < n_epochs]
    buf = io.StringIO(newline="")
    csv.writer(buf).writerows(keep)
    files.write_text(path, buf.getvalue())


# --------------------------------------------------------------------------- training
def train(
    dataset_dir,
    out_dir,
    *,
    config: dict[str, Any] | None = None,
    seed: int = 0,
    limit: int | None = None,
    force: bool = False,
    verbose: int | str = 1,
) -> Path:
    """Train the CNN on a dataset folder and write the model folder; resumes.

    Args:
        dataset_dir: A dataset folder (:func:`fmlib.datasets.dataset.open_dataset`).
        out_dir: The model folder (created). If it holds an unfinished run with the
            same config, seed, limit and dataset, training resumes after its last
            completed epoch; a finished one is returned as is.
        config: Overrides of :data:`fmlib.estimate.model.PAPER_CONFIG`.
        seed: Seeds the split, the weights, dropout and shuffling.
        limit: Use only the first ``limit`` notes (smoke runs); None = all.
        force: Discard whatever ``out_dir`` holds and start again.
        verbose: Keras ``fit`` verbosity (1 = progress bar).

    Returns:
        ``out_dir`` as a Path.

    Raises:
        InputError: ``out_dir`` holds a model made with other settings (use
            ``force`` or another folder), or a bad config.
        MissingFileError: no dataset at ``dataset_dir``.
    """
    config = merge_config(config)
    dataset = _open(dataset_dir)
    out_dir = files.check_output(out_dir, kind="folder")
    files.check_distinct({"--out": out_dir}, {"dataset": dataset.path})
    ident = _identity(config, seed, limit, dataset)
    created = files.make_parents(out_dir / MODEL_JSON)
    try:
        with files.folder_lock(out_dir, command="train"):
            return _train_locked(
                dataset,
                dataset_dir,
                out_dir,
                config,
                ident,
                seed,
                limit,
                force,
                verbose,
            )
    except InputError:
        if created:  # refused before any work: leave nothing behind
            (out_dir / files.LOCK_NAME).unlink(missing_ok=True)
            files.remove_empty_folders(created)
        raise


def _train_locked(
    dataset, dataset_dir, out_dir, config, ident, seed, limit, force, verbose
) -> Path:
    import keras

    saved = _read_model_json(out_dir)
    if force:
        _clear(out_dir)
    elif saved is not None and _differences(saved, ident):
        raise InputError(
            f"{out_dir}: holds a model made with other settings "
            f"({', '.join(_differences(saved, ident)[:5])}); "
            "use --force or another --out"
        )
    elif saved is not None and is_complete(out_dir):
        print(f"model already trained: {out_dir / MODEL_FILE}")
        return out_dir

    n = dataset.n if limit is None else min(int(limit), dataset.n)
    split = split_indices(
        n,
        seed=seed,
        test_fraction=config["test_fraction"],
        val_fraction=config["val_fraction"],
    )
    vectors = target_vectors(dataset, canonical=config["canonical_m1_m2"])[:n]
    scaler = TargetScaler().fit(vectors[split["train"]])
    _write_json(out_dir / SPLIT_JSON, {k: v.tolist() for k, v in split.items()})
    meta = {
        **ident,
        "complete": False,
        "dataset_dir": str(Path(dataset_dir)),
        "n_notes": n,
        "split": {k: len(v) for k, v in split.items()},
        "split_seed": int(seed),
        "scaler": scaler.to_dict(),
        "targets": list(P.TARGET_NAMES),
        "algorithm": _dataset_algorithm(dataset),
        "canonical_order": (
            "interchangeable modulators"
            " (fmlib.synth.algorithms.Algorithm.interchangeable;"
            " dx7_18: M1/M2) sorted by (ratio, index)"
        ),
        "versions": software_versions(),
    }
    _write_json(out_dir / MODEL_JSON, meta)

    keras.utils.set_random_seed(seed)
    ckpt = out_dir / CHECKPOINT_DIR
    state_path = ckpt / "state.json"
    state = json.loads(state_path.read_text()) if state_path.is_file() else None
    from fmlib.estimate.train_callbacks import (
        Checkpoint,
        EpochTimer,
        ResumableEarlyStopping,
        restore_seed_states,
    )

    es = ResumableEarlyStopping(
        monitor=config["early_stopping_monitor"],
        patience=config["early_stopping_patience"],
        restore_best_weights=config["restore_best_weights"],
        verbose=1,
    )
    if state is not None:
        model = keras.saving.load_model(ckpt / "last.keras", safe_mode=True)
        if "seed_states" in state:  # dropout masks continue where they stopped
            restore_seed_states(model, state["seed_states"])
        initial_epoch = state["epoch"] + 1
        if config["restore_best_weights"] and (ckpt / "best.weights.h5").is_file():
            last = model.get_weights()
            model.load_weights(ckpt / "best.weights.h5")
            es.resume_best_weights = model.get_weights()
            model.set_weights(last)
        es.resume_state = state
        print(f"resuming after epoch {initial_epoch} from {ckpt}")
    else:
        model = compile_model(build_model(config), config)
        initial_epoch = 0
    _truncate_history(out_dir / HISTORY_CSV, initial_epoch)

    from fmlib.estimate.keras_data import AudioParamsSequence

    targets = scaler.transform(vectors)
    batch = config["batch_size"]
    train_seq = AudioParamsSequence(
        dataset,
        split["train"],
        targets=targets[split["train"]],
        batch_size=batch,
        shuffle=True,
        seed=seed,
        initial_epoch=initial_epoch,  # a resumed run shuffles as an uninterrupted one
    )
    val_seq = AudioParamsSequence(
        dataset,
        split["val"],
        targets=targets[split["val"]],
        batch_size=batch,
        shuffle=False,
        seed=seed,
    )
    seconds_before = float(state["train_seconds"]) if state else 0.0
    checkpoint = Checkpoint(ckpt, es, seconds_before)
    done = state is not None and (state["stopped"] or initial_epoch >= config["epochs"])
    if not done:
        model.fit(
            train_seq,
            validation_data=val_seq,
            epochs=config["epochs"],
            initial_epoch=initial_epoch,
            shuffle=False,  # the sequence shuffles, seeded
            callbacks=[
                EpochTimer(),
                es,
                keras.callbacks.CSVLogger(str(out_dir / HISTORY_CSV), append=True),
                checkpoint,
            ],
            verbose=verbose,
        )
        state = json.loads(state_path.read_text())
    elif config["restore_best_weights"] and es.resume_best_weights is not None:
        model.set_weights(es.resume_best_weights)

    with files.atomic_path(out_dir / MODEL_FILE, suffix=".keras") as tmp:
        model.save(tmp)

    t0 = time.perf_counter()
    results = write_results(
        out_dir,
        model=model,
        dataset=dataset,
        split=split,
        scaler=scaler,
        vectors=vectors,
        batch_size=batch,
    )
    meta.update(
        {
            "complete": True,
            "epochs_run": int(state["epoch"]) + 1,
            "best_epoch": int(state["best_epoch"]) + 1,
            "early_stopped": bool(state["stopped"]),
            "timings": {
                "train_seconds": round(float(state["train_seconds"]), 2),
                "evaluation_seconds": round(time.perf_counter() - t0, 2),
                "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            },
            "test_metrics": results["table5"],
        }
    )
    _write_json(out_dir / MODEL_JSON, meta)
    shutil.rmtree(ckpt, ignore_errors=True)
    print(f"model: {out_dir / MODEL_FILE}")
    print(f"results: {out_dir} (table4_last_epochs.md, table5_test_metrics.md, ...)")
    return out_dir


def ensure_model(
    dataset_dir,
    out_dir,
    *,
    config: dict[str, Any] | None = None,
    seed: int = 0,
    force: bool = False,
    limit: int | None = None,
    verbose: int | str = 1,
) -> Path:
    """Return ``out_dir`` holding a model trained with these settings, training (or
    resuming) only when needed.

    A folder whose ``model.json`` matches the merged config, seed, limit and the
    dataset's manifest hash, and is complete, is reused. A folder made with other
    settings is cleared (this module's files only) and retrained; an unfinished one
    with the same settings resumes. ``force`` retrains regardless.
    """
    out_dir = Path(out_dir)
    saved = _read_model_json(out_dir)
    if saved is not None and not force:
        dataset = _open(dataset_dir)
        ident = _identity(merge_config(config), seed, limit, dataset)
        diffs = _differences(saved, ident)
        if not diffs and is_complete(out_dir):
            print(f"reusing model: {out_dir / MODEL_FILE}")
            return out_dir
        if diffs:
            with files.folder_lock(out_dir, command="train"):
                print(
                    f"{out_dir}: settings changed ({', '.join(diffs[:5])}); retraining"
                )
                _clear(out_dir)
    return train(
        dataset_dir,
        out_dir,
        config=config,
        seed=seed,
        limit=limit,
        force=force,
        verbose=verbose,
    )
