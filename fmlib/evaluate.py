"""Re-synthesis evaluation on real notes: the paper's Tables 6-9 and more.

For every note of an NSynth-layout folder (:func:`fmlib.nsynth.load_nsynth`): predict
a patch with the CNN (batched), post-process it (ratios snapped, values clipped; done
by :meth:`fmlib.predict.Predictor.predict_patches`), render it with
:func:`fmlib.synth.render`, and compute every metric of :mod:`fmlib.metrics` against
the original. The same metrics are computed for the three baselines of
:mod:`fmlib.baselines` (440 Hz sine, sine at the note's pitch, that sine with the
note's RMS envelope), and the pitch error of the predicted carrier against the note's
MIDI pitch, ``1200 * log2(carrier_hz / midi_hz)`` cents.

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
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from fmlib import files, metrics
from fmlib.audio_io import write_wav
from fmlib.baselines import (
    BASELINE_NAMES,
    enveloped_pitch_sine,
    midi_to_hz,
    pitch_sine,
    sine_440,
)
from fmlib.errors import InputError, MissingFileError
from fmlib.nsynth import load_nsynth, read_note
from fmlib.params import SAMPLE_RATE, TARGET_NAMES
from fmlib.synth import render

#: Methods compared, in table order: the re-synthesis, then the baselines.
METHODS: tuple[str, ...] = ("resynthesis",) + BASELINE_NAMES
#: Human-readable metric names used in the tables (paper's wording first).
METRIC_LABELS: dict[str, str] = {
    "fft": "FFT",
    "stft": "STFT",
    "logmel": "Log Mel (raw)",
    "logmel_norm": "Log Mel (normalized)",
    "claesson_fft": "Claesson FFT [0-1]",
    "envelope": "RMS envelope",
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
    + ("pitch_error_cents",)
    + tuple(f"{m}_{k}" for m in METHODS for k in metrics.METRIC_NAMES)
    + tuple(f"pred_{name}" for name in TARGET_NAMES)
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


def _model_fingerprint(model_dir: Path) -> str:
    """sha256 over the small JSON files describing the model (config, scaler...)."""
    h = hashlib.sha256()
    for p in sorted(model_dir.glob("*.json")):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


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
) -> dict[str, float]:
    """Every metric of the re-synthesis and of the three baselines against a note.

    Args:
        original: The note, float32 shape (64000,), 16 kHz, in [-1, 1].
        resynthesis: The rendered prediction, same shape.
        pitch: The note's MIDI pitch.
        cache: Reuses the 440 Hz and pitch sines' features across notes.

    Returns:
        dict ``{f"{method}_{metric}": value}`` for :data:`METHODS` x
        :data:`fmlib.metrics.METRIC_NAMES`.
    """
    cache = cache or _BaselineCache()
    x = np.asarray(original, dtype=np.float32)
    n = x.size
    feats = {  # the two plain sines are computed once per length and pitch
        "resynthesis": metrics.features(resynthesis),
        "sine_440": cache.get("sine_440", n, lambda: sine_440(n_samples=n)),
        "sine_pitch": cache.get(
            f"sine_pitch_{n}", int(pitch), lambda: pitch_sine(pitch, n_samples=n)
        ),
        "sine_pitch_env": metrics.features(enveloped_pitch_sine(x, pitch)),
    }
    f_orig = metrics.features(x)
    out = {}
    for method in METHODS:
        for k, v in metrics.distances(f_orig, feats[method]).items():
            out[f"{method}_{k}"] = v
    return out


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
    for b in BASELINE_NAMES:
        t6[f"improvement_vs_{b}_pct"] = (
            100.0 * (means[b] - means["resynthesis"]) / means[b]
        )
    cents = ok["pitch_error_cents"].astype(float)
    extra = {
        "Pitch error (cents)": (cents.mean(), cents.std()),
        "Abs. pitch error (cents)": (cents.abs().mean(), cents.abs().std()),
    }
    for label, (mu, sd) in extra.items():
        t6.loc[label] = np.nan
        t6.loc[label, "resynthesis"] = mu
        stds.loc[label] = np.nan
        stds.loc[label, "resynthesis"] = sd
    fam_cols = {METRIC_LABELS[k]: f"resynthesis_{k}" for k in names}
    fam_cols.update({f"Log Mel (raw), {b}": f"{b}_logmel" for b in BASELINE_NAMES})
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
        keys = ("model_fingerprint", "data_dir", "limit")
        if any(old.get(k) != ident[k] for k in keys):
            raise InputError(
                f"{out_dir} holds the evaluation of another model, data set or limit; "
                "choose another --out or delete it"
            )
    files.write_json(path, ident)


def _process_batch(predictor, batch: pd.DataFrame, cache, audio_dir) -> list[dict]:
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
    try:
        patches = predictor.predict_patches(np.stack(audio))
    except (InputError, ValueError):  # find the note that breaks the batch
        patches = []
        for x in audio:
            try:
                patches.append(predictor.predict_patches(x[None, :])[0])
            except (InputError, ValueError) as exc:
                patches.append(exc)
    for info, x, patch in zip(keep, audio, patches, strict=True):
        if isinstance(patch, Exception):
            msg = f"prediction failed: {type(patch).__name__}: {patch}"
            rows.append({**info, "status": "error", "error": msg})
            continue
        try:
            y = render(patch)
            row = {**info, "status": "ok", "error": ""}
            row["pitch_error_cents"] = pitch_error_cents(
                patch.carrier_hz, info["pitch"]
            )
            row.update(score_note(x, y, int(info["pitch"]), cache=cache))
            row.update(
                {
                    f"pred_{n}": float(v)
                    for n, v in zip(TARGET_NAMES, patch.to_vector(), strict=True)
                }
            )
            if audio_dir is not None:
                write_wav(audio_dir / f"{info['note_str']}.wav", y, SAMPLE_RATE)
        except (InputError, ValueError, FloatingPointError) as exc:
            row = {**info, "status": "error", "error": f"{type(exc).__name__}: {exc}"}
        rows.append(row)
    return rows


def evaluate(
    model_dir: str | os.PathLike,
    data_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    save_audio: bool = False,
    limit: int | None = None,
    batch_size: int = 32,
    progress: bool = True,
) -> Path:
    """Run the re-synthesis evaluation; resumes per note.

    Args:
        model_dir: A trained model folder (:func:`fmlib.predict.load_predictor`).
        data_dir: An NSynth-layout folder (NSynth test split, the dev set or the
            SoundFont set).
        out_dir: Results folder (created).
        save_audio: Also write ``audio/<note_str>.wav`` (16 kHz, 64,000 samples).
        limit: Evaluate only this many notes, taken round-robin over families.
        batch_size: Notes per CNN call.
        progress: Show a tqdm bar.

    Returns:
        ``out_dir``.
    """
    from fmlib.predict import check_model_folder, load_predictor

    if limit is not None and (isinstance(limit, bool) or int(limit) < 1):
        raise InputError(f"limit: {limit!r} is not valid; valid: an integer >= 1")
    if int(batch_size) < 1:
        raise InputError(f"batch_size: {batch_size!r} is not valid; valid: >= 1")
    model_dir, data_dir, out_dir = Path(model_dir), Path(data_dir), Path(out_dir)
    check_model_folder(model_dir)  # before anything is written or Keras imported
    files.check_input(data_dir, kind="folder", what="NSynth-layout folder")
    _check_out_dir(out_dir, inputs={"--model": model_dir, "--data": data_dir})
    table = load_nsynth(data_dir)
    if table.empty:
        raise InputError(f"{data_dir}/examples.json lists no notes")
    if limit is not None:
        table = _order_for_limit(table).head(int(limit))
    with files.os_errors(out_dir, action="cannot create the folder"):
        out_dir.mkdir(parents=True, exist_ok=True)
    lock = files.folder_lock(out_dir, command="evaluate")  # held until we return
    ident = {
        "model_dir": str(model_dir.resolve()),
        "model_fingerprint": _model_fingerprint(model_dir),
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
        predictor = load_predictor(model_dir)
        cache = _BaselineCache()
        with tqdm(
            total=len(table),
            initial=len(table) - len(todo),
            unit="note",
            desc="evaluate",
            disable=not progress,
        ) as bar:
            for i in range(0, len(todo), batch_size):
                batch = todo.iloc[i : i + batch_size]
                _append_rows(
                    csv_path, _process_batch(predictor, batch, cache, audio_dir)
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
            for b in BASELINE_NAMES
        },
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
        "--model", type=Path, required=True, help="trained model folder"
    )
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
    out = evaluate(
        args.model,
        args.data,
        args.out,
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
