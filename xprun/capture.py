"""Capture of a run's ``stdout``/``stderr`` into ``stdout.log``/``stderr.log``.

Python-level capture (``sys.stdout``/``sys.stderr`` replaced for the run), as pytest's
``--capture=sys``: cheap, and the files are created only when the run prints something.  With
``-s`` the output also goes to the terminal as it is written.

``logging`` is captured too, as pytest's logging plugin captures it for a test.  A handler
made before the run (``logging.basicConfig()`` at the top of a module) holds the terminal's
stream itself, not ``sys.stderr``, so replacing ``sys.stderr`` misses it: while the run is on,
every ``logging.StreamHandler`` that writes to the terminal's stdout or stderr writes to the
run's file instead, with its own format and level (the project's logging configuration is
kept, nothing is added, so no line is written twice).  Without any handler, logging's
last-resort handler writes to ``sys.stderr``, which is the run's already.  A handler made
during the run (``basicConfig`` inside the experiment) writes to the terminal afterwards, not
to the file of a run that has ended.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, TextIO


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
    """Redirect ``sys.stdout``/``sys.stderr``, and the logging handlers that write to them,
    to the run's log files while it runs."""

    def __init__(self, run_dir: Path, echo: bool) -> None:
        self._saved = (sys.stdout, sys.stderr)
        self._handlers: list[tuple[Any, Any]] = []  # (handler, its stream before the run)
        self.out = _RunStream(run_dir, "stdout.log", sys.stdout if echo else None)
        self.err = _RunStream(run_dir, "stderr.log", sys.stderr if echo else None)

    def start(self) -> None:
        sys.stdout, sys.stderr = self.out, self.err
        saved_out, saved_err = self._saved
        to_run: dict[int, _RunStream] = {}
        for stream, replacement in (
            (saved_out, self.out),
            (sys.__stdout__, self.out),
            (saved_err, self.err),
            (sys.__stderr__, self.err),
        ):
            if stream is not None:
                to_run.setdefault(id(stream), replacement)
        self._handlers = [
            (handler, handler.stream)
            for handler in _stream_handlers()
            if id(handler.stream) in to_run
            or isinstance(handler.stream, _RunStream)  # made during an earlier run
        ]
        for handler, stream in self._handlers:
            run_stream = to_run.get(id(stream))
            if run_stream is None:  # an earlier run's stream
                run_stream = self.out if stream._name == self.out._name else self.err
            handler.setStream(run_stream)

    def stop(self) -> tuple[str, str]:
        """Restore the streams; return the tails of what was printed."""
        try:
            self.out.flush()
            self.err.flush()
        finally:
            sys.stdout, sys.stderr = self._saved
            self._restore_handlers()
            self.out.close_file()
            self.err.close_file()
        return self.out.tail(), self.err.tail()

    def _restore_handlers(self) -> None:
        """Give the handlers their streams back; one made during the run that writes to the
        run's file writes to the terminal from now on (the file's run has ended)."""
        swapped = dict((id(handler), stream) for handler, stream in self._handlers)
        self._handlers = []
        saved = {id(self.out): self._saved[0], id(self.err): self._saved[1]}
        for handler in _stream_handlers():
            if id(handler.stream) in saved:
                original = swapped.get(id(handler))
                if original is None or isinstance(original, _RunStream):
                    original = saved[id(handler.stream)]
                handler.setStream(original)


def _stream_handlers() -> Iterator[Any]:
    """Every ``logging.StreamHandler`` of every logger (none when logging is not imported)."""
    logging = sys.modules.get("logging")
    if logging is None:
        return
    loggers = [logging.getLogger()]
    loggers += [
        logger
        for logger in list(logging.Logger.manager.loggerDict.values())
        if isinstance(logger, logging.Logger)
    ]
    seen: set[int] = set()
    for logger in loggers:
        for handler in list(logger.handlers):
            if isinstance(handler, logging.StreamHandler) and id(handler) not in seen:
                seen.add(id(handler))
                yield handler
