"""``python -m fmlib render PATCH.json -o OUT.wav``: render a patch to a 16 kHz WAV."""

from __future__ import annotations

import argparse

from fmlib import params as P
from fmlib.audio_io import check_output_path, write_wav
from fmlib.patch import load_patch
from fmlib.synth import render


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("patch", help="patch JSON file")
    p.add_argument("-o", "--out", required=True, help="output WAV file (16 kHz, mono)")
    p.add_argument(
        "--duration",
        type=float,
        default=P.DURATION_S,
        help=f"note length in seconds (default {P.DURATION_S})",
    )
    p.add_argument(
        "--note-off",
        type=float,
        default=P.NOTE_OFF_S,
        help=f"note-off time in seconds (default {P.NOTE_OFF_S})",
    )


def run(args: argparse.Namespace) -> int:
    out = check_output_path(args.out)  # fail before any work
    audio = render(
        load_patch(args.patch), duration_s=args.duration, note_off_s=args.note_off
    )
    write_wav(out, audio, P.SAMPLE_RATE)
    print(
        f"wrote {out} ({audio.size} samples, {audio.size / P.SAMPLE_RATE:.2f} s at "
        f"{P.SAMPLE_RATE} Hz)"
    )
    return 0
