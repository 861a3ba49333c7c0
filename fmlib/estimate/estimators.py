"""The estimators' common interface: audio in, patches out.

An estimator turns a batch of notes (16 kHz, 4 s) into one patch per note; the
evaluation, the notebooks and the command line treat every estimator alike through
:class:`Estimator`:

* :class:`CNNEstimator`, the paper's CNN (:mod:`fmlib.estimate.predict`), batched;
* :class:`MatchEstimator`, analysis and search (:mod:`fmlib.estimate.match`), one note
  at a time, optionally started from a CNN's guess;
* :class:`LookupEstimator`, analysis and the nearest harmonic-table entry
  (:mod:`fmlib.estimate.lookup`), no training and no search.

Build one with :func:`make_estimator`.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fmlib.errors import InputError, MissingFileError
from fmlib.synth.patch import Patch

#: Names accepted by :func:`make_estimator` (``evaluate --method``).
METHOD_NAMES: tuple[str, ...] = ("cnn", "match", "lookup")


def model_fingerprint(model_dir: str | os.PathLike) -> str:
    """sha256 over the small JSON files describing a model (config, scaler...)."""
    h = hashlib.sha256()
    for p in sorted(Path(model_dir).glob("*.json")):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


class Estimator:
    """Interface: ``name``, ``identity()`` and ``estimate(audio)``."""

    name = "estimator"

    def identity(self) -> dict:
        """What makes this estimator's results what they are (JSON-able)."""
        raise NotImplementedError

    def estimate(self, audio: np.ndarray) -> list[Patch | Exception]:
        """One patch per row of ``audio`` (shape (k, 64000), float32, 16 kHz), or the
        exception that row raised (so one bad note does not stop a batch)."""
        raise NotImplementedError

    def predict_patches(self, audio: np.ndarray) -> list[Patch]:
        """Like :meth:`estimate`, raising the first failure (the widgets' interface,
        shared with :class:`fmlib.estimate.predict.Predictor`)."""
        patches = self.estimate(np.asarray(audio, dtype=np.float32))
        for p in patches:
            if isinstance(p, Exception):
                raise p
        return patches


class CNNEstimator(Estimator):
    """The paper's CNN: a :class:`fmlib.estimate.predict.Predictor` (or anything with
    its ``predict_patches``), built from a model folder by :meth:`load`."""

    name = "cnn"

    def __init__(self, predictor, model_dir: str | os.PathLike | None = None):
        self.predictor = predictor
        self.model_dir = Path(model_dir) if model_dir is not None else None

    @classmethod
    def load(cls, model_dir: str | os.PathLike | None = None) -> CNNEstimator:
        """Load a model folder of any kind (paper CNN or fmnet); None: the shipped
        model (:data:`fmlib.paths.SHIPPED_MODEL_DIR`)."""
        from fmlib.estimate.predict import load_predictor
        from fmlib.paths import SHIPPED_MODEL_DIR

        model_dir = SHIPPED_MODEL_DIR if model_dir is None else model_dir
        return cls(load_predictor(model_dir), model_dir)

    def identity(self) -> dict:
        if self.model_dir is None:
            return {"method": "cnn", "model_dir": None}
        return {
            "method": "cnn",
            "model_dir": str(self.model_dir.resolve()),
            "model_kind": getattr(self.predictor, "kind", "cnn"),
            "model_fingerprint": model_fingerprint(self.model_dir),
        }

    def estimate(self, audio: np.ndarray) -> list[Patch | Exception]:
        try:
            return list(self.predictor.predict_patches(audio))
        except (InputError, ValueError):  # find the note that breaks the batch
            out: list[Patch | Exception] = []
            for x in audio:
                try:
                    out.append(self.predictor.predict_patches(x[None, :])[0])
                except (InputError, ValueError) as exc:
                    out.append(exc)
            return out


