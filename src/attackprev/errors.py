"""The one error type users see: bad input, reported as a single line."""

from __future__ import annotations

from pathlib import Path


class InputError(Exception):
    """Bad input, reported to the user as one line: ``file:row: problem``.

    Parameters
    ----------
    message
        What is wrong and, where possible, how to fix it.
    path
        The file the problem is in, if any.
    row
        The 1-based line number in that file (the header is line 1), if known.
    """

    def __init__(self, message: str, path: str | Path | None = None, row: int | None = None):
        super().__init__(message)
        self.message = message
        self.path = None if path is None else str(path)
        self.row = row

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = self.path if self.row is None else f"{self.path}:{self.row}"
            where += ": "
        return f"{where}{self.message}"
