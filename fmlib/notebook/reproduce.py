"""``python -m fmlib reproduce --profile paper|smoke [--force]``: run every notebook.

The notebooks ``notebooks/NN_*.ipynb`` run in number order through Papermill, each
receiving the parameters of one profile (``profiles/<name>.yaml``) that it declares
in its ``parameters`` cell, plus four that the runner decides:

* ``PROFILE``: the profile's name.
* ``FORCE``: recompute the dataset, model and evaluation even if cached.
* ``OUTPUT_DIR``: where figures and tables go. Only the ``paper`` profile (the one
  with ``results: committed``) gets :data:`COMMITTED`, the committed folders
  (:data:`fmlib.paths.FIGURES_DIR`, :data:`fmlib.paths.TABLES_DIR`); a profile with
  ``results: run`` gets ``data/runs/<profile>/`` (``figures/`` and ``tables/``
  inside), so a quick run never overwrites the committed results. The notebooks'
  own default, ``""``, is :data:`fmlib.paths.INTERACTIVE_DIR` (``data/interactive/``):
  "Run all" by hand in JupyterLab never touches a committed file.
* ``WORK_DIR``: where datasets, models and evaluations go; ``""`` means
  :data:`fmlib.paths.DATA_DIR`, so a hand run reuses the paper profile's cached
  dataset and model. Tests point it at a temporary folder.

The notebooks' ``parameters`` cells hold the paper profile's values (a test checks
that they equal ``profiles/paper.yaml``), so a hand run computes what ``make
reproduce`` computes, only into ``data/interactive/``.

Executed notebooks are written to ``data/runs/<profile>/`` as they run (cell by cell),
with ``timings.json`` and ``timings.md``. The dataset and the model are keyed by their
configuration (``ensure_dataset``, ``ensure_model``), so a second run reuses them. If
a notebook fails, the run stops, names the notebook and the cell, keeps the partly
executed notebook and exits with status 1.

Why one module of over 600 lines: the Papermill runner and the helpers its
notebooks call (run folders, cached dataset/model/evaluation, table writing)
share the profile's folder rules; splitting them would spread those rules.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fmlib import files
from fmlib.errors import InputError, MissingFileError
from fmlib.paper_reference import PAPER_TABLE6
from fmlib.paths import (
    DATASETS_DIR,
    EVALUATIONS_DIR,
    FIGURES_DIR,
    INTERACTIVE_DIR,
    MODELS_DIR,
    NOTEBOOKS_DIR,
    NSYNTH_DEV_DIR,
    NSYNTH_TEST_DIR,
    PATCHES_DIR,
    PROFILES_DIR,
    RESULTS_DIR,
    RUNS_DIR,
    SOUNDFONT_SET_DIR,
    TABLES_DIR,
)

#: Parameters the runner sets itself; a profile may not set them.
RUNNER_PARAMETERS = ("PROFILE", "FORCE", "OUTPUT_DIR", "WORK_DIR")
#: Where a profile's results go: the committed folders, or its run folder.
RESULTS_MODES = ("committed", "run")
#: The one profile allowed to write the committed folders (``results: committed``).
COMMITTED_PROFILE = "paper"
#: ``OUTPUT_DIR`` value meaning the committed ``figures/`` and ``results/tables/``;
#: only :func:`reproduce` passes it, for :data:`COMMITTED_PROFILE`.
COMMITTED = "committed"
_NOTEBOOK_NAME = re.compile(r"^\d\d_[a-z0-9_]+\.ipynb$")
_PARAM_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


@dataclass(frozen=True)
class RunDirs:
    """The folders one notebook run reads and writes (see :func:`run_dirs`)."""

    figures: Path
    tables: Path
    datasets: Path
    models: Path
    evaluations: Path
    patches: Path
    soundfont_set: Path


def run_dirs(*, output_dir: str = "", work_dir: str = "") -> RunDirs:
    """Resolve a notebook's ``OUTPUT_DIR`` / ``WORK_DIR`` parameters into folders.

    Args:
        output_dir: ``""`` (a notebook run by hand) for
            :data:`fmlib.paths.INTERACTIVE_DIR` (``data/interactive/``);
            :data:`COMMITTED` for the committed ``figures/`` and ``results/tables/``
            (passed only by :func:`reproduce` for the paper profile); otherwise a
            folder that receives ``figures/`` and ``tables/``.
        work_dir: ``""`` for :data:`fmlib.paths.DATA_DIR` (``datasets/``,
            ``models/``, ``evaluations/``, ``patches/``, ``soundfont-set/``);
            otherwise a folder holding the same sub-folders.

    Returns:
        The folders; the output ones are created.

    Raises:
        InputError: an ``output_dir`` folder whose ``figures/`` or ``tables/`` would
            lie in the committed folders (say :data:`COMMITTED` to mean them).
    """
    if output_dir == COMMITTED:
        figures, tables = FIGURES_DIR, TABLES_DIR
    else:
        out = Path(output_dir) if output_dir else INTERACTIVE_DIR
        figures, tables = out / "figures", out / "tables"
        for d in (figures, tables):
            if _is_committed(d):
                raise InputError(
                    f"OUTPUT_DIR {output_dir!r}: {d} is inside the committed "
                    f"results; give a folder under data/, or leave it empty for "
                    f"{INTERACTIVE_DIR}"
                )
    if work_dir:
        work = Path(work_dir)
        datasets, models = work / "datasets", work / "models"
        evaluations, patches = work / "evaluations", work / "patches"
        soundfont_set = work / "soundfont-set"
    else:
        datasets, models, evaluations, patches, soundfont_set = (
            DATASETS_DIR,
            MODELS_DIR,
            EVALUATIONS_DIR,
            PATCHES_DIR,
            SOUNDFONT_SET_DIR,
        )
    for d in (figures, tables):
        d.mkdir(parents=True, exist_ok=True)
    return RunDirs(
        figures, tables, datasets, models, evaluations, patches, soundfont_set
    )


def _is_committed(path: Path) -> bool:
    """True when ``path`` is, or lies inside, a committed results folder."""
    resolved = Path(os.path.abspath(path)).resolve()
    return any(
        resolved == root or root in resolved.parents
        for root in (FIGURES_DIR.resolve(), RESULTS_DIR.resolve())
    )


def write_table(df, name: str, *, out_dir: str | os.PathLike):
    """Write a pandas DataFrame as ``<name>.csv`` and ``<name>.md`` (atomically, in
    the one number format of :func:`fmlib.files.format_number`).

    Returns:
        (csv_path, md_path).
    """
    return files.write_table(df, out_dir, name)


def markdown_table(df) -> str:
    """GitHub Markdown table of ``df`` (no index), numbers as every committed table."""
    return files.markdown_table(df)


def _atomic_text(path: Path, text: str) -> Path:
    return files.write_text(path, text)


# --------------------------------------------------------------- notebook helpers
# Steps that several notebooks share (each notebook stays runnable on its own).


def ensure_run_dataset(
    dirs: RunDirs, *, name: str, n: int, seed: int, algorithm: str, force: bool = False
) -> Path:
    """The dataset ``<datasets>/<name>``, generated only if its config differs/misses.

    Returns:
        The dataset folder (see :func:`fmlib.datasets.dataset.ensure_dataset`).
    """
    from fmlib.datasets.dataset import ensure_dataset

    return ensure_dataset(
        dirs.datasets / name, n=n, seed=seed, algorithm=algorithm, force=force
    )


def ensure_run_model(
    dirs: RunDirs,
    *,
    dataset_dir: Path,
    name: str,
    epochs: int,
    seed: int,
    limit: int | None = None,
    force: bool = False,
) -> Path:
    """The model ``<models>/<name>``, trained (or resumed) only when its settings
    (the paper's config with ``epochs``, seed, limit, dataset hash) changed.

    Returns:
        The model folder (see :func:`fmlib.estimate.train.ensure_model`).
    """
    from fmlib.estimate.train import ensure_model

    return ensure_model(
        dataset_dir,
        dirs.models / name,
        config={"epochs": int(epochs)},
        seed=seed,
        limit=limit,
        force=force,
        verbose=2,
    )


#: Evaluation sets a notebook can ask for.
EVAL_SETS = ("auto", "nsynth-test", "soundfont", "nsynth-dev")


def evaluation_set(name: str, dirs: RunDirs) -> tuple[str, Path, str]:
    """Resolve ``EVAL_SET`` to (key, folder, label); builds the SoundFont set if needed.

    ``auto`` is the official NSynth test split when it has been downloaded to
    :data:`fmlib.paths.NSYNTH_TEST_DIR`, otherwise the SoundFont-rendered set (which
    is *not* NSynth, and is labelled so).

    Raises:
        InputError: an unknown name.
        MissingFileError: ``nsynth-test`` or ``nsynth-dev`` requested but absent.
    """
    if name not in EVAL_SETS:
        raise InputError(
            f"EVAL_SET: {name!r} is not valid; valid: {', '.join(EVAL_SETS)}"
        )
    if name == "auto":
        has_test = (NSYNTH_TEST_DIR / "examples.json").is_file()
        name = "nsynth-test" if has_test else "soundfont"
    if name == "nsynth-test":
        if not (NSYNTH_TEST_DIR / "examples.json").is_file():
            raise MissingFileError(
                f"{NSYNTH_TEST_DIR}: NSynth test split not found; run "
                "`python -m fmlib download-nsynth` or use EVAL_SET soundfont"
            )
        return name, NSYNTH_TEST_DIR, "NSynth test split (official, 4,096 notes)"
    if name == "nsynth-dev":
        if not (NSYNTH_DEV_DIR / "examples.json").is_file():
            raise MissingFileError(
                f"{NSYNTH_DEV_DIR}: NSynth development set not found"
            )
        return name, NSYNTH_DEV_DIR, "NSynth development subset (110 real notes)"
    from fmlib.datasets.soundfont import build_soundfont_set

    folder = build_soundfont_set(dirs.soundfont_set)
    return (
        "soundfont",
        Path(folder),
        "SoundFont-rendered set (General MIDI, NOT NSynth)",
    )


def evaluation_dir(
    dirs: RunDirs, *, model_dir: Path, key: str, limit: int | None
) -> Path:
    """Folder of one evaluation, keyed by model (hash of its ``model.json``), set and
    limit, so a retrained model or another set never mixes with an old one."""
    digest = files.file_sha256(Path(model_dir) / "model.json")
    size = "all" if limit is None else str(int(limit))
    return dirs.evaluations / f"{Path(model_dir).name}-{key}-{size}-{digest[:10]}"


def copy_tables(src_dir: Path, stems, *, out_dir: Path, prefix: str = "") -> list[Path]:
    """Copy ``<stem>.csv`` and ``<stem>.md`` from a model or evaluation folder into
    the tables folder as ``<prefix><stem>.*`` (atomically). Returns the paths written.

    Raises:
        MissingFileError: a table is missing in ``src_dir``.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for stem in stems:
        for ext in (".csv", ".md"):
            src = Path(src_dir) / f"{stem}{ext}"
            if not src.is_file():
                raise MissingFileError(f"{src}: table not found")
            dst = out_dir / f"{prefix}{stem}{ext}"
            written.append(_atomic_text(dst, src.read_text("utf-8")))
    return written


#: Evaluation tables written by :func:`fmlib.evaluation.evaluate.evaluate` (Tables 6-9).
EVALUATION_TABLES = (
    "table6_means",
    "table7_std",
    "table8_family_means",
    "table9_family_std",
)


def evaluate_and_compare(
    set_name: str,
    *,
    dirs: RunDirs,
    model_dir: Path,
    limit: int | None,
    force: bool = False,
    prefix: str = "",
) -> tuple[Path, Path, str, list[str]]:
    """Evaluate the model on one evaluation set and write its tables.

    Runs (or resumes) :func:`fmlib.evaluation.evaluate.evaluate` with re-synthesised
    audio saved, copies Tables 6-9 to the tables folder as ``<prefix><table>``, and
    writes ``<prefix>table6_vs_paper``: our means next to the paper's Table 6, with the
    set named in every row.

    Args:
        set_name: An entry of :data:`EVAL_SETS`.
        dirs: The run's folders.
        model_dir: A trained model folder.
        limit: Evaluate at most this many notes, round-robin over families.
        force: Delete and redo a previous evaluation of the same model, set and limit.
        prefix: Prepended to every table name (e.g. ``"nsynth_dev_"``).

    Returns:
        (evaluation folder, data folder, label of the set, table stems written).
    """
    import shutil

    import pandas as pd

    from fmlib.evaluation.evaluate import evaluate

    key, data_dir, label = evaluation_set(set_name, dirs)
    eval_dir = evaluation_dir(dirs, model_dir=model_dir, key=key, limit=limit)
    if force and eval_dir.exists():
        shutil.rmtree(eval_dir)
    evaluate(model_dir, data_dir, eval_dir, save_audio=True, limit=limit)
    copy_tables(eval_dir, EVALUATION_TABLES, out_dir=dirs.tables, prefix=prefix)
    ours = pd.read_csv(eval_dir / "table6_means.csv", index_col=0)
    paper = pd.DataFrame(PAPER_TABLE6)
    metrics = paper["metric"]
    comparison = paper.assign(
        ours_resynthesis=[ours.loc[m, "resynthesis"] for m in metrics],
        ours_baseline=[ours.loc[m, "sine_440"] for m in metrics],
        ours_improvement_pct=[
            ours.loc[m, "improvement_vs_sine_440_pct"] for m in metrics
        ],
    )
    comparison.insert(1, "evaluation_set", label)
    write_table(comparison, f"{prefix}table6_vs_paper", out_dir=dirs.tables)
    stems = [f"{prefix}{t}" for t in (*EVALUATION_TABLES, "table6_vs_paper")]
    return eval_dir, data_dir, label, stems


def family_examples(
    eval_dir: Path, data_dir: Path, *, per_family: int = 1, baseline: str = "sine_440"
) -> list[tuple[str, str, dict[str, Any]]]:
    """Original, re-synthesis and a baseline for the first notes of every family.

    Reads the evaluation's ``notes.csv`` (status ``ok``) and ``audio/`` (written with
    ``save_audio=True``) and the original WAVs of ``data_dir``.

    Returns:
        ``[(family, note_str, {"original": x, "re-synthesis": y, baseline: b}), ...]``
        sorted by family; every array float32 of shape (64000,) at 16 kHz.
    """
    import pandas as pd

    from fmlib.datasets.nsynth import load_nsynth, read_note
    from fmlib.evaluation.baselines import baselines

    notes = pd.read_csv(Path(eval_dir) / "notes.csv")
    notes = notes.drop_duplicates("note_str", keep="last")
    notes = notes[notes["status"] == "ok"].sort_values(
        ["instrument_family_str", "note_str"]
    )
    paths = load_nsynth(data_dir).set_index("note_str")["path"]
    out = []
    for family, group in notes.groupby("instrument_family_str", sort=True):
        for rec in group.head(per_family).to_dict("records"):
            original = read_note(paths[rec["note_str"]])
            resynth = read_note(Path(eval_dir) / "audio" / f"{rec['note_str']}.wav")
            base = baselines(original, float(rec["pitch"]))[baseline]
            signals = {"original": original, "re-synthesis": resynth, baseline: base}
            out.append((str(family), str(rec["note_str"]), signals))
    return out


@dataclass(frozen=True)
class Profile:
    """One ``profiles/<name>.yaml``: where its results go and its parameters."""

    name: str
    path: Path
    results: str
    parameters: dict[str, Any] = field(default_factory=dict)


def available_profiles(profiles_dir: Path = PROFILES_DIR) -> list[str]:
    """Names of the profiles in ``profiles_dir`` (without ``.yaml``), sorted."""
    return sorted(p.stem for p in Path(profiles_dir).glob("*.yaml"))


def load_profile(name: str, *, profiles_dir: Path = PROFILES_DIR) -> Profile:
    """Read and check ``<profiles_dir>/<name>.yaml`` (or a path to a YAML file).

    Raises:
        MissingFileError: no such profile.
        InputError: not a mapping with ``results`` and ``parameters``, a parameter
            that is not an UPPER_CASE name with a literal value, or one reserved for
            the runner.
    """
    path = Path(name)
    if path.suffix not in (".yaml", ".yml"):
        path = Path(profiles_dir) / f"{name}.yaml"
    if not path.is_file():
        valid = ", ".join(available_profiles(profiles_dir)) or "none found"
        raise MissingFileError(f"profile {name!r}: no file {path}; valid: {valid}")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: invalid YAML ({exc})".replace("\n", " ")) from None
    if not isinstance(doc, dict) or set(doc) != {"results", "parameters"}:
        raise InputError(
            f"{path}: expected exactly the keys 'results' and 'parameters'"
        )
    if doc["results"] not in RESULTS_MODES:
        raise InputError(
            f"{path}: results: {doc['results']!r}; valid: {', '.join(RESULTS_MODES)}"
        )
    params = doc["parameters"] or {}
    if not isinstance(params, dict):
        raise InputError(f"{path}: parameters: expected a mapping of NAME: value")
    for key, value in params.items():
        if not isinstance(key, str) or not _PARAM_NAME.match(key):
            raise InputError(f"{path}: parameter {key!r} is not an UPPER_CASE name")
        if key in RUNNER_PARAMETERS:
            raise InputError(
                f"{path}: parameter {key} is set by the runner, not a profile"
            )
        if not isinstance(value, (str, int, float, bool, type(None))):
            raise InputError(
                f"{path}: parameter {key}: {value!r} is not a literal "
                "(string, number, true/false or null)"
            )
    if doc["results"] == "committed" and path.stem != COMMITTED_PROFILE:
        raise InputError(
            f"{path}: results: committed is reserved for the {COMMITTED_PROFILE!r} "
            "profile; use results: run"
        )
    return Profile(path.stem, path, doc["results"], dict(params))


def list_notebooks(notebooks_dir: Path = NOTEBOOKS_DIR) -> list[Path]:
    """The ``NN_snake_case.ipynb`` notebooks of ``notebooks_dir`` in number order."""
    return sorted(
        p for p in Path(notebooks_dir).glob("*.ipynb") if _NOTEBOOK_NAME.match(p.name)
    )


def notebook_parameters(notebook: str | os.PathLike) -> dict[str, Any]:
    """The literals of the notebook's one cell tagged ``parameters``.

    The cell must hold only assignments ``UPPER_CASE = literal`` (comments allowed),
    as the house style asks; this is what the runner injects into and what the
    notebook test enforces.

    Returns:
        name -> value, in the cell's order.

    Raises:
        InputError: no ``parameters`` cell, more than one, or a statement that is
            not an UPPER_CASE name assigned a literal.
    """
    import ast

    import nbformat

    path = Path(notebook)
    nb = nbformat.read(path, as_version=4)
    cells = [
        c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])
    ]
    if len(cells) != 1:
        raise InputError(
            f"{path.name}: expected exactly one cell tagged 'parameters', found "
            f"{len(cells)}"
        )
    if cells[0].cell_type != "code":
        raise InputError(f"{path.name}: the 'parameters' cell is not a code cell")
    values: dict[str, Any] = {}
    for node in ast.parse(cells[0].source).body:
        ok = (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and _PARAM_NAME.match(node.targets[0].id)
        )
        try:
            value = ast.literal_eval(node.value) if ok else None
        except ValueError:
            ok = False
        if not ok:
            raise InputError(
                f"{path.name}: parameters cell line {node.lineno}: only "
                "'UPPER_CASE = literal' assignments are allowed"
            )
        values[node.targets[0].id] = value
    return values


