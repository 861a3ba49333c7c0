"""Instrument-like sampler presets: the training priors of fmnet (issue 12).

The paper's sampler draws ratios from 1/8..8 and indices up to 8 rad for all five
modulators, which makes busy, bright, often inharmonic timbres that few instruments
have. These presets keep the ``musical`` carrier prior (uniform in MIDI 21-108) and the
paper's envelope ranges, and change the ratios and indices (``docs/FMNET.md`` measures
each):

* ``harmonic``: every ratio an integer 1..8 (every partial a harmonic of the
  carrier); the paper's index bins;
* ``mellow``: integer ratios; indices below 0.5 rad half of the time (paper: 20 %),
  0.5-3 rad 40 % (paper: 60 %), 3-8 rad 10 % (paper: 20 %);
* ``sparse``: integer ratios; each modulator muted (index 0) half of the time, else
  0-1 rad (20 %), 1-3 (20 %), 3-8 (10 %);
* ``sparselow`` (the shipped model's, :data:`SHIPPED_RECIPE`): integer ratios weighted
  toward low ones (1: 4/14, 2: 3/14, 3: 2/14, 4..8: 1/14 each); each modulator muted
  half of the time, else 0-1 rad (30 %), 1-3 (15 %), 3-8 (5 %);
* ``pair``: the indices of ``sparselow``, every ratio 1 or 2.

A ratio listed k times in ``ratio_set`` is drawn with k times the probability
(:class:`fmlib.datasets.sampler.SamplerConfig` draws uniformly from the tuple).
"""

from __future__ import annotations

from fmlib.datasets.sampler import SamplerConfig
from fmlib.errors import InputError

_INTEGER_RATIOS = tuple(float(k) for k in range(1, 9))
_SPARSE_LOW_INDICES = (
    (0.0, 0.0, 0.5),
    (0.0, 1.0, 0.3),
    (1.0, 3.0, 0.15),
    (3.0, 8.0, 0.05),
)

#: Preset name -> the :class:`SamplerConfig` fields it sets (besides the musical
#: prior and ``p_discrete = 1``).
PRESETS: dict[str, dict] = {
    "harmonic": {"ratio_set": _INTEGER_RATIOS},
    "mellow": {
        "ratio_set": _INTEGER_RATIOS,
        "index_bins": ((0.0, 0.5, 0.5), (0.5, 3.0, 0.4), (3.0, 8.0, 0.1)),
    },
    "sparse": {
        "ratio_set": _INTEGER_RATIOS,
        "index_bins": (
            (0.0, 0.0, 0.5),
            (0.0, 1.0, 0.2),
            (1.0, 3.0, 0.2),
            (3.0, 8.0, 0.1),
        ),
    },
    "sparselow": {
        "ratio_set": (1.0,) * 4 + (2.0,) * 3 + (3.0,) * 2 + (4.0, 5.0, 6.0, 7.0, 8.0),
        "index_bins": _SPARSE_LOW_INDICES,
    },
    "pair": {"ratio_set": (1.0, 2.0), "index_bins": _SPARSE_LOW_INDICES},
}

#: How the shipped fmnet (``fmlib/shipped/fmnet``) was made: its preset, its training
#: and test datasets (notes, seed), its training seed, ``FMNET_CONFIG`` defaults, and
#: the folder (under the work folder, ``data/``) of its teacher notes, made by
#: ``soundfont-set --plan train`` (FluidR3_GM, Debian's fluid-soundfont-gm).
SHIPPED_RECIPE: dict = {
    "preset": "sparselow",
    "train_n": 20_000,
    "train_seed": 0,
    "test_n": 2_000,
    "test_seed": 1,
    "seed": 0,
    # fmnet design C (``train --arch fmnet-table``): the class over the harmonic table
    "config": {
        "arch": "mlp",
        "head": "table",
        "augment_mix": 4.0,
        "dropout": 0.3,
        "envelope": "analysis",
    },
    # real notes of another SoundFont, labelled by the table lookup (--teacher-notes)
    "teacher_notes": "soundfont-train",
}


def preset_sampler(name: str) -> SamplerConfig:
    """The :class:`SamplerConfig` of one of :data:`PRESETS`.

    Raises:
        InputError: an unknown name (the message lists the valid ones).
    """
    if not isinstance(name, str) or name not in PRESETS:
        raise InputError(
            f"preset: unknown preset {name!r}; valid: {', '.join(sorted(PRESETS))}"
        )
    return SamplerConfig(prior="musical", p_discrete=1.0, **PRESETS[name])


def preset_dataset_name(name: str, *, n: int, seed: int) -> str:
    """Folder name of a preset's dataset: ``fm-<preset>-<n>-s<seed>``."""
    return f"fm-{name}-{n}-s{seed}"


def recipe_model_name(recipe: dict) -> str:
    """Folder name of a model retrained from a recipe (:data:`SHIPPED_RECIPE`):
    ``fmnet-<preset>-retrained-<8 hex digits of the recipe's sha256>``, so a changed
    recipe never meets a folder trained by the old one."""
    import hashlib
    import json

    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()
    return f"fmnet-{recipe['preset']}-retrained-{digest[:8]}"
