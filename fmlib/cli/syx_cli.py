"""``python -m fmlib syx export|import``: fmlib patches to DX7 sysex and back.

* ``syx export PATCH.json [PATCH2.json ...] -o OUT.syx`` writes one voice (163
  bytes) for one patch, a 32-voice bank (4,104 bytes) for 2..32, and prints each
  voice's name, the MIDI key that plays its ``carrier_hz`` and the quantisation of
  every parameter.
* ``syx import IN.syx -o DIR`` writes one patch JSON per representable voice
  (``<name>.json``, or ``NN_<name>.json`` for a bank) and says on stderr why any
  other voice was skipped; no representable voice at all is an error.

Outputs are written atomically; an output that is one of the inputs, or that exists
and is not a regular file, is refused before any work; a failed import removes what
it wrote.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from fmlib.errors import InputError, MissingFileError
from fmlib.synth.dx7 import (
    BANK_VOICES,
    INIT_VOICE,
    bank_sysex,
    patch_to_voice,
    read_syx,
    voice_sysex,
    voice_to_patch,
    write_bytes_atomic,
)
from fmlib.synth.patch import load_patch


def configure_parser(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="syx_command", metavar="{export,import}")
    sub.required = True
    ex = sub.add_parser("export", help="patch JSONs -> one voice or a 32-voice bank")
    ex.add_argument("patches", nargs="+", help="1..32 patch JSON files")
    ex.add_argument("-o", "--out", required=True, help="output .syx file")
    im = sub.add_parser("import", help="a .syx voice or bank -> patch JSONs")
    im.add_argument("syx", help="a DX7 single-voice dump or 32-voice bank")
    im.add_argument("-o", "--out", required=True, help="output folder (created)")


def _same(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and a.samefile(b)
    except OSError:
        return False


def _check_output_file(out: Path, inputs: list[Path]) -> None:
    if any(_same(out, i) or out.resolve() == i.resolve() for i in inputs):
        raise InputError(f"{out}: is one of the inputs; refusing to overwrite it")
    if out.exists() and not out.is_file():
        raise InputError(f"{out}: exists and is not a regular file; refusing to write")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise MissingFileError(f"{parent}: output folder does not exist")


def run_export(args: argparse.Namespace) -> int:
    inputs = [Path(x) for x in args.patches]
    out = Path(args.out)
    if len(inputs) > BANK_VOICES:
        raise InputError(
            f"{len(inputs)} patches: a DX7 bank holds at most {BANK_VOICES}; "
            "split them over several files"
        )
    _check_output_file(out, inputs)
    voices, reports = [], []
    for path in inputs:
        patch = load_patch(path)
        try:
            voice, report = patch_to_voice(patch, name=path.stem.upper())
        except InputError as exc:
            raise InputError(f"{path}: {exc}") from None
        voices.append(voice)
        reports.append(report)
    blob = voice_sysex(voices[0]) if len(voices) == 1 else bank_sysex(voices)
    write_bytes_atomic(out, blob)
    for number, (path, report) in enumerate(zip(inputs, reports, strict=True), 1):
        print(f"[{number}] {path}")
        print("\n".join(report.lines()))
    kind = "one voice" if len(voices) == 1 else f"a bank of {len(voices)} voices"
    pad = "" if len(voices) in (1, BANK_VOICES) else " (the rest INIT VOICE)"
    print(f"wrote {out} ({len(blob)} bytes, {kind}{pad})")
    return 0


def _slug(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_-]+", "_", name.strip()).strip("_")
    return s or "voice"


def run_import(args: argparse.Namespace) -> int:
    src = Path(args.syx)
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir}: exists and is not a folder")
    parent = out_dir.parent if str(out_dir.parent) else Path(".")
    if not parent.is_dir():
        raise MissingFileError(f"{parent}: folder of the output folder does not exist")
    voices = read_syx(src)
    bank = len(voices) > 1
    planned: list[tuple[Path, str]] = []
    skipped: list[str] = []
    for number, voice in enumerate(voices, start=1):
        label = f"voice {number} {voice.name.rstrip()!r}"
        if bank and voice == INIT_VOICE:
            continue
        try:
            patch = voice_to_patch(voice)
        except InputError as exc:
            reason = str(exc).split(": ", 1)[-1]
            skipped.append(f"{src}: {label}: {reason}")
            continue
        stem = _slug(voice.name)
        fname = f"{number:02d}_{stem}.json" if bank else f"{stem}.json"
        planned.append((out_dir / fname, json.dumps(patch.to_dict(), indent=2) + "\n"))
    if not planned:
        raise InputError(
            skipped[0] if skipped else f"{src}: the bank holds only INIT VOICE slots"
        )
    for path, _ in planned:
        if _same(path, src):
            raise InputError(f"{path}: is the input; refusing to overwrite it")
        if path.exists() and not path.is_file():
            raise InputError(f"{path}: exists and is not a regular file")
    created = not out_dir.exists()
    out_dir.mkdir(exist_ok=True)
    written: list[Path] = []
    try:
        for path, text in planned:
            write_bytes_atomic(path, text.encode("utf-8"))
            written.append(path)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        if created:
            try:
                out_dir.rmdir()
            except OSError:
                pass
        raise
    for line in skipped:
        print(f"skipped {line}", file=sys.stderr)
    for path in written:
        print(f"wrote {path}")
    print(f"{len(written)} patch(es) in {out_dir}; {len(skipped)} voice(s) skipped")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.syx_command == "export":
        return run_export(args)
    return run_import(args)
