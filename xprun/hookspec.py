"""Every hook of xprun, documented in one place (as pytest's ``hookspec.py``).

Built-in features (collection, expansion, the keyword filter, the run protocol, the inline
scheduler, terminal reporting) are plugins that implement these hooks; third-party plugins
(entry-point group ``xprun``) and ``conftest.py`` modules implement them the same way, with
``@xprun.hookimpl``.  Hook names start with ``xprun_``; arguments are passed by name, and an
implementation may accept any subset of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import argparse
    from pathlib import Path

    from .collect import Experiment
    from .main import Config, Session
    from .reports import CollectReport, RunReport
    from .runspec import RunSpec
    from .schedulers import Scheduler

hookspec = pluggy.HookspecMarker("xprun")

# -- start-up -------------------------------------------------------------------------------


@hookspec(historic=True)
def xprun_addoption(parser: argparse.ArgumentParser, settings: dict[str, Any]) -> None:
    """Add command-line options to ``xprun`` (the ``run`` command).

    ``settings`` is the ``[tool.xprun]`` table of the project, so a plugin may read its
    defaults from it.  Called once per plugin, also for plugins registered later (historic).
    """


@hookspec(historic=True)
def xprun_configure(config: Config) -> None:
    """Configure after the command line is parsed: register more plugins, check options."""


@hookspec
def xprun_unconfigure(config: Config) -> None:
    """Undo what ``xprun_configure`` did, just before the process exits."""


# -- session ---------------------------------------------------------------------------------


@hookspec
def xprun_sessionstart(session: Session) -> None:
    """The session begins: nothing is collected yet."""


@hookspec
def xprun_sessionfinish(session: Session, exitstatus: int) -> None:
    """Every run has ended (or the session was interrupted); ``exitstatus`` is final."""


# -- collection ------------------------------------------------------------------------------


@hookspec
def xprun_ignore_collect(collection_path: Path, config: Config) -> bool | None:
    """Return True to skip a directory or file during discovery (first True wins)."""


@hookspec
def xprun_collect_file(file_path: Path, session: Session) -> list[Experiment] | None:
    """Collect the experiments of one file (results of every implementation are joined)."""


@hookspec(firstresult=True)
def xprun_generate_runs(experiment: Experiment, session: Session) -> list[RunSpec] | None:
    """Expand one experiment into its runs: base config, grids, fixture params, overrides.

    The first non-None result is used.  Raising :class:`xprun.UsageError` reports a bad
    override or config (exit code 4) and no run starts.
    """


@hookspec
def xprun_collection_modifyitems(session: Session, runs: list[RunSpec]) -> None:
    """Filter or reorder the expanded runs in place (``-k`` is implemented with this)."""


@hookspec
def xprun_deselected(runs: list[RunSpec]) -> None:
    """Runs were removed from the session by a filter."""


@hookspec
def xprun_collectreport(report: CollectReport) -> None:
    """A file was collected, or failed to be (``report.failed``)."""


@hookspec
def xprun_collection_finish(session: Session) -> None:
    """Collection and expansion are done; ``session.runs`` is final."""


# -- running ---------------------------------------------------------------------------------


@hookspec(firstresult=True)
def xprun_choose_scheduler(name: str, config: Config) -> Scheduler | None:
    """Return a scheduler called ``name`` configured from the project's settings, or None.

    The first non-None result wins.  A ``scheduler`` fixture (session scope) in a conftest.py
    can instead return a configured scheduler object for the experiments below it.
    """


@hookspec(firstresult=True)
def xprun_run_protocol(run: RunSpec, session: Session) -> RunReport | None:
    """Execute one run end to end: state check, claim, setup, call, teardown, record.

    Returns the run's report; the first non-None result wins.
    """


@hookspec
def xprun_run_setup(run: RunSpec, session: Session) -> None:
    """Before the call: seeds are set; run-scoped fixtures are set up here."""


@hookspec(firstresult=True)
def xprun_run_call(run: RunSpec, session: Session) -> Any:
    """Call the experiment function; return its outcome."""


@hookspec
def xprun_run_returned(run: RunSpec, session: Session) -> None:
    """The experiment returned; its outcome is saved right after this hook.

    Write out what must be on disk together with the outcome: once ``outcome.json`` exists
    the run is complete even if the process dies the next instant (the next launch records it
    as ``recovered`` without running it again).  The built-in implementation flushes the
    metrics of the run's loggers.  SIGINT and SIGTERM are held meanwhile, so keep it short.
    """


@hookspec
def xprun_run_interrupted(run: RunSpec, session: Session, reason: BaseException) -> None:
    """The run is being interrupted (SIGINT, SIGTERM, or SIGUSR2 before a preemption or time
    limit), before its fixtures are torn down: save what must survive.  The built-in
    implementation calls the logger's ``on_interrupt`` callbacks (checkpoints)."""


@hookspec
def xprun_run_teardown(run: RunSpec, session: Session) -> None:
    """After the call, also when it failed: run-scoped fixtures are torn down here.

    An error raised here does not undo a returned result: the run stays ``complete`` and the
    error is recorded as its ``teardown_error`` (as pytest reports an error in teardown of a
    passed test).  A SIGTERM or Ctrl-C here interrupts the session, and is recorded likewise.
    """


@hookspec
def xprun_run_logreport(report: RunReport) -> None:
    """A run has ended (complete, cached, failed, interrupted, lost claim, or running
    elsewhere).  ``report.teardown_error`` holds the traceback of a teardown that raised;
    ``report.shouldstop`` says why no further run should start (a full disk)."""


# -- reporting -------------------------------------------------------------------------------


@hookspec
def xprun_terminal_summary(session: Session, exitstatus: int) -> None:
    """Add a section to the terminal summary."""
