"""``python -m fmlib generate``: make, resume or check a training dataset."""

from __future__ import annotations

import argparse

from fmlib.datasets.dataset import (
    DEFAULT_SHARD_SIZE,
    WAV_DIR,
    generate_dataset,
    open_dataset,
)
from fmlib.datasets.sampler import DEFAULT_PRIOR, PRIORS
from fmlib.synth.algorithms import DEFAULT_ALGORITHM


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n", type=int, required=True, help="number of notes (>= 1)")
    p.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    p.add_argument("--out", required=True, help="dataset folder (created if needed)")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes rendering shards (default: all CPU cores)",
    )
    p.add_argument(
        "--algorithm",
        default=DEFAULT_ALGORITHM,
        help=f"operator graph of every note (default {DEFAULT_ALGORITHM})",
    )
    p.add_argument(
        "--prior",
        default=DEFAULT_PRIOR,
        help=f"carrier prior: {' or '.join(PRIORS)} (default {DEFAULT_PRIOR}: "
        "uniform 20-6000 Hz as the paper; musical: uniform in pitch over MIDI "
        "21-108)",
    )
    p.add_argument(
        "--shard-size",
        type=int,
        default=None,
        help=f"notes per shard file (default {DEFAULT_SHARD_SIZE}); no effect on notes",
    )
    p.add_argument(
        "--wav",
        type=int,
        default=0,
        metavar="K",
        help="also write the first K notes as WAV + patch JSON",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="replace a dataset of another seed/configuration in --out",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    out = generate_dataset(
        args.out,
        n=args.n,
        seed=args.seed,
        algorithm=args.algorithm,
        prior=args.prior,
        workers=args.workers,
        shard_size=args.shard_size,
        force=args.force,
        wav=args.wav,
        progress=not args.quiet,
    )
    ds = open_dataset(out)
    print(
        f"dataset: {out} ({ds.n} notes in {ds.manifest['n_shards']} shards, "
        f"prior {ds.prior}, manifest sha256 {ds.manifest_hash[:12]})"
    )
    if args.wav:
        print(f"listening: {out / WAV_DIR} (first {args.wav} notes, WAV + patch JSON)")
    return 0
