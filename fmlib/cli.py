"""The command line: ``python -m fmlib COMMAND ...`` (also installed as ``fmlib``).

Each command lives in the module that owns its work and provides two functions,
``configure_parser(parser)`` and ``run(args) -> int``; this file only routes. A user's
mistake (:class:`~fmlib.errors.InputError`, :class:`~fmlib.errors.MissingFileError`)
is printed as one line ``error: ...`` with exit status 2 and no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from fmlib.errors import InputError, MissingFileError

#: command name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "render": ("fmlib.render_cli", "render a patch JSON to a 16 kHz WAV"),
    "generate": ("fmlib.dataset", "generate a random-patch training dataset"),
    "stats": ("fmlib.stats", "statistics, histograms and aliasing report of a dataset"),
    "train": ("fmlib.train", "train the paper's CNN on a dataset"),
    "predict": ("fmlib.predict", "predict a patch for a WAV file with a trained model"),
    "match": (
        "fmlib.match_cli",
        "find a patch for a WAV (or a folder of WAVs) by analysis and search",
    ),
    "syx": ("fmlib.syx_cli", "export patches as DX7 sysex, or import DX7 sysex"),
    "evaluate": (
        "fmlib.evaluate",
        "re-synthesis evaluation (Tables 6-9) on an NSynth-layout set",
    ),
    "download-nsynth": (
        "fmlib.nsynth",
        "download and extract the official NSynth test split",
    ),
    "soundfont-set": ("fmlib.soundfont", "render the offline SoundFont evaluation set"),
    "reproduce": (
        "fmlib.reproduce",
        "run every notebook in order under a profile (Papermill)",
    ),
}


class _Parser(argparse.ArgumentParser):
    """argparse prints usage + error and exits 2; we keep it to one line."""

    def error(self, message: str) -> None:  # noqa: D401
        self.exit(2, f"error: {self.prog}: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m fmlib", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        try:
            importlib.import_module(module).configure_parser(p)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            p.set_defaults(_missing=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    if getattr(args, "_missing", False):
        print(
            f"error: the {args.command!r} command is not available in this version",
            file=sys.stderr,
        )
        return 2
    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except (InputError, MissingFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
