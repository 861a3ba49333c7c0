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


#: The one tiny variant of the paper's model that the tests train (architecture tests
#: use the full one): 3 epochs, l2 = 0 so that a falling loss means the fit improves.
TINY_CONFIG = {
    "conv_filters": [4, 8, 8],
    "l2": 0.0,
    "learning_rate": 0.003,
    "epochs": 3,
    "batch_size": 16,
}
#: Notes and seed of the tiny dataset (64 notes split 38 / 10 / 16).
TINY_N, TINY_SEED = 64, 0


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """A 64-note dataset (seed 0), generated once per test run. Read-only."""
    from fmlib.datasets.dataset import generate_dataset

    return generate_dataset(
        tmp_path_factory.mktemp("tiny") / "dataset",
        n=TINY_N,
        seed=TINY_SEED,
        workers=1,
        progress=False,
    )


@pytest.fixture(scope="session")
def tiny_model(tiny_dataset, tmp_path_factory):
    """:data:`TINY_CONFIG` trained on :func:`tiny_dataset` (seed 0), once per test
    run. Read-only: a test that changes a model folder trains its own."""
    from fmlib.estimate.train import train

    out = tmp_path_factory.mktemp("tiny") / "model"
    return train(tiny_dataset, out, config=TINY_CONFIG, seed=0, verbose=0)


def _upload_entry(name: str, data: bytes, *, mime: str = "application/octet-stream"):
    """One entry of ``FileUpload.value`` as ipywidgets 8 deserialises it from a
    browser."""
    import datetime as dt

    return {
        "name": name,
        "type": mime,
        "size": len(data),
        "content": memoryview(data),
        "last_modified": dt.datetime.now(dt.UTC),
    }


@pytest.fixture
def upload_entry():
    """The function that builds one ``FileUpload.value`` entry (name, bytes)."""
    return _upload_entry


class _FixedPredictor:
    """Stands in for an estimator (fmlib.estimate.estimators): records its input and
    returns one patch for every note."""

    name = "fixed"

    def __init__(self, patch):
        from fmlib.synth.patch import patch_from_dict

        self.patch = patch_from_dict(patch)
        self.seen = []

    def predict_patches(self, audio):
        self.seen.append(np.asarray(audio))
        return [self.patch] * len(audio)


@pytest.fixture
def fixed_predictor():
    """The class of a stand-in estimator: ``fixed_predictor(patch)``."""
    return _FixedPredictor
