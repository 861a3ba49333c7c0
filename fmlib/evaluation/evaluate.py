"""Re-synthesis evaluation on real notes: the paper's Tables 6-9 and more.

For every note of an NSynth-layout folder (:func:`fmlib.datasets.nsynth.load_nsynth`):
estimate a patch with an estimator of :mod:`fmlib.estimate.estimators`
(``method="cnn"``: the paper's CNN, batched, post-processed as the paper does;
``method="match"``: analysis and search, which sees only the audio, never a label),
render it with
:func:`fmlib.synth.engine.render`, and compute every metric of
:mod:`fmlib.audio.metrics` against the original. The same metrics are computed for the
baselines of
:mod:`fmlib.evaluation.baselines` (440 Hz sine, sine at the note's pitch, that sine with
the note's RMS envelope; only the baselines use the labelled pitch) and for the constant
patch (the CNN scaler's mean patch when a model is given, else the mean of the
paper's sampler). Pitch is reported twice: the error of the patch's carrier against
the note's MIDI pitch, ``1200 * log2(carrier_hz / midi_hz)`` cents, and the error of
the re-synthesis's f0 (measured by :func:`fmlib.audio.analysis.estimate_f0`, as the
input's f0 is) against that pitch.

Outputs in ``out_dir``:

* ``notes.csv``: one row per note (appended as the run goes; the run resumes after
  the last complete row). ``status`` is ``ok`` or ``error`` (with the ``error``
  text); failed notes are retried by the next run and only a note's last row counts.
* ``table6_means`` / ``table7_std`` (metric x method), ``table8_family_means`` /
  ``table9_family_std`` (family x metric, re-synthesis, plus the log-mel of each
  baseline), each as ``.csv`` and ``.md``.
* ``summary.json``: counts, failed notes, overall means, speed, inputs.
* ``evaluation.json``: what was evaluated (a folder holding another evaluation is
  refused); ``audio/<note_str>.wav`` with ``save_audio``.

Improvement is ``100 * (baseline - resynthesis) / baseline`` (positive = better than
the baseline), computed from the means as in the paper's Table 6.

Why one module of over 600 lines: the per-note scoring, its resumable loop and
the Tables 6-9 it writes share one row schema (the ``notes.csv`` columns); keeping
them together keeps that schema in one place.
"""

from __future__ import annotations

import argparse
import csv
import functools
import io
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from fmlib import files
from fmlib.audio import metrics
from fmlib.audio.audio_io import write_wav
from fmlib.datasets.nsynth import load_nsynth, read_note
from fmlib.errors import InputError, MissingFileError
from fmlib.estimate.estimators import METHOD_NAMES, Estimator, make_estimator
from fmlib.evaluation.baselines import (
    BASELINE_NAMES,
    enveloped_pitch_sine,
    midi_to_hz,
    pitch_sine,
    sine_440,
)
from fmlib.synth.engine import render
from fmlib.synth.params import SAMPLE_RATE, TARGET_NAMES

#: Methods compared, in table order: the re-synthesis, then the baselines (the three
#: sines and the constant patch).
CONST_PATCH = "const_patch"
REFERENCES: tuple[str, ...] = BASELINE_NAMES + (CONST_PATCH,)
METHODS: tuple[str, ...] = ("resynthesis",) + REFERENCES
#: Human-readable metric names used in the tables (paper's wording first).
METRIC_LABELS: dict[str, str] = {
    "fft": "FFT",
    "stft": "STFT",
    "logmel": "Log Mel (raw)",
    "logmel_norm": "Log Mel (normalized)",
    "claesson_fft": "Claesson FFT [0-1]",
    "envelope": "RMS envelope",
    "mss": "MSS (Hayes et al.) [dB]",
}
INFO_COLUMNS: tuple[str, ...] = (
    "note_str",
    "instrument_family_str",
    "instrument_source_str",
    "pitch",
    "velocity",
    "status",
    "error",
)
CSV_COLUMNS: tuple[str, ...] = (
    INFO_COLUMNS
    + (
        "pitch_error_cents",
        "input_f0_hz",
        "resynth_f0_hz",
        "resynth_f0_error_cents",
    )
    + tuple(f"{m}_{k}" for m in METHODS for k in metrics.METRIC_NAMES)
    + tuple(f"pred_{name}" for name in TARGET_NAMES)
    + ("pred_level", "pred_curve")
)


