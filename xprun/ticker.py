"""One background thread that runs periodic jobs: heartbeats and metric flushes.

Started on first use (never at import), a daemon so it never keeps a process alive, and with
SIGINT, SIGTERM and SIGUSR2 blocked: only the main thread receives them, so a signal held by
the main thread while it records a run stays held (a thread that accepted it would let it
through).  A job that raises is dropped from the schedule after reporting once on stderr; it
never kills the thread or the run — jobs that must not be dropped (heartbeats) handle their
own errors.  An error in this thread has no caller to raise to: it is reported (``report``) on
the process's stderr, and in the run's ``stderr.log`` when it concerns a run.

Adding and cancelling a job is cheap (a list append, a flag): a sweep of short runs adds and
cancels a heartbeat per run.  The thread is woken only when a new job is due before the thread
would wake anyway, so a run shorter than its heartbeat interval costs no thread switch, and a
run that hangs still gets its heartbeats.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

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
        self._until = 0.0  # when the thread wakes next (monotonic), unless woken earlier

    def every(self, interval: float, func: Callable[[], None]) -> Job:
        """Call ``func`` every ``interval`` seconds (first call after one interval)."""
        job = Job(func, interval, due=time.monotonic() + interval)
        with self._lock:
            self._jobs.append(job)
            if self._thread is None or not self._thread.is_alive():
                self._until = 0.0
                self._thread = threading.Thread(target=self._loop, name="xprun-ticker", daemon=True)
                previous = block_signals()  # the new thread inherits the blocked mask
                try:
                    self._thread.start()
                finally:
                    restore_signals(previous)
            wake = job.due < self._until
        if wake:
            self._wake.set()
        return job

    def _loop(self) -> None:
        while True:
            now = time.monotonic()
            with self._lock:
                self._jobs = [j for j in self._jobs if not j.cancelled]
                due = [j for j in self._jobs if j.due <= now]
                next_due = min((j.due for j in self._jobs), default=now + 1.0)
                # Jobs added from now on compare their first due time with this.
                until = self._until = min(next_due, now + 1.0)
            for job in due:
                job.due = now + job.interval
                try:
                    job.func()
                except BaseException as exc:  # the thread outlives any job, even sys.exit()
                    job.cancel()
                    report(f"background job {job.func!r} failed and was stopped: {exc!r}")
            self._wake.wait(max(0.0, until - time.monotonic()))
            self._wake.clear()


def report(message: str, run_dir: Path | None = None) -> None:
    """``xprun: warning: <message>`` on the process's own stderr (the terminal of ``xprun``, a
    worker's or a batch job's log, whatever a run's capture holds meanwhile) and, for a run,
    appended to its ``stderr.log``.  Never raises: it is called where nothing can catch."""
    line = f"xprun: warning: {message}\n"
    try:
        if sys.__stderr__ is not None:
            sys.__stderr__.write(line)
            sys.__stderr__.flush()
        else:  # no Python stream (pythonw, a closed stderr): the descriptor, if any
            os.write(2, line.encode("utf-8", "replace"))
    except (OSError, ValueError):  # closed or gone: nowhere left to say it
        pass
    if run_dir is not None:
        try:
            with open(Path(run_dir) / "stderr.log", "a", encoding="utf-8") as log:
                log.write(line)
        except OSError:  # the run directory is what failed: the line on stderr stays
            pass


_TICKER = Ticker()


def every(interval: float, func: Callable[[], None]) -> Job:
    return _TICKER.every(interval, func)