@dataclass
class MatchEstimator(Estimator):
    """Sound matching (:func:`fmlib.estimate.match.match_note`), seeded, with an
    optional CNN whose guess joins the starting hypotheses."""

    budget: int
    seed: int = 0
    model_dir: Path | None = None
    name = "match"

    def __post_init__(self) -> None:
        from fmlib.estimate.match import check_budget

        self.budget = check_budget(self.budget)
        self.cnn = CNNEstimator.load(self.model_dir) if self.model_dir else None

    def identity(self) -> dict:
        ident = {"method": "match", "budget": self.budget, "seed": int(self.seed)}
        if self.cnn is not None:
            ident["start_model"] = self.cnn.identity()
        return ident

    def estimate(self, audio: np.ndarray) -> list[Patch | Exception]:
        from fmlib.estimate.match import match_note

        starts = self.cnn.estimate(audio) if self.cnn else [None] * len(audio)
        out: list[Patch | Exception] = []
        for x, start in zip(audio, starts, strict=True):
            try:
                cnn_patch = start if isinstance(start, Patch) else None
                out.append(
                    match_note(
                        x, budget=self.budget, seed=self.seed, cnn_patch=cnn_patch
                    ).patch
                )
            except (InputError, ValueError, FloatingPointError) as exc:
                out.append(exc)
        return out


class LookupEstimator(Estimator):
    """The table lookup (:func:`fmlib.estimate.lookup.lookup_note`), one note at a
    time; deterministic, nothing to train."""

    name = "lookup"

    def identity(self) -> dict:
        from fmlib.estimate.lookup import TABLE_ARGS

        return {"method": "lookup", "table": dict(TABLE_ARGS)}

    def estimate(self, audio: np.ndarray) -> list[Patch | Exception]:
        from fmlib.estimate.lookup import lookup_note

        out: list[Patch | Exception] = []
        for x in audio:
            try:
                out.append(lookup_note(x))
            except (InputError, ValueError, FloatingPointError) as exc:
                out.append(exc)
        return out


def start_model(model, *, no_model: bool = False):
    """The model folder whose patch starts ``match``'s search (the ``match`` and
    ``evaluate --method match`` commands): ``model`` when given, else the shipped
    model (:data:`fmlib.paths.SHIPPED_MODEL_DIR`) when it is there; None with
    ``no_model``. (:class:`MatchEstimator` itself starts from a model only when it is
    given one, so library callers and the notebooks choose explicitly.)

    Raises:
        InputError: both a model and ``no_model``.
    """
    from fmlib import paths

    if no_model:
        if model is not None:
            raise InputError("--model and --no-model: give one of them, not both")
        return None
    if model is None and (paths.SHIPPED_MODEL_DIR / "model.json").is_file():
        return paths.SHIPPED_MODEL_DIR
    return model


def make_estimator(
    method: str,
    *,
    model_dir: str | os.PathLike | None = None,
    budget: int | None = None,
    seed: int = 0,
) -> Estimator:
    """Build an estimator by name.

    Args:
        method: "cnn" (a trained model of any kind), "match" or "lookup" (no model).
        model_dir: The model's folder (paper CNN or fmnet); for "match", an optional
            starting model. For "cnn", None means the shipped model
            (:data:`fmlib.paths.SHIPPED_MODEL_DIR`); "match" uses it only when the
            caller passes it.
        budget: For "match": candidate timbres per note (default
            :data:`fmlib.estimate.match.DEFAULT_BUDGET`).
        seed: For "match": the search seed.
    """
    if method not in METHOD_NAMES:
        raise InputError(
            f"method: {method!r} is not valid; valid: {', '.join(METHOD_NAMES)}"
        )
    if model_dir is not None and not Path(model_dir).is_dir():
        raise MissingFileError(f"{model_dir}: no such model folder")
    if method == "cnn":
        return CNNEstimator.load(model_dir)
    if method == "lookup":
        if model_dir is not None:
            raise InputError("--model: the lookup method uses no model")
        return LookupEstimator()
    from fmlib.estimate.match import DEFAULT_BUDGET

    return MatchEstimator(
        DEFAULT_BUDGET if budget is None else budget,
        seed,
        Path(model_dir) if model_dir is not None else None,
    )


def describe(estimator: Estimator) -> str:
    """One line naming the estimator and its settings."""
    return json.dumps(estimator.identity(), sort_keys=True)
