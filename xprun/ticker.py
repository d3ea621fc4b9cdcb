"""One background thread that runs periodic jobs: heartbeats and metric flushes.

Started on first use (never at import), a daemon so it never keeps a process alive, and with
SIGINT, SIGTERM and SIGUSR2 blocked: only the main thread receives them, so a signal held by
the main thread while it records a run stays held (a thread that accepted it would let it
through).  A job that raises is dropped from the schedule after reporting once on stderr; it
never kills the thread or the run — jobs that must not be dropped (heartbeats) handle their
own errors.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .errors import block_signals, restore_signals


@dataclass(eq=False)
class Job:
    func: Callable[[], None]
    interval: float
    due: float = field(default=0.0)
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


class Ticker:
    def __init__(self) -> None:
        self._jobs: list[Job] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def every(self, interval: float, func: Callable[[], None]) -> Job:
        """Call ``func`` every ``interval`` seconds (first call after one interval)."""
        job = Job(func, interval, due=time.monotonic() + interval)
        with self._lock:
            self._jobs.append(job)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="xprun-ticker", daemon=True)
                previous = block_signals()  # the new thread inherits the blocked mask
                try:
                    self._thread.start()
                finally:
                    restore_signals(previous)
        self._wake.set()
        return job

    def _loop(self) -> None:
        while True:
            now = time.monotonic()
            with self._lock:
                self._jobs = [j for j in self._jobs if not j.cancelled]
                due = [j for j in self._jobs if j.due <= now]
                next_due = min((j.due for j in self._jobs), default=now + 1.0)
            for job in due:
                job.due = now + job.interval
                try:
                    job.func()
                except Exception as exc:  # never let a job take the thread down
                    job.cancel()
                    sys.__stderr__.write(f"xprun: background job {job.func!r} failed: {exc!r}\n")
            self._wake.wait(max(0.0, min(next_due - time.monotonic(), 1.0)))
            self._wake.clear()


_TICKER = Ticker()


def every(interval: float, func: Callable[[], None]) -> Job:
    return _TICKER.every(interval, func)
