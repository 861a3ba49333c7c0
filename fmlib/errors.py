"""Errors for a user's mistake: caught by the command line and shown as one line.

``InputError`` is a ``ValueError`` and ``MissingFileError`` a ``FileNotFoundError``,
so library callers can catch the standard types. The command line prints
``error: <message>`` and exits with status 2 for both, with no traceback.
"""

from __future__ import annotations


class InputError(ValueError):
    """A value, file content or option that is not valid; the message says what is."""


class MissingFileError(FileNotFoundError):
    """A file or folder named by the user does not exist."""

    def __str__(self) -> str:  # FileNotFoundError's default adds errno noise
        return str(self.args[0]) if self.args else "file not found"
