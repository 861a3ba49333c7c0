"""The Papermill runner: profiles, parameter injection, failure reporting, timings;
and the committed notebooks' hygiene (no outputs, one ``parameters`` cell)."""

from __future__ import annotations

import json
import os

import nbformat
import pandas as pd
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from fmlib import cli
from fmlib.errors import InputError, MissingFileError
from fmlib.notebook.reproduce import (
    COMMITTED,
    RUNNER_PARAMETERS,
    list_notebooks,
    load_profile,
    markdown_table,
    notebook_parameters,
    reproduce,
    run_dirs,
    write_table,
)
from fmlib.paths import (
    DATA_DIR,
    FIGURES_DIR,
    INTERACTIVE_DIR,
    NOTEBOOKS_DIR,
    PROFILES_DIR,
    PROJECT_ROOT,
    RESULTS_DIR,
    TABLES_DIR,
)

EXPECTED_NOTEBOOKS = [
    "01_synth_exploration.ipynb",
    "02_dataset_generation.ipynb",
    "03_training.ipynb",
    "04_nsynth_evaluation.ipynb",
    "05_figures.ipynb",
    "06_sound_matching.ipynb",
    "07_fmnet.ipynb",
]


def _notebook(path, params_src, *body, tag=True):
    cells = [new_markdown_cell("# test notebook")]
    p = new_code_cell(params_src)
    if tag:
        p.metadata["tags"] = ["parameters"]
    cells.append(p)
    cells += [new_code_cell(src) for src in body]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "language": "python",
        "display_name": "Python 3",
    }
    nb.metadata["language_info"] = {"name": "python"}
    nbformat.write(nb, path)
    return path