def _order_for_limit(table: pd.DataFrame) -> pd.DataFrame:
    """Round-robin over families (1st note of each family, then 2nd, ...) so that
    ``limit`` keeps every family represented; deterministic."""
    rank = table.groupby("instrument_family_str").cumcount()
    return (
        table.assign(_rank=rank)
        .sort_values(["_rank", "instrument_family_str", "note_str"])
        .drop(columns="_rank")
        .reset_index(drop=True)
    )


def _read_done(csv_path: Path) -> pd.DataFrame:
    """Rows already written; a torn last line (interrupted write) is cut off."""
    if not csv_path.is_file():
        return pd.DataFrame(columns=list(CSV_COLUMNS))
    raw = csv_path.read_bytes()
    if raw and not raw.endswith(b"\n"):
        raw = raw[: raw.rfind(b"\n") + 1]
        with open(csv_path, "wb") as f:
            f.write(raw)
    if not raw.strip():
        return pd.DataFrame(columns=list(CSV_COLUMNS))
    done = pd.read_csv(io.BytesIO(raw), keep_default_na=False, na_values=[""])
    if tuple(done.columns) != CSV_COLUMNS:
        raise InputError(
            f"{csv_path}: unexpected columns; delete it or choose another --out"
        )
    return done


def _append_rows(csv_path: Path, rows: list[dict]) -> None:
    new = not csv_path.is_file() or csv_path.stat().st_size == 0
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    if new:
        writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k, "") for k in CSV_COLUMNS})
    with open(csv_path, "a", encoding="utf-8") as f:
        f.write(buf.getvalue())
        f.flush()
        os.fsync(f.fileno())


class _BaselineCache:
    """Features of the note-independent baselines, computed once per pitch."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, int], metrics.Features] = {}

    def get(self, name: str, key: int, signal_fn) -> metrics.Features:
        if (name, key) not in self._cache:
            self._cache[(name, key)] = metrics.features(signal_fn())
        return self._cache[(name, key)]


def score_note(
    original: np.ndarray,
    resynthesis: np.ndarray,
    pitch: int,
    *,
    cache: _BaselineCache | None = None,
    const_patch=None,
) -> dict[str, float]:
    """Every metric of the re-synthesis and of the baselines against a note.

    Args:
        original: The note, float32 shape (64000,), 16 kHz, in [-1, 1].
        resynthesis: The rendered prediction, same shape.
        pitch: The note's MIDI pitch.
        cache: Reuses the note-independent signals' features across notes.
        const_patch: The constant-patch baseline (default: :func:`paper_mean_patch`).

    Returns:
        dict ``{f"{method}_{metric}": value}`` for :data:`METHODS` x
        :data:`fmlib.audio.metrics.METRIC_NAMES`.
    """
    cache = cache or _BaselineCache()
    x = np.asarray(original, dtype=np.float32)
    n = x.size
    const = const_patch if const_patch is not None else paper_mean_patch()
    feats = {  # note-independent signals are computed once per length and pitch
        "resynthesis": metrics.features(resynthesis),
        "sine_440": cache.get("sine_440", n, lambda: sine_440(n_samples=n)),
        "sine_pitch": cache.get(
            f"sine_pitch_{n}", int(pitch), lambda: pitch_sine(pitch, n_samples=n)
        ),
        "sine_pitch_env": metrics.features(enveloped_pitch_sine(x, pitch)),
        CONST_PATCH: cache.get(
            f"const_{n}",
            hash(json.dumps(const.to_dict(), sort_keys=True)),
            lambda: render(const, duration_s=n / SAMPLE_RATE),
        ),
    }
    f_orig = metrics.features(x)
    out = {}
    for method in METHODS:
        for k, v in metrics.distances(f_orig, feats[method]).items():
            out[f"{method}_{k}"] = v
    return out


def paper_mean_patch(*, n: int = 20_000, seed: int = 0):
    """The constant-patch baseline without a model: the mean parameter vector of
    ``n`` notes of the paper's sampler (what a CNN's scaler mean estimates), ratios
    snapped to the discrete set as the paper's post-processing does."""
    return _mean_patch_cached(n, seed)


@functools.lru_cache(maxsize=2)
def _mean_patch_cached(n: int, seed: int):
    from fmlib.datasets.sampler import sample_vectors
    from fmlib.estimate.model import postprocess
    from fmlib.synth.patch import patch_from_vector

    mean = sample_vectors(n, seed=seed).mean(axis=0)
    return patch_from_vector(postprocess(mean[None, :])[0])


