"""What leading silence does to ``match``: real notes delayed by a silence before
the note, as a recording made by hand has.

Usage::

    .venv/bin/python benchmarks/bench_leading_silence.py [--data DIR] [--lead-s 0.3]
        [--limit N] [--budget 1500]

Each note of ``--data`` (default: the 110 NSynth dev notes) is delayed by ``--lead-s``
seconds of Gaussian noise of RMS 1e-4 (-80 dBFS; seed 0) and cut back to 4 s, then
matched as the command line matches a file (``match_audio``: ``prepare_audio``, then
``match_note`` without a model, seed 0). Printed, as means and medians over the notes:

- ``attack_s``: the patch's attack, s (the notes' own attacks are mostly a few ms);
- ``logmel_note``: log-mel distance of the patch's rendering to the note itself
  (undelayed): how well the *patch* matches the sound;
- ``logmel_input_from_0``: the rendering, starting at 0, against the delayed input;
- ``logmel_input_aligned``: the rendering delayed by the silence that
  ``prepare_audio`` cut (what ``match --wav`` writes), against the delayed input.
"""

from __future__ import annotations

import argparse
import platform

import numpy as np


def main() -> None:
    from fmlib.audio.analysis import prepare_note
    from fmlib.audio.metrics import logmel_distance
    from fmlib.datasets.nsynth import load_nsynth, read_note
    from fmlib.estimate.match import DEFAULT_BUDGET, match_note
    from fmlib.paths import NSYNTH_DEV_DIR
    from fmlib.synth.engine import render

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=NSYNTH_DEV_DIR)
    ap.add_argument("--lead-s", type=float, default=0.3)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--budget", type=int, default=DEFAULT_BUDGET)
    args = ap.parse_args()
    print(f"machine: {platform.machine()}; lead {args.lead_s} s; budget {args.budget}")

    from tqdm import tqdm

    notes = load_nsynth(args.data)
    paths = list(notes.path)[: args.limit]
    rng = np.random.default_rng(0)
    n_lead = round(args.lead_s * 16_000)
    rows = {k: [] for k in ("attack_s", "logmel_note", "logmel_input_from_0")}
    rows["logmel_input_aligned"] = []
    for path in tqdm(paths, unit="note"):
        x = read_note(path)
        lead = rng.normal(0.0, 1e-4, n_lead).astype(np.float32)
        y = np.concatenate([lead, x])[: x.size]
        prepared = prepare_note(y, 16_000)
        patch = match_note(prepared.x, budget=args.budget, seed=0).patch
        z = render(patch)
        rows["attack_s"].append(patch.envelope.attack_s)
        rows["logmel_note"].append(logmel_distance(x, z))
        rows["logmel_input_from_0"].append(logmel_distance(y, z))
        rows["logmel_input_aligned"].append(
            logmel_distance(y, prepared.align(z)[: y.size])
        )
    print(f"\n{len(paths)} notes\n\n| measure | mean | median |\n| --- | --- | --- |")
    for k, v in rows.items():
        print(f"| {k} | {np.mean(v):.4g} | {np.median(v):.4g} |")


if __name__ == "__main__":
    main()
