"""Render the instrument-like training sets of fmnet (issue 12, docs/FMNET.md).

Each prior keeps the musical carrier prior (uniform in MIDI 21-108) and the paper's
envelope ranges, and changes the ratios and indices:

* ``harmonic``: every ratio an integer 1..8 (every partial a harmonic of the
  carrier); the paper's index bins;
* ``mellow``: integer ratios; indices below 0.5 rad half of the time (paper: 20 %),
  0.5-3 rad 40 % (paper: 60 %), 3-8 rad 10 % (paper: 20 %);
* ``sparse``: integer ratios; each modulator muted (index 0) half of the time, else
  0-1 rad (20 %), 1-3 (20 %), 3-8 (10 %);
* ``sparselow`` (the shipped model's): integer ratios weighted toward low ones
  (1: 4/14, 2: 3/14, 3: 2/14, 4..8: 1/14 each); each modulator muted half of the time,
  else 0-1 rad (30 %), 1-3 (15 %), 3-8 (5 %);
* ``pair``: the indices of ``sparselow``, every ratio 1 or 2 (a small family of
  mellow harmonic timbres).

Writes ``data/datasets/fm-PRIOR-20000-s0`` (training) and ``fm-PRIOR-2000-s1`` (test).
Resumable, like every dataset (``fmlib.datasets.dataset.generate_dataset``).

Usage::

    .venv/bin/python tools/fmnet_priors.py PRIOR [--workers 2]
"""

from __future__ import annotations

import argparse

from fmlib.datasets.sampler import SamplerConfig

INTEGER_RATIOS = tuple(float(k) for k in range(1, 9))
PRIORS = {
    "harmonic": {"ratio_set": INTEGER_RATIOS},
    "mellow": {
        "ratio_set": INTEGER_RATIOS,
        "index_bins": ((0.0, 0.5, 0.5), (0.5, 3.0, 0.4), (3.0, 8.0, 0.1)),
    },
    "sparse": {
        "ratio_set": INTEGER_RATIOS,
        "index_bins": (
            (0.0, 0.0, 0.5),
            (0.0, 1.0, 0.2),
            (1.0, 3.0, 0.2),
            (3.0, 8.0, 0.1),
        ),
    },
    "sparselow": {
        "ratio_set": (1.0,) * 4 + (2.0,) * 3 + (3.0,) * 2 + (4.0, 5.0, 6.0, 7.0, 8.0),
        "index_bins": (
            (0.0, 0.0, 0.5),
            (0.0, 1.0, 0.3),
            (1.0, 3.0, 0.15),
            (3.0, 8.0, 0.05),
        ),
    },
    "pair": {
        "ratio_set": (1.0, 2.0),
        "index_bins": (
            (0.0, 0.0, 0.5),
            (0.0, 1.0, 0.3),
            (1.0, 3.0, 0.15),
            (3.0, 8.0, 0.05),
        ),
    },
}


def sampler_config(prior: str) -> SamplerConfig:
    """The :class:`SamplerConfig` of one of :data:`PRIORS`."""
    return SamplerConfig(prior="musical", p_discrete=1.0, **PRIORS[prior])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prior", choices=sorted(PRIORS))
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    from fmlib.datasets.dataset import generate_dataset
    from fmlib.paths import DATASETS_DIR

    cfg = sampler_config(args.prior)
    for n, seed in ((20_000, 0), (2_000, 1)):
        out = DATASETS_DIR / f"fm-{args.prior}-{n}-s{seed}"
        generate_dataset(out, n=n, seed=seed, workers=args.workers, sampler=cfg)
        print(out)


if __name__ == "__main__":
    main()