def scaler_mean_patch(estimator: Estimator):
    """The constant patch of an estimator built on a CNN (its scaler's mean, post-
    processed as the paper does), or :func:`paper_mean_patch` without one."""
    from fmlib.estimate.model import postprocess
    from fmlib.synth.patch import patch_from_vector

    cnn = getattr(estimator, "predictor", None)
    if cnn is None and getattr(estimator, "cnn", None) is not None:
        cnn = estimator.cnn.predictor
    if cnn is None:
        return paper_mean_patch()
    if hasattr(cnn, "mean_patch"):  # fmnet: the mean of its training targets
        return cnn.mean_patch()
    return patch_from_vector(
        postprocess(cnn.scaler.mean[None, :])[0], algorithm=cnn.algorithm
    )


def pitch_error_cents(carrier_hz: float, pitch: float) -> float:
    """Signed error of a carrier frequency against a MIDI pitch, cents."""
    return float(1200.0 * math.log2(float(carrier_hz) / midi_to_hz(pitch)))


# --------------------------------------------------------------------------- tables


def _save_table(df: pd.DataFrame, out_dir: Path, stem: str, title: str, index: str):
    files.write_table(df, out_dir, stem, title=title, index=True, index_label=index)


def build_tables(rows: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Tables 6-9 from the per-note rows with status ``ok``.

    Returns:
        dict with keys ``table6_means``, ``table7_std``, ``table8_family_means``,
        ``table9_family_std`` (DataFrames; std is the sample std, ddof=1).
    """
    ok = rows[rows["status"] == "ok"]
    names = list(metrics.METRIC_NAMES)
    means = pd.DataFrame(
        {m: [ok[f"{m}_{k}"].astype(float).mean() for k in names] for m in METHODS},
        index=[METRIC_LABELS[k] for k in names],
    )
    stds = pd.DataFrame(
        {m: [ok[f"{m}_{k}"].astype(float).std() for k in names] for m in METHODS},
        index=means.index,
    )
    t6 = means.copy()
    for b in REFERENCES:
        t6[f"improvement_vs_{b}_pct"] = (
            100.0 * (means[b] - means["resynthesis"]) / means[b]
        )
    cents = ok["pitch_error_cents"].astype(float)
    f0_err = ok["resynth_f0_error_cents"].astype(float)
    extra = {
        "Pitch error (cents)": (cents.mean(), cents.std()),
        "Abs. pitch error (cents)": (cents.abs().mean(), cents.abs().std()),
        "Re-synthesis f0 within 50 cents of the label (%)": (
            100.0 * (f0_err.abs() <= 50).mean(),
            np.nan,
        ),
        "Notes whose log-mel beats sine_pitch_env (%)": (
            100.0
            * (
                ok["resynthesis_logmel"].astype(float)
                < ok["sine_pitch_env_logmel"].astype(float)
            ).mean(),
            np.nan,
        ),
    }
    for label, (mu, sd) in extra.items():
        t6.loc[label] = np.nan
        t6.loc[label, "resynthesis"] = mu
        stds.loc[label] = np.nan
        stds.loc[label, "resynthesis"] = sd
    fam_cols = {METRIC_LABELS[k]: f"resynthesis_{k}" for k in names}
    fam_cols.update({f"Log Mel (raw), {b}": f"{b}_logmel" for b in REFERENCES})
    fam_cols["Pitch error (cents)"] = "pitch_error_cents"
    grouped = ok.groupby("instrument_family_str")
    t8 = pd.DataFrame({label: grouped[c].mean() for label, c in fam_cols.items()})
    t9 = pd.DataFrame({label: grouped[c].std() for label, c in fam_cols.items()})
    t8.insert(0, "n", grouped.size())
    t9.insert(0, "n", grouped.size())
    return {
        "table6_means": t6,
        "table7_std": stds,
        "table8_family_means": t8,
        "table9_family_std": t9,
    }


_TITLES = {
    "table6_means": "Table 6: means (re-synthesis vs baselines, improvement %)",
    "table7_std": "Table 7: standard deviations",
    "table8_family_means": "Table 8: re-synthesis means by instrument family",
    "table9_family_std": "Table 9: re-synthesis standard deviations by family",
}


def write_tables(rows: pd.DataFrame, out_dir: Path) -> dict[str, pd.DataFrame]:
    """Write Tables 6-9 (CSV + Markdown) into ``out_dir``; returns them."""
    tables = build_tables(rows)
    for stem, df in tables.items():
        index = "family" if "family" in stem else "metric"
        _save_table(df, out_dir, stem, _TITLES[stem], index)
    return tables


# --------------------------------------------------------------------------- run


def _check_identity(out_dir: Path, ident: dict) -> None:
    path = out_dir / "evaluation.json"
    if path.is_file():
        old = json.loads(path.read_text())
        keys = ("estimator", "data_dir", "limit")
        if any(old.get(k) != ident[k] for k in keys):
            raise InputError(
                f"{out_dir} holds the evaluation of another method, model, data set "
                "or limit; choose another --out or delete it"
            )
    files.write_json(path, ident)


def _f0_or_nan(y: np.ndarray) -> float:
    from fmlib.audio.analysis import estimate_f0

    try:
        return estimate_f0(y).f0_hz
    except InputError:  # a silent re-synthesis has no f0
        return math.nan


def _process_batch(
    estimator: Estimator, batch: pd.DataFrame, cache, audio_dir, const_patch
) -> list[dict]:
    rows, audio, keep = [], [], []
    for rec in batch.to_dict("records"):
        info = {k: rec[k] for k in INFO_COLUMNS if k in rec}
        try:
            audio.append(read_note(rec["path"]))
            keep.append(info)
        except (InputError, MissingFileError, OSError) as exc:
            rows.append({**info, "status": "error", "error": str(exc)})
    if not keep:
        return rows
    patches = estimator.estimate(np.stack(audio))
    for info, x, patch in zip(keep, audio, patches, strict=True):
        if isinstance(patch, Exception):
            msg = f"estimation failed: {type(patch).__name__}: {patch}"
            rows.append({**info, "status": "error", "error": msg})
            continue
        try:
            y = render(patch)
            row = {**info, "status": "ok", "error": ""}
            row["pitch_error_cents"] = pitch_error_cents(
                patch.carrier_hz, info["pitch"]
            )
            row["input_f0_hz"] = _f0_or_nan(x)
            row["resynth_f0_hz"] = _f0_or_nan(y)
            row["resynth_f0_error_cents"] = (
                pitch_error_cents(row["resynth_f0_hz"], info["pitch"])
                if math.isfinite(row["resynth_f0_hz"])
                else math.nan
            )
            row.update(
                score_note(
                    x, y, int(info["pitch"]), cache=cache, const_patch=const_patch
                )
            )
            row.update(
                {
                    f"pred_{n}": float(v)
                    for n, v in zip(TARGET_NAMES, patch.to_vector(), strict=True)
                }
            )
            row["pred_level"] = float(patch.level)
            row["pred_curve"] = patch.envelope.curve
            if audio_dir is not None:
                write_wav(audio_dir / f"{info['note_str']}.wav", y, SAMPLE_RATE)
        except (InputError, ValueError, FloatingPointError) as exc:
            row = {**info, "status": "error", "error": f"{type(exc).__name__}: {exc}"}
        rows.append(row)
    return rows


def evaluate(
    model_dir: str | os.PathLike | None,
    data_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    method: str = "cnn",
    budget: int | None = None,
    seed: int = 0,
    save_audio: bool = False,
    limit: int | None = None,
    batch_size: int = 32,
    progress: bool = True,
) -> Path:
    """Run the re-synthesis evaluation; resumes per note.

    Args:
        model_dir: A trained model folder
        (:func:`fmlib.estimate.predict.load_predictor`):
            the estimator for ``method="cnn"`` (None: the shipped fmnet,
            :data:`fmlib.paths.SHIPPED_MODEL_DIR`), an optional starting point for
            ``method="match"`` (None: none).
        data_dir: An NSynth-layout folder (NSynth test split, the dev set or the
            SoundFont set).
        out_dir: Results folder (created).
        method: "cnn", "match" or "lookup"
            (:data:`fmlib.estimate.estimators.METHOD_NAMES`).
        budget: For "match": candidate timbres per note (default
            :data:`fmlib.estimate.match.DEFAULT_BUDGET`).
        seed: For "match": the search seed.
        save_audio: Also write ``audio/<note_str>.wav`` (16 kHz, 64,000 samples).
        limit: Evaluate only this many notes, taken round-robin over families.
        batch_size: Notes per estimator call.
        progress: Show a tqdm bar.

    Returns:
        ``out_dir``.
    """
    from fmlib.estimate.predict import check_model_folder

    if limit is not None and (isinstance(limit, bool) or int(limit) < 1):
        raise InputError(f"limit: {limit!r} is not valid; valid: an integer >= 1")
    if int(batch_size) < 1:
        raise InputError(f"batch_size: {batch_size!r} is not valid; valid: >= 1")
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    if method not in METHOD_NAMES:
        raise InputError(
            f"method: {method!r} is not valid; valid: {', '.join(METHOD_NAMES)}"
        )
    if method == "cnn" and model_dir is None:
        from fmlib.paths import SHIPPED_MODEL_DIR

        model_dir = SHIPPED_MODEL_DIR
    inputs = {"--data": data_dir}
    if model_dir is not None:
        model_dir = Path(model_dir)
        check_model_folder(model_dir)  # before anything is written or Keras imported
        inputs["--model"] = model_dir
    if method == "match":
        from fmlib.estimate.match import DEFAULT_BUDGET, check_budget

        budget = check_budget(DEFAULT_BUDGET if budget is None else budget)
    files.check_input(data_dir, kind="folder", what="NSynth-layout folder")
    _check_out_dir(out_dir, inputs=inputs)
    table = load_nsynth(data_dir)
    if table.empty:
        raise InputError(f"{data_dir}/examples.json lists no notes")
    if limit is not None:
        table = _order_for_limit(table).head(int(limit))
    estimator = make_estimator(method, model_dir=model_dir, budget=budget, seed=seed)
    with files.os_errors(out_dir, action="cannot create the folder"):
        out_dir.mkdir(parents=True, exist_ok=True)
    lock = files.folder_lock(out_dir, command="evaluate")  # held until we return
    ident = {
        "estimator": estimator.identity(),
        "data_dir": str(data_dir.resolve()),
        "limit": limit,
        "n_notes": int(len(table)),
        "source_label": _source_label(table),
    }
    _check_identity(out_dir, ident)
    csv_path = out_dir / "notes.csv"
    done = _read_done(csv_path)
    finished = set(done.loc[done["status"] == "ok", "note_str"])
    todo = table[~table["note_str"].isin(finished)]
    audio_dir = None
    if save_audio:
        audio_dir = out_dir / "audio"
        audio_dir.mkdir(exist_ok=True)
    start = time.perf_counter()
    if len(todo):
        cache = _BaselineCache()
        const_patch = scaler_mean_patch(estimator)
        step = batch_size if method == "cnn" else 1  # match: resume per note
        with tqdm(
            total=len(table),
            initial=len(table) - len(todo),
            unit="note",
            desc=f"evaluate {method}",
            disable=not progress,
        ) as bar:
            for i in range(0, len(todo), step):
                batch = todo.iloc[i : i + step]
                _append_rows(
                    csv_path,
                    _process_batch(estimator, batch, cache, audio_dir, const_patch),
                )
                bar.update(len(batch))
    elapsed = time.perf_counter() - start
    rows = _read_done(csv_path)
    rows = rows[rows["note_str"].isin(set(table["note_str"]))]
    rows = rows.drop_duplicates("note_str", keep="last")
    tables = write_tables(rows, out_dir)
    _write_summary(out_dir, rows, tables, ident, elapsed, n_new=len(todo))
    lock.release()
    return out_dir


def _check_out_dir(out_dir: Path, *, inputs: dict[str, Path]) -> None:
    """Refuse an ``--out`` that is a file, an input folder, or a folder holding
    something else than an evaluation."""
    files.check_output(out_dir, kind="folder")
    files.check_distinct({"--out": out_dir}, inputs)
    if out_dir.is_dir() and not (out_dir / "evaluation.json").is_file():
        with files.os_errors(out_dir, action="cannot read"):
            busy = any(p.name != files.LOCK_NAME for p in out_dir.iterdir())
        if busy:
            raise InputError(
                f"{out_dir}: is not empty and holds no evaluation; give an empty or "
                "new folder for --out"
            )


def _source_label(table: pd.DataFrame) -> str:
    if "source_label" in table.columns:
        labels = sorted(set(table["source_label"].dropna().astype(str)))
        if labels:
            return "; ".join(labels)
    return "NSynth-layout notes"


def _write_summary(out_dir, rows, tables, ident, elapsed, *, n_new) -> None:
    ok = rows[rows["status"] == "ok"]
    failed = rows[rows["status"] != "ok"]
    t6 = tables["table6_means"]
    summary = {
        **ident,
        "n_ok": int(len(ok)),
        "n_failed": int(len(failed)),
        "failed": [
            {"note_str": r["note_str"], "error": r["error"]}
            for r in failed.to_dict("records")
        ],
        "means": {
            m: {k: _num(t6.loc[METRIC_LABELS[k], m]) for k in metrics.METRIC_NAMES}
            for m in METHODS
        },
        "improvement_pct": {
            b: {
                k: _num(t6.loc[METRIC_LABELS[k], f"improvement_vs_{b}_pct"])
                for k in metrics.METRIC_NAMES
            }
            for b in REFERENCES
        },
        "resynth_f0_within_50_cents_pct": _num(
            t6.loc["Re-synthesis f0 within 50 cents of the label (%)", "resynthesis"]
        ),
        "beats_sine_pitch_env_logmel_pct": _num(
            t6.loc["Notes whose log-mel beats sine_pitch_env (%)", "resynthesis"]
        ),
        "pitch_error_cents_mean": _num(t6.loc["Pitch error (cents)", "resynthesis"]),
        "abs_pitch_error_cents_mean": _num(
            t6.loc["Abs. pitch error (cents)", "resynthesis"]
        ),
        "this_run": {
            "notes": int(n_new),
            "seconds": round(elapsed, 3),
            "notes_per_s": round(n_new / elapsed, 3) if n_new and elapsed > 0 else None,
        },
        "mel_filter_sample_rate": metrics.MEL_FILTER_SAMPLE_RATE,
    }
    files.write_json(out_dir / "summary.json", summary)


def _num(v) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--method",
        choices=("cnn", "match", "lookup"),
        default="cnn",
        help="estimator: a trained network (--model, default the shipped fmnet), "
        "analysis and search, or the nearest harmonic-table entry (no model)",
    )
    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        help="trained model folder, paper CNN or fmnet (cnn: the estimator, default "
        "the shipped fmnet; match: an optional start)",
    )
    parser.add_argument(
        "--no-model",
        action="store_true",
        help="match: no model's patch among the starting hypotheses (default: the "
        "shipped fmnet's, or --model's)",
    )
    parser.add_argument(
        "--budget", type=int, default=None, help="match: candidate timbres per note"
    )
    parser.add_argument("--seed", type=int, default=0, help="match: search seed")
    parser.add_argument(
        "--data", type=Path, required=True, help="NSynth-layout folder (examples.json)"
    )
    parser.add_argument("--out", type=Path, required=True, help="results folder")
    parser.add_argument(
        "--save-audio", action="store_true", help="write audio/<note_str>.wav"
    )
    parser.add_argument("--limit", type=int, default=None, help="evaluate N notes only")
    parser.add_argument("--batch-size", type=int, default=32, help="notes per CNN call")


def run(args: argparse.Namespace) -> int:
    model = args.model
    if args.method == "lookup" and model is not None:
        raise InputError("--model: not for --method lookup, which uses no model")
    if args.no_model and (args.method != "match" or model is not None):
        raise InputError("--no-model: only for --method match, and without --model")
    if args.method == "match" and model is None and not args.no_model:
        from fmlib.estimate.estimators import start_model

        model = start_model(None)
    out = evaluate(
        model,
        args.data,
        args.out,
        method=args.method,
        budget=args.budget,
        seed=args.seed,
        save_audio=args.save_audio,
        limit=args.limit,
        batch_size=args.batch_size,
    )
    summary = json.loads((out / "summary.json").read_text())
    lm = summary["means"]
    print(
        f"log-mel mean: re-synthesis {lm['resynthesis']['logmel']:.2f}, "
        f"440 Hz sine {lm['sine_440']['logmel']:.2f} "
        f"({summary['improvement_pct']['sine_440']['logmel']:.1f} % better)"
    )
    print(f"{summary['n_ok']} notes evaluated, {summary['n_failed']} failed")
    print(f"results: {out} (notes.csv, table6-9 .csv/.md, summary.json)")
    return 0
