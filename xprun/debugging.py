"""``--pdb`` and ``--trace``: the Python debugger in a run's own frames, as pytest's.

- ``--pdb``: a run that ends ``failed`` opens the post-mortem debugger on its exception, in
  the user's frames (xprun's and pluggy's are left out of the stack), then the session stops
  launching runs: a sweep that fails everywhere would otherwise ask for the debugger once per
  run, and the point is to look at one.  The post-mortem comes once the run's status is
  decided (a wrapper of ``xprun_run_status``), so an expected failure (``xfail``), a time
  limit or an interrupt never opens it, and the run is recorded ``failed`` as it would be
  without ``--pdb``.  Its fixtures are torn down by then; the frames' locals are all there.
- ``--trace``: each selected run stops at the first line of its experiment function (as
  pytest's ``--trace`` does for a test), with its fixtures set up.  ``q`` in the debugger
  interrupts the run (recorded ``interrupted``, exit code 2), as Ctrl-C would: a run the
  user left must not be recorded complete.
- ``--pdbcls module:Class``: the debugger class, a subclass of ``pdb.Pdb`` (IPython's
  ``IPython.terminal.debugger:TerminalPdb``).

Runs print into their run directory (``capture.py`` swaps ``sys.stdout``/``sys.stderr``);
while the debugger is at its prompt, the streams are the terminal's again, and the run's
own ones come back when it continues.  The debugger talks to this process's stdin and
stdout, so it works only for runs executed here: with ``-n``, a cluster scheduler or a
snapshot (a worker process) both options are usage errors that say to run the node id inline.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse
    import pdb

    from .config import Config
    from .runcontext import RunContext
    from .runspec import RunSpec
    from .session import Session
    from .states import Status

# Leading frames of a traceback that are the machinery around a run, not the run.
_OWN_MODULES = ("xprun.", "pluggy.")


def xprun_addoption(parser: argparse.ArgumentParser, settings: dict[str, Any]) -> None:
    group = parser.add_argument_group("debugging")
    group.add_argument(
        "--pdb",
        action="store_true",
        dest="usepdb",
        help="start the Python debugger on the first failed run (post-mortem, in the run's "
        "own frames), then stop launching runs; runs inline only",
    )
    group.add_argument(
        "--trace",
        action="store_true",
        help="start the Python debugger at the first line of each selected run's experiment "
        "function; runs inline only",
    )
    group.add_argument(
        "--pdbcls",
        metavar="MODULE:CLASS",
        default=None,
        help="the debugger class for --pdb and --trace, a subclass of pdb.Pdb "
        "(IPython.terminal.debugger:TerminalPdb; default pdb:Pdb)",
    )


def xprun_configure(config: Config) -> None:
    option = config.option
    flags = [f for f, on in (("--pdb", option.usepdb), ("--trace", option.trace)) if on]
    if not flags:
        return
    refuse_out_of_process(config, " and ".join(flags))
    _mark_hookimpls()
    config.pluginmanager.register(
        Debugging(config, debugger_class(option.pdbcls)), "xprun.debugging.session"
    )


def refuse_out_of_process(config: Config, what: str) -> None:
    """A usage error when the options send runs to another process (``-n``, a cluster
    scheduler, ``--snapshot``): ``what`` shows only what happens in this one."""
    from .errors import UsageError

    option = config.option
    if option.numprocesses:
        where, fix = f"-n {option.numprocesses} (a pool of worker processes)", "without -n"
    elif option.scheduler not in (None, "inline"):
        where, fix = f"--scheduler {option.scheduler}", "without --scheduler"
    elif option.scheduler is None and config.settings["scheduler"] != "inline":
        scheduler = config.settings["scheduler"]
        where, fix = f"[tool.xprun] scheduler = {scheduler!r}", "with --scheduler inline"
    elif option.snapshot:
        where, fix = "--snapshot (a worker process runs from the snapshot)", "without --snapshot"
    else:
        return
    flag = what.split()[0]
    raise UsageError(
        f"{what}: runs must execute in this process, not with {where}; "
        f"run the run's node id inline, {fix}: xprun 'path/xp_file.py::xp_name[label]' {flag}"
    )


def refuse_scheduler_fixtures(session: Session, what: str) -> None:
    """A usage error when a ``scheduler`` fixture sends some of the runs elsewhere."""
    from .errors import UsageError

    for scheduler, runs in session.schedule():
        name = getattr(scheduler, "name", None)
        if name != "inline":
            raise UsageError(
                f"{what}: runs must execute in this process, but a "
                f"'scheduler' fixture sends {runs[0].experiment.nodeid} to {name}; run the run's "
                "node id inline, "
                f"e.g. xprun '{runs[0].nodeid}' {what.split()[0]} --scheduler inline"
            )


def debugger_class(spec: str | None) -> type[pdb.Pdb]:
    """The class ``--pdbcls`` names (``module:Class``, ``Class`` may be dotted)."""
    import importlib
    import pdb

    from .errors import UsageError

    if not spec:
        return pdb.Pdb
    module_name, _, qualname = spec.partition(":")
    try:
        if not module_name or not qualname:
            raise ValueError("expected MODULE:CLASS")
        found: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            found = getattr(found, part)
    except Exception as exc:
        raise UsageError(
            f"--pdbcls {spec}: cannot be imported ({type(exc).__name__}: {exc}); name a "
            "debugger class as MODULE:CLASS (IPython.terminal.debugger:TerminalPdb)"
        ) from None
    if not (isinstance(found, type) and issubclass(found, pdb.Pdb)):
        raise UsageError(f"--pdbcls {spec}: {found!r} is not a subclass of pdb.Pdb")
    return found


def user_traceback(tb: TracebackType | None) -> TracebackType | None:
    """``tb`` from the first frame that is not xprun's or pluggy's (the run's own code)."""
    start = tb
    while start is not None and start.tb_next is not None:
        name = start.tb_frame.f_globals.get("__name__", "")
        if not (name == "xprun" or name.startswith(_OWN_MODULES)):
            break
        start = start.tb_next
    return start or tb


class Debugging:
    """The hooks behind ``--pdb`` and ``--trace`` (registered only when one is given)."""

    def __init__(self, config: Config, cls: type[pdb.Pdb]) -> None:
        self.post_mortem = bool(config.option.usepdb)
        self.trace = bool(config.option.trace)
        self.what = "--pdb" if self.post_mortem else "--trace"
        self._class = cls
        # The terminal, as it is before any run captures its output.
        self._stdin, self._stdout, self._stderr = sys.stdin, sys.stdout, sys.stderr
        self._session: Session | None = None

    def xprun_sessionstart(self, session: Session) -> None:
        self._session = session

    def xprun_runloop(self, session: Session) -> None:
        if session.runs and not session.config.option.collect_only:
            refuse_scheduler_fixtures(session, self.what)

    @contextmanager
    def terminal(self) -> Iterator[None]:
        """The process's own streams while the debugger talks to the user; the run's
        captured ones afterwards."""
        captured = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = self._stdout, self._stderr
        try:
            yield
        finally:
            sys.stdout, sys.stderr = captured

    def debugger(self) -> pdb.Pdb:
        """A new debugger of the chosen class, talking to the terminal whatever the run's
        capture: its prompt and every command it runs see the terminal's streams."""
        plugin = self
        base: Any = self._class

        class RunDebugger(base):
            def interaction(self, *args: Any, **kwargs: Any) -> Any:
                with plugin.terminal():
                    return super().interaction(*args, **kwargs)

        debugger: pdb.Pdb = RunDebugger(stdout=self._stdout)
        return debugger

    def _say(self, text: str) -> None:
        self._stdout.write(text)
        self._stdout.flush()

    def _end_prompt(self) -> None:
        """End the debugger's last prompt's line when no one typed Enter after it (stdin
        is a pipe), so the progress letters start a line of their own."""
        if self._stdin is None or not self._stdin.isatty():
            self._say("\n")

    # -- --trace --------------------------------------------------------------------------

    def traced(self, run: RunSpec, func: Callable[..., Any]) -> Callable[..., Any]:
        """``func`` run under the debugger, stopping at its first line: ``Bdb.runcall``, in
        a frame of xprun's (so a failure's traceback starts at the user's frame, not bdb's),
        with the tracer that was there before (a coverage tool's) put back afterwards."""

        @functools.wraps(func)
        def traced(*args: Any, **kwargs: Any) -> Any:
            from bdb import BdbQuit

            debugger = self.debugger()
            self._say(f"\n>>> --trace: {run.nodeid} (output capture suspended in the debugger)\n")
            previous = sys.gettrace()
            debugger.reset()
            sys.settrace(debugger.trace_dispatch)
            try:
                return func(*args, **kwargs)
            except BdbQuit:
                raise KeyboardInterrupt(f"quit the debugger in {run.nodeid} (--trace)") from None
            finally:
                debugger.quitting = True
                sys.settrace(previous)
                self._end_prompt()

        return traced

    def xprun_run_call(self, run: RunSpec, context: RunContext) -> Generator[None, Any, Any]:
        if not self.trace:
            return (yield)
        experiment = run.experiment
        run.experiment = dataclasses.replace(experiment, func=self.traced(run, experiment.func))
        try:
            return (yield)
        finally:
            run.experiment = experiment

    # -- --pdb ----------------------------------------------------------------------------

    def xprun_run_status(
        self, run: RunSpec, context: RunContext, status: Status, error: BaseException | None
    ) -> Generator[None, Any, Any]:
        from .states import Status

        decided = yield
        if not self.post_mortem or error is None or (decided or status) != Status.FAILED:
            return decided
        from .tracebacks import format_exception

        self._say(
            f"\n>>> --pdb: {run.nodeid} failed\n"
            + format_exception(error)  # as the failures section will show it
            + ">>> entering the debugger (post-mortem); 'c' or 'q' ends it and the session\n"
        )
        debugger = self.debugger()
        debugger.reset()
        debugger.interaction(None, user_traceback(error.__traceback__))
        self._end_prompt()
        if self._session is not None:
            self._session.shouldstop = (
                f"stopping after the first failure (--pdb): {run.nodeid} is recorded failed"
            )
        return decided


def _mark_hookimpls() -> None:
    """Give ``Debugging``'s wrappers their hook options (pluggy reads them from an attribute
    of each function).  Done when the plugin is registered, not at import: this module is
    imported by ``xprun --help``, which imports nothing but the standard library."""
    from .hookimpl import hookimpl

    hookimpl(wrapper=True)(Debugging.xprun_run_call)
    hookimpl(wrapper=True)(Debugging.xprun_run_status)
    hookimpl(tryfirst=True)(Debugging.xprun_runloop)
