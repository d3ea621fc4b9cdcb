"""``python -m xprun worker SPEC``: execute runs of a job spec, where a scheduler put us.

Modes:

- ``--index I``: run I of the spec;
- ``--array-offset K``: run ``K + task index`` (``SLURM_ARRAY_TASK_ID``, ``OAR_ARRAY_INDEX``);
- ``--serve``: the local pool's protocol (see :func:`serve`): run indices in on stdin, JSON
  lines out on the original stdout; everything the runs print goes to stderr or to their own
  log files.  Without SPEC, the worker first imports what runs need, then reads the spec's
  path as its first line: the pool starts its workers before the spec exists.

The worker imports the code from the spec's rootdir (a Git snapshot for queued jobs), loads
the conftest.py files and experiment modules of its runs, and executes each run through the
same run protocol as ``xprun`` itself.  SIGTERM and SIGUSR2 end the current run as
``interrupted``: the logger's ``on_interrupt`` callbacks save a checkpoint first.  On SIGUSR2
(SLURM's warning before a time limit or a preemption, sent with ``--signal=B:USR2@S``) the
job requeues itself with ``scontrol requeue``, at most ``max_requeues`` times.

Exit code: 0 when every run ended complete (or was cached), 1 when one failed, 2 when one was
interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import subprocess
import sys
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn, Required, TextIO, TypedDict

from . import reports
from .errors import Preempted, Terminated, raising
from .hookimpl import hookimpl
from .settings import ProjectSettings
from .states import Status

TASK_VARIABLES = ("SLURM_ARRAY_TASK_ID", "OAR_ARRAY_INDEX", "PBS_ARRAY_INDEX", "LSB_JOBINDEX")


def _task_index() -> int:
    for name in TASK_VARIABLES:
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    raise SystemExit(f"xprun worker: --array-offset needs one of {', '.join(TASK_VARIABLES)}")


class Worker:
    """A session built from a spec, ready to execute its runs by index."""

    def __init__(self, spec_path: Path, exitfirst: bool = False) -> None:
        from .config import make_config
        from .jobs import read_spec
        from .provenance import adopt
        from .session import Session

        self.spec_path = spec_path
        self.spec = spec = read_spec(spec_path)
        rootdir = Path(spec["rootdir"])
        os.chdir(rootdir)
        if spec.get("source_top"):  # from a snapshot: import nothing from the work tree
            from .snapshot import confine_imports

            confine_imports(Path(spec["source_top"]), Path(spec["git"]["snapshot_dir"]))
        settings = ProjectSettings(rootdir=rootdir, inifile=None, values=spec["settings"])
        files = sorted({run["nodeid"].split("::")[0] for run in spec["runs"]})
        argv = [*files, "--log-dir", spec["log_dir"], "-qq", "--scheduler", "inline"]
        if spec.get("force"):
            argv.append("--force")
        if spec.get("capture") == "no":
            argv.append("-s")
        if spec.get("full_trace"):
            argv.append("--full-trace")
        if exitfirst:  # the session then stops serving after a failed run of its own
            argv.append("--exitfirst")
        for plugin in spec.get("plugins") or ():
            argv += ["-p", plugin]
        self.config = make_config(argv, rootdir, settings=settings, terminal=False)
        self.session = Session(self.config)
        self.session.scheduler_name = spec["scheduler"]
        self.session.set_git_state(spec.get("git") or {}, spec.get("patch"))
        adopt(self.config, spec.get("provenance"))  # the launcher's session, not one of ours
        self.session.collect()
        self.experiments = {e.nodeid: e for e in self.session.experiments}
        self.hook = self.config.hook
        self.last_report: reports.RunReport | None = None
        self.handed: dict[int, dict[str, Any]] = {}  # runs sent after the spec (see serve)
        self.config.pluginmanager.register(self, name="xprun.worker")

    @hookimpl
    def xprun_run_logreport(self, report: reports.RunReport) -> None:
        self.last_report = report  # what the run ended as, even if a signal follows

    def runspec(self, index: int) -> Any:
        from .markers import marks_numbered
        from .runspec import RunSpec

        entry = self.handed.pop(index, None) or self.spec["runs"][index]
        experiment = self.experiments.get(entry["nodeid"])
        if experiment is None:
            errors = "; ".join(text.splitlines()[-1] for _, text in self.session.collect_errors)
            raise RuntimeError(
                f"experiment {entry['nodeid']} not found in {self.spec['rootdir']}: {errors}"
            )
        return RunSpec(
            experiment=experiment,
            config=entry["config"],
            assignments=entry.get("assignments", {}),
            marks=marks_numbered(experiment, entry.get("marks", [])),
            volatile=entry.get("volatile"),
            param_indices=entry["param_indices"],
            param_ids=entry["param_ids"],
            digest=entry["digest"],
            folder=os.path.dirname(entry["run_dir"]),
            label=entry["label"],
        )

    def execute(self, index: int) -> reports.RunReport:
        self.last_report = None
        run = self.runspec(index)
        return self.hook.xprun_run_protocol(run=run, context=self.session.run_context())

    def close(self) -> None:
        try:
            self.session.session_fixtures.teardown()
        finally:
            from . import journal

            journal.close_all()  # the lines of this worker's runs not written yet


def _exit_code(status: str, teardown_error: str = "") -> int:
    if status == Status.INTERRUPTED:
        return 2
    return 1 if status in reports.UNSUCCESSFUL or teardown_error else 0


class RunResult(TypedDict, total=False):
    """One result line of the local pool's protocol: a run's index and the fields of its
    ``RunReport`` (a worker's own error sends the first three only)."""

    index: Required[int]
    status: Required[Status]
    longrepr: str
    duration: float
    stdout: str
    stderr: str
    teardown_error: str
    shouldstop: str
    phases: dict[str, float]


def _answer(index: int, report: reports.RunReport) -> RunResult:
    """One result line of the local pool's protocol (the fields of ``RunReport``)."""
    return {
        "index": index,
        "status": report.status,
        "duration": report.duration,
        "longrepr": report.longrepr,
        "stdout": report.stdout,
        "stderr": report.stderr,
        "teardown_error": report.teardown_error,
        "shouldstop": report.shouldstop,
        "phases": report.phases,
    }


def _requeue(spec: dict[str, Any]) -> bool:
    """Requeue this SLURM job (bounded by ``[tool.xprun.slurm] max_requeues``)."""
    job = os.environ.get("SLURM_JOB_ID")
    if not job:
        return False
    array_job, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    target = f"{array_job}_{task}" if array_job and task else job
    limit = int((spec["settings"].get("slurm") or {}).get("max_requeues", 3))
    restarts = int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0)
    if restarts >= limit:
        sys.stderr.write(f"xprun worker: not requeueing {target}: {restarts} requeues already\n")
        return False
    proc = subprocess.run(["scontrol", "requeue", target], capture_output=True, text=True)
    sys.stderr.write(
        f"xprun worker: scontrol requeue {target}: rc={proc.returncode} {proc.stderr}\n"
    )
    return proc.returncode == 0


