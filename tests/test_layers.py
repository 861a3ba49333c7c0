"""The package's stages: a lower stage never imports a higher one.

A module's stage is its sub-package (``fmlib/synth/``, ``fmlib/audio/``, ...).
Stages, from the bottom: the base (the modules at the package's top: errors, paths,
the file layer, the paper's numbers), the synthesizer, the audio layer that
estimators and evaluation share, the datasets, the estimators, the evaluation, the
notebook helpers, and at the top the command line (``fmlib/cli/``) with the
package's own ``__init__`` and ``__main__``. Every import of an ``fmlib`` module
anywhere in a module (also inside functions) counts. A new module goes into the
sub-package of its stage; a new module at the top must be listed in ``BASE``; a new
sub-package must be given a place in ``STAGES``.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import fmlib

#: the stages, from the bottom; each but "base" and "top" is a sub-package
STAGES = (
    "base",
    "synth",
    "audio",
    "datasets",
    "estimate",
    "evaluation",
    "notebook",
    "top",
)
#: the modules at the package's top that belong to the base
BASE = ("errors", "paths", "files", "paper_reference")
#: what at the package's top belongs to the top stage (``cli`` is a sub-package)
TOP = ("__init__", "__main__", "cli")
RANK = {stage: i for i, stage in enumerate(STAGES)}
PACKAGE = Path(fmlib.__file__).parent
#: every module, as its dotted name under fmlib ("synth.engine", "cli", "errors")
MODULES = sorted(
    ".".join(p.relative_to(PACKAGE).with_suffix("").parts).removesuffix(".__init__")
    for p in PACKAGE.rglob("*.py")
    if "__pycache__" not in p.parts
)
SUBPACKAGES = sorted(
    p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()
)


def stage_of(name: str) -> str | None:
    """The stage of ``name`` (a dotted name under fmlib; "__init__" for the
    package's own namespace), or None when it is unknown."""
    first = name.split(".")[0]
    if first in TOP:
        return "top"
    if first in BASE:
        return "base"
    return first if first in STAGES else None


def path_of(module: str) -> Path:
    path = PACKAGE.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def fmlib_imports(path: Path) -> set[str]:
    """The fmlib modules and sub-packages ``path`` imports (top level or inside
    functions), as dotted names under fmlib; "__init__" for a name that the package
    itself exports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            parts = node.module.split(".")
            if parts[0] != "fmlib" or node.level:
                continue
            if len(parts) > 1:  # from fmlib.synth import params: synth.params
                base = ".".join(parts[1:])
                for alias in node.names:
                    module = f"{base}.{alias.name}"
                    found.add(module if path_of(module).exists() else base)
            else:  # from fmlib import X: X a module, a sub-package or a name
                for alias in node.names:
                    # __version__ is read from the package, loaded with any of
                    # its modules anyway: no arrow to the top stage
                    if alias.name == "__version__":
                        continue
                    known = alias.name in BASE or alias.name in SUBPACKAGES
                    found.add(alias.name if known else "__init__")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "fmlib" and len(parts) > 1:
                    found.add(".".join(parts[1:]))
    return found


def test_every_module_has_a_stage():
    assert [m for m in MODULES if stage_of(m) is None] == []
    top_level = sorted(p.stem for p in PACKAGE.glob("*.py"))
    assert top_level == sorted(BASE + ("__init__", "__main__"))
    assert sorted(set(SUBPACKAGES) - set(STAGES) - {"cli"}) == []
    assert sorted(set(STAGES) - {"base", "top"} - set(SUBPACKAGES)) == []


@pytest.mark.parametrize("module", MODULES)
def test_no_module_imports_a_higher_stage(module):
    stage = stage_of(module)
    upward = sorted(
        f"{module} ({stage}) -> {dep} ({stage_of(dep)})"
        for dep in fmlib_imports(path_of(module))
        if RANK[stage_of(dep)] > RANK[stage]
    )
    assert upward == []


@pytest.mark.parametrize("module", MODULES)
def test_every_import_names_a_module(module):
    """Each ``fmlib`` import names a module or sub-package that exists (an import
    missed by the move to sub-packages would name a module that is gone)."""
    missing = sorted(
        dep
        for dep in fmlib_imports(path_of(module))
        if dep != "__init__" and not path_of(dep).exists()
    )
    assert missing == []


def test_the_check_sees_an_upward_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from fmlib import synth\nfrom fmlib.audio import metrics\n"
        "def f():\n    from fmlib.notebook.plots import save_figure\n"
    )
    assert fmlib_imports(bad) == {"synth", "audio.metrics", "notebook.plots"}
    assert stage_of("notebook.plots") == "notebook"
    assert RANK[stage_of("notebook.plots")] > RANK[stage_of("audio.metrics")]


def test_the_public_names_import():
    """Every name ``fmlib`` exports is there, from its stage's module."""
    for name in fmlib.__all__:
        assert getattr(fmlib, name) is not None, name
    assert fmlib.render is importlib.import_module("fmlib.synth.engine").render
    assert fmlib.load_patch is importlib.import_module("fmlib.synth.patch").load_patch
