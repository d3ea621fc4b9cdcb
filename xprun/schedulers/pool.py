"""The ``local`` scheduler: a pool of worker processes on this machine (``-n N``).

Each worker is ``python -m xprun worker --serve``.  When the command line or the settings
choose this scheduler, up to :data:`EARLY_WORKERS` workers are started as the session starts,
so that they import xprun and look up package versions while the launcher collects, checks
which runs are complete, takes the Git snapshot and writes the spec (a launch that then runs
nothing on the pool stops them); once collected, they are told which installed packages the
experiments import, and import those meanwhile too; the others start when the runs are known.
Where it is safe (Linux, xprun's own process, one thread, built-in plugins only), the early
workers are forked from the launcher once it has imported what they need, instead of
starting interpreters that import it all again; each child makes itself what a started worker
would be (``worker.run_forked``).  Those started later are always fresh interpreters: by then
the launcher has imported the experiments' code, which workers import from the snapshot.
Each worker then reads the spec's path, imports the code once (from the snapshot when there is
one) and executes the runs it is handed, one at a time.  Runs are handed out a
few at a time (enough to cover about :data:`AHEAD_SECONDS` of runs, at least two): a worker
that finishes a run starts its next one at once, while the launcher reports the first, so no
run waits on a round trip through the launcher.  Every result is reported as it arrives.

A worker that dies (killed, out of memory) leaves the run it had started interrupted — its
claim's process is gone, so the next look sees it — and the runs it had been handed but had
not started go to the other workers; a new worker takes its place.  Each run executes at
most once: a worker says which run it starts before it claims it.  Ctrl-C, or SIGTERM to
xprun, stops every worker cleanly (their runs end interrupted, checkpoint hooks called,
fixtures torn down) and xprun exits 2.  When the sweep must stop (``-x`` after a failure, a
run that says no further run should start: a full disk), the workers are told to drop the
runs they have not started, and a worker that failed under ``-x`` stops by itself.

A caller that does not know all its runs up front (a search: each trial is asked when one
ends) passes a ``feed`` (:data:`Feed`): the pool then keeps its workers when its queue runs
dry, hands out one run per worker, and asks the feed for more after each result.  Runs it
is fed after the spec was written are sent to a worker whole (``worker.serve``), so a worker
started to replace a dead one can run them too.  The guarantees above hold for them.
"""

from __future__ import annotations

import contextlib
import gc
import inspect
import json
import math
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import BuiltinFunctionType, FunctionType, ModuleType
from typing import IO, TYPE_CHECKING, Any, Protocol

from .. import reports
from ..errors import SignalHold, Terminated, UsageError
from ..hookimpl import hookimpl
from ..jobs import new_job_dir, run_entry, write_spec
from ..provenance import prepare as prepare_provenance
from ..states import Status
from . import pending

if TYPE_CHECKING:
    from ..config import Config
    from ..runspec import RunSpec
    from ..session import Session

#: Seconds of runs each worker holds beyond the one it executes: enough to cover the
#: launcher's time to read a result and answer, short enough that the last runs still spread
#: over all workers.
AHEAD_SECONDS = 0.02
#: Bound on the runs a worker holds at once (runs of a few microseconds).
MAX_AHEAD = 32
#: Workers started as the session starts, before the runs are known: their start-up overlaps
#: the launcher's collection; bounded, since a launch may end up running nothing on the pool.
EARLY_WORKERS = 4
_EARLY = "xprun.schedulers.pool.early"


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


class _Process(Protocol):
    """What the pool uses of a worker's process: a ``subprocess.Popen`` (spawned) or a
    :class:`_Forked`."""

    pid: int
    stdin: IO[bytes] | None
    stdout: IO[bytes] | None

    def wait(self, timeout: float | None = None) -> int: ...

    def send_signal(self, sig: int) -> None: ...

    def terminate(self) -> None: ...

    def kill(self) -> None: ...


@dataclass(eq=False)
class _Worker:
    proc: _Process
    sent: deque[int] = field(default_factory=deque)  # handed out, not answered, in order
    running: int | None = None  # the run it said it started and has not answered yet
    started_any: bool = False
    buffer: bytes = b""


