"""The package's stages: a lower stage never imports a higher one.

Stages, from the bottom: the base (errors, paths, the file layer), the synthesizer,
the audio layer that estimators and evaluation share, the data, the estimators, the
evaluation, the notebook helpers, and at the top the command line. Every import of
an ``fmlib`` module anywhere in a module (also inside functions) counts. A new module
must be given a stage here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import fmlib

STAGES: dict[str, tuple[str, ...]] = {
    "base": ("errors", "paths", "files", "paper_reference"),
    "synth": ("params", "algorithms", "patch", "synth", "dx7", "dx7_tables"),
    "audio": ("audio_io", "metrics", "analysis", "resample", "timbre"),
    "data": (
        "sampler",
        "dataset",
        "dataset_reader",
        "dataset_workers",
        "stats",
        "nsynth",
        "soundfont",
    ),
    "estimate": (
        "model",
        "train",
        "train_callbacks",
        "train_results",
        "keras_data",
        "predict",
        "match",
        "estimators",
    ),
    "evaluate": ("baselines", "evaluate", "comparison"),
    "notebook": ("plots", "widgets", "teaching", "reproduce"),
    "top": (
        "__init__",
        "__main__",
        "cli",
        "render_cli",
        "dataset_cli",
        "stats_cli",
        "train_cli",
        "match_cli",
        "syx_cli",
    ),
}
RANK = {m: i for i, mods in enumerate(STAGES.values()) for m in mods}
STAGE_OF = {m: stage for stage, mods in STAGES.items() for m in mods}
PACKAGE = Path(fmlib.__file__).parent
MODULES = sorted(p.stem for p in PACKAGE.glob("*.py"))


def fmlib_imports(path: Path) -> set[str]:
    """The fmlib modules ``path`` imports (top level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            parts = node.module.split(".")
            if parts[0] != "fmlib" or node.level:
                continue
            if len(parts) > 1:
                found.add(parts[1])
            else:  # from fmlib import X: X a module, or a name of __init__
                for alias in node.names:
                    # __version__ is read from the package, loaded with any of
                    # its modules anyway: no arrow to the top stage
                    if alias.name != "__version__":
                        found.add(alias.name if alias.name in RANK else "__init__")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "fmlib" and len(parts) > 1:
                    found.add(parts[1])
    return found


def test_every_module_has_a_stage():
    assert sorted(set(MODULES) - set(RANK)) == []
    assert sorted(set(RANK) - set(MODULES)) == []


@pytest.mark.parametrize("module", MODULES)
def test_no_module_imports_a_higher_stage(module):
    upward = sorted(
        f"{module} ({STAGE_OF[module]}) -> {dep} ({STAGE_OF[dep]})"
        for dep in fmlib_imports(PACKAGE / f"{module}.py")
        if dep in RANK and RANK[dep] > RANK[module]
    )
    assert upward == []


def test_the_check_sees_an_upward_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from fmlib.plots import save_figure\n")
    assert fmlib_imports(bad) == {"plots"}
