"""Every hook of xprun, documented in one place (as pytest's ``hookspec.py``).

Built-in features (collection, expansion, the keyword filter, the run loop, the run protocol,
the schedulers, terminal reporting) are plugins that implement these hooks; third-party
plugins (entry-point group ``xprun``, or ``-p NAME``) and ``conftest.py`` modules implement
them the same way.  As in pytest:

- a function named ``xprun_*`` in a plugin or conftest.py is a hook implementation, with or
  without ``@xprun.hookimpl`` (the marker is needed only for options: ``tryfirst``,
  ``trylast``, ``wrapper=True``, ``hookwrapper``, ``optionalhook``);
- an ``xprun_*`` implementation of no hook below is an error naming it, once plugins and
  conftest.py files are loaded (before ``xprun_collection_modifyitems``);
- arguments are passed by name, and an implementation may accept any subset of them;
- a ``firstresult`` hook stops at the first implementation that returns non-None, and
  implementations registered later (conftest.py files, then plugins) are called first, so a
  plugin can replace a built-in default by returning a value, or wrap it with
  ``@xprun.hookimpl(wrapper=True)`` (a generator that yields once and gets the result);
- the collection hooks ``xprun_ignore_collect`` and ``xprun_collect_file`` of a conftest.py
  apply only to the paths under its folder; every other hook of a conftest.py applies to the
  whole session once it is loaded.

The order in which the session calls them is tabled in docs/architecture.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterable, Sequence
    from pathlib import Path

    from .cli import Command
    from .collect import Experiment
    from .config import Config
    from .reports import CollectReport, RunReport
    from .runcontext import RunContext
    from .runspec import RunSpec
    from .schedulers import Scheduler
    from .session import Session
    from .states import Status

hookspec = pluggy.HookspecMarker("xprun")

# -- start-up -------------------------------------------------------------------------------


@hookspec
def xprun_subcommand() -> Iterable[Command] | None:
    """Return the commands this plugin adds to ``xprun`` (``xprun NAME ...``).

    :returns: an iterable of :class:`xprun.cli.Command` (``name``, ``main(argv) -> exit
        code``, ``help``), or None.  The results of every implementation are joined; when two
        give the same name, the first wins (plugins are called before the built-ins, so a
        plugin may replace ``show``).  Built in: ``run`` (the default when the first word is
        not a command name), ``show``, ``plot``, ``status``, ``worker``.

    Called by the console script before anything else, once per invocation, with built-in,
    ``-p`` and installed plugins registered (conftest.py files are not loaded yet, so they
    cannot add commands).
    """


@hookspec(historic=True)
def xprun_addoption(parser: argparse.ArgumentParser, settings: dict[str, Any]) -> None:
    """Add command-line options to ``xprun`` (the ``run`` command).

    :param parser: the ``argparse`` parser; add options with ``parser.add_argument`` or in
        a group (``parser.add_argument_group``).  Their values end up in ``config.option``.
    :param settings: the ``[tool.xprun]`` table of the project (defaults filled in), so a
        plugin may read its defaults from it.

    Called once per plugin right after the plugins are registered, before the command line is
    parsed; also for plugins registered later (historic).  The return value is ignored.
    """


@hookspec(historic=True)
def xprun_configure(config: Config) -> None:
    """Configure after the command line is parsed: register more plugins, check options.

    :param config: the :class:`xprun.Config`: ``option`` (parsed options),
        ``settings``, ``rootdir``, ``log_dir``, ``pluginmanager``.

    Called once, before the session is created; also for plugins registered later (historic).
    Raise :class:`xprun.UsageError` to refuse an option (exit code 4, nothing written).
    """


@hookspec
def xprun_unconfigure(config: Config) -> None:
    """Undo what ``xprun_configure`` did, just before the process exits.

    :param config: the :class:`xprun.Config`.

    Called once after the session finished, also when it failed.
    """


# -- session ---------------------------------------------------------------------------------


@hookspec
def xprun_sessionstart(session: Session) -> None:
    """The session begins: nothing is collected yet.

    :param session: the :class:`xprun.Session`.

    Called once, before the conftest.py files above the command line's paths are loaded
    (so only plugins see it).
    """


@hookspec(firstresult=True)
def xprun_collection(session: Session) -> object | None:
    """Perform the collection phase: fill ``session.experiments`` and ``session.runs``.

    :param session: the :class:`xprun.Session`.
    :returns: non-None to stop (the value is not used); None lets the next implementation
        (in the end the built-in one) collect.

    The built-in implementation (``Session.perform_collect``):

    1. walks the paths of the command line; the conftest.py of each folder is imported and
       registered on the way down, before its entries are considered, so its
       ``xprun_ignore_collect`` applies to the folders and files under it;
    2. ``xprun_collect_file(file_path, session)`` for each experiment file, then
       ``xprun_collectreport(report)``;
    3. ``xprun_generate_runs(experiment, session)`` for each experiment;
    4. checks that every loaded hook implementation is of a known hook;
    5. ``xprun_collection_modifyitems(session, runs)`` (``-k`` filters here, calling
       ``xprun_deselected``);
    6. ``xprun_collection_finish(session)``.

    A plugin that replaces it should call ``xprun_collection_finish`` itself if reporting
    is wanted.  Only plugins, not conftest.py files, can replace it (conftests load during
    collection).
    """


@hookspec(firstresult=True)
def xprun_runloop(session: Session) -> object | None:
    """Run the collected runs (``session.runs``).

    :param session: the :class:`xprun.Session`.
    :returns: non-None to stop (the value is not used); None lets the next implementation run.

    The built-in implementation does nothing under ``--collect-only`` or without runs;
    otherwise it chooses a scheduler for each experiment (``--scheduler``/``-n``, a
    ``scheduler`` fixture, ``[tool.xprun] scheduler``, through ``xprun_choose_scheduler``)
    and hands each scheduler its runs, until ``session.shouldstop`` is set (``-x``, a full
    disk).  Each run ends through ``xprun_run_protocol(run, context)`` with
    ``context = session.run_context()``.  Raising ``KeyboardInterrupt`` ends the session as
    interrupted (exit code 2), :class:`xprun.UsageError` as a usage error (4).
    """


@hookspec
def xprun_sessionfinish(session: Session, exitstatus: int) -> None:
    """Every run has ended (or the session was interrupted or refused).

    :param session: the :class:`xprun.Session`.
    :param exitstatus: the exit code ``xprun`` returns (:class:`xprun.ExitCode`), final.

    Called once, also after a usage error or an interrupt; session fixtures are torn down
    already.  The terminal prints its summary here.
    """


# -- collection ------------------------------------------------------------------------------


@hookspec(firstresult=True)
def xprun_ignore_collect(collection_path: Path, config: Config) -> bool | None:
    """Decide whether discovery skips a folder or file.

    :param collection_path: an absolute folder, or a file whose name matches
        ``experiment_files``, found while walking a path of the command line (paths given
        explicitly are never asked about).
    :param config: the :class:`xprun.Config`.
    :returns: True to skip it (and, for a folder, everything under it); False to collect it
        whatever later implementations would say; None to let them decide.  The first
        non-None answer wins; the built-in one skips ``norecursedirs``, virtual
        environments, the log directory and the snapshot directory.

    Only the conftest.py files of the folders above ``collection_path`` are asked (for a
    folder, not its own conftest.py, which is not imported yet).
    """


@hookspec
def xprun_collect_file(file_path: Path, session: Session) -> list[Experiment] | None:
    """Collect the experiments of one file.

    :param file_path: an absolute path, found by discovery or given on the command line.
    :param session: the :class:`xprun.Session`.
    :returns: a list of :class:`xprun.collect.Experiment`, or None.  The results of every
        implementation are joined; the built-in one (``trylast``) imports ``.py`` files and
        collects their ``experiment_functions``.

    Called after the conftest.py files from the rootdir down to the file's folder are loaded;
    only their implementations, and plugins', are called.  An exception (``SystemExit``
    included) is the file's collection error, reported with its traceback; other files are
    still collected.
    """


@hookspec(firstresult=True)
def xprun_generate_runs(experiment: Experiment, session: Session) -> list[RunSpec] | None:
    """Expand one experiment into its runs: base config, grids, fixture params, overrides.

    :param experiment: the collected :class:`xprun.collect.Experiment`.
    :param session: the :class:`xprun.Session` (``override_axes``: the parsed
        command-line overrides).
    :returns: the experiment's :class:`xprun.RunSpec` list; the first non-None result
        is used.  Raising :class:`xprun.UsageError` reports a bad override or config (exit
        code 4) and no run starts.

    Called once per experiment, after every file is collected and before any run starts.
    """


@hookspec
def xprun_collection_modifyitems(session: Session, runs: list[RunSpec]) -> None:
    """Filter or reorder the expanded runs in place (``-k`` is implemented with this).

    :param session: the :class:`xprun.Session`.
    :param runs: ``session.runs``; change this list in place (``runs[:] = ...``).

    Called once, after expansion; call ``xprun_deselected(runs)`` with the runs removed.
    """


@hookspec
def xprun_deselected(runs: list[RunSpec]) -> None:
    """Runs were removed from the session by a filter.

    :param runs: the removed :class:`xprun.RunSpec` objects.

    Called by the filter that removed them (``-k``), from ``xprun_collection_modifyitems``.
    """


@hookspec
def xprun_collectreport(report: CollectReport) -> None:
    """A file was collected, or failed to be (``report.failed``).

    :param report: a :class:`xprun.reports.CollectReport`: ``path``, ``nodeid``,
        ``failed``, ``longrepr`` (the traceback), ``count`` (experiments collected).

    Called once per file, and once per conftest.py or experiment that failed.
    """


@hookspec
def xprun_collection_finish(session: Session) -> None:
    """Collection and expansion are done; ``session.runs`` is final.

    :param session: the :class:`xprun.Session`.

    Called once, at the end of the built-in ``xprun_collection``; the terminal lists the runs
    here under ``--collect-only``.
    """


# -- running ---------------------------------------------------------------------------------


@hookspec(firstresult=True)
def xprun_choose_scheduler(name: str, config: Config) -> Scheduler | None:
    """Return a scheduler called ``name`` configured from the project's settings, or None.

    :param name: ``--scheduler``, ``local`` for ``-n``, or ``[tool.xprun] scheduler``.
    :param config: the :class:`xprun.Config` (``settings.values`` holds the
        ``[tool.xprun.<name>]`` tables).
    :returns: an object with a ``name`` and ``run(session, runs)``
        (:class:`xprun.schedulers.Scheduler`); the first non-None result wins.  None from
        every implementation is a usage error naming the scheduler.

    Called by the built-in run loop, once per scheduler name, and by ``xprun status``.  A
    ``scheduler`` fixture (session scope) in a conftest.py can instead return a configured
    scheduler object for the experiments below it.
    """


@hookspec(firstresult=True)
def xprun_run_skip(run: RunSpec, context: RunContext) -> RunReport | None:
    """Decide whether a run must not start: the report it ends with instead, or None.

    :param run: the :class:`xprun.RunSpec`.
    :param context: the :class:`xprun.runcontext.RunContext`.
    :returns: a :class:`xprun.RunReport` (it is logged, and the run is not executed)
        or None to run it.  The first non-None answer wins; the built-in one reports a
        complete run as ``cached`` (unless ``--force``) and a run with a live claim as
        ``running elsewhere``.

    Called by the built-in run protocol before it claims the run, and by the cluster
    schedulers and the local pool before they send runs out.
    """


@hookspec(firstresult=True)
def xprun_run_protocol(run: RunSpec, context: RunContext) -> RunReport | None:
    """Execute one run end to end: skip check, claim, setup, call, teardown, record.

    :param run: the :class:`xprun.RunSpec`.
    :param context: the :class:`xprun.runcontext.RunContext`: clock, heartbeat settings,
        metadata provider, recorders and the options the runner needs, not the session.
    :returns: the run's :class:`xprun.RunReport`; the first non-None result wins.
        The report must also be handed to ``context.record`` (which calls
        ``xprun_run_logreport``).

    Called by the scheduler executing the run, in the process that executes it (the
    launcher inline, a worker otherwise).  The built-in implementation calls
    ``xprun_run_skip``, then ``xprun_run_setup``, ``xprun_run_call``,
    ``xprun_run_returned`` (or ``xprun_run_interrupted``), ``xprun_run_teardown`` and
    ``xprun_run_logreport``; a ``KeyboardInterrupt`` or SIGTERM is re-raised after the run
    is recorded.
    """


@hookspec
def xprun_run_record(run: RunSpec, context: RunContext) -> dict[str, Any] | None:
    """Fields to add to a run's ``running`` record (``run.json``) when an attempt starts.

    :param run: the :class:`xprun.RunSpec` being started (claimed, ``config.yaml`` written).
    :param context: the :class:`xprun.runcontext.RunContext`.
    :returns: a mapping of JSON data merged into the record (each key at most once across
        plugins; a key the core writes, such as ``status`` or ``hash``, is refused), or None.

    Called by the built-in run protocol in the process executing the run, before the record
    is written, so the fields are in the record from the attempt's first byte on and are
    kept by its final record.  Provenance lives here (the code the run executes, the
    session's environment): one seam for built-in and third-party recorders.  Keep it cheap
    (compute per session or per experiment, not per run): it is on every run's path.
    """


@hookspec
def xprun_run_setup(run: RunSpec, context: RunContext) -> None:
    """Before the call: seeds are set; run-scoped fixtures are set up here.

    :param run: the :class:`xprun.RunSpec`; ``run.request`` is its fixture request.
    :param context: the :class:`xprun.runcontext.RunContext`.

    Called by the built-in run protocol once the run is claimed and its ``running`` record
    written, in the process executing it.  An exception fails the run (it is recorded and
    the session goes on).
    """


@hookspec(firstresult=True)
def xprun_run_call(run: RunSpec, context: RunContext) -> Any:
    """Call the experiment function; return its outcome.

    :param run: the :class:`xprun.RunSpec`.
    :param context: the :class:`xprun.runcontext.RunContext`.
    :returns: the outcome (a mapping of plain data, or None); the first non-None result wins,
        so a wrapper (``wrapper=True``) sees what the experiment returned.

    An exception, ``SystemExit`` included, fails the run.
    """


@hookspec(firstresult=True)
def xprun_run_status(
    run: RunSpec, context: RunContext, status: Status, error: BaseException | None
) -> Status | None:
    """Decide the status recorded for an attempt that has ended (as pytest's
    ``pytest_runtest_makereport``, through which its ``xfail`` works).

    :param run: the :class:`xprun.RunSpec`.
    :param context: the :class:`xprun.runcontext.RunContext`.
    :param status: what the built-in protocol concluded: ``COMPLETE`` (the outcome is saved),
        ``FAILED``, ``INTERRUPTED`` or ``TIMEOUT`` (a ``RunTimeout`` stopped it).
    :param error: the exception that failed or interrupted the attempt, or None.
    :returns: the :class:`xprun.Status` to record and report instead (``XFAIL`` for an
        expected failure, ``TIMEOUT`` for a time limit), or None to keep ``status``.  The
        first non-None answer wins.

    Called by the built-in run protocol in the process executing the run, after teardown
    and before the final record is written.  Not called for a run whose claim was lost.
    """


@hookspec
def xprun_run_returned(run: RunSpec, context: RunContext) -> None:
    """The experiment returned; its outcome is saved right after this hook.

    :param run: the :class:`xprun.RunSpec`; ``run.request.cached_value(name)`` gives
        the values of its fixtures.
    :param context: the :class:`xprun.runcontext.RunContext`.

    Write out what must be on disk together with the outcome: once ``outcome.json`` exists
    the run is complete even if the process dies the next instant (the next launch records it
    as ``recovered`` without running it again).  The built-in implementation (in
    ``builtin_fixtures.py``) flushes the metrics of the run's loggers.  SIGINT and SIGTERM
    are held meanwhile, so keep it short.  Called once per run whose experiment returned;
    an exception fails the run.
    """


@hookspec
def xprun_run_interrupted(run: RunSpec, context: RunContext, reason: BaseException) -> None:
    """The run is being interrupted, before its fixtures are torn down: save what must
    survive.

    :param run: the :class:`xprun.RunSpec`.
    :param context: the :class:`xprun.runcontext.RunContext`.
    :param reason: the ``KeyboardInterrupt`` (SIGINT) or ``xprun.errors.Terminated``
        (SIGTERM, or SIGUSR2 before a preemption or time limit), or the
        ``xprun.timeout.RunTimeout`` of ``--timeout`` (the run is then recorded ``timeout``
        and the session goes on).

    Called by the built-in run protocol when an interrupt reaches the run before its outcome
    is saved.  The built-in implementation (in ``builtin_fixtures.py``) calls the logger's
    ``on_interrupt`` callbacks (checkpoints).  Further signals are held meanwhile.  An
    exception is recorded as ``interrupt_hook_error`` in ``run.json``; the run is
    interrupted either way.
    """


@hookspec
def xprun_run_teardown(run: RunSpec, context: RunContext) -> None:
    """After the call, also when it failed: run-scoped fixtures are torn down here.

    :param run: the :class:`xprun.RunSpec`.
    :param context: the :class:`xprun.runcontext.RunContext`.

    Called once per executed run, whatever its call did.  An error raised here does not undo
    a returned result: the run stays ``complete`` and the error is recorded as its
    ``teardown_error`` (as pytest reports an error in teardown of a passed test).  A SIGTERM
    or Ctrl-C here interrupts the session, and is recorded likewise.
    """


@hookspec
def xprun_run_logreport(report: RunReport) -> None:
    """A run has ended: ``report.status`` is an :class:`xprun.Status` (complete, cached,
    failed, interrupted, lost claim, running elsewhere, or submitted to a cluster).

    :param report: an :class:`xprun.RunReport`: ``run``, ``status``, ``duration``,
        ``longrepr``, ``stdout``/``stderr``, ``teardown_error`` (the traceback of a teardown
        that raised), ``shouldstop`` (why no further run should start: a full disk).

    Called once per run in the launching process (for a worker's run, when the worker
    reports it).  The session counts the statuses here (``tryfirst``) and sets ``-x``.
    (``report.outcome``, xprun 0.1's name of ``status``, still answers, with a
    ``DeprecationWarning``: the outcome is what the experiment returned.)
    """


@hookspec
def xprun_runs_cached(runs: Sequence[RunSpec], stale: Sequence[bool | None]) -> None:
    """Runs the batched skip check found complete, reported cached in one call: what a
    launch of a finished 100k-config sweep reports, without a report and a hook call per run.

    :param runs: the cached :class:`xprun.RunSpec` objects, in run order.
    :param stale: for each run, ``RunReport.stale``: True or False once the staleness plugin
        judged it, None when it did not.

    Called in the launching process, once per scheduler's group of runs that holds
    complete ones, before any of the others runs.  A plugin that implements this hook is
    not called through ``xprun_run_logreport`` for these runs; every plugin that implements
    only ``xprun_run_logreport`` still is, once per run with a cached ``RunReport``, after
    this hook.  Runs reported cached any other way
    (the per-run skip check, a worker's report) go through ``xprun_run_logreport`` alone.
    """


# -- reporting -------------------------------------------------------------------------------


@hookspec
def xprun_terminal_summary(session: Session, exitstatus: int) -> None:
    """Add a section to the terminal summary (print to stdout).

    :param session: the :class:`xprun.Session`.
    :param exitstatus: the exit code the session ends with.

    Called by the terminal plugin from ``xprun_sessionfinish`` (so not at all under
    ``-p no:terminal``).
    """
