"""``python -m fmlib train``: train the paper's CNN (default) or fmnet on a dataset.

``--arch fmnet`` (design A, dense layers), ``--arch fmnet-conv`` (design B,
convolutions along the f0-relative frequency axis) or ``--arch fmnet-table``
(design C, a class over the harmonic table: :mod:`fmlib.estimate.fmnet_table`) train
:mod:`fmlib.estimate.fmnet`: ``--data`` gives the training notes (``--limit N``: its
first N), ``--test-data`` the test notes (another seed). Rerunning the same command
resumes (features from the cache, training from the last finished epoch).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fmlib import files
from fmlib.datasets.dataset_reader import open_dataset
from fmlib.errors import InputError
from fmlib.estimate.fmnet import TABLE_DESIGN
from fmlib.estimate.train_results import HISTORY_CSV

#: ``--arch`` values: the paper's CNN and the three fmnet designs (their configs).
ARCHS: dict[str, dict[str, Any] | None] = {
    "cnn": None,
    "fmnet": {"arch": "mlp"},
    "fmnet-conv": {"arch": "conv"},
    "fmnet-table": {"arch": "mlp", **TABLE_DESIGN},
}


def configure_parser(parser) -> None:
    parser.add_argument("--data", required=True, help="dataset folder")
    parser.add_argument(
        "--arch",
        choices=tuple(ARCHS),
        default="cnn",
        help="cnn: the paper's CNN (default); fmnet, fmnet-conv, fmnet-table: the "
        "pitch-aware network, designs A, B and C",
    )
    parser.add_argument(
        "--test-data", default=None, help="fmnet: dataset folder of the test notes"
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="fmnet: processes for the features"
    )
    parser.add_argument(
        "--teacher-notes",
        default=None,
        help="fmnet-table: a folder of real notes (NSynth layout, e.g. soundfont-set "
        "--plan train) labelled by the table lookup and added to the training notes",
    )
    parser.add_argument("--out", required=True, help="model folder (created)")
    parser.add_argument("--epochs", type=int, default=None, help="default 200")
    parser.add_argument("--seed", type=int, default=0, help="default 0")
    parser.add_argument("--batch-size", type=int, default=None, help="default 32")
    parser.add_argument("--patience", type=int, default=None, help="default 10")
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        help="use only the first N notes (smoke runs; fmnet: its training notes)",
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
    if args.arch != "cnn":
        return _run_fmnet(args, overrides)
    # Every path checked before Keras is imported.
    data = files.check_input(args.data, kind="folder", what="dataset folder")
    out = files.check_output(args.out, kind="folder")
    files.check_distinct({"--out": out}, {"--data": data})
    if (out / "manifest.json").exists():
        raise InputError(f"{out}: is a dataset folder; give a folder for the model")
    open_dataset(data)  # a damaged dataset is refused here, before any work
    from fmlib.estimate.train import ensure_model

    model_dir = ensure_model(
        data,
        out,
        config=overrides or None,
        seed=args.seed,
        force=args.force,
        limit=args.limit,
        verbose=1,
    )
    import pandas as pd

    paths = plot_history_figures(pd.read_csv(model_dir / HISTORY_CSV), model_dir)
    print(f"figures: {', '.join(p.name for p in paths)}")
    return 0


def _run_fmnet(args, overrides: dict[str, Any]) -> int:
    if args.test_data is None:
        raise InputError("--arch fmnet: give the test notes (--test-data DATASET)")
    if args.force:
        raise InputError("--force: not supported for fmnet; give another --out")
    if args.workers < 1:
        raise InputError(f"--workers: {args.workers} is not valid; use >= 1")
    teacher = None
    if args.teacher_notes is not None:
        if args.arch != "fmnet-table":
            raise InputError(
                f"--teacher-notes: not valid with --arch {args.arch}; valid only "
                "with --arch fmnet-table"
            )
        teacher = files.check_input(
            args.teacher_notes, kind="folder", what="notes folder"
        )
        from fmlib.datasets.nsynth import load_nsynth

        load_nsynth(teacher)  # an NSynth-layout index, refused here before any work
    data = files.check_input(args.data, kind="folder", what="dataset folder")
    test = files.check_input(args.test_data, kind="folder", what="dataset folder")
    out = files.check_output(args.out, kind="folder")
    inputs = {"--data": data, "--test-data": test}
    if teacher is not None:
        inputs["--teacher-notes"] = teacher
    files.check_distinct({"--out": out}, inputs)
    open_dataset(data, n=args.limit)  # refused here, before any work
    open_dataset(test)
    config: dict[str, Any] = dict(ARCHS[args.arch])
    for key, value in overrides.items():
        name = {"early_stopping_patience": "patience"}.get(key, key)
        config[name] = value
    from fmlib.estimate.fmnet import train_fmnet

    meta = train_fmnet(
        data,
        test,
        out,
        n_train=args.limit,
        config=config,
        seed=args.seed,
        teacher_notes=teacher,
        workers=args.workers,
    )
    m = meta["test_metrics"]
    print(f"carrier: median {m['carrier_hz']['median_cents']:.1f} cents")
    for name, d in m.items():
        if name != "carrier_hz":
            print(f"{name}: R2 {d['r2']:.3f}")
    print(f"model: {out}")
    return 0


def plot_history_figures(history, out_dir: Path) -> list[Path]:
    """Figures 10-11 (MSE and MAE per epoch, train and validation) as
    ``fig10_mse.png`` and ``fig11_mae.png`` in ``out_dir``.

    Args:
        history: DataFrame of ``history.csv`` (``epoch`` from 0, ``mse``, ``mae``,
            ``val_mse``, ``val_mae`` on standardised targets).

    Returns:
        The two PNG paths.
    """
    import matplotlib.pyplot as plt

    from fmlib.notebook.plots import plot_history, save_figure

    paths = []
    for metric, stem in (("mse", "fig10_mse"), ("mae", "fig11_mae")):
        fig, ax = plt.subplots(figsize=(6, 4))
        plot_history(ax, history, metric)
        ax.set_title(f"Evolution of {metric.upper()} during training")
        fig.tight_layout()
        paths.append(save_figure(fig, stem, out_dir=out_dir, show=False))
    return paths
