"""The command line: ``python -m fmlib COMMAND ...`` (also installed as ``fmlib``).

Each command lives in the module that owns its work and provides two functions,
``configure_parser(parser)`` and ``run(args) -> int``; this file only routes. Only the
chosen command's module is imported (``python -m fmlib --help`` imports none), so
``render`` never loads TensorFlow, librosa or pandas, and each command checks its paths
before it imports anything heavy.

A user's mistake (:class:`~fmlib.errors.InputError`,
:class:`~fmlib.errors.MissingFileError`) is printed as one line ``error: ...`` with exit
status 2 and no traceback; so is any other ``OSError`` (naming the path and the
reason). TensorFlow's C++ log is silenced (``TF_CPP_MIN_LOG_LEVEL`` before the import,
and the native log lines that TensorFlow writes before its logging is initialised are
discarded); Python warnings print as one line each. ``FMLIB_TF_LOG=1`` keeps
TensorFlow's log.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
import warnings
from collections.abc import Iterator

from fmlib.errors import InputError, MissingFileError

#: command name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "render": ("fmlib.cli.render_cli", "render a patch JSON to a 16 kHz WAV"),
    "generate": ("fmlib.cli.dataset_cli", "generate a random-patch training dataset"),
    "stats": (
        "fmlib.cli.stats_cli",
        "statistics, histograms and aliasing report of a dataset",
    ),
    "train": ("fmlib.cli.train_cli", "train the paper's CNN on a dataset"),
    "predict": (
        "fmlib.estimate.predict",
        "predict a patch for a WAV file with a trained model",
    ),
    "match": (
        "fmlib.cli.match_cli",
        "find a patch for a WAV (or a folder of WAVs) by analysis and search",
    ),
    "syx": ("fmlib.cli.syx_cli", "export patches as DX7 sysex, or import DX7 sysex"),
    "evaluate": (
        "fmlib.evaluation.evaluate",
        "re-synthesis evaluation (Tables 6-9) on an NSynth-layout set",
    ),
    "download-nsynth": (
        "fmlib.datasets.nsynth",
        "download and extract the official NSynth test split",
    ),
    "soundfont-set": (
        "fmlib.datasets.soundfont",
        "render the offline SoundFont evaluation set",
    ),
    "reproduce": (
        "fmlib.notebook.reproduce",
        "run every notebook in order under a profile (Papermill)",
    ),
}

#: Commands that may import TensorFlow; their native stderr is silenced.
TENSORFLOW_COMMANDS = frozenset({"train", "predict", "evaluate", "match"})


class _Parser(argparse.ArgumentParser):
    """argparse prints usage + error and exits 2; we keep it to one line."""

    def error(self, message: str) -> None:  # noqa: D401
        self.exit(2, f"error: {self.prog}: {message} (see --help)\n")


def _version() -> str:
    from fmlib import __version__

    return __version__


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``command``'s options are configured (its module imported).

    Args:
        command: The subcommand to configure, or None for none (enough for
            ``--help`` and ``--version``).
    """
    parser = _Parser(prog="python -m fmlib", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"fmlib {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        if name != command:
            continue
        try:
            importlib.import_module(module).configure_parser(p)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            p.set_defaults(_missing=True)
    return parser


def _chosen_command(argv: list[str]) -> str | None:
    """The subcommand named on the command line (the first word not an option)."""
    for word in argv:
        if not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    text = " ".join(str(message).split())
    return f"warning: {text} ({category.__name__})\n"


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Discard what native code writes to file descriptor 2 (TensorFlow's absl log
    lines, printed before ``TF_CPP_MIN_LOG_LEVEL`` is even read), while Python's
    ``sys.stderr`` keeps writing to the terminal. A no-op when ``sys.stderr`` is not
    the process's fd 2 (e.g. captured by a test)."""
    try:
        is_fd2 = sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):
        is_fd2 = False
    if not is_fd2 or os.environ.get("FMLIB_TF_LOG") == "1":
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    python_stderr = sys.stderr
    sys.stderr = open(  # noqa: SIM115 (closed below)
        saved, "w", buffering=1, errors="backslashreplace", closefd=False
    )
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        sys.stderr.close()
        sys.stderr = python_stderr
        os.close(saved)


def _os_error_line(exc: OSError) -> str:
    from fmlib.files import os_error_message

    if exc.filename is not None:
        return os_error_message(exc.filename, exc, action="failed")
    return f"{exc.strerror or exc}"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = _chosen_command(argv)
    parser = build_parser(command)
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
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    quiet = (
        _native_stderr_silenced()
        if args.command in TENSORFLOW_COMMANDS
        else contextlib.nullcontext()
    )
    old_format = warnings.formatwarning
    warnings.formatwarning = _one_line_warning
    try:
        with quiet:
            try:
                return int(importlib.import_module(args._module).run(args) or 0)
            except (InputError, MissingFileError) as exc:
                print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
                return 2
            except OSError as exc:
                print(f"error: {_os_error_line(exc)}", file=sys.stderr)
                return 2
            except KeyboardInterrupt:
                print("interrupted: rerun the same command to resume", file=sys.stderr)
                return 130
    finally:
        warnings.formatwarning = old_format


if __name__ == "__main__":
    sys.exit(main())
