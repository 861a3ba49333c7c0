"""``python -m fmlib match``: find a patch for a WAV, or for every WAV of a folder.

::

    python -m fmlib match IN.wav -o OUT.json [--wav [OUT.wav]] [--syx [OUT.syx]]
    python -m fmlib match IN_DIR -o OUT_DIR [--wav] [--syx] [--workers W]
        [--budget N] [--seed S] [--model MODEL_DIR]

A file gives one patch JSON; ``--wav`` also renders the patch (to the given path, or
next to the JSON with the ``.wav`` suffix; delayed by any silence cut before the
input's note, so it lines up with the input), ``--syx`` also exports it as a DX7
voice.
A folder gives ``OUT_DIR/<stem>.json`` (and ``<stem>.wav``, ``<stem>.syx``) for
every audio file in it, in name order, with a progress bar. A folder run resumes: a
note whose outputs exist is skipped; a note that fails is recorded in
``OUT_DIR/failures.json`` and skipped (the next run retries it).
``OUT_DIR/match.json`` records the settings; a folder made with other settings is
refused. The same input, budget and seed give byte-identical patch JSON, whatever the
number of workers.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fmlib.errors import InputError, MissingFileError
from fmlib.synth import params as P

#: Audio file name endings a folder run picks up.
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".aiff", ".aif")


def configure_parser(parser: argparse.ArgumentParser) -> None:
    from fmlib.estimate.match import DEFAULT_BUDGET, MAX_BUDGET, MIN_BUDGET

    parser.add_argument("input", help="an audio file (WAV, FLAC, ...) or a folder")
    parser.add_argument(
        "-o",
        "--out",
        required=True,
        help="patch JSON to write (file input) or output folder (folder input)",
    )
    parser.add_argument(
        "--wav",
        nargs="?",
        const=True,
        default=None,
        help="also render the patch, from the input's onset (file input: optional "
        "path, default OUT.wav)",
    )
    parser.add_argument(
        "--syx",
        nargs="?",
        const=True,
        default=None,
        help="also export a DX7 voice (file input: optional path, default OUT.syx)",
    )
    parser.add_argument(
        "--budget",
        type=int,
        default=DEFAULT_BUDGET,
        help=f"candidate timbres per note ({MIN_BUDGET}-{MAX_BUDGET}, "
        f"default {DEFAULT_BUDGET})",
    )
    parser.add_argument("--seed", type=int, default=0, help="search seed (>= 0)")
    parser.add_argument(
        "--workers", type=int, default=1, help="processes for a folder (default 1)"
    )
    parser.add_argument(
        "--model",
        default=None,
        help="a trained model folder whose prediction is one more starting point "
        "(default: the model shipped in the package, fmnet)",
    )
    parser.add_argument(
        "--no-model",
        action="store_true",
        help="start from the analysis alone, without a model's prediction",
    )


# --------------------------------------------------------------------------- paths


def _single_outputs(args) -> dict[str, Path]:
    """Check the outputs of a file run (every check before any work): names,
    extensions, not an input, not each other, writable (:mod:`fmlib.files`)."""
    from fmlib import files

    src = Path(args.input)
    out = {"json": Path(args.out)}
    for kind in ("wav", "syx"):
        value = getattr(args, kind)
        if value is True:
            out[kind] = out["json"].with_suffix(f".{kind}")
        elif value:
            out[kind] = Path(value)
    inputs = {"input audio": src}
    if args.model is not None:
        inputs["--model"] = Path(args.model)
    files.check_distinct(
        {"-o": out["json"], "--wav": out.get("wav"), "--syx": out.get("syx")}, inputs
    )
    files.check_output(out["json"], suffixes=(".json",))
    if "wav" in out:
        files.check_output(out["wav"], kind="audio")
    if "syx" in out:
        files.check_output(out["syx"], suffixes=(".syx",))
    return out


# --------------------------------------------------------------------------- work


def _load_cnn(model_dir):
    if model_dir is None:
        return None
    from fmlib.estimate.predict import load_predictor

    return load_predictor(model_dir)


def _match_file(path: Path, budget: int, seed: int, cnn_patch=None):
    """(result, prepared): the match of one audio file and its
    :class:`~fmlib.audio.analysis.PreparedAudio`."""
    from fmlib.audio.analysis import prepare_note
    from fmlib.audio.audio_io import read_wav
    from fmlib.estimate.match import match_note

    audio, sr = read_wav(path)
    try:
        prepared = prepare_note(audio, sr)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
    result = match_note(prepared.x, budget=budget, seed=seed, cnn_patch=cnn_patch)
    return result, prepared


def _write_outputs(result, outputs: dict[str, Path], prepared) -> None:
    """Write the patch JSON (last) and the asked-for WAV and SYX; the WAV is the
    patch rendered from the input's onset (``prepared.align``), so it lines up with
    the input."""
    from fmlib import files
    from fmlib.synth.engine import render
    from fmlib.synth.patch import save_patch

    written = []
    try:
        if "wav" in outputs:
            audio = prepared.align(render(result.patch))
            written.append(files.write_audio(outputs["wav"], audio, P.SAMPLE_RATE))
        if "syx" in outputs:
            from fmlib.synth.dx7 import save_syx

            written.append(save_syx([result.patch], outputs["syx"]))
        save_patch(result.patch, outputs["json"])  # last: marks the note done
    except BaseException:
        for p in written:
            p.unlink(missing_ok=True)
        raise


def _describe(result) -> str:
    p = result.patch
    mods = ", ".join(
        f"M{i}={m.ratio:g}x/{m.index:.2f}" for i, m in enumerate(p.modulators, 1)
    )
    e = p.envelope
    return (
        f"f0 {result.analysis.f0_hz:.2f} Hz; carrier {p.carrier_hz:.2f} Hz, {mods}; "
        f"ADSR {e.attack_s:.3f}/{e.decay_s:.3f}/{e.sustain:.2f}/{e.release_s:.3f} "
        f"{e.curve}, "
        f"level {p.level:.3f}"
    )


def _check_syx_available() -> None:
    try:
        import fmlib.synth.dx7  # noqa: F401
    except ModuleNotFoundError:
        raise InputError("--syx: DX7 export is not available in this version") from None


def _run_file(args) -> int:
    from fmlib import files
    from fmlib.audio.audio_io import read_wav
    from fmlib.estimate.match import check_budget

    check_budget(args.budget)
    files.check_input(args.input, what="audio file")
    outputs = _single_outputs(args)
    if "syx" in outputs:
        _check_syx_available()
    if args.model is not None:
        from fmlib.estimate.predict import check_model_folder

        check_model_folder(args.model)
    cnn = _load_cnn(args.model)
    cnn_patch = None
    if cnn is not None:
        from fmlib.audio.analysis import prepare_audio

        x, _ = prepare_audio(*read_wav(args.input))
        cnn_patch = cnn.predict_patches(x[None, :])[0]
    result, prepared = _match_file(Path(args.input), args.budget, args.seed, cnn_patch)
    for change in prepared.changes:
        print(f"input: {change}")
    _write_outputs(result, outputs, prepared)
    print(f"matched: {_describe(result)}")
    labels = {"json": "patch", "wav": "re-synthesis", "syx": "DX7 voice"}
    for kind, path in outputs.items():
        print(f"{labels[kind]}: {path}")
    return 0


def _settings(args) -> dict:
    import fmlib

    model = None
    if args.model is not None:
        model = str(Path(args.model).resolve())
    return {
        "fmlib_version": fmlib.__version__,
        "input": str(Path(args.input).resolve()),
        "budget": int(args.budget),
        "seed": int(args.seed),
        "model": model,
    }


def _note_task(task):
    """Worker: match one note; returns (stem, error or None)."""
    path, outputs, budget, seed, cnn_patch = task
    try:
        result, prepared = _match_file(Path(path), budget, seed, cnn_patch)
        _write_outputs(result, {k: Path(v) for k, v in outputs.items()}, prepared)
        return Path(path).stem, None
    except (InputError, MissingFileError, ValueError, OSError) as exc:
        return Path(path).stem, f"{type(exc).__name__}: {exc}"


def _run_folder(args) -> int:
    from tqdm import tqdm

    from fmlib.estimate.match import check_budget

    check_budget(args.budget)
    if isinstance(args.workers, bool) or not 1 <= args.workers <= 64:
        raise InputError(f"--workers: {args.workers} is not valid; valid: 1 to 64")
    for kind in ("wav", "syx"):
        if getattr(args, kind) not in (None, True):
            raise InputError(
                f"--{kind}: a folder input takes --{kind} without a path "
                f"(it writes OUT_DIR/<stem>.{kind})"
            )
    if args.syx:
        _check_syx_available()
    from fmlib import files

    src, out = Path(args.input), Path(args.out)
    files.check_output(out, kind="folder")
    if files.same_file(src, out) or src.resolve() in out.resolve().parents:
        raise InputError(f"{out}: is the input folder or inside it; choose another")
    if args.model is not None:
        from fmlib.estimate.predict import check_model_folder

        check_model_folder(args.model)
    notes = sorted(
        p for p in src.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES
    )
    if not notes:
        raise InputError(
            f"{src}: holds no audio files (valid: {', '.join(AUDIO_SUFFIXES)})"
        )
    stems = [p.stem for p in notes]
    if len(set(stems)) != len(stems):
        raise InputError(f"{src}: two audio files share a name stem; rename one")
    settings = _settings(args)
    manifest = out / "match.json"
    if manifest.is_file():
        old = json.loads(manifest.read_text(encoding="utf-8"))
        if {k: old.get(k) for k in settings} != settings:
            raise InputError(
                f"{out} holds matches made with other settings; "
                "choose another --out or delete it"
            )
    cnn = _load_cnn(args.model)
    with files.os_errors(out, action="cannot create the folder"):
        out.mkdir(parents=True, exist_ok=True)
    lock = files.folder_lock(out, command="match")  # held until the run ends
    files.write_json(manifest, settings)
    kinds = ["json"] + [k for k in ("wav", "syx") if getattr(args, k)]
    tasks = []
    for p in notes:
        outputs = {k: str(out / f"{p.stem}.{k}") for k in kinds}
        if all(Path(v).is_file() for v in outputs.values()):
            continue
        cnn_patch = None
        if cnn is not None:
            from fmlib.audio.analysis import prepare_audio
            from fmlib.audio.audio_io import read_wav

            try:
                x, _ = prepare_audio(*read_wav(p))
                cnn_patch = cnn.predict_patches(x[None, :])[0]
            except (InputError, MissingFileError):
                pass  # the match itself reports the bad note
        tasks.append((str(p), outputs, args.budget, args.seed, cnn_patch))
    failures_path = out / "failures.json"
    failures = {}
    if failures_path.is_file():
        failures = json.loads(failures_path.read_text(encoding="utf-8"))
    bar = tqdm(total=len(notes), initial=len(notes) - len(tasks), unit="note")
    try:
        if args.workers == 1 or len(tasks) <= 1:
            results = map(_note_task, tasks)
            for stem, error in results:
                _record(failures, failures_path, stem, error)
                bar.update(1)
        else:
            import multiprocessing

            ctx = multiprocessing.get_context("spawn")
            with ctx.Pool(args.workers) as pool:
                for stem, error in pool.imap_unordered(_note_task, tasks):
                    _record(failures, failures_path, stem, error)
                    bar.update(1)
    finally:
        bar.close()
        lock.release()
    n_failed = len(failures)
    print(f"{len(notes) - n_failed} of {len(notes)} notes matched, {n_failed} failed")
    if n_failed:
        print(f"failures: {failures_path} (rerun to retry them)")
    print(f"results: {out} (<stem>.{', <stem>.'.join(kinds)}, match.json)")
    return 0


def _record(failures: dict, path: Path, stem: str, error: str | None) -> None:
    changed = False
    if error is None and stem in failures:
        del failures[stem]
        changed = True
    elif error is not None:
        failures[stem] = error
        changed = True
    if changed:
        if failures:
            from fmlib import files

            files.write_json(path, dict(sorted(failures.items())))
        else:
            path.unlink(missing_ok=True)


def run(args: argparse.Namespace) -> int:
    if isinstance(args.seed, bool) or args.seed < 0:
        raise InputError(f"--seed: {args.seed} is not valid; valid: an integer >= 0")
    from fmlib.estimate.estimators import start_model

    args.model = start_model(args.model, no_model=getattr(args, "no_model", False))
    src = Path(args.input)
    if src.is_dir():
        return _run_folder(args)
    if not src.exists():
        raise MissingFileError(f"{src}: no such audio file or folder")
    return _run_file(args)
