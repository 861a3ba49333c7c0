"""Does a synthesizer in the loop recover the parameters? `match` and the table lookup
scored like the networks on a synthetic test dataset (issue 12's parameter targets).

The networks are scored on notes whose parameters are known
(:mod:`fmlib.evaluation.parameter_scores`: truth in canonical order, interchangeable
modulators matched, ratio and index R² on the audible targets, the carrier's median
error in cents). This script scores the two estimators that search or look up instead
of regressing, and a network beside them, on the same notes and with the same function
(:func:`fmlib.evaluation.parameter_scores.score_column`):

* ``match`` (:func:`fmlib.estimate.match.match_note`, budget and seed as given, no
  starting model): analysis by synthesis, harmonic-locked (carrier at f0/2, f0 or
  2 f0 of the tracked f0, ratios that keep the partials on multiples of f0/2; free
  ratios only for inharmonic notes);
* the table lookup (:func:`fmlib.estimate.lookup.lookup_note`): no search;
* ``model``: a trained network's patch (``--model``, default the shipped fmnet;
  ``--no-model`` leaves it out), so the networks' scores sit in the same table.

Beside the parameter scores it prints how close each re-synthesis sounds to the note
(the paper's log-mel distance, mean and median), so "sounds alike, other parameters"
is told apart from "sounds wrong", next to two baselines of the real-note evaluation
with the true carrier as the labelled pitch (a 440 Hz sine; a sine at the carrier
with the note's RMS envelope). Notes are the first ``--n`` of the dataset, in
order; match's numbers are deterministic for a seed on one machine.

Usage::

    .venv/bin/python -m fmlib generate --n 500 --seed 1 --prior musical \\
        --out data/datasets/fm-musical-500-s1
    PYTHONPATH=. .venv/bin/python benchmarks/match_parameters.py \\
        --test data/datasets/fm-musical-500-s1 [--n 500] [--budget 1500] [--seed 0] \\
        [--model DIR | --no-model]

The per-note vectors and every number printed go to ``--out`` (default
``data/benchmarks/match_parameters-<dataset>-<n>.json``, written atomically).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _scores(pred, truth, algorithm):
    from fmlib.evaluation.parameter_scores import score_column

    col = score_column(pred, truth, algorithm=algorithm)
    return {k: float(v) for k, v in col.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--test", required=True, type=Path, help="dataset folder")
    parser.add_argument("--n", type=int, default=500, help="first N notes (500)")
    parser.add_argument("--budget", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        help="trained model folder scored beside them (default: the shipped fmnet)",
    )
    parser.add_argument(
        "--no-model", action="store_true", help="score match and the lookup only"
    )
    args = parser.parse_args(argv)

    from fmlib import files
    from fmlib.audio.metrics import logmel_distance
    from fmlib.datasets.dataset_reader import open_dataset
    from fmlib.errors import InputError
    from fmlib.estimate import fmnet_targets
    from fmlib.estimate.lookup import lookup_note
    from fmlib.estimate.match import check_budget, match_note
    from fmlib.estimate.predict import load_predictor
    from fmlib.evaluation.baselines import enveloped_pitch_sine, sine_440
    from fmlib.paths import DATA_DIR
    from fmlib.synth.engine import render

    try:
        ds = open_dataset(args.test, n=args.n)
        check_budget(args.budget)
        out = files.check_output(
            args.out
            or DATA_DIR
            / "benchmarks"
            / f"match_parameters-{args.test.name}-{ds.n}.json",
            suffixes=(".json",),
        )
        if out.resolve().is_relative_to(args.test.resolve()):
            raise InputError(
                f"{out}: --out lies inside the dataset {args.test}; "
                "write the report elsewhere"
            )
        if args.no_model and args.model is not None:
            raise InputError("--model and --no-model: give one of them")
        predictor = None if args.no_model else load_predictor(args.model)
    except (InputError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    truth = fmnet_targets.canonical_order(ds.vectors(), algorithm=ds.algorithm)
    names = ["match", "lookup"] + ([] if predictor is None else ["model"])
    preds = {name: [] for name in names}
    dist = {name: [] for name in names}
    cpu = {name: 0.0 for name in names}
    # The real-note baselines, with the true carrier as the labelled pitch.
    base = {"sine_440": [], "sine_pitch_env": []}
    for i in tqdm(range(ds.n), desc="notes", unit="note"):
        x = ds.read(i)[0]
        pitch = 69.0 + 12.0 * np.log2(truth[i, 0] / 440.0)
        base["sine_440"].append(logmel_distance(x, sine_440(n_samples=x.size)))
        base["sine_pitch_env"].append(
            logmel_distance(x, enveloped_pitch_sine(x, pitch))
        )
        for name in preds:
            t0 = time.process_time()
            if name == "match":
                patch = match_note(x, budget=args.budget, seed=args.seed).patch
            elif name == "lookup":
                patch = lookup_note(x)
            else:
                patch = predictor.predict_patches(x)[0]
            cpu[name] += time.process_time() - t0
            preds[name].append(patch.to_vector())
            dist[name].append(logmel_distance(x, render(patch)))

    report = {
        "dataset": str(args.test),
        "n": ds.n,
        "budget": args.budget,
        "seed": args.seed,
        "model": None if predictor is None else str(args.model or "shipped fmnet"),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "estimators": {},
    }
    report["baselines"] = {
        name: {"logmel_mean": float(np.mean(d)), "logmel_median": float(np.median(d))}
        for name, d in base.items()
    }
    d440 = np.asarray(base["sine_440"])
    env = np.asarray(base["sine_pitch_env"])
    for name in preds:
        p = np.asarray(preds[name], dtype=np.float64)
        d = np.asarray(dist[name])
        report["estimators"][name] = {
            "scores": _scores(p, truth, ds.algorithm),
            "logmel_mean": float(d.mean()),
            "logmel_median": float(np.median(d)),
            "logmel_gain_vs_sine_440": float(1.0 - d.mean() / d440.mean()),
            "beats_sine_pitch_env_pct": float(100.0 * np.mean(d < env)),
            "cpu_s_per_note": cpu[name] / ds.n,
            "vectors": p.tolist(),
        }
    est = report["estimators"]
    print(f"{ds.n} notes of {args.test}, budget {args.budget}, seed {args.seed}")
    if predictor is not None:
        print(f"model: {report['model']}")
    print(f"{'metric':42s}" + "".join(f" {name:>10s}" for name in names))
    for r in sorted(est["match"]["scores"]):
        print(f"{r:42s}" + "".join(f" {est[n]['scores'][r]:10.3f}" for n in names))
    keys = ("logmel_mean", "logmel_median", "logmel_gain_vs_sine_440")
    for key in (*keys, "beats_sine_pitch_env_pct", "cpu_s_per_note"):
        print(f"{key:42s}" + "".join(f" {est[n][key]:10.3f}" for n in names))
    for name, b in report["baselines"].items():
        print(
            f"baseline {name}: log-mel mean {b['logmel_mean']:.3f}, "
            f"median {b['logmel_median']:.3f}"
        )
    files.make_parents(out)
    files.write_json(out, report)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
