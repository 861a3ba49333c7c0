"""``python -m fmlib render PATCH.json -o OUT.wav``: render a patch to a 16 kHz file.

The output's extension chooses the format (``.wav``, ``.flac``, ``.ogg``; see
:func:`fmlib.files.write_audio`). Every path is checked before the note is rendered;
the output can never be the input patch.
"""

from __future__ import annotations

import argparse
import math
import sys

from fmlib.synth import params as P

#: The shortest note the command renders, s (160 samples at 16 kHz): anything
#: shorter is almost certainly a typo, and the library's limit (2 samples) is not a
#: sound anyone can hear.
MIN_DURATION_S = 0.01
#: The longest, s (as :data:`fmlib.synth.engine.MAX_DURATION_S`).
MAX_DURATION_S = 60.0


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("patch", help="patch JSON file")
    p.add_argument(
        "-o",
        "--out",
        required=True,
        help="output audio file, 16 kHz mono: .wav, .flac or .ogg",
    )
    p.add_argument(
        "--duration",
        type=float,
        default=P.DURATION_S,
        help=(
            f"note length in seconds, {MIN_DURATION_S:g} to {MAX_DURATION_S:g} "
            f"(default {P.DURATION_S})"
        ),
    )
    p.add_argument(
        "--note-off",
        type=float,
        default=P.NOTE_OFF_S,
        help=f"note-off time in seconds, >= 0 (default {P.NOTE_OFF_S})",
    )


def check_timing(duration_s: float, note_off_s: float) -> list[str]:
    """Check ``--duration`` and ``--note-off``; return one-line warnings.

    Raises:
        InputError: a value out of range (naming the option and what is valid).
    """
    from fmlib.errors import InputError

    if not (
        math.isfinite(duration_s) and MIN_DURATION_S <= duration_s <= MAX_DURATION_S
    ):
        raise InputError(
            f"--duration (duration_s): {duration_s!r} is not valid; valid: "
            f"{MIN_DURATION_S:g} to {MAX_DURATION_S:g} s"
        )
    if not (math.isfinite(note_off_s) and note_off_s >= 0):
        raise InputError(
            f"--note-off (note_off_s): {note_off_s!r} is not valid; valid: >= 0 s"
        )
    if note_off_s >= duration_s:
        return [
            f"--note-off {note_off_s:g} s is at or after the end of the note "
            f"({duration_s:g} s): the note has no release"
        ]
    return []


def run(args: argparse.Namespace) -> int:
    from fmlib import files

    patch_path = files.check_input(args.patch, what="patch JSON file")
    files.check_distinct({"-o": args.out}, {"input patch": patch_path})
    out = files.check_output(args.out, kind="audio")
    warnings = check_timing(args.duration, args.note_off)

    from fmlib.audio.audio_io import write_wav
    from fmlib.synth.engine import render
    from fmlib.synth.patch import load_patch

    patch = load_patch(patch_path)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    audio = render(patch, duration_s=args.duration, note_off_s=args.note_off)
    write_wav(out, audio, P.SAMPLE_RATE)
    print(
        f"wrote {out} ({audio.size} samples, {audio.size / P.SAMPLE_RATE:.2f} s at "
        f"{P.SAMPLE_RATE} Hz)"
    )
    return 0
