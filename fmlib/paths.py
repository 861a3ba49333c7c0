"""Every folder the project reads or writes, defined once.

Notebooks, scripts and tests import these names instead of typing paths. All paths
are absolute and derived from the location of this package, so they work from any
working directory (cookiecutter-data-science ``config.py``).
"""

from __future__ import annotations

import os
from pathlib import Path

#: The repository root (the folder holding ``pyproject.toml``).
PROJECT_ROOT = Path(__file__).resolve().parent.parent

#: Generated material, git-ignored except its README.
DATA_DIR = PROJECT_ROOT / "data"
DATASETS_DIR = DATA_DIR / "datasets"
MODELS_DIR = DATA_DIR / "models"
EVALUATIONS_DIR = DATA_DIR / "evaluations"
#: Cached input features of fmnet, one folder per dataset
#: (:mod:`fmlib.datasets.feature_cache`).
FEATURES_DIR = DATA_DIR / "features"
DOWNLOADS_DIR = DATA_DIR / "downloads"
#: The official NSynth test split, once downloaded and extracted.
NSYNTH_TEST_DIR = DATA_DIR / "nsynth-test"
#: The offline, SoundFont-rendered evaluation set (not NSynth).
SOUNDFONT_SET_DIR = DATA_DIR / "soundfont-set"
#: SoundFont notes of another SoundFont (FluidR3_GM) that teach fmnet design C what
#: real notes look like (``soundfont-set --plan train``); never evaluated on.
SOUNDFONT_TRAIN_DIR = DATA_DIR / "soundfont-train"
#: Executed notebooks written by ``make reproduce``.
RUNS_DIR = DATA_DIR / "runs"
#: Patches and WAVs saved from the notebooks' interactive widgets.
PATCHES_DIR = DATA_DIR / "patches"
#: Figures and tables of a notebook run by hand (``OUTPUT_DIR = ""``), never the
#: committed ones. The environment variable ``FMLIB_INTERACTIVE_DIR`` overrides the
#: location (tests point it at a temporary folder).
INTERACTIVE_DIR = Path(
    os.environ.get("FMLIB_INTERACTIVE_DIR", DATA_DIR / "interactive")
)

#: Committed results that document the reproduction.
FIGURES_DIR = PROJECT_ROOT / "figures"
RESULTS_DIR = PROJECT_ROOT / "results"
TABLES_DIR = RESULTS_DIR / "tables"

#: The model shipped inside the package (fmnet, issue 12): found from any working
#: folder, used when ``predict``, ``evaluate --method cnn`` or ``match`` get no model.
SHIPPED_MODEL_DIR = Path(__file__).resolve().parent / "shipped" / "fmnet"

NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
PROFILES_DIR = PROJECT_ROOT / "profiles"

#: 110 real NSynth notes shared with the project (never copied into it). The
#: environment variable ``FMLIB_NSYNTH_DEV`` overrides the location.
NSYNTH_DEV_DIR = Path(
    os.environ.get(
        "FMLIB_NSYNTH_DEV", PROJECT_ROOT.parent / "shared" / "data" / "nsynth-dev"
    )
)
