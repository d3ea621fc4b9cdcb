"""The session: one invocation, from collection to the last run's report.

As in pytest, the session does little itself: ``Session.main`` calls ``xprun_sessionstart``,
then ``xprun_collection`` and ``xprun_runloop`` (both ``firstresult``), then
``xprun_sessionfinish``.  This module holds the default implementations of those two hooks,
which a plugin may replace (return non-None first) or wrap (``@xprun.hookimpl(wrapper=True)``):

- **collection** (``Session.perform_collect``): walk the given paths, importing the
  conftest.py of each folder on the way down so that its collection hooks
  (``xprun_ignore_collect``, ``xprun_collect_file``) apply to the folders under it, collect
  each file, expand each experiment into runs, check that every hook implementation is of a
  known hook, then ``xprun_collection_modifyitems`` and ``xprun_collection_finish``;
- **the run loop** (``Session.runloop``): choose a scheduler for each experiment and dispatch
  its runs; each run ends through the run protocol, which gets a narrow ``RunContext``
  (``Session.run_context``), not the session.

The session is also a plugin: it counts how runs ended and starts no new run once
``--maxfail`` runs failed (``-x``: one; see ``Session.maxfail``).
"""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
import time
import traceback
from collections import Counter
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

from . import builtin_fixtures, reports
from .errors import ExitCode, Terminated, UsageError, raising
from .fixtures import FixtureRegistry, SessionFixtures
from .hookimpl import hookimpl
from .metadata import PackageVersions, Soon, git_state
from .overrides import OverrideAxis, SweepTooLarge, parse_overrides
from .runcontext import RunContext
from .runref import ambiguous_prefix
from .states import Status
from .store import FsClock, RunState, read_state

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import ModuleType

    from .collect import Experiment, Target
    from .config import Config
    from .runspec import RunSpec


