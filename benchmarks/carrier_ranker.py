"""Issue 12's carrier target by ranking spectral peaks: train the ranker, measure it.

Usage::

    .venv/bin/python benchmarks/carrier_ranker.py [--train DIR ...] [--n-train 80000]
        [--test DIR] [--n-test 5000] [--seed 0] [--workers 2] [--epochs 12]
        [--train-candidates 48] [--train-loudest 24] [--context 64]

``--train`` may be repeated: the datasets are joined in order until ``--n-train``
notes are reached (by default ``fm-musical-40000-s0`` and ``fm-musical-40000-s2``).
``--train-candidates 192`` trains on all the candidates, as the runs before
2026-12-07 (fourth session) did: about 4 times slower an epoch.

Makes the datasets first (about 2 min each)::

    .venv/bin/python -m fmlib generate --n 40000 --seed 0 --prior musical \\
        --out data/datasets/fm-musical-40000-s0
    .venv/bin/python -m fmlib generate --n 40000 --seed 2 --prior musical \\
        --out data/datasets/fm-musical-40000-s2
    .venv/bin/python -m fmlib generate --n 5000 --seed 1 --prior musical \\
        --out data/datasets/fm-musical-5000-s1

Steps, each resumable (rerun the same command):

1. Candidates (:func:`fmlib.audio.carrier_peaks.candidate_features`) and the tracked
   f0 (:func:`fmlib.audio.analysis.estimate_f0`) of every note, cached by chunks of
   10,000 notes under ``data/features/carrier-peaks/<dataset>/`` (``.npz``, float16
   features, written atomically; about 2 min 40 s a chunk with 2 workers, 1.9 GB).
2. The ranker (:func:`fmlib.estimate.carrier_ranker.train_ranker`), saved in
   ``data/models/carrier-ranker-<train>-<n>-s<seed>-e<epochs>[-k<candidates>]
   [-l<loudest>][-c<context>]/`` (skipped when it exists; about 27 min at the
   defaults).
3. On the test notes: the picked carrier against the true one (median error, share
   within 25 cents, octave-folded), next to two references with no training: the
   tracked f0 as the carrier, and the loudest peak. Printed and written to
   ``data/benchmarks/<model folder>-on-<test>-<n>.json``.

The measure is the one of ``benchmarks/fmnet_metrics.py`` (carrier median error in
cents and share within 25 cents on the musical-prior test notes).
"""

from __future__ import annotations

import argparse
import sys
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from _report import finish

CHUNK = 10_000


def cache_file(path: Path, start: int, n_notes: int) -> Path:
    """The cached candidates of the chunk of dataset ``path`` that begins at note
    ``start`` (chunks of :data:`CHUNK` notes; the last one is shorter)."""
    from fmlib.paths import FEATURES_DIR

    m = min(CHUNK, n_notes - start)
    return FEATURES_DIR / "carrier-peaks" / path.name / f"notes-{start:06d}-{m}.npz"


def _note(x):
    from fmlib.audio.analysis import estimate_f0
    from fmlib.audio.carrier_peaks import candidate_features

    c = candidate_features(x)
    return c.features.astype(np.float16), c.mask, c.freqs_hz, estimate_f0(x).f0_hz


def _chunk(ds, start: int, n: int, out: Path, workers: int) -> None:
    from tqdm import tqdm

    from fmlib import files

    def notes():
        for a in range(start, start + n, 256):
            yield from np.asarray(ds.read(slice(a, min(a + 256, start + n))))

    with Pool(workers) as pool:
        res = list(
            tqdm(
                pool.imap(_note, notes(), chunksize=16),
                total=n,
                desc=f"candidates {out.name}",
            )
        )
    with files.atomic_path(out, suffix=".npz") as tmp:
        np.savez(
            tmp,
            features=np.stack([r[0] for r in res]),
            mask=np.stack([r[1] for r in res]),
            freqs_hz=np.stack([r[2] for r in res]),
            f0_hz=np.array([r[3] for r in res]),
        )


def candidates(
    paths: list[Path], n: int, workers: int, *, option: str
) -> dict[str, np.ndarray]:
    """Candidates, f0 and true carriers of the first ``n`` notes of ``paths`` (cached).

    The datasets are taken in order until ``n`` notes are reached. The arrays are
    filled in place, chunk by chunk, so the peak memory is the result plus one
    chunk (80,000 notes of float16 features are 14.8 GB). ``option`` names the
    command-line option in the one-line message (exit 2) when the datasets are too
    small or missing.
    """
    from fmlib.audio import carrier_peaks as CP
    from fmlib.datasets.dataset_reader import open_dataset

    plan, left = [], n
    for path in paths:
        if left == 0:
            break
        try:
            ds = open_dataset(path)
        except (FileNotFoundError, ValueError) as err:
            print(f"{option}: {err}", file=sys.stderr)
            sys.exit(2)
        plan.append((ds, path, min(left, len(ds))))
        left -= plan[-1][2]
    if left:
        have = n - left
        print(
            f"--n-{option[2:]}: the datasets hold {have} notes; give at most that",
            file=sys.stderr,
        )
        sys.exit(2)
    out = {
        "features": np.empty((n, CP.N_CANDIDATES, CP.N_FEATURES), np.float16),
        "mask": np.empty((n, CP.N_CANDIDATES), bool),
        "freqs_hz": np.empty((n, CP.N_CANDIDATES)),
        "f0_hz": np.empty(n),
        "carrier_hz": np.empty(n),
    }
    filled = 0
    for ds, path, take in plan:
        out["carrier_hz"][filled : filled + take] = ds.params["carrier_hz"].to_numpy()[
            :take
        ]
        for start in range(0, take, CHUNK):
            f = cache_file(path, start, len(ds))
            if not f.exists():
                _chunk(ds, start, min(CHUNK, len(ds) - start), f, workers)
            t = min(CHUNK, take - start)
            with np.load(f, allow_pickle=False) as part:
                for k in ("features", "mask", "freqs_hz", "f0_hz"):
                    out[k][filled + start : filled + start + t] = part[k][:t]
        filled += take
    return out