def run_one(worker: Worker, index: int) -> int:
    try:
        report = worker.execute(index)
    except Preempted:
        if os.environ.get("OAR_JOB_ID"):
            return 99  # OAR resubmits an idempotent job that exits 99 after a checkpoint
        _requeue(worker.spec)
        return 2
    except (Terminated, KeyboardInterrupt):
        return 2
    return _exit_code(report.status, report.teardown_error)


class Inbox:
    """The pool's messages on stdin (file descriptor ``fd``), read as whole lines.

    Read with ``os.read`` only, never through ``sys.stdin``'s buffer, so that :meth:`drain`
    can tell without blocking what has arrived.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.lines: deque[str] = deque()
        self.partial = b""
        self.eof = False

    def _read(self) -> None:
        chunk = os.read(self.fd, 65536)
        if not chunk:
            self.eof = True
            return
        *whole, self.partial = (self.partial + chunk).split(b"\n")
        self.lines.extend(line.decode().strip() for line in whole)

    def drain(self) -> None:
        """Take in every line already sent, without waiting for more."""
        while not self.eof and select.select([self.fd], [], [], 0)[0]:
            self._read()

    def readline(self) -> str | None:
        """The next line, waiting for it; None at end of input."""
        while not self.lines and not self.eof:
            self._read()
        return self.lines.popleft() if self.lines else None


STOP = "stop"


def serve(worker: Worker, inbox: Inbox, proto: Any) -> int:
    """The local pool's protocol: run indices in, one per line; JSON lines out.

    A line may also be ``{"index": I, "run": ENTRY}``: run I is not in the spec (the pool
    was handed it later: a search's next trial), ENTRY is what the spec would hold for it
    (``jobs.run_entry``); it must belong to an experiment of the spec's files.

    The pool hands out a few indices ahead, so that a worker finishing a run starts the next
    at once instead of waiting for the launcher to answer.  Before each run, the worker takes
    in what has arrived: a ``stop`` line (the launcher stopped the sweep: ``-x``, a full
    disk) drops every run not started yet.  It writes ``{"start": I}`` when it takes run I up,
    so that the launcher knows which runs a dead worker had started (reported interrupted) and
    which it had not (handed to another worker), and ``{"index": I, "status": ...}`` (the
    fields of ``RunReport``) when run I ends.

    Stops after a run that says no further run should start (a full disk, or a failure under
    ``-x``), and on a signal (after answering for the run it interrupted, or that ended just
    before it).
    """
    status = 0
    while True:
        inbox.drain()
        if STOP in inbox.lines:
            break
        line = inbox.readline()
        if line is None or line == STOP:
            break
        if not line:
            continue
        if line.startswith("{"):  # a run the pool was handed after writing the spec
            message = json.loads(line)
            index = int(message["index"])
            worker.handed[index] = message["run"]
        else:
            index = int(line)
        _send(proto, {"start": index})
        try:
            result = _answer(index, worker.execute(index))
        except (Terminated, KeyboardInterrupt) as exc:
            report = worker.last_report
            if report is not None:  # recorded, then the signal (held meanwhile) arrived
                answer = _answer(index, report)
            else:
                answer = {"index": index, "status": Status.INTERRUPTED, "longrepr": repr(exc)}
            _send(proto, answer)
            return 2
        except Exception as exc:  # an error of xprun's own: report it, keep serving
            error = f"worker error: {exc!r}"
            result = {"index": index, "status": Status.FAILED, "longrepr": error}
        _send(proto, result)
        status = max(status, _exit_code(result["status"], result.get("teardown_error", "")))
        if result.get("shouldstop") or worker.session.shouldstop:
            break
    return status


def _send(proto: Any, message: Mapping[str, Any]) -> None:
    proto.write(json.dumps(message) + "\n")
    proto.flush()


#: What the worker imports before the spec exists, besides the built-in plugins (its config
#: imports them all: collection, the run protocol, the schedulers...): the spec's reader,
#: OmegaConf (every run's ``config``) and the snapshot's import confinement (with tarfile,
#: ~10 ms).  Not NumPy: seeding does not import it (``builtin_fixtures.seed_numpy``), and a
#: run that never uses it should not pay for it.
_WARM_MODULES = ("xprun.jobs", "omegaconf", "xprun.snapshot")


#: A line the pool may send before the spec's path: installed packages the experiments import
#: (``import numpy torch``), imported at once, while the launcher is still writing the spec.
IMPORT_PREFIX = "import "


def _import_quietly(names: list[str]) -> None:
    """Import ``names``; one that fails is left to fail where the experiment imports it."""
    import importlib

    for name in names:
        try:
            importlib.import_module(name)
        except Exception:
            pass


def warm_up() -> None:
    """Import what every run needs, and look up the installed packages' versions (recorded
    in each run.json), before the spec exists: the pool starts its workers while the launcher
    is still taking the Git snapshot, so this costs the sweep nothing."""
    from .config import BUILTIN_PLUGINS
    from .metadata import PackageVersions

    _import_quietly([*BUILTIN_PLUGINS, *_WARM_MODULES])
    PackageVersions().imported()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="xprun worker", description=__doc__.splitlines()[0])
    parser.add_argument("spec", type=Path, nargs="?", help="with --serve: read from stdin")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--index", type=int)
    mode.add_argument("--array-offset", type=int)
    mode.add_argument("--serve", action="store_true")
    parser.add_argument("-x", "--exitfirst", action="store_true", help="stop after a failure")
    args = parser.parse_args(argv)
    if args.spec is None and not args.serve:
        parser.error("SPEC is required unless --serve reads it from stdin")
    proto = None
    inbox = Inbox(0)
    if args.serve:  # keep the protocol stream clean: fd 1 becomes stderr for everything else
        proto = os.fdopen(os.dup(1), "w", buffering=1)
        os.dup2(2, 1)
    signal.signal(signal.SIGTERM, raising(Terminated))
    if hasattr(signal, "SIGUSR2"):
        signal.signal(signal.SIGUSR2, raising(Preempted))
    try:
        spec = args.spec
        if spec is None:
            warm_up()
            line = inbox.readline()
            while line and line.startswith(IMPORT_PREFIX):
                _import_quietly(line[len(IMPORT_PREFIX) :].split())
                line = inbox.readline()
            if not line:
                return 0  # the pool needed no worker after all
            spec = Path(line)
        worker = Worker(spec.resolve(), exitfirst=args.exitfirst)
        try:
            if args.serve:
                return serve(worker, inbox, proto)
            index = args.index if args.index is not None else args.array_offset + _task_index()
            return run_one(worker, index)
        finally:
            worker.close()
    except (KeyboardInterrupt, Terminated):
        return 2  # a signal outside any run (or a second one): nothing left to record


# -- a worker forked by the pool's launcher ----------------------------------------------------


def run_forked(
    stdin: int, stdout: int, argv: list[str], mask: set[int | signal.Signals]
) -> NoReturn:
    """Be ``python -m xprun worker ARGV`` in a child the pool's launcher just forked
    (``schedulers.pool``): ``stdin`` and ``stdout`` are the child's ends of its two pipes,
    ``mask`` the signals the launcher blocked before it blocked them all to fork.

    The child holds the launcher's memory, so first it puts back what a process started
    afresh would have (:func:`_as_if_started`); then it runs the worker's command as the
    console script would, and ends with :func:`_leave`, never returning: the frames below
    this one are the launcher's (its session, its ``finally`` clauses), which must not run
    twice.
    """
    from .cli import Command, _guarded

    def start(words: list[str]) -> int:
        _as_if_started(stdin, stdout, argv)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a Ctrl-C meanwhile arrives now
        return main(words)

    code = 3  # as an internal error, should anything escape
    try:
        code = _guarded(Command("worker", start), argv[1:])  # errors reported as the CLI's
    finally:
        _leave(code)


def _as_if_started(stdin: int, stdout: int, argv: list[str]) -> None:
    """Make this forked child what ``subprocess.Popen([python, -m, xprun, *argv])`` would
    have started, as far as its runs can tell (docs/schedulers.md, "local"):

    - standard input and output are the pool's pipes, at the descriptor level and as
      ``sys.stdin`` / ``sys.stdout`` (new objects, set up as the interpreter sets them up:
      nothing of the launcher's buffers); standard error is the launcher's, as a spawned
      worker inherits it;
    - no other descriptor leads where the launcher's did: each is made a copy of
      ``/dev/null`` (not closed, so that a launcher object still holding the number, should
      it ever be finalized here, cannot close a file of this worker's that reused it); the
      other workers' pipes above all, whose ends would otherwise stay open here;
    - no handler of the launcher's: a Python-level signal handler is reset to the default
      (Ctrl-C's to ``KeyboardInterrupt``, as at start-up), the launcher's ``atexit``
      functions are dropped (they would write the launcher's files), and the process-wide
      fields a run records (``pid``, ``argv``) are this process's.
    """
    os.dup2(stdin, 0)
    os.dup2(stdout, 1)
    _detach_descriptors()
    _reset_signals()
    _drop_exit_functions()
    _fresh_stdio()
    sys.argv = [str(Path(__file__).with_name("__main__.py")), *argv]
    from .metadata import _PROCESS

    _PROCESS.clear()  # pid, argv: the launcher's, had it recorded a run already


def _detach_descriptors() -> None:
    """Every descriptor above 2 a copy of ``/dev/null`` (see :func:`_as_if_started`)."""
    null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    for name in os.listdir("/proc/self/fd"):  # (its own, closed since, becomes one more)
        fd = int(name)
        if fd > 2 and fd != null:
            os.dup2(null, fd, inheritable=False)
    os.close(null)


def _drop_exit_functions() -> None:
    """The launcher's ``atexit`` functions and ``weakref.finalize`` callbacks are its own:
    they clean up what it owns (``certifi`` removes a temporary file the launcher still
    reads, a ``TemporaryDirectory`` its folder), so none may run here.  What a module's
    import registered for state each process holds is registered again, as importing it
    in a fresh worker would have: ``logging``'s flush of the handlers at exit and
    ``multiprocessing``'s ending of the processes a run started (the pool does not fork a
    launcher that has any, nor finalizers of its own: ``pool._may_fork``); and the first
    ``weakref.finalize(..., atexit=True)`` of a run registers its exit function again."""
    import atexit
    import weakref

    atexit._clear()
    weakref.finalize._registry.clear()  # type: ignore[attr-defined]
    weakref.finalize._registered_with_atexit = False  # type: ignore[attr-defined]
    logging, processes = sys.modules.get("logging"), sys.modules.get("multiprocessing.util")
    if logging is not None:
        atexit.register(logging.shutdown)
    if processes is not None:  # imported by coverage.py, for one; the pool forks with none
        atexit.register(processes._exit_function)


def _reset_signals() -> None:
    for sig in signal.valid_signals():
        try:
            handler = signal.getsignal(sig)
        except (OSError, ValueError):
            continue
        if callable(handler) and handler is not signal.default_int_handler:
            default = signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL
            signal.signal(sig, default)
    signal.set_wakeup_fd(-1)


def _fresh_stdio() -> None:
    """New ``sys.stdin``, ``sys.stdout`` and ``sys.stderr`` over descriptors 0, 1 and 2, as
    the interpreter makes them at start-up (encoding, errors and buffering as the
    launcher's started: the same environment chose them)."""
    for name, fd, mode in (("stdin", 0, "r"), ("stdout", 1, "w"), ("stderr", 2, "w")):
        like = getattr(sys, f"__{name}__")
        stream = _std_stream(fd, mode, like)
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)


def _std_stream(fd: int, mode: str, like: TextIO | None) -> TextIO:
    import io

    unbuffered = bool(getattr(like, "write_through", False))  # -u, PYTHONUNBUFFERED
    raw = io.FileIO(fd, mode, closefd=False)
    buffer: Any = raw  # unbuffered output is written through to the descriptor
    if mode == "r":
        buffer = io.BufferedReader(raw)
    elif not unbuffered:
        buffer = io.BufferedWriter(raw)
    stream = io.TextIOWrapper(
        buffer,
        encoding=like.encoding if like is not None else None,
        errors=like.errors if like is not None else None,
        newline="\n",
        line_buffering=not unbuffered and (fd == 2 or raw.isatty()),
        write_through=unbuffered,
    )
    setattr(stream, "mode", mode)  # noqa: B010  (as the interpreter's own streams say)
    return stream


def _leave(code: int) -> NoReturn:
    """End a forked worker with ``code``, doing for its runs what an interpreter's exit does:
    wait for the threads they started that are not daemons, call the ``atexit`` functions
    they registered (the launcher's were dropped), finalize the objects left in unreachable
    cycles, flush the standard streams; then ``os._exit``, skipping the teardown of every
    module (the launcher's among them).  Objects a module still holds are not finalized,
    which the interpreter does not promise either (docs/schedulers.md, "local")."""
    import atexit
    import gc
    import threading

    try:
        try:
            threading._shutdown()  # type: ignore[attr-defined]
            atexit._run_exitfuncs()
            gc.collect()
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except (OSError, ValueError, AttributeError):
                    pass
        finally:  # nothing may stop the exit now, not even a second Ctrl-C
            signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    finally:
        os._exit(code)