class SessionMetadata:
    """The session's ``MetadataProvider``: Git state read once, package versions, and the
    scheduler currently dispatched to."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self.scheduler = "inline"
        self._packages = PackageVersions()
        self._git: tuple[dict[str, Any], str | None] | None = None
        self._reading: Soon[tuple[dict[str, Any], str | None]] | None = None

    def git_state(self) -> tuple[dict[str, Any], str | None]:
        if self._git is None:
            reading, self._reading = self._reading, None
            self._git = reading.result() if reading is not None else self._read_git_state()
        return self._git

    def read_git_state_soon(self) -> None:
        """Start reading the Git state in a thread (``git_state`` then waits for it): the
        pool's launcher does so as it takes the snapshot, whose git calls run meanwhile.
        Read once all the same, after collection, as it would be when first asked."""
        if self._git is None and self._reading is None:
            self._reading = Soon(self._read_git_state)

    def _read_git_state(self) -> tuple[dict[str, Any], str | None]:
        config = self._config
        return git_state(config.rootdir, [config.log_dir, config.snapshot_dir])

    def set_git_state(self, fields: dict[str, Any], patch: str | None) -> None:
        self._git, self._reading = (fields, patch), None

    def packages(self) -> dict[str, str]:
        return self._packages.imported()


class Session:
    """One invocation: collects experiments, expands them into runs, runs them."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.fixtures = FixtureRegistry()
        self.fixtures.parse_module(builtin_fixtures, "")  # visible everywhere, overridable
        self.session_fixtures = SessionFixtures()
        self.experiments: list[Experiment] = []
        self.runs: list[RunSpec] = []
        # Experiments whose runs are made as the session goes (a search asks each trial's
        # runs from the results so far): collected, though not in ``runs`` yet.
        self.deferred: list[Experiment] = []
        self.collect_errors: list[tuple[str, str]] = []  # (where, text)
        self.counts: Counter[str] = Counter()
        self.shouldstop: str | bool = False
        self.failures = 0  # runs of this session that failed (for -x and --maxfail)
        self.interrupted = False
        self.usage_error = False
        self._snapshot: Any = None
        self._commit: Any = None  # the snapshot commit of provenance (see snapshot_commit)
        self.override_axes: list[OverrideAxis] = []
        self.max_runs: float = math.inf  # XPRUN_MAX_RUNS, read when expanding
        self.clock = FsClock(config.log_dir)
        self.heartbeat = config.heartbeat
        self.metadata = SessionMetadata(config)
        self.started = time.time()
        self._conftest_dirs: dict[Path, bool] = {}  # folder → its conftest imported fine
        self._conftests: dict[Path, ModuleType] = {}  # folder → its registered conftest
        self._hooks: dict[Path, Any] = {}  # folder → the hook relay seen from it
        self._targets: list[Target] = []  # what the positional words select
        self._some_runs: dict[str, list[Target]] = {}  # experiment node id → labels, hashes
        self._whole: set[str] = set()  # experiments also wanted whole (a file, a folder)
        self._listings: dict[str, set[str]] | None = None  # folder → its entries, for a while
        config.pluginmanager.register(self, name="session")

    @property
    def scheduler_name(self) -> str:
        """The scheduler the runs are being dispatched to (recorded in ``run.json``)."""
        return self.metadata.scheduler

    @scheduler_name.setter
    def scheduler_name(self, name: str) -> None:
        self.metadata.scheduler = name

    def run_context(self) -> RunContext:
        """What the run protocol gets instead of the session (see ``runcontext.py``)."""
        hook = self.config.hook
        option = self.config.option
        return RunContext(
            hook=hook,
            clock=self.clock,
            heartbeat=self.heartbeat,
            metadata=self.metadata,
            recorders=(_logreport(hook),),
            session_fixtures=self.session_fixtures,
            force=bool(option.force),
            capture=option.capture,
            full_trace=option.full_trace,
        )

    # -- the session as a plugin --------------------------------------------------------------

    @hookimpl(tryfirst=True)
    def xprun_run_logreport(self, report: reports.RunReport) -> None:
        self.counts[report.status.value] += 1  # plain text keys: the counts print as before
        if report.teardown_error:
            self.counts[reports.TEARDOWN_ERROR] += 1
        if report.shouldstop:
            self.shouldstop = report.shouldstop
        elif report.failed or report.status is Status.TIMEOUT:
            self.failures += 1
            limit, why = self.maxfail()
            if limit and self.failures >= limit and not self.shouldstop:
                self.shouldstop = f"stopping after {_plural(self.failures, 'failed run')} ({why})"

    @hookimpl(tryfirst=True)
    def xprun_runs_cached(self, runs: Sequence[RunSpec]) -> None:
        self.counts[Status.CACHED.value] += len(runs)  # a cached run is no failure

    def maxfail(self) -> tuple[int, str]:
        """After how many failed runs no new run starts (0: never), and which option said so:
        ``--maxfail=N`` (``xprun.history``), ``-x`` (``--maxfail=1``), or a plugin that set
        ``option.maxfail`` and ``option.maxfail_reason`` (``--sw``)."""
        option = self.config.option
        limit = getattr(option, "maxfail", 0) or 0
        if limit:
            return limit, getattr(option, "maxfail_reason", "") or f"--maxfail={limit}"
        return (1, "-x") if option.exitfirst else (0, "")

    # -- collection -----------------------------------------------------------------------------

    def gethookproxy(self, folder: Path) -> Any:
        """The hook relay as seen from ``folder``: conftest.py files of other folders left
        out (pytest's rule), so a conftest's collection hooks apply under its folder only."""
        if folder not in self._hooks:
            mine = {folder, *folder.parents}
            others = [m for d, m in self._conftests.items() if d not in mine]
            pm = self.config.pluginmanager
            self._hooks[folder] = _HookSubset(pm, others) if others else self.config.hook
        return self._hooks[folder]

    def _ignored(self, path: Path) -> bool:
        hook = self.gethookproxy(path.parent)
        return bool(hook.xprun_ignore_collect(collection_path=path, config=self.config))

    def _walk(self, top: Path) -> list[Path]:
        """The experiment files under ``top``, each folder's conftest.py imported before its
        entries are considered (a folder whose conftest failed to import is left out)."""
        patterns = self.config.settings.patterns("experiment_files")
        found: list[Path] = []
        for dirpath, dirnames, filenames in os.walk(top):
            here = Path(dirpath)
            if not self._load_conftests(here):
                dirnames[:] = []
                continue
            dirnames[:] = sorted(d for d in dirnames if not self._ignored(here / d))
            found.extend(
                here / f
                for f in sorted(filenames)
                if any(fnmatchcase(f, p) for p in patterns) and not self._ignored(here / f)
            )
        return found

    def _load_conftests(self, folder: Path) -> bool:
        """Import the conftest.py files from the rootdir down to ``folder``; False on error."""
        rootdir = self.config.rootdir
        chain = [folder, *folder.parents]
        chain = list(reversed(chain[: chain.index(rootdir) + 1])) if rootdir in chain else [folder]
        from .collect import import_path, relpath

        for directory in chain:
            if directory in self._conftest_dirs:
                if not self._conftest_dirs[directory]:
                    return False
                continue
            conftest = directory / "conftest.py"
            ok = True
            if conftest.is_file():
                try:
                    module = import_path(conftest, rootdir)
                except _NOT_COLLECTION_ERRORS:
                    raise
                except BaseException:  # sys.exit() too: never a silent end of the session
                    from .collect import format_import_error

                    self._collect_error(conftest, format_import_error(conftest))
                    ok = False
                else:
                    try:
                        self.config.pluginmanager.register(module, name=str(conftest))
                    except pluggy.PluginValidationError as exc:
                        self._collect_error(conftest, f"{conftest}: a hook does not fit: {exc}")
                        ok = False
                    else:
                        self._conftests[directory] = module
                        self._hooks.clear()
                    rel = relpath(directory, rootdir)
                    self.fixtures.parse_module(module, "/" if rel == "." else f"/{rel}/")
            self._conftest_dirs[directory] = ok
            if not ok:
                return False
        return True

    def _initial_conftests(self) -> None:
        """The conftest.py files above the paths of the command line, loaded before
        ``xprun_collection`` (pytest's initial conftests), so that they too may implement
        the session's hooks (``xprun_collection``, ``xprun_runloop``)."""
        for arg in self.config.args:
            path = self.resolve(arg.partition("::")[0])
            self._load_conftests(path if path.is_dir() else path.parent)

    def _collect_error(self, path: Path, text: str) -> None:
        from .collect import relpath

        nodeid = relpath(path, self.config.rootdir)
        self.collect_errors.append((nodeid, text))
        report = reports.CollectReport(path=path, nodeid=nodeid, failed=True, longrepr=text)
        self.config.hook.xprun_collectreport(report=report)

    def perform_collect(self) -> None:
        """The default ``xprun_collection``: collect, expand, check the hook implementations,
        then let plugins filter the runs (``xprun_collection_modifyitems``)."""
        hook = self.config.hook
        self.collect()
        self.expand()
        self._check_targets()
        self.config.pluginmanager.check_pending()
        hook.xprun_collection_modifyitems(session=self, runs=self.runs)
        # The --collect-only listing asks each run's state: one listing of each experiment
        # folder answers "new" for all the runs without a directory (most of a new sweep).
        self._listings = {}
        try:
            hook.xprun_collection_finish(session=self)
        finally:
            self._listings = None

    def collect(self) -> None:
        """Collect the experiments of the given paths, node ids and run hashes
        (``self.experiments``); which runs of each are wanted is kept for ``expand``."""
        from .collect import Target

        config = self.config
        targets: dict[Path, list[Target]] = {}
        for arg in config.args:
            path = self.resolve(arg.partition("::")[0])
            target = Target.of_arg(arg)
            self._targets.append(target)
            for file in self._walk(path) if path.is_dir() else [path]:
                targets.setdefault(file, []).append(target)
        for prefix in getattr(config, "run_hashes", ()):
            target = Target(prefix, hash=prefix)
            self._targets.append(target)
            for file in self._hash_files(prefix):
                targets.setdefault(file, []).append(target)
        for file, wanted in targets.items():
            self._collect_file(file, wanted)

    def _hash_files(self, prefix: str) -> list[Path]:
        """Where the run of a hash prefix is: the file of the experiment whose run directory
        it names in the log directory (from any folder), else every experiment file below
        the current directory (a run without a directory yet, as ``--collect-only`` lists
        it)."""
        from .collect import find_run_dirs

        found = find_run_dirs(self.config.log_dir, prefix)
        if len(found) > 1:
            raise UsageError(ambiguous_prefix(prefix, sorted(nodeid for _, nodeid in found)))
        if found:
            return [(self.config.rootdir / found[0][0].partition("::")[0]).resolve()]
        return self._walk(self.config.cwd)

    def _check_targets(self) -> None:
        """Every node id and hash of the command line must select something (pytest's
        ``ERROR: not found``), and a hash prefix one run only; checked before anything
        runs."""
        from .collect import missing_parts

        missing = []
        for target in self._targets:
            if target.hash and len(set(target.matches or ())) > 1:
                raise UsageError(ambiguous_prefix(target.hash, sorted(set(target.matches or ()))))
            if target.found:
                continue
            text = f"not found: {target.text}"
            if target.label:
                experiment = target.text.partition("[")[0]
                runs = [r for r in self.runs_of(experiment)]
                absent = missing_parts(target.label, runs) if runs else []
                if absent:
                    text += (
                        f"\n(no run of {experiment} has {', '.join(absent)} in this launch; if "
                        "the run was made with a command-line override, give it again: "
                        f"{' '.join(absent)})"
                    )
            missing.append(text)
        if missing:
            raise UsageError("\nERROR: ".join(missing))

    def _collect_file(self, file: Path, wanted: list[Target]) -> None:
        from .collect import format_import_error

        config = self.config
        if not self._load_conftests(file.parent):
            return
        before = reported = len(self.collect_errors)
        try:
            results = self.gethookproxy(file.parent).xprun_collect_file(
                file_path=file, session=self
            )
        except _NOT_COLLECTION_ERRORS:
            raise
        except BaseException:  # sys.exit() too: never a silent end of the session
            self._collect_error(file, format_import_error(file))  # reports it
            reported = len(self.collect_errors)
            results = []
        for where, text in self.collect_errors[reported:]:  # added by the hook, unreported
            report = reports.CollectReport(path=file, nodeid=where, failed=True, longrepr=text)
            config.hook.xprun_collectreport(report=report)
        if len(self.collect_errors) > before:
            for target in wanted:  # reported as the file's error, not as "not found"
                target.found = True
        experiments = []
        for experiment in (e for result in results or () for e in (result or [])):
            mine = [t for t in wanted if t.wants(experiment)]
            if not mine:
                continue
            experiments.append(experiment)
            for target in mine:
                target.found = target.found or not target.some_runs
            # Labels and hashes of a wholly wanted experiment still must name one of its runs.
            self._some_runs.setdefault(experiment.nodeid, []).extend(t for t in mine if t.some_runs)
            if not all(t.some_runs for t in mine):
                self._whole.add(experiment.nodeid)
        self.experiments.extend(experiments)
        config.hook.xprun_collectreport(
            report=reports.CollectReport(
                path=file, nodeid=str(file), failed=False, count=len(experiments)
            )
        )

    def resolve(self, path: str) -> Path:
        """A path of the command line: relative to the current folder, else (as node ids are
        recorded in ``run.json`` and printed) to the rootdir."""
        here = (self.config.cwd / path).resolve()
        if os.path.exists(here):
            return here
        there = (self.config.rootdir / path).resolve()
        return there if os.path.exists(there) else here

    def runs_of(self, nodeid: str) -> list[RunSpec]:
        """The runs of the experiment ``nodeid`` (a path as given), before any selection."""
        path, _, function = nodeid.partition("::")
        file = self.resolve(path)
        for experiment in self.experiments:
            if experiment.func.__name__ == function and experiment.path == file:
                hook = self.config.hook
                return hook.xprun_generate_runs(experiment=experiment, session=self) or []
        return []

    def expand(self) -> None:
        """Expand every collected experiment into its runs (``self.runs``)."""
        from .collect import check_log_folder
        from .expand import max_runs

        self.max_runs = max_runs()
        self.override_axes = parse_overrides(self.config.override_args, self.max_runs)
        hook = self.config.hook
        names: dict[str, str] = {}
        for experiment in self.experiments:
            other = names.setdefault(experiment.name, experiment.nodeid)
            if other != experiment.nodeid:
                raise UsageError(
                    f"experiments {other} and {experiment.nodeid} would share the log folder "
                    f"{experiment.name!r}; name one with @xprun.config(experiment='...')"
                )
            check_log_folder(experiment, self.config.log_dir)
        for experiment in self.experiments:
            runs = hook.xprun_generate_runs(experiment=experiment, session=self) or []
            wanted = self._some_runs.get(experiment.nodeid)
            if wanted:
                from .collect import select_runs

                chosen = select_runs(runs, wanted)
                runs = runs if experiment.nodeid in self._whole else chosen
            self.runs.extend(runs)
            if len(self.runs) > self.max_runs:  # each experiment fits; together they do not
                raise SweepTooLarge("this launch", len(self.runs), self.max_runs)

    # -- running ------------------------------------------------------------------------------

    def run_state(self, run: RunSpec) -> RunState:
        listings = self._listings
        if listings is not None:
            folder, name = run.folder, run.hash
            names = listings.get(folder)
            if names is None:
                names = listings[folder] = _entries(folder)
            if name not in names:
                return _NEW  # what read_state says of a run without a directory
        return read_state(run.run_dir, self.clock, self.heartbeat)

    def run_states(self, runs: list[RunSpec]) -> list[RunState]:
        """The state of each run as its directory says (``run_state``), with one listing of
        each experiment folder: a run without a directory reads as new without a look."""
        previous, self._listings = self._listings, self._listings or {}
        try:
            return [self.run_state(run) for run in runs]
        finally:
            self._listings = previous

    def git_state(self) -> tuple[dict[str, Any], str | None]:
        """The code's Git state, read once per session (fields for run.json, the patch)."""
        return self.metadata.git_state()

    def set_git_state(self, fields: dict[str, Any], patch: str | None) -> None:
        """Record this Git state instead of reading it (workers get it from their spec)."""
        self.metadata.set_git_state(fields, patch)

    def snapshot(self, required: bool) -> Any:
        """The Git snapshot runs execute from (taken once), or None when not wanted.

        ``--snapshot``/``--no-snapshot`` decide; otherwise ``required`` (cluster schedulers)
        takes one or fails with a clear message, and the local pool takes one when the code
        is in a Git repository and says so when it is not.  Every module this process
        imported from the work tree must be in the snapshot, or jobs would not find it.
        """
        from . import snapshot

        wanted = self.config.option.snapshot
        if wanted is False:
            return None
        if self._snapshot is None:
            config = self.config
            try:
                self._snapshot = snapshot.take(
                    config.rootdir,
                    config.snapshot_dir,
                    [config.log_dir, config.snapshot_dir],
                    config.settings.values,
                    needed=snapshot.imported_files(),
                    taken=self._commit or None,
                )
            except snapshot.NotARepository as exc:
                if required or wanted:
                    raise
                sys.stderr.write(f"xprun: running from the work tree: {str(exc).split(',')[0]}\n")
                self._snapshot = False
        return self._snapshot or None

    def snapshot_commit(self) -> Any:
        """The session's one snapshot commit (``snapshot.Commit``), or None outside Git.

        The extracted snapshot's when one was taken (runs import it); else a commit of the
        work tree as it is, changes and untracked files in whatever the ``dirty`` and
        ``untracked`` policies say (the runs import the work tree itself, inline or with
        ``--no-snapshot``), kept by its hidden ref and not extracted.  Taken once, when
        provenance first needs it (``xprun.provenance``): a launch that runs nothing takes
        none.  A Git that fails here, or a wrong ``snapshot_include``, is a warning, not a
        failed launch.
        """
        import subprocess

        from . import snapshot

        if self._snapshot:
            return self._snapshot.taken
        if self._commit is None:
            config = self.config
            settings = {**config.settings.values, "dirty": "snapshot", "untracked": "snapshot"}
            exclude = [config.log_dir, config.snapshot_dir]
            try:
                self._commit = snapshot.commit(config.rootdir, exclude, settings)
            except snapshot.NotARepository:
                self._commit = False
            except (subprocess.CalledProcessError, OSError, UsageError) as exc:
                # A run may be claimed already: it goes on, with no snapshot recorded.
                why = getattr(exc, "stderr", None) or exc
                sys.stderr.write(f"xprun: warning: no snapshot of the code recorded: {why}\n")
                self._commit = False
        return self._commit or None

    def _from_snapshot(self, scheduler: Any) -> Any:
        """``--snapshot`` with inline: the runs, one after another, in one worker process
        that imports the code from the snapshot (this process imported the work tree to
        collect them, and a module cannot be imported twice from two places)."""
        if getattr(scheduler, "name", None) != "inline" or not self.config.option.snapshot:
            return scheduler
        from .schedulers.pool import LocalScheduler

        pool = LocalScheduler(1)
        pool.name = "inline"  # recorded as run inline, which it is: one run at a time
        return pool

    def _scheduler_named(self, name: str) -> Any:
        scheduler = self.config.hook.xprun_choose_scheduler(name=name, config=self.config)
        if scheduler is None:
            raise UsageError(
                f"unknown scheduler {name!r}; built in: inline, local, slurm, oar "
                "(plugins may add others)"
            )
        return scheduler

    def _fixture_scheduler(self, experiment: Experiment) -> Any:
        """The value of a ``scheduler`` fixture visible from the experiment, if any."""
        from .collect import relpath

        nodepath = "/" + relpath(experiment.path, self.config.rootdir)
        fdef = self.fixtures.lookup("scheduler", nodepath)
        if fdef is None or fdef.baseid == "":
            return None
        from .fixtures import FixtureRequest

        closure = self.fixtures.closure(["scheduler"], nodepath, "the scheduler")
        return FixtureRequest(None, closure, self.session_fixtures).getfixturevalue("scheduler")

    def schedule(self) -> list[tuple[Any, list[RunSpec]]]:
        """Which scheduler executes which runs: ``--scheduler``/``-n``, else a ``scheduler``
        fixture, else ``[tool.xprun] scheduler``, else inline."""
        option = self.config.option
        named = option.scheduler or ("local" if option.numprocesses else None)
        default_name = named or self.config.settings["scheduler"]
        groups: dict[int, tuple[Any, list[RunSpec]]] = {}
        cache: dict[str, Any] = {}
        by_experiment: dict[str, Any] = {}
        for run in self.runs:
            nodeid = run.experiment.nodeid
            if nodeid not in by_experiment:
                scheduler = self._fixture_scheduler(run.experiment)
                if scheduler is None or (named and getattr(scheduler, "name", None) != named):
                    if default_name not in cache:
                        cache[default_name] = self._scheduler_named(default_name)
                    scheduler = cache[default_name]
                by_experiment[nodeid] = scheduler
            scheduler = by_experiment[nodeid]
            groups.setdefault(id(scheduler), (scheduler, []))[1].append(run)
        return list(groups.values())

    def runloop(self) -> None:
        """The default ``xprun_runloop``: each group of runs to its scheduler, until one
        asks the session to stop (``-x``, a full disk).  Runs certainly complete are
        reported cached first, in one pass (``skip_complete``)."""
        for scheduler, runs in self.schedule():
            if self.shouldstop:
                break
            runs = self.skip_complete(runs)
            if not runs:
                continue
            scheduler = self._from_snapshot(scheduler)
            self.scheduler_name = scheduler.name
            scheduler.run(self, runs)

    def skip_complete(self, runs: list[RunSpec]) -> list[RunSpec]:
        """Report the runs whose record says complete as cached; return the others.

        The skip check of a large launch, batched: one ``stat`` per run already seen complete
        (the experiment folder's completion summary, ``xprun.completion_summary``), one small
        read of each other existing run's record, instead of a hook call and a state read
        per run; no record is kept, only its code digest, judged stale or not once per
        distinct digest; the cached runs are reported in one
        ``xprun_runs_cached`` call (``xprun_run_logreport`` per run only for the plugins
        that implement just that one).  It decides only "complete, so cached", which
        is what the built-in ``xprun_run_skip`` decides for such a run; every other run goes
        to its scheduler and through the run protocol (skip check, claim) as before.  Taken
        only when nothing could decide otherwise: no ``--force``, and no plugin or conftest
        implementing ``xprun_run_skip`` or ``xprun_run_protocol``.
        """
        if self.config.option.force or not runs or not self._builtin(*_SKIP_HOOKS):
            return runs
        from .completion_summary import complete_runs

        todo = []
        cached: list[RunSpec] = []
        stale: list[bool | None] = []
        found = complete_runs([(r.folder, r.hash) for r in runs])
        from .staleness import current  # a cached run made by other code is stale

        staleness = current() if self.config.pluginmanager.has_plugin(_STALENESS) else None
        judged: dict[tuple[str, str | None], bool | None] = {}  # once per code and experiment
        for run, complete in zip(runs, found, strict=True):
            if complete is None:
                todo.append(run)
                continue
            cached.append(run)  # --rerun-stale takes the per-run path (its plugin's hooks)
            key = (run.experiment.nodeid, complete.code_digest)
            if key not in judged:
                judged[key] = (
                    None
                    if staleness is None
                    else staleness.is_stale_digest(run.experiment, complete.code_digest)
                )
            stale.append(judged[key])
        if cached:
            self._report_cached(cached, stale)
        return todo

    def _report_cached(self, runs: list[RunSpec], stale: list[bool | None]) -> None:
        """``xprun_runs_cached`` once for the plugins that implement it, then
        ``xprun_run_logreport`` per run for those that implement only that."""
        pm = self.config.pluginmanager
        hook = pm.hook
        batched = [impl.plugin for impl in hook.xprun_runs_cached.get_hookimpls()]
        hook.xprun_runs_cached(runs=runs, stale=stale)
        single = pm.subset_hook_caller("xprun_run_logreport", remove_plugins=batched)
        if single.get_hookimpls():
            for run, judged in zip(runs, stale, strict=True):
                single(report=reports.RunReport(run, reports.CACHED, stale=judged))

    def _builtin(self, *names: str) -> bool:
        """Whether only xprun's own plugins implement these hooks."""
        from .config import BUILTIN_PLUGINS

        hook = self.config.pluginmanager.hook
        return all(
            impl.plugin_name in BUILTIN_PLUGINS
            for name in names
            for impl in getattr(hook, name).get_hookimpls()
        )

    def exitstatus(self) -> ExitCode:
        if self.interrupted:
            return ExitCode.INTERRUPTED
        unsuccessful = (*reports.UNSUCCESSFUL, reports.TEARDOWN_ERROR)
        if self.collect_errors or any(self.counts[o] for o in unsuccessful):
            return ExitCode.RUNS_FAILED  # a run failed, a worker died under it, a teardown...
        if not self.runs and not self.deferred:
            return ExitCode.NO_RUNS_COLLECTED
        return ExitCode.OK

    def main(self) -> int:
        hook = self.config.hook
        exitstatus: int = ExitCode.OK
        previous = _install_sigterm()
        try:
            hook.xprun_sessionstart(session=self)
            self._initial_conftests()
            hook.xprun_collection(session=self)
            hook.xprun_runloop(session=self)
            exitstatus = self.exitstatus()
        except UsageError as exc:
            sys.stderr.write(f"ERROR: {exc}\n")
            self.usage_error = True
            exitstatus = ExitCode.USAGE_ERROR
        except (KeyboardInterrupt, Terminated):
            self.interrupted = True
            exitstatus = ExitCode.INTERRUPTED
        except Exception:  # xprun's own bug, wherever it is: its traceback, exit code 3
            sys.stderr.write("INTERNAL ERROR:\n" + traceback.format_exc())
            exitstatus = ExitCode.INTERNAL_ERROR
        finally:
            errors = self.session_fixtures.teardown()
            for error in errors:
                sys.stderr.write(f"error in session fixture teardown: {error!r}\n")
            _restore_sigterm(previous)
        hook.xprun_sessionfinish(session=self, exitstatus=int(exitstatus))
        return int(exitstatus)


