"""Predicting a synthesizer patch for any sound with a trained model.

``python -m fmlib predict [MODEL_DIR] INPUT.wav -o PATCH.json [--wav OUT.wav]``

Without MODEL_DIR the model shipped in the package (fmnet,
:data:`fmlib.paths.SHIPPED_MODEL_DIR`) is used. The rest of this docstring describes
the paper's CNN; fmnet (:mod:`fmlib.estimate.fmnet`) analyses the note (f0, harmonic
features) and decodes classes instead.

The input is brought to the model's format by :func:`prepare_audio` (mono, 16 kHz,
from the note's onset, exactly 4 s, each change reported), the network predicts 15
standardised values, the model's scaler maps them back to original units, and
:func:`fmlib.estimate.model.postprocess` applies the paper's post-processing (every
value clipped to the paper's range, each ratio snapped to the nearest discrete ratio in
log space) before the patch is built.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fmlib.audio.analysis import (  # noqa: F401 (re-exported)
    SILENCE_PEAK,
    prepare_audio,
    prepare_note,
)
from fmlib.errors import InputError
from fmlib.estimate.model import INPUT_LENGTH, TargetScaler, postprocess
from fmlib.synth import params as P
from fmlib.synth.algorithms import DEFAULT_ALGORITHM
from fmlib.synth.patch import Patch, patch_from_vector

#: Kinds of model folder (``model.json``'s ``"kind"``; a folder without one is a
#: paper CNN's).
MODEL_KINDS = ("cnn", "fmnet")


@dataclass
class Predictor:
    """A trained model with its scaler, ready to predict.

    Attributes:
        model: The Keras model (standardised outputs).
        scaler: The model's :class:`~fmlib.estimate.model.TargetScaler`.
        algorithm: Algorithm of the training data; predicted patches use it.
        meta: The model folder's ``model.json``.
        batch_size: Notes per forward pass.
    """

    model: Any
    scaler: TargetScaler
    algorithm: str = DEFAULT_ALGORITHM
    meta: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 32

    def predict_vectors(self, audio) -> np.ndarray:
        """Raw predictions in original units (no clipping, no snapping).

        Args:
            audio: float array of shape (n, 64000) or (64000,), 16 kHz mono (see
                :func:`prepare_audio`).

        Returns:
            float64 array of shape (n, 15), :data:`fmlib.synth.params.TARGET_NAMES`
            order.
        """
        x = np.asarray(audio, dtype=np.float32)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != INPUT_LENGTH:
            raise InputError(
                f"audio: expected shape (n, {INPUT_LENGTH}) at 16 kHz, got {x.shape}; "
                "use prepare_audio first"
            )
        if len(x) == 0:
            return np.empty((0, len(P.TARGET_NAMES)))
        z = np.concatenate(
            [
                np.asarray(
                    self.model.predict_on_batch(x[i : i + self.batch_size, :, None])
                )
                for i in range(0, len(x), self.batch_size)
            ]
        )
        return self.scaler.inverse_transform(z)

    def predict_patches(self, audio) -> list[Patch]:
        """Post-processed predictions (clipped, ratios snapped) as patches.

        Args:
            audio: float array of shape (n, 64000) or (64000,), 16 kHz mono.

        Returns:
            n validated :class:`~fmlib.synth.patch.Patch` objects.
        """
        vectors = postprocess(self.predict_vectors(audio))
        return [patch_from_vector(v, algorithm=self.algorithm) for v in vectors]


def _one_line(exc: BaseException, *, limit: int = 160) -> str:
    """The first line of an exception's message, shortened at a word boundary."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if len(text) > limit:
        text = text[:limit].rsplit(" ", 1)[0] + " ..."
    return text


def check_model_folder(model_dir: str | os.PathLike) -> tuple[dict[str, Any], Path]:
    """Cheap checks of a model folder, without importing Keras.

    Returns:
        (meta, model_path): ``model.json`` parsed, and the ``model.keras`` path.

    Raises:
        MissingFileError: the folder does not exist.
        InputError: not a model folder, a damaged ``model.json``, training not
            finished, or a ``model.keras`` that is not a Keras archive.
    """
    import zipfile

    from fmlib import files

    model_dir = files.check_input(model_dir, kind="folder", what="model folder")
    meta_path, model_path = model_dir / "model.json", model_dir / "model.keras"
    hint = "train one with: python -m fmlib train --data DATASET --out MODEL_DIR"
    if not meta_path.is_file() or not model_path.is_file():
        raise InputError(
            f"{model_dir}: not a model folder (no model.json/model.keras); {hint}"
        )
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if not isinstance(meta, dict):
            raise TypeError("not a JSON object")
        kind = meta.get("kind", "cnn")
        if kind not in MODEL_KINDS:
            raise InputError(
                f"unknown model kind {kind!r}; valid: {', '.join(MODEL_KINDS)}"
            )
        if kind == "cnn":
            TargetScaler.from_dict(meta["scaler"])
        else:
            [float(m) for m in meta["multiples"]]
    except (
        OSError,
        UnicodeDecodeError,
        json.JSONDecodeError,
        KeyError,
        TypeError,
        ValueError,
    ) as exc:
        raise InputError(
            f"{meta_path}: not a valid model.json ({_one_line(exc)})"
        ) from None
    except InputError as exc:
        raise InputError(f"{meta_path}: {exc}") from None
    if not meta.get("complete"):
        raise InputError(f"{model_dir}: training has not finished; rerun it to resume")
    if not zipfile.is_zipfile(model_path):
        raise InputError(
            f"{model_path}: not a Keras model file (a .keras file is a zip archive); "
            f"{hint}"
        )
    return meta, model_path


