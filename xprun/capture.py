"""Capture of a run's ``stdout``/``stderr`` into ``stdout.log``/``stderr.log``.

Python-level capture (``sys.stdout``/``sys.stderr`` replaced for the run), as pytest's
``--capture=sys``: cheap, and the files are created only when the run prints something.  With
``-s`` the output also goes to the terminal as it is written.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import IO, TextIO


class _RunStream(io.TextIOBase):
    """A text stream writing to a file in the run directory, and optionally to a terminal."""

    def __init__(self, run_dir: Path, name: str, echo: TextIO | None) -> None:
        self._run_dir = run_dir
        self._name = name  # the file is made (and its path joined) on the first write
        self._echo = echo
        self._file: IO[str] | None = None
        self._tail: list[str] = []
        self._tail_len = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if self._file is None:
            path = self._run_dir / self._name
            self._file = open(path, "a", encoding="utf-8", errors="replace")  # noqa: SIM115
        self._file.write(text)
        if self._echo is not None:
            self._echo.write(text)
        self._tail.append(text)
        self._tail_len += len(text)
        while self._tail_len > 8192 and len(self._tail) > 1:
            self._tail_len -= len(self._tail.pop(0))
        return len(text)

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()
        if self._echo is not None:
            self._echo.flush()

    def isatty(self) -> bool:
        return False

    def tail(self) -> str:
        return "".join(self._tail)[-8192:]

    def close_file(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class RunCapture:
    """Redirect ``sys.stdout``/``sys.stderr`` to the run's log files while it runs."""

    def __init__(self, run_dir: Path, echo: bool) -> None:
        self._saved = (sys.stdout, sys.stderr)
        self.out = _RunStream(run_dir, "stdout.log", sys.stdout if echo else None)
        self.err = _RunStream(run_dir, "stderr.log", sys.stderr if echo else None)

    def start(self) -> None:
        sys.stdout, sys.stderr = self.out, self.err

    def stop(self) -> tuple[str, str]:
        """Restore the streams; return the tails of what was printed."""
        try:
            self.out.flush()
            self.err.flush()
        finally:
            sys.stdout, sys.stderr = self._saved
            self.out.close_file()
            self.err.close_file()
        return self.out.tail(), self.err.tail()