# -- the defaults of the session's hooks ----------------------------------------------------


@hookimpl(trylast=True)
def xprun_collection(session: Session) -> bool:
    session.perform_collect()
    return True


@hookimpl(trylast=True)
def xprun_runloop(session: Session) -> bool:
    if session.config.option.collect_only or not session.runs:
        return True
    session.runloop()
    return True


class _HookSubset:
    """A hook relay without some plugins (pluggy's ``subset_hook_caller``, made per name)."""

    def __init__(self, pm: pluggy.PluginManager, remove: list[Any]) -> None:
        self._pm = pm
        self._remove = remove

    def __getattr__(self, name: str) -> Any:
        caller = self._pm.subset_hook_caller(name, remove_plugins=self._remove)
        setattr(self, name, caller)
        return caller


_NEW = RunState(Status.NEW, 0, None)


def _entries(folder: str) -> set[str]:
    try:
        return {entry.name for entry in os.scandir(folder)}
    except OSError:  # no folder yet (or not one): no run directory in it
        return set()


_SKIP_HOOKS = ("xprun_run_skip", "xprun_run_protocol")  # what skip_complete stands in for
_STALENESS = "xprun.staleness"  # the plugin that tells stale cached runs (-p no:staleness)

# Raised while importing, these end the session as they would anywhere else; anything else
# (SystemExit included) is the file's collection error.
_NOT_COLLECTION_ERRORS = (KeyboardInterrupt, Terminated, UsageError)


def _logreport(hook: Any) -> Any:
    def logreport(report: reports.RunReport) -> None:
        hook.xprun_run_logreport(report=report)

    return logreport


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' * (count != 1)}"


def _install_sigterm() -> Any:
    """SIGTERM ends the current run as interrupted (installed for the session only)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, raising(Terminated))


def _restore_sigterm(previous: Any) -> None:
    if previous is not None:
        signal.signal(signal.SIGTERM, previous)