def load_predictor(model_dir: str | os.PathLike | None = None):
    """Load a trained model folder (``model.keras`` with ``safe_mode=True``); the
    folder is checked before Keras is imported.

    The folder's ``model.json`` declares its kind: ``"cnn"`` (the paper's CNN, the
    default when no kind is given) gives a :class:`Predictor` with ``model.json``'s
    scaler; ``"fmnet"`` gives a :class:`fmlib.estimate.fmnet.FMNetPredictor`. Both
    have ``predict_patches(audio)``.

    Args:
        model_dir: The folder; None for the shipped model
            (:data:`fmlib.paths.SHIPPED_MODEL_DIR`).

    Raises:
        MissingFileError: the folder does not exist.
        InputError: the folder is not a finished model.
    """
    if model_dir is None:
        from fmlib.paths import SHIPPED_MODEL_DIR

        model_dir = SHIPPED_MODEL_DIR
    meta, model_path = check_model_folder(model_dir)
    if meta.get("kind", "cnn") == "fmnet":
        from fmlib.estimate.fmnet import load_fmnet

        return load_fmnet(model_dir, meta)
    scaler = TargetScaler.from_dict(meta["scaler"])

    import keras

    try:
        model = keras.saving.load_model(model_path, safe_mode=True)
    except Exception as exc:  # Keras raises many types for a damaged file
        raise InputError(
            f"{model_path}: cannot load the model ({type(exc).__name__}: "
            f"{_one_line(exc)})"
        ) from None
    out_shape = tuple(model.output_shape)
    if tuple(model.input_shape[1:]) != (INPUT_LENGTH, 1) or out_shape[1:] != (
        len(P.TARGET_NAMES),
    ):
        raise InputError(
            f"{model_path}: expected input (64000, 1) and 15 outputs, "
            f"got {model.input_shape} -> {model.output_shape}"
        )
    algorithm = meta.get("algorithm", DEFAULT_ALGORITHM)
    return Predictor(model=model, scaler=scaler, algorithm=algorithm, meta=meta)


# --------------------------------------------------------------------------- CLI
def configure_parser(parser) -> None:
    parser.add_argument(
        "paths",
        nargs="+",
        metavar="[MODEL_DIR] INPUT",
        help="an optional trained model folder (python -m fmlib train; default: the "
        "model shipped in the package, fmnet), then a WAV (or any file soundfile "
        "reads)",
    )
    parser.add_argument("-o", "--out", required=True, help="patch JSON to write")
    parser.add_argument(
        "--wav",
        default=None,
        help="also render the patch, from the input's onset, to this audio file "
        "(.wav, .flac or .ogg)",
    )


def run(args) -> int:
    from fmlib import files
    from fmlib.paths import SHIPPED_MODEL_DIR

    if len(args.paths) > 2:
        raise InputError(
            f"predict: expected [MODEL_DIR] INPUT, got {len(args.paths)} paths"
        )
    args.model_dir, args.input = (
        args.paths if len(args.paths) == 2 else (SHIPPED_MODEL_DIR, args.paths[0])
    )
    # Every check before Keras is imported or the model runs.
    meta, model_path = check_model_folder(args.model_dir)
    source = files.check_input(args.input, what="audio file")
    files.check_distinct(
        {"-o": args.out, "--wav": args.wav},
        {
            "input audio": source,
            "model": model_path,
            "model's model.json": model_path.with_name("model.json"),
        },
    )
    out = files.check_output(args.out, suffixes=(".json",))
    wav_out = files.check_output(args.wav, kind="audio") if args.wav else None

    from fmlib.audio.audio_io import read_wav, write_wav
    from fmlib.synth.engine import render
    from fmlib.synth.patch import save_patch

    audio, sample_rate = read_wav(source)
    try:
        prepared = prepare_note(audio, sample_rate)
    except InputError as exc:
        raise InputError(f"{source}: {exc}") from None
    predictor = load_predictor(args.model_dir)
    for change in prepared.changes:
        print(f"input: {change}")
    patch = predictor.predict_patches(prepared.x[None, :])[0]
    save_patch(patch, out)
    mods = ", ".join(
        f"M{i}={m.ratio:g}x/{m.index:.2f}" for i, m in enumerate(patch.modulators, 1)
    )
    print(f"predicted: carrier {patch.carrier_hz:.1f} Hz, {mods}")
    print(f"patch: {out}")
    if wav_out is not None:
        # from the input's onset, so that it lines up with the input
        write_wav(wav_out, prepared.align(render(patch)), P.SAMPLE_RATE)
        print(f"re-synthesis: {wav_out}")
    return 0