def declared_parameters(notebook: str | os.PathLike) -> set[str]:
    """Names assigned in the notebook's cell tagged ``parameters``."""
    return set(notebook_parameters(notebook))


class NotebookFailed(RuntimeError):
    """A notebook raised; says which notebook and cell and where the partial copy is."""

    def __init__(self, notebook: str, cell: str, error: str, output: Path) -> None:
        self.notebook, self.cell, self.error, self.output = (
            notebook,
            cell,
            error,
            output,
        )
        super().__init__(
            f"notebook {notebook} failed in {cell}: {error}; "
            f"the partly executed notebook is {output}"
        )


@dataclass
class RunResult:
    """What :func:`reproduce` did: seconds per notebook and where things are."""

    profile: str
    run_dir: Path
    figures_dir: Path
    tables_dir: Path
    seconds: dict[str, float]
    failed: NotebookFailed | None = None


def _describe_cell(exc, notebook: Path) -> str:
    """``cell 7 of NAME.ipynb (In [5]): 'first line'`` for a PapermillExecutionError.

    Cells are counted from 1 in the source notebook (Papermill's output adds an
    injected-parameters cell and error banners, which would shift the numbers).
    """
    import nbformat

    source = exc.source or ""
    cells = nbformat.read(notebook, as_version=4).cells
    number = next((k for k, c in enumerate(cells, 1) if c.source == source), None)
    where = f"cell {number}" if number else f"cell index {exc.cell_index}"
    first = next((ln for ln in source.splitlines() if ln.strip()), "")
    count = f" (In [{exc.exec_count}])" if exc.exec_count is not None else ""
    return f"{where} of {notebook.name}{count}: {first.strip()[:80]!r}"