def _worker_argv(exitfirst: bool) -> list[str]:
    return ["worker", "--serve", *(["--exitfirst"] if exitfirst else [])]


def _start_worker(exitfirst: bool) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "xprun", *_worker_argv(exitfirst)]
    return subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)


def _may_fork(config: Config) -> bool:
    """Whether this launcher may fork its early workers instead of starting fresh
    interpreters: only where the child can be made what a fresh ``python -m xprun worker``
    would be (``worker.run_forked``; docs/schedulers.md, "local").

    That is on Linux, from the ``xprun`` console script or ``python -m xprun`` with no
    interpreter option (``-X``, ``-W``, ``-O``... are not passed on to spawned workers
    either; a program that calls ``xprun.main()`` has state of its own), with one thread
    (a fork copies only the calling one, and locks the others held would stay held), and
    with the built-in plugins only: a ``-p`` plugin or an installed one has been imported
    and configured by the launcher, which a worker must do from the snapshot itself.
    """
    if not sys.platform.startswith("linux") or threading.active_count() != 1:
        return False
    processes, util = (
        sys.modules.get("multiprocessing.process"),
        sys.modules.get("multiprocessing.util"),
    )
    if getattr(processes, "_children", None) or getattr(util, "_finalizer_registry", None):
        return False  # the launcher's pools, queues...: their processes and finalizers
    from ..cli import console_main

    main = sys.modules.get("__main__")
    options = sys.orig_argv[1:2]
    if getattr(main, "console_main", None) is not console_main or (
        options and options[0].startswith("-") and options[0] != "-m"
    ):
        return False
    loaded = [name for name in config.option.plugins if not name.startswith("no:")]
    return not loaded and not config.pluginmanager.list_plugin_distinfo()


class _Forked:
    """A worker forked by this launcher: its own child (exit status, signals and reaping as
    a spawned one's), with the interface of ``subprocess.Popen`` the pool uses."""

    def __init__(self, pid: int, stdin: int, stdout: int) -> None:
        self.pid = pid
        self.args = [f"<worker forked from {os.getpid()}>"]
        self.stdin: IO[bytes] | None = open(stdin, "wb")  # noqa: SIM115  (the pool closes it)
        self.stdout: IO[bytes] | None = open(stdout, "rb")  # noqa: SIM115
        self.returncode: int | None = None

    def _reap(self, flags: int) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, flags)
            except ChildProcessError:  # SIGCHLD ignored: reaped unseen (as Popen says, 0)
                pid, status = self.pid, 0
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def poll(self) -> int | None:
        return self._reap(os.WNOHANG)

    def wait(self, timeout: float | None = None) -> int:
        if timeout is None:
            self._reap(0)
        deadline = time.monotonic() + (timeout or 0)
        delay = 0.0005
        while self.poll() is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
            time.sleep(min(delay, left))
            delay = min(delay * 2, 0.05)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:  # never a pid reaped already (another process may have it)
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def _fork_worker(exitfirst: bool) -> _Forked:
    """Fork a worker (see :func:`_may_fork`), which waits for the spec as a spawned one."""
    from ..worker import run_forked

    child_in, to_child = os.pipe()
    from_child, child_out = os.pipe()
    for stream in (sys.stdout, sys.stderr):  # else the child holds the same unwritten text
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    # The launcher's objects, frozen, are left alone by the child's garbage collector: it
    # does not copy their memory by touching them, and finalizes none of them.  Signals are
    # blocked across the fork: a Ctrl-C before the child has its own handlers would raise
    # into the launcher's frames there; the child unblocks them once it has.
    gc.freeze()
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    try:
        pid = os.fork()
        if pid == 0:  # the child: never returns into the launcher's frames
            try:
                run_forked(child_in, child_out, _worker_argv(exitfirst), mask)
            finally:
                os._exit(3)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        gc.unfreeze()
        os.close(child_in)
        os.close(child_out)
    return _Forked(pid, to_child, from_child)


