"""Shared fixtures. The seeded ``rng`` fixture gives each test its own stream."""

from __future__ import annotations

import os

import numpy as np
import pytest

from fmlib.paths import NSYNTH_DEV_DIR

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261124)


@pytest.fixture(scope="session")
def nsynth_dev_dir():
    """The shared 110-note NSynth development set. Skipped when absent, except in CI
    (``FMLIB_REQUIRE_NSYNTH_DEV=1``, set by ``.ci/run``), where absence fails."""
    if not (NSYNTH_DEV_DIR / "examples.json").is_file():
        msg = f"NSynth development set not found at {NSYNTH_DEV_DIR}"
        if os.environ.get("FMLIB_REQUIRE_NSYNTH_DEV") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return NSYNTH_DEV_DIR
