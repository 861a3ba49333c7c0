"""``python -m fmlib train``: train the paper's CNN on a dataset folder."""

from __future__ import annotations

from typing import Any

from fmlib import files
from fmlib.dataset_reader import open_dataset
from fmlib.errors import InputError


def configure_parser(parser) -> None:
    parser.add_argument("--data", required=True, help="dataset folder")
    parser.add_argument("--out", required=True, help="model folder (created)")
    parser.add_argument("--epochs", type=int, default=None, help="default 200")
    parser.add_argument("--seed", type=int, default=0, help="default 0")
    parser.add_argument("--batch-size", type=int, default=None, help="default 32")
    parser.add_argument("--patience", type=int, default=None, help="default 10")
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        help="use only the first N notes (smoke runs)",
    )
    parser.add_argument(
        "--force", action="store_true", help="discard the model folder and retrain"
    )


def run(args) -> int:
    overrides: dict[str, Any] = {}
    for key, value in (
        ("epochs", args.epochs),
        ("batch_size", args.batch_size),
        ("early_stopping_patience", args.patience),
    ):
        if value is not None:
            if value < 1:
                raise InputError(
                    f"--{key.replace('_', '-')}: {value} is not valid; use >= 1"
                )
            overrides[key] = value
    if args.limit is not None and args.limit < 3:
        raise InputError(f"--limit: {args.limit} is not valid; use >= 3 notes")
    if args.seed < 0:
        raise InputError(f"--seed: {args.seed} is not valid; use an integer >= 0")
    # Every path checked before Keras is imported.
    data = files.check_input(args.data, kind="folder", what="dataset folder")
    out = files.check_output(args.out, kind="folder")
    files.check_distinct({"--out": out}, {"--data": data})
    if (out / "manifest.json").exists():
        raise InputError(f"{out}: is a dataset folder; give a folder for the model")
    open_dataset(data)  # a damaged dataset is refused here, before any work
    from fmlib.train import ensure_model

    ensure_model(
        data,
        out,
        config=overrides or None,
        seed=args.seed,
        force=args.force,
        limit=args.limit,
        verbose=1,
    )
    return 0