class _EarlyWorkers:
    """Workers started as the session starts, waiting for a spec; the pool takes them.
    Forked from the launcher where that is safe (:func:`_may_fork`), else spawned.

    Those no pool took (every run cached, a ``scheduler`` fixture chose another scheduler,
    collection failed) are stopped when the session finishes: they hold no run, and SIGTERM
    ends them at once (silently: the worker returns 2 on it, before and after its imports).
    """

    def __init__(self, count: int, exitfirst: bool, fork: bool) -> None:
        self.exitfirst = exitfirst
        self.procs: list[_Process] = []
        if fork:
            from ..worker import warm_up

            warm_up()  # what every worker imports, once, before the children copy it
        for _ in range(count):
            try:
                proc: _Process = _fork_worker(exitfirst) if fork else _start_worker(exitfirst)
            except OSError:  # no fork now (out of memory, of processes): as before, then
                proc = _start_worker(exitfirst)
            self.procs.append(proc)

    @hookimpl
    def xprun_collection_finish(self, session: Session) -> None:
        """Tell the waiting workers which installed packages the experiments import, so that
        they import them (NumPy, torch: seconds, sometimes) while the launcher takes the
        snapshot and writes the spec, instead of after."""
        from ..worker import IMPORT_PREFIX  # here: the launcher's start-up does not need it

        names = _installed_imports(session)
        if not names:
            return
        line = f"{IMPORT_PREFIX}{' '.join(names)}\n".encode()
        for proc in self.procs:
            with contextlib.suppress(OSError):  # it died: the pool starts another
                assert proc.stdin is not None  # stdin=PIPE
                proc.stdin.write(line)
                proc.stdin.flush()

    def take(self, count: int) -> list[_Process]:
        taken, self.procs = self.procs[:count], self.procs[count:]
        self.stop()
        return taken

    def stop(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(OSError):
                proc.terminate()
        for proc in self.procs:
            for stream in (proc.stdin, proc.stdout):
                with contextlib.suppress(OSError):
                    if stream is not None:
                        stream.close()
            proc.wait()
        self.procs = []

    @hookimpl
    def xprun_sessionfinish(self, session: Session, exitstatus: int) -> None:
        self.stop()


def _installed_imports(session: Session) -> list[str]:
    """The installed top-level packages the experiments' modules hold (``import numpy as np``,
    ``from torch import nn``): what a worker imports anyway when it imports those modules.
    Installed as the snapshot's import confinement means it (a ``site-packages`` folder, a
    virtual environment's even inside the project): a worker imports nothing of the user's
    code before the snapshot, and nothing xprun alone would import."""
    from ..snapshot import _installed

    found: set[str] = set()
    for experiment in session.experiments:
        module = inspect.getmodule(experiment.func)
        for value in getattr(module, "__dict__", {}).values():
            name = value.__name__ if isinstance(value, ModuleType) else None
            if name is None and isinstance(value, type | FunctionType | BuiltinFunctionType):
                name = getattr(value, "__module__", None)
            if isinstance(name, str):
                found.add(name.partition(".")[0])
    names = []
    for name in sorted(found - set(sys.stdlib_module_names) - {"xprun", "builtins"}):
        where = getattr(sys.modules.get(name), "__file__", None)
        if where and name.isidentifier() and _installed(Path(where).resolve()):
            names.append(name)
    return names


def _chosen_from_options(config: Config) -> bool:
    """Whether the command line or the settings already choose this scheduler for every
    run that will execute (a ``scheduler`` fixture may still choose another for some)."""
    option = config.option
    if option.collect_only:
        return False
    if option.scheduler:
        return bool(option.scheduler == "local")
    return bool(option.numprocesses) or config.settings["scheduler"] == "local"


@hookimpl
def xprun_sessionstart(session: Session) -> None:
    config = session.config
    if not _chosen_from_options(config):
        return
    table = config.settings.values.get("local") or {}
    workers = parse_workers(config.option.numprocesses or table.get("workers"))
    count, exitfirst = min(workers, EARLY_WORKERS), bool(config.option.exitfirst)
    early = _EarlyWorkers(count, exitfirst, fork=_may_fork(config))
    config.pluginmanager.register(early, _EARLY)


class LocalScheduler:
    name = "local"

    def __init__(self, workers: int) -> None:
        self.workers = workers

    def run(self, session: Session, runs: list[RunSpec], feed: Feed | None = None) -> None:
        """Execute ``runs`` on the pool.  With ``feed``, the pool keeps its workers when its
        queue runs dry and asks ``feed`` for more each time a run ends (see :data:`Feed`),
        until it answers None: a search keeps ``-n`` trials in flight on warm workers."""
        todo = pending(session, runs)
        if not todo:
            return

        def make_spec() -> Path:
            # The Git state and the provenance session's package list are gathered in
            # threads while the snapshot's git calls run (all of them are in the spec).
            session.metadata.read_git_state_soon()
            prepare_provenance(session)
            snapshot = session.snapshot(required=False)
            job_dir = new_job_dir(session.config.log_dir)
            return Path(write_spec(session, todo, self.name, snapshot, job_dir))

        size = self.workers if feed is not None else min(self.workers, len(todo))
        _Pool(session, todo, size, feed).run(make_spec)


#: What a pool asks for more runs: called with the runs that just ended (reported already)
#: and the number of workers that hold no run; returns the runs to add now (they must belong
#: to experiments of the first runs' files: the workers collected those), ``[]`` for none
#: yet, or None when no more will come.  A feed that gives nothing while no run is in flight
#: ends the pool.  The runs it returns are executed as given: the caller checks them first
#: (``pending``, the skip check), as it did the first ones.
Feed = Callable[[list["RunSpec"], int], "list[RunSpec] | None"]


class _Pool:
    def __init__(
        self, session: Session, runs: list[RunSpec], size: int, feed: Feed | None = None
    ) -> None:
        self.session = session
        self.runs = list(runs)
        self.in_spec = len(runs)  # runs after these are sent whole (worker.serve)
        self.feed = feed  # None once it said no more will come
        self.ended: list[RunSpec] = []  # ended since the feed was last asked
        self.error: Exception | None = None  # what the feed raised
        self.size = size
        self.spec: Path | None = None
        self.queue = deque(range(len(runs)))
        self.selector = selectors.DefaultSelector()
        self.workers: list[_Worker] = []
        self.exited: list[_Worker] = []  # out of the pool, not reaped yet
        self.stopping = False  # the workers were told to drop the runs they hold
        self.durations = 0.0
        self.answered = 0

    def spawn(self, proc: _Process | None = None) -> _Worker:
        """Take ``proc`` (a worker started early) into the pool, or start a new one."""
        if proc is None:
            proc = _start_worker(bool(self.session.config.option.exitfirst))
        assert proc.stdout is not None  # stdout=PIPE
        worker = _Worker(proc)
        self.selector.register(proc.stdout, selectors.EVENT_READ, worker)
        self.workers.append(worker)
        if self.spec is not None:
            self.send(worker, f"{self.spec}\n")
            self.assign(worker)
        return worker

    def send(self, worker: _Worker, text: str) -> None:
        stdin = worker.proc.stdin
        assert stdin is not None
        if stdin.closed:
            return
        try:
            stdin.write(text.encode())
            stdin.flush()
        except BrokenPipeError:
            pass  # it died: its end of file comes next

    def close(self, worker: _Worker) -> None:
        stdin = worker.proc.stdin
        if stdin is not None and not stdin.closed:
            try:
                stdin.close()  # nothing left: the worker finishes what it holds and exits
            except BrokenPipeError:
                pass

    def ahead(self) -> int:
        """How many runs a worker holds: its current one and enough to cover the launcher's
        answer (two until a run has ended), never more than its share of what is left."""
        want = 2
        if self.answered:
            mean = self.durations / self.answered
            want = max(2, min(MAX_AHEAD, 1 + math.ceil(AHEAD_SECONDS / max(mean, 1e-6))))
        if self.feed is not None:
            return 1  # fed runs are asked one ending at a time: none waits behind another
        share = math.ceil(len(self.queue) / max(len(self.workers), 1))
        return max(1, min(want, share))

    def assign(self, worker: _Worker) -> None:
        """Top the worker's runs up, in one write; or tell it there is nothing more."""
        if self.session.shouldstop:
            self.stop_dispatching()
            return
        batch = []
        for _ in range(self.ahead() - len(worker.sent)):
            if not self.queue:
                break
            batch.append(self.queue.popleft())
        if batch:
            worker.sent.extend(batch)
            self.send(worker, "".join(self.line(index) for index in batch))
        if not self.queue and self.feed is None:
            self.close(worker)

    def line(self, index: int) -> str:
        if index < self.in_spec:
            return f"{index}\n"
        return json.dumps({"index": index, "run": run_entry(self.runs[index])}) + "\n"

    def refill(self) -> None:
        """Ask the feed for more runs (the ones that ended are in :attr:`ended`), queue them
        and hand them to the workers that hold none; close the workers when it has none."""
        if self.feed is None or self.session.shouldstop:
            self.feed = None
        else:
            ended, self.ended = self.ended, []
            idle = sum(1 for w in self.workers if not w.sent) - len(self.queue)
            try:
                more = self.feed(ended, max(idle, 0))
            except Exception as exc:  # raised once the runs in flight have ended
                self.error, more = exc, None
                self.queue.clear()
                self.stop_dispatching()
            if more is None or (not more and not self.queue and self.idle()):
                self.feed = None
            else:
                self.queue.extend(range(len(self.runs), len(self.runs) + len(more)))
                self.runs.extend(more)
        for worker in list(self.workers):
            if self.queue and not worker.sent:
                self.assign(worker)
            elif self.feed is None and not self.queue:
                self.close(worker)
        if self.queue and not self.workers:
            self.spawn()

    def idle(self) -> bool:
        """No worker holds a run."""
        return all(not w.sent and w.running is None for w in self.workers)

    def stop_dispatching(self) -> None:
        """``-x`` or a full disk: every worker drops the runs it has not started."""
        if self.stopping:
            return
        self.stopping = True
        for worker in self.workers:
            self.send(worker, "stop\n")
            self.close(worker)

    def report(self, index: int, status: Status, **fields: Any) -> None:
        report = reports.RunReport(self.runs[index], Status(status), **fields)
        self.session.config.hook.xprun_run_logreport(report=report)

    def on_output(self, worker: _Worker) -> None:
        stdout = worker.proc.stdout
        assert stdout is not None
        chunk = os.read(stdout.fileno(), 65536)
        if not chunk:
            self.on_exit(worker)
            return
        if self.read_messages(worker, chunk):
            if self.feed is not None:
                self.refill()
            else:
                self.assign(worker)

    def read_messages(self, worker: _Worker, chunk: bytes) -> bool:
        """Take in the whole lines of ``chunk``, reporting each result; True when a run
        ended."""
        worker.buffer += chunk
        ended = False
        while b"\n" in worker.buffer:
            line, worker.buffer = worker.buffer.split(b"\n", 1)
            message = json.loads(line)
            if "start" in message:
                worker.running = message["start"]
                worker.started_any = True
                continue
            index = message["index"]
            fields = {k: message.get(k) or d for k, d in _RESULT_FIELDS}
            if index in worker.sent:
                worker.sent.remove(index)
            worker.running = None
            self.durations += float(fields["duration"])
            self.answered += 1
            self.report(index, Status(message["status"]), **fields)
            self.ended.append(self.runs[index])
            ended = True
        return ended

    def on_exit(self, worker: _Worker) -> None:
        """A worker's output ended: it exited, or died.  The run it had started is reported
        interrupted; the runs it held but had not started go back to the queue."""
        stdout = worker.proc.stdout
        assert stdout is not None  # stdout=PIPE
        self.selector.unregister(stdout)
        self.workers.remove(worker)
        self.exited.append(worker)
        if worker.running is not None:
            code = worker.proc.wait()  # it died during that run: gone already
            how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
            self.report(
                worker.running,
                Status.INTERRUPTED,
                longrepr=f"worker pid {worker.proc.pid} died ({how}) during this run",
            )
            self.ended.append(self.runs[worker.running])
            if worker.running in worker.sent:
                worker.sent.remove(worker.running)
            worker.running = None
        unstarted, worker.sent = list(worker.sent), deque()
        if self.session.shouldstop:
            return
        if unstarted and not worker.started_any:  # it could not start: do not loop on it
            code = worker.proc.wait()
            for index in unstarted:
                self.report(
                    index,
                    Status.INTERRUPTED,
                    longrepr=f"worker pid {worker.proc.pid} exited (code {code}) before "
                    "starting this run",
                )
            unstarted = []
        self.queue.extendleft(reversed(unstarted))
        fed = self.feed is not None
        if (self.queue or fed) and (not self.workers or worker.started_any):
            self.spawn()
        if fed:
            self.refill()

    def run(self, make_spec: Callable[[], Path]) -> None:
        """Start the workers, make the spec (they import meanwhile), then hand out runs and
        report results until every worker has exited."""
        # Ctrl-C or SIGTERM holds the signals as it is raised, not once stop() is called: a
        # second Ctrl-C in between (a worker's checkpoint hook, a user's) would orphan them.
        hold = SignalHold()
        try:
            hold.arm()
            early = self.session.config.pluginmanager.get_plugin(_EARLY)
            taken = early.take(self.size) if isinstance(early, _EarlyWorkers) else []
            for proc in taken:
                self.spawn(proc)
            for _ in range(self.size - len(taken)):
                self.spawn()
            try:
                self.spec = make_spec()
            except BaseException:  # Ctrl-C too: the workers exit without a spec; re-raised
                for worker in self.workers:
                    self.close(worker)  # they exit without a spec
                self.exited += self.workers
                raise
            for worker in list(self.workers):
                self.send(worker, f"{self.spec}\n")
                self.assign(worker)
            if self.feed is not None and any(not w.sent for w in self.workers):
                self.refill()
            while self.workers:
                for key, _ in self.selector.select(timeout=1.0):
                    self.on_output(key.data)
            if self.error is not None:
                raise self.error
        except (KeyboardInterrupt, Terminated) as exc:
            self.stop(exc, hold)
            raise
        finally:
            try:
                self.selector.close()
                for worker in self.exited:
                    worker.proc.wait()
            finally:
                hold.end()  # a signal held meanwhile is raised here

    def stop(self, reason: BaseException, hold: SignalHold | None = None) -> None:
        """Ctrl-C or SIGTERM: every worker ends its run as interrupted (checkpoint hooks,
        teardown), then exits; each run is reported as its worker recorded it.

        On Ctrl-C, workers in the terminal's process group got the same SIGINT; the others
        get SIGTERM after a short grace period.  On SIGTERM (sent to xprun alone, by a
        scheduler or ``kill``) every worker gets SIGTERM at once.  Further signals are held
        until every worker is done: a second Ctrl-C must not orphan them (``hold``, armed by
        :meth:`run`, has held them since ``reason`` was raised).
        """
        if hold is None:
            hold = SignalHold()
        hold.hold()
        try:
            self._stop_workers(isinstance(reason, Terminated))
        finally:
            hold.end()

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
            if stdout is not None:
                self.read_messages(worker, stdout.read())  # what it wrote before exiting
            if worker.running is not None:
                self.report(worker.running, Status.INTERRUPTED, longrepr=f"interrupted ({how})")


_RESULT_FIELDS: tuple[tuple[str, Any], ...] = (
    ("duration", 0.0),
    ("longrepr", ""),
    ("stdout", ""),
    ("stderr", ""),
    ("teardown_error", ""),
    ("shouldstop", ""),
    ("phases", {}),
)


@hookimpl(trylast=True)
def xprun_choose_scheduler(name: str, config: Config) -> LocalScheduler | None:
    if name != "local":
        return None
    table = config.settings.values.get("local") or {}
    return LocalScheduler(parse_workers(config.option.numprocesses or table.get("workers")))