def reproduce(
    profile: str | Profile,
    *,
    force: bool = False,
    only: list[str] | None = None,
    notebooks_dir: str | os.PathLike = NOTEBOOKS_DIR,
    runs_dir: str | os.PathLike = RUNS_DIR,
    output_dir: str | os.PathLike | None = None,
    work_dir: str | os.PathLike | None = None,
    kernel_name: str = "python3",
    progress: bool = True,
) -> RunResult:
    """Run the notebooks in order under a profile.

    Args:
        profile: A profile name in ``profiles/``, a YAML path, or a :class:`Profile`.
        force: Passed as ``FORCE`` (recompute cached datasets, models, evaluations).
        only: Run only the notebooks whose names start with one of these prefixes
            (e.g. ``["03"]``).
        notebooks_dir: Folder of ``NN_*.ipynb`` (tests use their own).
        runs_dir: Executed notebooks and timings go to ``<runs_dir>/<profile>/``.
        output_dir: Override of ``OUTPUT_DIR`` (default from the profile's
            ``results``: committed folders or the run folder).
        work_dir: Override of ``WORK_DIR`` (default ``""``: ``data/``).
        kernel_name: Jupyter kernel (the virtualenv's ``python3``).
        progress: Show Papermill's per-cell progress bar.

    Returns:
        A :class:`RunResult`; ``failed`` is set (and later notebooks skipped) when a
        notebook raised.

    Raises:
        InputError: a profile parameter no notebook declares, or ``only`` matching
            nothing.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    prof = profile if isinstance(profile, Profile) else load_profile(profile)
    notebooks = list_notebooks(Path(notebooks_dir))
    if not notebooks:
        raise MissingFileError(f"{notebooks_dir}: no NN_name.ipynb notebooks found")
    declared = {nb: declared_parameters(nb) for nb in notebooks}
    unknown = set(prof.parameters) - set().union(*declared.values())
    if unknown:
        raise InputError(
            f"{prof.path}: no notebook declares {', '.join(sorted(unknown))}; "
            "fix the name or add it to a notebook's parameters cell"
        )
    if only:
        notebooks = [nb for nb in notebooks if any(nb.name.startswith(o) for o in only)]
        if not notebooks:
            raise InputError(f"--only {' '.join(only)}: matches no notebook")

    run_dir = Path(runs_dir) / prof.name
    run_dir.mkdir(parents=True, exist_ok=True)
    if output_dir is None:
        output_dir = COMMITTED if prof.results == "committed" else str(run_dir)
    work_dir = "" if work_dir is None else str(work_dir)
    dirs = run_dirs(output_dir=str(output_dir), work_dir=work_dir)
    runner = {
        "PROFILE": prof.name,
        "FORCE": bool(force),
        "OUTPUT_DIR": str(output_dir),
        "WORK_DIR": work_dir,
    }
    result = RunResult(prof.name, run_dir, dirs.figures, dirs.tables, {})
    for i, nb in enumerate(notebooks, start=1):
        values = {**prof.parameters, **runner}
        params = {k: v for k, v in values.items() if k in declared[nb]}
        out = run_dir / nb.name
        print(f"[{i}/{len(notebooks)}] {nb.name} -> {out}", flush=True)
        t0 = time.perf_counter()
        try:
            papermill.execute_notebook(
                str(nb),
                str(out),
                parameters=params,
                kernel_name=kernel_name,
                progress_bar=progress,
                cwd=str(nb.parent),
            )
        except PapermillExecutionError as exc:
            result.seconds[nb.name] = time.perf_counter() - t0
            error = (
                f"{exc.ename}: {str(exc.evalue).splitlines()[0] if exc.evalue else ''}"
            )
            result.failed = NotebookFailed(nb.name, _describe_cell(exc, nb), error, out)
            break
        result.seconds[nb.name] = time.perf_counter() - t0
    write_timings(result)
    return result


def write_timings(result: RunResult) -> tuple[Path, Path]:
    """Write ``timings.json`` and ``timings.md`` (seconds per notebook)."""
    import pandas as pd

    total = sum(result.seconds.values())
    doc = {
        "profile": result.profile,
        "seconds": {k: round(v, 2) for k, v in result.seconds.items()},
        "total_seconds": round(total, 2),
        "failed": None if result.failed is None else str(result.failed),
        "machine": {"cpus": os.cpu_count(), "platform": sys.platform},
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    json_path = _atomic_text(result.run_dir / "timings.json", json.dumps(doc, indent=2))
    lines = [
        f"Profile `{result.profile}` ({os.cpu_count()} CPUs)",
        "",
        files.markdown_table(
            pd.DataFrame(
                {
                    "notebook": [*result.seconds, "total"],
                    "seconds": [*result.seconds.values(), total],
                }
            )
        ),
    ]
    md_path = _atomic_text(result.run_dir / "timings.md", "\n".join(lines) + "\n")
    return json_path, md_path


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--profile",
        default="paper",
        help="profile name in profiles/ (paper, smoke) or a YAML path (default paper)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="recompute the dataset, model and evaluation even when cached",
    )
    p.add_argument(
        "--only",
        nargs="+",
        metavar="NN",
        help="run only these notebooks (name prefixes such as 01 03)",
    )


def run(args: argparse.Namespace) -> int:
    result = reproduce(args.profile, force=args.force, only=args.only)
    width = max(len(k) for k in result.seconds)
    print(f"\nprofile {result.profile}: seconds per notebook")
    for name, sec in result.seconds.items():
        print(f"  {name:<{width}}  {sec:8.1f}")
    print(f"  {'total':<{width}}  {sum(result.seconds.values()):8.1f}")
    print(f"executed notebooks and timings: {result.run_dir}")
    if result.failed is not None:
        print(f"error: {result.failed}", file=sys.stderr)
        return 1
    print(f"tables:  {result.tables_dir}")
    print(f"figures: {result.figures_dir}")
    return 0
