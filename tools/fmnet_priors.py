"""Render the training and test sets of one of fmnet's instrument-like presets.

The presets (``harmonic``, ``mellow``, ``sparse``, ``sparselow``: the shipped
model's, ``pair``) are defined once in :mod:`fmlib.datasets.presets`. Writes
``data/datasets/fm-PRESET-20000-s0`` (training) and ``fm-PRESET-2000-s1`` (test),
the sizes of :data:`fmlib.datasets.presets.SHIPPED_RECIPE`. Resumable, like every
dataset (``fmlib.datasets.dataset.generate_dataset``).

Usage::

    .venv/bin/python tools/fmnet_priors.py PRESET [--workers 2]
"""

from __future__ import annotations

import argparse

from fmlib.datasets.presets import (
    PRESETS,
    SHIPPED_RECIPE,
    preset_dataset_name,
    preset_sampler,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prior", choices=sorted(PRESETS))
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    from fmlib.datasets.dataset import generate_dataset
    from fmlib.paths import DATASETS_DIR

    cfg = preset_sampler(args.prior)
    r = SHIPPED_RECIPE
    for n, seed in ((r["train_n"], r["train_seed"]), (r["test_n"], r["test_seed"])):
        out = DATASETS_DIR / preset_dataset_name(args.prior, n=n, seed=seed)
        generate_dataset(out, n=n, seed=seed, workers=args.workers, sampler=cfg)
        print(out)


if __name__ == "__main__":
    main()
