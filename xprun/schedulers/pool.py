"""The ``local`` scheduler: a pool of worker processes on this machine (``-n N``).

Each worker is ``python -m xprun worker SPEC --serve``: it imports the code once (from the Git
snapshot when there is one), then executes the runs it is handed one at a time.  A worker
that dies (killed, out of memory) leaves its run interrupted — its claim's process is gone, so
the next look sees it — and a new worker takes its place; Ctrl-C, or SIGTERM to xprun, stops
every worker cleanly (their runs end interrupted, checkpoint hooks called, fixtures torn down)
and xprun exits 2.  A run that says no further run should start (a full disk) stops the pool
from handing out more.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import reports
from ..errors import SignalHold, Terminated, UsageError
from ..hookimpl import hookimpl
from ..jobs import new_job_dir, write_spec
from ..states import Status
from . import pending

if TYPE_CHECKING:
    from ..config import Config
    from ..runspec import RunSpec
    from ..session import Session


def parse_workers(value: Any) -> int:
    if value in (None, "auto"):
        return os.cpu_count() or 1
    try:
        count = int(value)
    except (TypeError, ValueError):
        count = 0
    if count < 1:
        raise UsageError(f"-n must be a positive number of workers or 'auto', got {value!r}")
    return count


@dataclass(eq=False)
class _Worker:
    proc: subprocess.Popen[bytes]
    current: int | None = None
    buffer: bytes = b""
    started: float = field(default_factory=time.monotonic)


class LocalScheduler:
    name = "local"

    def __init__(self, workers: int) -> None:
        self.workers = workers

    def run(self, session: Session, runs: list[RunSpec]) -> None:
        todo = pending(session, runs)
        if not todo:
            return
        snapshot = session.snapshot(required=False)
        job_dir = new_job_dir(session.config.log_dir)
        spec = write_spec(session, todo, self.name, snapshot, job_dir)
        _Pool(session, todo, spec, min(self.workers, len(todo))).run()


class _Pool:
    def __init__(self, session: Session, runs: list[RunSpec], spec: Any, size: int) -> None:
        self.session = session
        self.runs = runs
        self.spec = spec
        self.size = size
        self.queue = deque(range(len(runs)))
        self.selector = selectors.DefaultSelector()
        self.workers: list[_Worker] = []

    def spawn(self) -> _Worker:
        proc = subprocess.Popen(
            [sys.executable, "-m", "xprun", "worker", str(self.spec), "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        worker = _Worker(proc)
        self.selector.register(proc.stdout, selectors.EVENT_READ, worker)  # type: ignore[arg-type]
        self.workers.append(worker)
        self.assign(worker)
        return worker

    def assign(self, worker: _Worker) -> None:
        stdin = worker.proc.stdin
        assert stdin is not None
        if self.queue and not self.session.shouldstop:
            worker.current = self.queue.popleft()
            try:
                stdin.write(f"{worker.current}\n".encode())
                stdin.flush()
                return
            except BrokenPipeError:
                return  # it died: its end of file comes next
        worker.current = None
        if not stdin.closed:
            stdin.close()  # nothing left: the worker finishes and exits

    def report(self, index: int, status: str, **fields: Any) -> None:
        report = reports.RunReport(self.runs[index], status, **fields)
        self.session.config.hook.xprun_run_logreport(report=report)

    def on_output(self, worker: _Worker) -> None:
        stdout = worker.proc.stdout
        assert stdout is not None
        chunk = os.read(stdout.fileno(), 65536)
        if not chunk:
            self.on_exit(worker)
            return
        if self.read_results(worker, chunk):
            self.assign(worker)

    def read_results(self, worker: _Worker, chunk: bytes) -> bool:
        """Report the whole result lines in ``chunk``; True when the worker's run ended."""
        worker.buffer += chunk
        ended = False
        while b"\n" in worker.buffer:
            line, worker.buffer = worker.buffer.split(b"\n", 1)
            result = json.loads(line)
            fields = {k: result.get(k) or d for k, d in _RESULT_FIELDS}
            self.report(result["index"], result["status"], **fields)
            worker.current = None
            ended = True
        return ended

    def on_exit(self, worker: _Worker) -> None:
        self.selector.unregister(worker.proc.stdout)  # type: ignore[arg-type]
        code = worker.proc.wait()
        self.workers.remove(worker)
        if worker.current is not None:
            how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
            self.report(
                worker.current,
                Status.INTERRUPTED,
                longrepr=f"worker pid {worker.proc.pid} died ({how}) during this run",
            )
            if self.queue and not self.session.shouldstop:
                self.spawn()

    def run(self) -> None:
        try:
            for _ in range(self.size):
                self.spawn()
            while self.workers:
                for key, _ in self.selector.select(timeout=1.0):
                    self.on_output(key.data)
        except (KeyboardInterrupt, Terminated) as exc:
            self.stop(exc)
            raise
        finally:
            self.selector.close()

    def stop(self, reason: BaseException) -> None:
        """Ctrl-C or SIGTERM: every worker ends its run as interrupted (checkpoint hooks,
        teardown), then exits; each run is reported as its worker recorded it.

        On Ctrl-C, workers in the terminal's process group got the same SIGINT; the others
        get SIGTERM after a short grace period.  On SIGTERM (sent to xprun alone, by a
        scheduler or ``kill``) every worker gets SIGTERM at once.  Further signals are held
        until every worker is done: a second Ctrl-C must not orphan them.
        """
        hold = SignalHold()
        hold.hold()
        try:
            self._stop_workers(isinstance(reason, Terminated))
        finally:
            hold.release()

    def _stop_workers(self, terminated: bool) -> None:
        how = "SIGTERM" if terminated else "Ctrl-C"
        grace = time.monotonic() + (0 if terminated else 5)
        for worker in self.workers:
            try:
                worker.proc.wait(max(0.0, grace - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        for worker in list(self.workers):
            try:
                worker.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.proc.kill()
                worker.proc.wait()
            stdout = worker.proc.stdout
            if stdout is not None and worker.current is not None:
                self.read_results(worker, stdout.read())  # the answer it wrote before exiting
            if worker.current is not None:
                self.report(worker.current, Status.INTERRUPTED, longrepr=f"interrupted ({how})")


_RESULT_FIELDS = (
    ("duration", 0.0),
    ("longrepr", ""),
    ("stdout", ""),
    ("stderr", ""),
    ("teardown_error", ""),
    ("shouldstop", ""),
)


@hookimpl(trylast=True)
def xprun_choose_scheduler(name: str, config: Config) -> LocalScheduler | None:
    if name != "local":
        return None
    table = config.settings.values.get("local") or {}
    return LocalScheduler(parse_workers(config.option.numprocesses or table.get("workers")))