def _scores(est_hz: np.ndarray, true_hz: np.ndarray) -> dict[str, float]:
    cents = 1200 * np.log2(est_hz / true_hz)
    err = np.abs(cents)
    folded = np.abs((cents + 600) % 1200 - 600)
    return {
        "median_cents": float(np.median(err)),
        "within_25c": float(np.mean(err < 25)),
        "within_25c_octave_folded": float(np.mean(folded < 25)),
    }


def main() -> None:
    from fmlib.audio.carrier_peaks import N_CANDIDATES
    from fmlib.estimate import carrier_ranker as CR
    from fmlib.paths import DATA_DIR, DATASETS_DIR, MODELS_DIR

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--train",
        type=Path,
        action="append",
        help="training dataset; repeat to join several, taken in order "
        "(default: data/datasets/fm-musical-40000-s0 and -40000-s2)",
    )
    ap.add_argument("--n-train", type=int, default=80_000)
    ap.add_argument("--test", type=Path, default=DATASETS_DIR / "fm-musical-5000-s1")
    ap.add_argument("--n-test", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=CR.DEFAULT_CONFIG["epochs"])
    # The ranker's configuration keys this script exposes, each as --key-name.
    config_help = {
        "train_candidates": "candidates a training note shows, its carrier and "
        f"others drawn at random each epoch (2..{N_CANDIDATES}, {N_CANDIDATES} for "
        "all; default: %(default)s)",
        "train_loudest": "of those, how many are always the note's loudest "
        "(0..train-candidates - 2; default: %(default)s)",
        "context": "units of the note-level context pooled over the loudest "
        "candidates (0: none, as in the rankers before it; default: %(default)s)",
    }
    for key, text in config_help.items():
        ap.add_argument(
            f"--{key.replace('_', '-')}",
            type=int,
            default=CR.DEFAULT_CONFIG[key],
            help=text,
        )
    args = ap.parse_args()
    args.train = args.train or [
        DATASETS_DIR / "fm-musical-40000-s0",
        DATASETS_DIR / "fm-musical-40000-s2",
    ]
    for name in ("n_train", "n_test", "workers", "epochs"):
        if getattr(args, name) < 1:
            print(f"--{name.replace('_', '-')}: must be >= 1", file=sys.stderr)
            sys.exit(2)
    sampling = {key: getattr(args, key) for key in ("epochs", *config_help)}
    try:  # before the features are read, which takes minutes
        CR.checked_config(sampling)
    except ValueError as err:
        if str(err).startswith("context_candidates"):  # not an option here
            top = CR.DEFAULT_CONFIG["context_candidates"]
            err = ValueError(
                f"train_loudest: must be >= {top} with --context > 0 (the context "
                f"pools the {top} loudest candidates) or --context 0, "
                f"got {args.train_loudest}"
            )
        print(f"--{str(err).replace('_', '-')}", file=sys.stderr)
        sys.exit(2)
    k, loud = args.train_candidates, args.train_loudest
    sampled = k is not None and k < N_CANDIDATES

    t0 = time.process_time()
    w0 = time.time()
    test = candidates([args.test], args.n_test, args.workers, option="--test")
    names = "+".join(p.name for p in args.train)
    train_dir = (
        MODELS_DIR
        / f"carrier-ranker-{names}-{args.n_train}-s{args.seed}-e{args.epochs}"
        f"{f'-k{k}' if sampled else ''}{f'-l{loud}' if sampled and loud else ''}"
        f"{f'-c{args.context}' if args.context else ''}"
    )
    if (train_dir / "model.json").exists():
        model, record = CR.load_ranker(train_dir)
    else:
        train = candidates(args.train, args.n_train, args.workers, option="--train")
        tw = time.time()
        model, record = CR.train_ranker(
            train["features"],
            train["mask"],
            train["freqs_hz"],
            train["f0_hz"],
            train["carrier_hz"],
            seed=args.seed,
            config=sampling,
        )
        record["training_wall_s"] = round(time.time() - tw, 1)
        record["data"] = f"{names} (first {args.n_train} notes)"
        del train
        CR.save_ranker(model, train_dir, record)
    picked = CR.pick(
        model, test["features"], test["mask"], test["freqs_hz"], test["f0_hz"]
    )
    true = test["carrier_hz"]
    _, hit = CR.targets(test["freqs_hz"], test["mask"], true)
    loudest = test["freqs_hz"][:, 0]
    result = {
        "test": f"{args.test.name} (first {args.n_test} notes)",
        "model": str(train_dir.relative_to(DATA_DIR.parent)),
        "training": record,
        "candidate_at_the_carrier": float(hit.mean()),
        "ranker": _scores(picked, true),
        "tracked_f0": _scores(test["f0_hz"], true),
        "loudest_peak": _scores(loudest, true),
    }
    out = (
        DATA_DIR
        / "benchmarks"
        / f"{train_dir.name}-on-{args.test.name}-{args.n_test}.json"
    )
    finish(result, out, cpu0_s=t0, wall0_s=w0)


if __name__ == "__main__":
    main()
