"""Sampler presets: the instrument-like training priors of fmnet."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fmlib.datasets.presets import (
    PRESETS,
    SHIPPED_RECIPE,
    preset_dataset_name,
    preset_sampler,
)
from fmlib.datasets.sampler import sample_vectors
from fmlib.errors import InputError
from fmlib.paths import SHIPPED_MODEL_DIR
from fmlib.synth.params import TARGET_NAMES, midi_to_hz

RATIOS = [TARGET_NAMES.index(f"ratio_{k}") for k in range(1, 6)]
INDICES = [TARGET_NAMES.index(f"index_{k}") for k in range(1, 6)]


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_draws_integer_ratios_and_musical_carriers(name):
    v = sample_vectors(400, seed=3, config=preset_sampler(name))
    ratios = v[:, RATIOS]
    assert np.all(ratios == np.round(ratios)) and ratios.min() >= 1
    assert midi_to_hz(21) - 1e-6 <= v[:, 0].min() and v[:, 0].max() <= midi_to_hz(108)


def test_sparselow_mutes_half_the_modulators_and_favours_low_ratios():
    v = sample_vectors(4000, seed=0, config=preset_sampler("sparselow"))
    muted = v[:, INDICES] == 0.0
    assert muted.mean() == pytest.approx(0.5, abs=0.02)
    ratios = v[:, RATIOS]
    assert (ratios == 1).mean() == pytest.approx(4 / 14, abs=0.02)
    assert (ratios == 8).mean() == pytest.approx(1 / 14, abs=0.01)
    assert v[:, INDICES].max() <= 8.0


def test_unknown_preset_is_refused_naming_the_valid_ones():
    with pytest.raises(InputError, match="valid: harmonic, mellow, pair, sparse"):
        preset_sampler("bright")


def test_the_shipped_model_was_trained_on_the_recipe():
    meta = json.loads((SHIPPED_MODEL_DIR / "model.json").read_text())
    r = SHIPPED_RECIPE
    assert meta["train_dataset"] == preset_dataset_name(
        r["preset"], n=r["train_n"], seed=r["train_seed"]
    )
    assert meta["test_dataset"] == preset_dataset_name(
        r["preset"], n=r["test_n"], seed=r["test_seed"]
    )
    assert meta["n_train_notes"] == r["train_n"] and meta["seed"] == r["seed"]
    assert meta["teacher_notes"] == r["teacher_notes"] and meta["n_teacher_notes"] > 0
    from fmlib.estimate.fmnet import TABLE_DESIGN, merge_config

    assert meta["config"] == merge_config(r["config"])
    assert r["config"] == {"arch": "mlp", **TABLE_DESIGN}  # train --arch fmnet-table


def test_recipe_model_name_changes_with_the_recipe():
    from fmlib.datasets.presets import recipe_model_name

    name = recipe_model_name(SHIPPED_RECIPE)
    assert name.startswith("fmnet-sparselow-retrained-") and len(name) == 34
    assert recipe_model_name(dict(SHIPPED_RECIPE)) == name
    changed = {**SHIPPED_RECIPE, "config": {**SHIPPED_RECIPE["config"], "dropout": 0.1}}
    assert recipe_model_name(changed) != name