def _profile(path, params, results="run"):
    lines = [f"results: {results}  # where results go", "parameters:"]
    lines += [f"  {k}: {json.dumps(v)}  # test value" for k, v in params.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


# --------------------------------------------------------------- committed notebooks
def test_committed_notebooks_exist_in_order():
    assert [p.name for p in list_notebooks(NOTEBOOKS_DIR)] == EXPECTED_NOTEBOOKS


@pytest.mark.parametrize("name", EXPECTED_NOTEBOOKS)
def test_committed_notebook_has_no_outputs_and_one_parameters_cell(name):
    path = NOTEBOOKS_DIR / name
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{name} cell {i} has outputs"
            assert cell.execution_count is None, f"{name} cell {i} has a count"
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    values = notebook_parameters(path)  # raises unless UPPER_CASE = literal only
    assert values and all(k.isupper() for k in values)
    # every parameter carries a comment, and the runner's own are declared
    for line in tagged[0].source.splitlines():
        if line.strip():
            assert "  # " in line, f"{name}: parameter without a comment: {line}"
    assert {"PROFILE", "OUTPUT_DIR", "WORK_DIR"} <= set(values)
    # the header comes first, then imports, then parameters
    assert nb.cells[0].cell_type == "markdown"
    assert nb.cells.index(tagged[0]) == 2
    assert nb.metadata["kernelspec"]["name"] == "python3"


def test_notebook_parameters_rejects_non_literals(tmp_path):
    path = _notebook(tmp_path / "01_x.ipynb", "A = 1  # ok\nB = A + 1  # derived")
    with pytest.raises(InputError, match="line 2"):
        notebook_parameters(path)
    path = _notebook(tmp_path / "02_x.ipynb", "lower = 1  # not upper case")
    with pytest.raises(InputError, match="UPPER_CASE"):
        notebook_parameters(path)
    path = _notebook(tmp_path / "03_x.ipynb", "A = 1  # untagged", tag=False)
    with pytest.raises(InputError, match="exactly one"):
        notebook_parameters(path)


# --------------------------------------------------------------- profiles
@pytest.mark.parametrize("name", ["paper", "smoke"])
def test_shipped_profiles_load_and_are_declared_by_notebooks(name):
    prof = load_profile(name)
    declared = set().union(*(notebook_parameters(p) for p in list_notebooks()))
    assert set(prof.parameters) <= declared
    assert not set(prof.parameters) & set(RUNNER_PARAMETERS)
    # a comment on every key
    for line in (PROFILES_DIR / f"{name}.yaml").read_text().splitlines():
        if line and not line.startswith("#"):
            assert "#" in line, f"{name}.yaml: key without a comment: {line}"


def test_paper_profile_reuses_the_lead_model_and_dataset():
    prof = load_profile("paper")
    assert prof.results == "committed"
    assert prof.parameters["MODEL_NAME"] == "cnn-paper"
    assert prof.parameters["DATASET_NAME"] == "fm-paper-5000"
    assert prof.parameters["DATASET_N"] == 5000
    assert load_profile("smoke").results == "run"


def test_profile_errors(tmp_path):
    with pytest.raises(MissingFileError, match="valid: paper, smoke"):
        load_profile("nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text("results: run\nparameters:\n  lower: 1\n")
    with pytest.raises(InputError, match="UPPER_CASE"):
        load_profile(str(bad))
    bad.write_text("results: run\nparameters:\n  FORCE: true\n")
    with pytest.raises(InputError, match="runner"):
        load_profile(str(bad))
    bad.write_text("results: somewhere\nparameters: {}\n")
    with pytest.raises(InputError, match="committed, run"):
        load_profile(str(bad))
    bad.write_text("results: run\nparameters:\n  A: [1, {x: 2}]\n")
    with pytest.raises(InputError, match="literal"):
        load_profile(str(bad))


def test_unknown_profile_parameter_is_refused(tmp_path):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    _notebook(nbs / "01_a.ipynb", 'PROFILE = "x"  # name')
    prof = _profile(tmp_path / "p.yaml", {"TYPO": 1})
    with pytest.raises(InputError, match="TYPO"):
        reproduce(str(prof), notebooks_dir=nbs, runs_dir=tmp_path / "runs")


# --------------------------------------------------------------- running
@pytest.mark.slow
def test_runs_in_order_injects_parameters_and_writes_timings(tmp_path):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    record = tmp_path / "record.jsonl"
    body = (
        "import json\n"
        f"with open({str(record)!r}, 'a') as f:\n"
        "    f.write(json.dumps({k: v for k, v in globals().items() if k.isupper()})"
        " + '\\n')"
    )
    _notebook(
        nbs / "02_b.ipynb", 'PROFILE = ""  # n\nFORCE = False  # f\nN = 0  # n', body
    )
    _notebook(nbs / "01_a.ipynb", 'PROFILE = ""  # n\nOUTPUT_DIR = "?"  # o', body)
    prof = _profile(tmp_path / "tiny.yaml", {"N": 7})
    result = reproduce(
        str(prof),
        force=True,
        notebooks_dir=nbs,
        runs_dir=tmp_path / "runs",
        progress=False,
    )
    assert result.failed is None
    seen = [json.loads(line) for line in record.read_text().splitlines()]
    run_dir = tmp_path / "runs" / "tiny"
    # order, only declared names injected, runner values
    assert seen[0] == {"PROFILE": "tiny", "OUTPUT_DIR": str(run_dir)}
    assert seen[1] == {"PROFILE": "tiny", "FORCE": True, "N": 7}
    assert list(result.seconds) == ["01_a.ipynb", "02_b.ipynb"]
    assert (run_dir / "01_a.ipynb").is_file() and (run_dir / "02_b.ipynb").is_file()
    timings = json.loads((run_dir / "timings.json").read_text())
    assert set(timings["seconds"]) == {"01_a.ipynb", "02_b.ipynb"}
    assert timings["failed"] is None
    assert "| total |" in " ".join((run_dir / "timings.md").read_text().split())
    assert result.figures_dir == run_dir / "figures"

    # --only runs a subset
    record.unlink()
    reproduce(
        str(prof),
        only=["02"],
        notebooks_dir=nbs,
        runs_dir=tmp_path / "runs",
        progress=False,
    )
    assert len(record.read_text().splitlines()) == 1


def test_failing_notebook_is_named_with_its_cell_and_kept(tmp_path, capsys):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    marker = tmp_path / "third_ran"
    _notebook(nbs / "01_ok.ipynb", 'PROFILE = ""  # n', "x = 1")
    _notebook(
        nbs / "02_broken.ipynb",
        'PROFILE = ""  # n',
        "y = 2",
        "raise ValueError('deliberate failure')",
        "z = 3",
    )
    _notebook(
        nbs / "03_after.ipynb", 'PROFILE = ""  # n', f"open({str(marker)!r}, 'w')"
    )
    prof = _profile(tmp_path / "t.yaml", {})
    result = reproduce(
        str(prof), notebooks_dir=nbs, runs_dir=tmp_path / "runs", progress=False
    )
    failed = result.failed
    assert failed is not None and failed.notebook == "02_broken.ipynb"
    assert "ValueError: deliberate failure" in str(failed)
    assert "raise ValueError" in failed.cell
    assert not marker.exists(), "the run must stop at the failing notebook"
    kept = nbformat.read(failed.output, as_version=4)
    errors = [
        c
        for c in kept.cells
        if c.cell_type == "code" and any(o.output_type == "error" for o in c.outputs)
    ]
    assert len(errors) == 1 and "deliberate" in errors[0].source
    # counted from 1 in the source notebook: header, parameters, y = 2, raise
    assert failed.cell.startswith("cell 4 of 02_broken.ipynb")
    timings = json.loads((tmp_path / "runs" / "t" / "timings.json").read_text())
    assert "02_broken.ipynb" in timings["failed"]


def test_cli_reports_failure_with_status_1(tmp_path, monkeypatch, capsys):
    import fmlib.notebook.reproduce as R

    nbs = tmp_path / "nbs"
    nbs.mkdir()
    _notebook(nbs / "01_bad.ipynb", 'PROFILE = ""  # n', "1 / 0")
    prof = _profile(tmp_path / "c.yaml", {})
    monkeypatch.setattr(R, "NOTEBOOKS_DIR", nbs)
    monkeypatch.setattr(R, "RUNS_DIR", tmp_path / "runs")
    real = R.reproduce
    monkeypatch.setattr(
        R,
        "reproduce",
        lambda *a, **k: real(
            *a, notebooks_dir=nbs, runs_dir=tmp_path / "runs", progress=False, **k
        ),
    )
    assert cli.main(["reproduce", "--profile", str(prof)]) == 1
    err = capsys.readouterr().err
    assert "01_bad.ipynb" in err and "ZeroDivisionError" in err and "1 / 0" in err
    assert cli.main(["reproduce", "--profile", "nope"]) == 2
    assert "error: profile 'nope'" in capsys.readouterr().err


# --------------------------------------------------------------- helpers
def test_run_dirs_and_tables(tmp_path):
    d = run_dirs(output_dir=str(tmp_path / "o"), work_dir=str(tmp_path / "w"))
    assert d.figures == tmp_path / "o" / "figures" and d.figures.is_dir()
    assert d.tables == tmp_path / "o" / "tables" and d.tables.is_dir()
    assert d.models == tmp_path / "w" / "models"
    df = pd.DataFrame({"metric": ["FFT", "STFT"], "value": [1.23456, 2.0]})
    csv, md = write_table(df, "t", out_dir=d.tables)
    assert pd.read_csv(csv).equals(df)
    assert md.read_text() == markdown_table(df) + "\n"
    rows = [" ".join(line.split()) for line in md.read_text().splitlines()]
    assert "| FFT | 1.235 |" in rows


# --------------------------------------------------------------- safe defaults
@pytest.mark.parametrize("name", EXPECTED_NOTEBOOKS)
def test_a_hand_run_uses_the_paper_profile_and_data_interactive(name):
    values = notebook_parameters(NOTEBOOKS_DIR / name)
    paper = load_profile("paper").parameters
    shared = {k: values[k] for k in values if k in paper}
    assert shared == {k: paper[k] for k in shared}, f"{name} differs from paper.yaml"
    assert values["OUTPUT_DIR"] == "" and values["WORK_DIR"] == ""
    assert values["PROFILE"] == "interactive"


def test_output_dir_defaults_to_data_interactive_and_refuses_committed(
    tmp_path, monkeypatch
):
    import fmlib.notebook.reproduce as R

    assert "FMLIB_INTERACTIVE_DIR" in os.environ or (
        INTERACTIVE_DIR == DATA_DIR / "interactive"
    )
    monkeypatch.setattr(R, "INTERACTIVE_DIR", tmp_path / "interactive")
    d = run_dirs()
    assert d.figures == tmp_path / "interactive" / "figures" and d.figures.is_dir()
    assert d.tables == tmp_path / "interactive" / "tables"
    assert d.models == DATA_DIR / "models"  # the cached paper model is reused
    committed = run_dirs(output_dir=COMMITTED)
    assert (committed.figures, committed.tables) == (FIGURES_DIR, TABLES_DIR)
    # a folder whose figures/ or tables/ would be the committed ones is refused
    for bad in (PROJECT_ROOT, RESULTS_DIR, FIGURES_DIR, TABLES_DIR / "x"):
        with pytest.raises(InputError, match="committed"):
            run_dirs(output_dir=str(bad))
    rel = os.path.relpath(PROJECT_ROOT, os.getcwd())
    with pytest.raises(InputError, match="committed"):
        run_dirs(output_dir=rel)


def test_only_the_paper_profile_may_write_the_committed_folders(tmp_path):
    bad = tmp_path / "mine.yaml"
    bad.write_text("results: committed\nparameters: {}\n")
    with pytest.raises(InputError, match="reserved for the 'paper' profile"):
        load_profile(str(bad))
    # the paper profile gets OUTPUT_DIR = COMMITTED, the smoke profile its run folder
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    record = tmp_path / "record.txt"
    _notebook(
        nbs / "01_a.ipynb",
        'PROFILE = ""  # n\nOUTPUT_DIR = ""  # o',
        f"open({str(record)!r}, 'a').write(OUTPUT_DIR + '\\n')",
    )
    paper = tmp_path / "profiles" / "paper.yaml"
    paper.parent.mkdir()
    _profile(paper, {}, results="committed")
    result = reproduce(
        str(paper), notebooks_dir=nbs, runs_dir=tmp_path / "runs", progress=False
    )
    assert result.failed is None
    assert (result.figures_dir, result.tables_dir) == (FIGURES_DIR, TABLES_DIR)
    smoke = _profile(tmp_path / "smoke.yaml", {})
    result = reproduce(
        str(smoke), notebooks_dir=nbs, runs_dir=tmp_path / "runs", progress=False
    )
    assert record.read_text().splitlines() == [
        COMMITTED,
        str(tmp_path / "runs" / "smoke"),
    ]
    assert load_profile("smoke").results == "run"
