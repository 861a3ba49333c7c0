"""Probe for issue 12's R² target: ratios and indices read from the carrier's peak.

Design D (:mod:`fmlib.estimate.carrier_ranker`) describes each spectral peak ``c`` by
the spectrum in cells scaled by ``c`` and by the mirror pairs ``c ± d``. At the
carrier's own peak those features are the note's spectrum in units of the carrier,
where modulator k's sidebands sit at ``c ± n * ratio_k * c``. This probe measures how
much of the ratios and indices that view holds: a dense regression (512-512-256,
ReLU, dropout 0.2) from one peak's 486 ranker inputs to the five ratios (linear) and
five indices, trained with a squared error masked to the audible targets
(:func:`fmlib.estimate.fmnet_targets.audibility`) on standardised, canonically
ordered targets. It is a measurement, not one of fmlib's estimators.

Trained on the features at the true carrier's peak (notes that have one), it is
scored on the test notes twice, with
:func:`fmlib.estimate.fmnet_targets.parameter_metrics` (audible targets,
interchangeable modulators matched):

* **picked**: every test note, at the peak the ranker picks (carrier and features
  both from the audio, as an estimator would have them);
* **oracle**: the notes that have a peak at the true carrier, at that peak (what a
  perfect carrier would allow).

Usage (after ``benchmarks/carrier_ranker.py`` has cached the candidates of the same
datasets and trained ``--ranker``)::

    .venv/bin/python benchmarks/carrier_relative_params.py [--train DIR ...]
        [--n-train 40000] [--test DIR] [--n-test 5000] [--ranker MODEL_DIR]
        [--seed 0] [--epochs 30]

Prints the R² table and writes
``data/benchmarks/carrier_relative_params-<train>-<n>-s<seed>-on-<test>-<n>.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from _report import finish
from carrier_ranker import CHUNK, cache_file

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _open(path: Path, option: str):
    """The dataset at ``path``, or one line naming ``option`` and exit 2."""
    from fmlib.datasets.dataset_reader import open_dataset

    try:
        return open_dataset(path)
    except (FileNotFoundError, ValueError) as err:
        print(f"{option}: {err}", file=sys.stderr)
        sys.exit(2)


def _rows(
    path: Path, n: int, ranker=None, *, at_most: bool = False
) -> dict[str, np.ndarray]:
    """The true parameters of the first ``n`` notes (of all of them if fewer and
    ``at_most``) and the ranker inputs of one peak each: at the true carrier
    (``true_*``, with ``hit``) and, given a ranker, at its pick (``pick_*``). Read
    chunk by chunk from the candidates cache."""
    from fmlib.estimate import carrier_ranker as CR
    from fmlib.synth import params as P

    option = "--test" if ranker is not None else "--train"
    ds = _open(path, option)
    if at_most:
        n = min(n, len(ds))
    if n > len(ds):
        print(
            f"--n-{option[2:]}: {path} has {len(ds)} notes; give at most that",
            file=sys.stderr,
        )
        sys.exit(2)
    truth = ds.params[list(P.TARGET_NAMES)].to_numpy(np.float64)[:n]
    parts: dict[str, list] = {}
    for start in range(0, n, CHUNK):
        f = cache_file(path, start, len(ds))
        if not f.exists():
            print(
                f"{f}: missing; run benchmarks/carrier_ranker.py on {path} first",
                file=sys.stderr,
            )
            sys.exit(2)
        t = min(CHUNK, n - start)
        with np.load(f, allow_pickle=False) as z:
            feats, mask = z["features"][:t], z["mask"][:t]
            freqs, f0 = z["freqs_hz"][:t], z["f0_hz"][:t]
        label, hit = CR.targets(freqs, mask, truth[start : start + t, 0])
        picks = {"true": label}
        if ranker is not None:
            # a note with no candidate reads its (masked) first slot
            picks["pick"] = np.maximum(CR.pick_index(ranker, feats, mask, freqs, f0), 0)
        r = np.arange(t)
        for name, k in picks.items():
            x, _ = CR._inputs(
                feats[r, k][:, None], mask[r, k][:, None], freqs[r, k][:, None], f0
            )
            parts.setdefault(f"{name}_x", []).append(x[:, 0])
            parts.setdefault(f"{name}_hz", []).append(freqs[r, k])
        parts.setdefault("hit", []).append(hit)
    out = {k: np.concatenate(v) for k, v in parts.items()}
    out["truth"] = truth
    return out


def _r2(pred_ri: np.ndarray, carrier_hz, truth, rows) -> dict[str, float]:
    from fmlib.estimate import fmnet_targets as T

    pred = truth.copy()
    pred[:, 0] = carrier_hz
    pred[:, T.RATIO_COLS] = np.maximum(pred_ri[:, :5], 1e-3)
    pred[:, T.INDEX_COLS] = np.maximum(pred_ri[:, 5:], 0.0)
    met = T.parameter_metrics(pred[rows], truth[rows], algorithm="dx7_18")
    out = {"carrier_median_cents": round(met["carrier_hz"]["median_cents"], 1)}
    for kind in ("ratio", "index"):
        for k in range(1, 6):
            out[f"{kind}_{k}"] = round(met[f"{kind}_{k}"]["r2"], 3)
    return out


def main() -> None:
    from fmlib.paths import DATA_DIR, DATASETS_DIR, MODELS_DIR

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=Path, action="append")
    ap.add_argument("--n-train", type=int, default=40_000)
    ap.add_argument("--test", type=Path, default=DATASETS_DIR / "fm-musical-5000-s1")
    ap.add_argument("--n-test", type=int, default=5000)
    ap.add_argument(
        "--ranker",
        type=Path,
        default=MODELS_DIR / "carrier-ranker-fm-musical-40000-s0-40000-s0-e12",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=30)
    args = ap.parse_args()
    args.train = args.train or [DATASETS_DIR / "fm-musical-40000-s0"]
    for name in ("n_train", "n_test", "epochs"):
        if getattr(args, name) < 1:
            print(f"--{name.replace('_', '-')}: must be >= 1", file=sys.stderr)
            sys.exit(2)

    import keras

    from fmlib.estimate import carrier_ranker as CR
    from fmlib.estimate import fmnet_targets as T
    from fmlib.synth import params as P

    t0, w0 = time.process_time(), time.time()
    try:
        ranker, _ = CR.load_ranker(args.ranker)
    except (FileNotFoundError, ValueError) as err:
        print(f"--ranker: {err}", file=sys.stderr)
        sys.exit(2)
    test = _rows(args.test, args.n_test, ranker)
    xs, ys, ms, left = [], [], [], args.n_train
    for path in args.train:
        if left <= 0:
            break
        tr = _rows(path, left, at_most=True)
        left -= len(tr["truth"])
        v = T.canonical_order(tr["truth"], algorithm="dx7_18")
        ratio_ok, index_ok = T.audibility(v, algorithm="dx7_18")
        h = tr["hit"]
        xs.append(tr["true_x"][h])
        ys.append(v[h][:, np.r_[T.RATIO_COLS, T.INDEX_COLS]])
        ms.append(np.concatenate([ratio_ok, index_ok], axis=1)[h])
    if left > 0:
        print(
            f"--n-train: the datasets hold {args.n_train - left} notes", file=sys.stderr
        )
        sys.exit(2)
    x, y, m = np.concatenate(xs), np.concatenate(ys), np.concatenate(ms)
    mu, sd = y.mean(axis=0), y.std(axis=0)

    keras.utils.set_random_seed(args.seed)

    def masked_mse(target, out):
        err = (target[:, :10] - out) ** 2
        w = target[:, 10:]
        return keras.ops.sum(w * err) / keras.ops.maximum(keras.ops.sum(w), 1.0)

    inp = keras.Input((x.shape[1],))
    norm = keras.layers.Normalization()
    norm.adapt(x[:5000])
    h = norm(inp)
    for width in (512, 512, 256):
        h = keras.layers.Dense(width, activation="relu")(h)
        h = keras.layers.Dropout(0.2)(h)
    model = keras.Model(inp, keras.layers.Dense(10)(h))
    model.compile(keras.optimizers.Adam(1e-3), masked_mse)
    tw = time.time()
    hist = model.fit(
        x,
        np.concatenate([(y - mu) / sd, m], axis=1).astype(np.float32),
        batch_size=128,
        epochs=args.epochs,
        validation_split=0.1,
        callbacks=[
            keras.callbacks.EarlyStopping(patience=4, restore_best_weights=True)
        ],
        verbose=2,
    )
    train_s = time.time() - tw

    def predict(inputs):
        return model.predict(inputs, batch_size=1024, verbose=0) * sd + mu

    every = np.ones(len(test["truth"]), bool)
    result = {
        "test": f"{args.test.name} (first {args.n_test} notes)",
        "train": "+".join(p.name for p in args.train) + f" (first {args.n_train})",
        "training_notes_with_a_hit": int(len(x)),
        "epochs": len(hist.history["loss"]),
        "training_wall_s": round(train_s, 1),
        "ranker": str(args.ranker),
        "seed": args.seed,
        "r2_picked": _r2(
            predict(test["pick_x"]), test["pick_hz"], test["truth"], every
        ),
        "r2_oracle": _r2(
            predict(test["true_x"]), test["true_hz"], test["truth"], test["hit"]
        ),
        "oracle_notes": int(test["hit"].sum()),
        "targets": list(P.TARGET_NAMES[1:11]),
    }
    out = (
        DATA_DIR
        / "benchmarks"
        / (
            f"carrier_relative_params-{'+'.join(p.name for p in args.train)}"
            f"-{args.n_train}-s{args.seed}-on-{args.test.name}-{args.n_test}.json"
        )
    )
    finish(result, out, cpu0_s=t0, wall0_s=w0)


if __name__ == "__main__":
    main()
