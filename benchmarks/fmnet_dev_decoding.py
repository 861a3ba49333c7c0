"""Decoding probes of an fmnet model on real notes: which part of its patch costs
log-mel.

For each note of an NSynth-layout folder, the model's patch and variants of it are
rendered and scored against the note with the paper's log-mel distance:

* ``net``: the patch as ``predict`` writes it;
* ``fit_env``: its ADSR and level replaced by ``analysis.fit_envelope``'s;
* ``m1``: its carrier set to the tracker's f0;
* ``m1_fit_env``: both;
* ``mute_unsure``: ``fit_env`` with each modulator muted when its ratio class has
  probability < 0.5;
* ``sine_env``: ``m1_fit_env`` with every modulator muted (a sine at f0);
* ``fixed_r1_i1``: ``m1_fit_env`` with M1 at ratio 1, index 1 and the rest muted.
* ``oracle_r1``: the best of ``m1_fit_env`` with M1 at ratio 1 and index in
  (0, 0.3, 0.6, 1, 1.5, 2, 3), the rest muted, chosen per note *with the original*
  (a ceiling for an estimator of that one-parameter family, not an estimator);
* ``oracle_r1_r2``: the same over M1 (ratio 1, index 0.3/1/2) and M2 (ratio 2,
  index 0/0.3/1) as well.

Prints the mean log-mel and the gain over the 440 Hz sine (193.77 on the dev notes).

Usage::

    .venv/bin/python benchmarks/fmnet_dev_decoding.py MODEL_DIR [--data DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from fmlib.paths import NSYNTH_DEV_DIR  # noqa: E402

SINE_440_DEV = 193.77


def _family_score(x, patch, b1: float, b2: float) -> float:
    """Log-mel distance of ``patch`` with M1 at ratio 1 index ``b1``, M2 at ratio 2
    index ``b2`` and M3-M5 muted."""
    from fmlib.audio.metrics import logmel_distance
    from fmlib.synth.engine import render
    from fmlib.synth.patch import Modulator

    mods = (Modulator(1.0, b1), Modulator(2.0, b2)) + (Modulator(1.0, 0.0),) * 3
    return logmel_distance(x, render(dataclasses.replace(patch, modulators=mods)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="an fmnet model folder")
    parser.add_argument("--data", default=str(NSYNTH_DEV_DIR))
    args = parser.parse_args()

    from fmlib.audio.analysis import fit_envelope, prepare_audio
    from fmlib.audio.audio_io import read_wav
    from fmlib.audio.metrics import logmel_distance
    from fmlib.datasets.nsynth import load_nsynth
    from fmlib.estimate.fmnet import predict_arrays
    from fmlib.estimate.predict import load_predictor
    from fmlib.synth.engine import render
    from fmlib.synth.patch import Modulator

    pred = load_predictor(args.model)
    res: dict[str, list[float]] = {}
    for note in load_nsynth(args.data)["note_str"]:
        path = os.path.join(args.data, "audio", f"{note}.wav")
        x, _ = prepare_audio(*read_wav(path))
        f0, feats, rms = pred.analyse(x[None])
        conf = predict_arrays(pred.model, feats)["ratios"][0].max(axis=-1)
        p = pred.predict_patches(x[None])[0]
        env, level = fit_envelope(rms[0])
        pf = dataclasses.replace(p, envelope=env, level=level)
        pm = dataclasses.replace(p, carrier_hz=float(f0[0]))
        pmf = dataclasses.replace(pf, carrier_hz=float(f0[0]))
        mute = tuple(
            Modulator(m.ratio, m.index if c >= 0.5 else 0.0)
            for m, c in zip(p.modulators, conf, strict=True)
        )
        off = (Modulator(1.0, 0.0),) * 4
        variants = {
            "net": p,
            "fit_env": pf,
            "m1": pm,
            "m1_fit_env": pmf,
            "mute_unsure": dataclasses.replace(pf, modulators=mute),
            "sine_env": dataclasses.replace(
                pmf, modulators=(Modulator(1.0, 0.0),) + off
            ),
            "fixed_r1_i1": dataclasses.replace(
                pmf, modulators=(Modulator(1.0, 1.0),) + off
            ),
        }
        for k, q in variants.items():
            res.setdefault(k, []).append(logmel_distance(x, render(q)))

        r1 = min(
            _family_score(x, pmf, b, 0.0) for b in (0, 0.3, 0.6, 1.0, 1.5, 2.0, 3.0)
        )
        r12 = min(
            _family_score(x, pmf, b1, b2)
            for b1 in (0.3, 1.0, 2.0)
            for b2 in (0, 0.3, 1.0)
        )
        res.setdefault("oracle_r1", []).append(r1)
        res.setdefault("oracle_r1_r2", []).append(min(r1, r12))
    for k, v in res.items():
        mean = float(np.mean(v))
        print(
            f"{k:<12} log-mel {mean:6.1f}  "
            f"gain {100 * (1 - mean / SINE_440_DEV):5.1f} %"
        )


if __name__ == "__main__":
    main()
