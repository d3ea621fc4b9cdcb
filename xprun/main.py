"""Config (options, settings, plugins) and Session (collect → expand → select → run).

As in pytest, the session is itself a plugin: it counts run outcomes and stops after the
first failure under ``-x``.  Everything else is done by the built-in plugins listed in
``BUILTIN_PLUGINS``, which third-party plugins and ``conftest.py`` files sit beside.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
import time
import traceback
from collections import Counter
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pluggy

from . import hookspec, reports
from .errors import CollectError, ExitCode, Terminated, UsageError, raising
from .fixtures import FixtureRegistry, SessionFixtures
from .hookimpl import hookimpl
from .metadata import PackageVersions, git_state
from .overrides import OverrideAxis, looks_like_override, parse_overrides
from .settings import DEFAULTS, ProjectSettings, load_settings
from .store import FsClock, Heartbeat, RunState, read_state

if TYPE_CHECKING:
    from .collect import Experiment
    from .runspec import RunSpec

BUILTIN_PLUGINS = (
    "xprun.collect",
    "xprun.expand",
    "xprun.keyword",
    "xprun.runner",
    "xprun.schedulers.inline",
    "xprun.schedulers.pool",
    "xprun.schedulers.slurm",
    "xprun.schedulers.oar",
    "xprun.terminal",
)


def make_pluginmanager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("xprun")
    pm.add_hookspecs(hookspec)
    for name in BUILTIN_PLUGINS:
        pm.register(importlib.import_module(name), name=name)
    if not os.environ.get("XPRUN_DISABLE_PLUGIN_AUTOLOAD"):
        try:
            pm.load_setuptools_entrypoints("xprun")
        except pluggy.PluginValidationError as exc:
            raise UsageError(
                f"plugin {getattr(exc.plugin, '__name__', exc.plugin)!r} does not fit xprun's "
                f"hooks: {exc}; fix or uninstall it, or set XPRUN_DISABLE_PLUGIN_AUTOLOAD=1"
            ) from None
    return pm


def _exists(path: Path) -> bool:
    """Whether ``path`` exists; False for words no file system accepts (too long, NUL...)."""
    return os.path.exists(path)  # never raises, unlike Path.exists


def _candidate_paths(argv: list[str], cwd: Path) -> list[Path]:
    """Existing paths among the positional words of the command line, to find the rootdir
    before plugins add their options.

    The words are sorted out by the built-in options, so their values (``-k ..``,
    ``--log-dir ../elsewhere``) never move the rootdir; a word after an option only a plugin
    knows is still tried.
    """
    parser = ArgumentParser(add_help=False)
    parser.add_argument("args", nargs="*")
    xprun_addoption(parser, dict(DEFAULTS))
    try:
        option, unknown = parser.parse_known_intermixed_args(argv)
        words = [*option.args, *unknown]
    except UsageError:  # reported by the real parse, with every plugin's options known
        words = argv
    found = []
    for word in words:
        if word.startswith("-") or looks_like_override(word):
            continue
        path = cwd / word.split("::", 1)[0]
        if _exists(path):
            found.append(path.resolve())
    return found


class Config:
    """Everything decided before the session starts: settings, options, plugins."""

    def __init__(
        self,
        pluginmanager: pluggy.PluginManager,
        settings: ProjectSettings,
        option: argparse.Namespace,
        cwd: Path,
    ) -> None:
        self.pluginmanager = pluginmanager
        self.hook = pluginmanager.hook
        self.settings = settings
        self.option = option
        self.cwd = cwd
        self.rootdir = settings.rootdir
        self.args, self.override_args = self._split_positionals(option.args)
        if not self.args:
            # As pytest: with no path given, collect from the invocation directory (the
            # rootdir, settings and log directory are still the project's).
            self.args = [str(cwd)]
        if option.log_dir:
            log_dir, source = cwd / option.log_dir, "--log-dir"
        else:
            log_dir, source = settings.rootdir / settings["log_dir"], "[tool.xprun] log_dir"
        self.log_dir = check_log_dir(log_dir, source, writable=not option.collect_only)
        self.snapshot_dir = (settings.rootdir / settings["snapshot_dir"]).resolve()
        self.heartbeat = Heartbeat(
            float(settings["heartbeat_interval"]), float(settings["heartbeat_timeout"])
        )

    def _split_positionals(self, words: list[str]) -> tuple[list[str], list[str]]:
        args, overrides = [], []
        for word in words:
            exists = _exists(self.cwd / word.split("::", 1)[0])
            if looks_like_override(word) and not exists:
                overrides.append(word)
            elif exists:
                args.append(word)
            else:
                raise UsageError(
                    f"file or directory not found: {word.split('::', 1)[0]} "
                    "(positional arguments are paths, node ids, or key=value overrides)"
                )
        return args, overrides


class ArgumentParser(argparse.ArgumentParser):
    """argparse, with its errors turned into usage errors (exit code 4, as pytest)."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        raise UsageError(f"{message}\n{self.format_usage().strip()}")


def build_parser(pm: pluggy.PluginManager, settings: ProjectSettings) -> argparse.ArgumentParser:
    from ._version import __version__

    parser = ArgumentParser(
        prog="xprun",
        description="Discover xp_* experiments, expand their configs and sweeps, run each "
        "content-hashed config once.",
        epilog="Other commands: xprun show (a table of results), xprun plot (a metric, "
        "mean ± std). Exit codes: 0 ok, 1 runs failed, 2 interrupted, "
        "3 internal error, 4 usage error, 5 no runs collected.",
    )
    parser.add_argument("--version", action="version", version=f"xprun {__version__}")
    parser.add_argument(
        "args",
        nargs="*",
        metavar="PATH|NODEID|OVERRIDE",
        help="files, folders or node ids (file.py::xp_name[label]) to collect, and config "
        "overrides in Hydra's grammar (lr=0.1, lr=0.1,0.01, seed=range(0,5), +key=1, ~key)",
    )
    pm.hook.xprun_addoption.call_historic(kwargs={"parser": parser, "settings": settings.values})
    return parser


@hookimpl
def xprun_addoption(parser: argparse.ArgumentParser, settings: dict[str, Any]) -> None:
    group = parser.add_argument_group("running")
    group.add_argument(
        "-k",
        dest="keyword",
        metavar="EXPR",
        default="",
        help="only runs matching the keyword expression (pytest's -k: "
        "'sgd and not lr=0.1'); a word matches part of a node id or key=value item, "
        "a key=value word a whole value",
    )
    group.add_argument(
        "-x", "--exitfirst", action="store_true", help="stop after the first failed run"
    )
    group.add_argument(
        "--force", action="store_true", help="run again runs that are already complete"
    )
    group.add_argument(
        "--collect-only",
        "--co",
        action="store_true",
        dest="collect_only",
        help="list every run with its hash and state; run nothing",
    )
    group.add_argument(
        "--log-dir",
        metavar="DIR",
        default=None,
        help="where run directories go (default: [tool.xprun] log_dir, "
        "else 'xprun_logs' under the rootdir)",
    )
    group.add_argument(
        "--scheduler",
        default=None,
        help="where runs execute: inline (this process), local (a pool of processes, -n), "
        "slurm, oar (default: a 'scheduler' fixture, else [tool.xprun] scheduler, else inline)",
    )
    group.add_argument(
        "-n",
        "--numprocesses",
        default=None,
        metavar="N",
        help="run on N local worker processes ('auto': one per core); implies --scheduler local",
    )
    group.add_argument(
        "--wait",
        action="store_true",
        help="with a cluster scheduler, wait for the jobs and report how the runs ended",
    )
    snap = group.add_mutually_exclusive_group()
    snap.add_argument(
        "--snapshot",
        action="store_true",
        default=None,
        help="run from a Git snapshot of the code (the default for every scheduler but inline)",
    )
    snap.add_argument(
        "--no-snapshot",
        action="store_false",
        dest="snapshot",
        help="run from the work tree as it is when each run starts",
    )
    group.add_argument(
        "-s",
        action="store_const",
        const="no",
        dest="capture",
        default="sys",
        help="also show the runs' output on the terminal as it is written",
    )
    out = parser.add_argument_group("reporting")
    out.add_argument("-q", "--quiet", action="count", default=0, help="less output")
    out.add_argument("-v", "--verbose", action="count", default=0, help="one line per run")


def check_log_dir(path: Path, source: str, writable: bool) -> Path:
    """``path`` resolved, once it is sure to hold run directories; a usage error otherwise.

    Checked before anything is written, so a bad log directory stops xprun with nothing
    created: a file or a device (``/dev/null``) in its place, a symbolic link that leads
    nowhere (whose target ``mkdir`` would silently create) or loops, a name too long for the
    file system, or (unless ``writable`` is false, as for ``--collect-only``) a folder this
    process may not write into.
    """

    def fail(problem: str) -> NoReturn:
        raise UsageError(
            f"log directory {path} (from {source}): {problem}; fix it, or choose another "
            "with --log-dir or [tool.xprun] log_dir"
        )

    existing = path
    while not os.path.exists(existing):  # the nearest part that exists (symlinks followed)
        if os.path.lexists(existing):
            fail(f"{existing} is a symbolic link to nothing (its target is missing, or it loops)")
        if existing.parent == existing:
            break
        existing = existing.parent
    where = "it" if existing == path else str(existing)
    if not os.path.isdir(existing):
        fail(f"{where} exists and is not a directory")
    try:
        limit = os.pathconf(existing, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    too_long = [p for p in path.relative_to(existing).parts if len(os.fsencode(p)) > limit]
    if too_long:
        fail(f"the name {too_long[0][:40]}... is longer than the file system allows ({limit})")
    if writable and not os.access(existing, os.W_OK | os.X_OK):
        fail(f"{where} is not writable by this user")
    try:
        return path.resolve()
    except (OSError, RuntimeError) as exc:  # a loop that appeared meanwhile
        fail(f"cannot be resolved ({exc})")


class Session:
    """One invocation: collects experiments, expands them into runs, runs them."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.fixtures = FixtureRegistry()
        self.session_fixtures = SessionFixtures()
        self.experiments: list[Experiment] = []
        self.runs: list[RunSpec] = []
        self.collect_errors: list[tuple[str, str]] = []  # (where, text)
        self.counts: Counter[str] = Counter()
        self.shouldstop: str | bool = False
        self.interrupted = False
        self.usage_error = False
        self.scheduler_name = "inline"
        self._snapshot: Any = None
        self.override_axes: list[OverrideAxis] = []
        self.clock = FsClock(config.log_dir)
        self.heartbeat = config.heartbeat
        self.packages = PackageVersions()
        self._git: tuple[dict[str, Any], str | None] | None = None
        self.started = time.time()
        self._conftest_dirs: dict[Path, bool] = {}  # folder → its conftest imported fine
        self._labels: dict[str, set[str]] = {}  # experiment node id → selected run labels
        config.pluginmanager.register(self, name="session")

    # -- the session as a plugin --------------------------------------------------------------

    @hookimpl(tryfirst=True)
    def xprun_run_logreport(self, report: reports.RunReport) -> None:
        self.counts[report.outcome] += 1
        if report.teardown_error:
            self.counts[reports.TEARDOWN_ERROR] += 1
        if report.shouldstop:
            self.shouldstop = report.shouldstop
        elif report.failed and self.config.option.exitfirst:
            self.shouldstop = "stopping after the first failure (-x)"

    # -- collection -----------------------------------------------------------------------------

    def _ignored(self, path: Path) -> bool:
        return bool(self.config.hook.xprun_ignore_collect(collection_path=path, config=self.config))

    def _walk(self, top: Path) -> list[Path]:
        patterns = self.config.settings.patterns("experiment_files")
        found = []
        for dirpath, dirnames, filenames in os.walk(top):
            here = Path(dirpath)
            dirnames[:] = sorted(d for d in dirnames if not self._ignored(here / d))
            found.extend(
                here / f for f in sorted(filenames) if any(fnmatchcase(f, p) for p in patterns)
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
                    rel = relpath(directory, rootdir)
                    self.fixtures.parse_module(module, "/" if rel == "." else f"/{rel}/")
            self._conftest_dirs[directory] = ok
            if not ok:
                return False
        return True

    def _collect_error(self, path: Path, text: str) -> None:
        from .collect import relpath

        nodeid = relpath(path, self.config.rootdir)
        self.collect_errors.append((nodeid, text))
        report = reports.CollectReport(path=path, nodeid=nodeid, failed=True, longrepr=text)
        self.config.hook.xprun_collectreport(report=report)

    def collect(self) -> None:
        from . import builtin_fixtures
        from .collect import format_import_error

        self.fixtures.parse_module(builtin_fixtures, "")
        config = self.config
        selectors: dict[Path, set[str]] = {}
        for arg in config.args or [str(config.rootdir)]:
            path_text, _, selector = arg.partition("::")
            path = (config.cwd / path_text).resolve()
            files = self._walk(path) if path.is_dir() else [path]
            for file in files:
                if selector:
                    selectors.setdefault(file, set()).add(selector)
                elif file not in selectors:
                    selectors[file] = set()
                else:
                    selectors[file].add("*")
        for file, wanted in selectors.items():
            if not self._load_conftests(file.parent):
                continue
            before = len(self.collect_errors)
            try:
                results = config.hook.xprun_collect_file(file_path=file, session=self)
            except _NOT_COLLECTION_ERRORS:
                raise
            except BaseException:  # sys.exit() too: never a silent end of the session
                self._collect_error(file, format_import_error(file))
                continue
            for where, text in self.collect_errors[before:]:
                report = reports.CollectReport(path=file, nodeid=where, failed=True, longrepr=text)
                config.hook.xprun_collectreport(report=report)
            experiments = [e for result in results for e in (result or [])]
            if wanted and "*" not in wanted:
                experiments = [e for e in experiments if _selected(e, wanted)]
            for experiment in experiments:
                prefix = experiment.func.__name__ + "["
                self._labels[experiment.nodeid] = {s for s in wanted if s.startswith(prefix)}
            self.experiments.extend(experiments)
            config.hook.xprun_collectreport(
                report=reports.CollectReport(
                    path=file, nodeid=str(file), failed=False, count=len(experiments)
                )
            )

    def expand(self) -> None:
        from .collect import check_log_folder

        self.override_axes = parse_overrides(self.config.override_args)
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
            labels = self._labels.get(experiment.nodeid)
            if labels:
                runs = [r for r in runs if r.nodeid.partition("::")[2] in labels]
            self.runs.extend(runs)
        hook.xprun_collection_modifyitems(session=self, runs=self.runs)
        hook.xprun_collection_finish(session=self)

    # -- running ------------------------------------------------------------------------------

    def run_state(self, run: RunSpec) -> RunState:
        return read_state(run.run_dir, self.clock, self.heartbeat)

    def git_state(self) -> tuple[dict[str, Any], str | None]:
        """The code's Git state, read once per session (fields for run.json, the patch)."""
        if self._git is None:
            config = self.config
            self._git = git_state(config.rootdir, [config.log_dir, config.snapshot_dir])
        return self._git

    def set_git_state(self, fields: dict[str, Any], patch: str | None) -> None:
        """Record this Git state instead of reading it (workers get it from their spec)."""
        self._git = (fields, patch)

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
                )
            except snapshot.NotARepository as exc:
                if required or wanted:
                    raise
                sys.stderr.write(f"xprun: running from the work tree: {str(exc).split(',')[0]}\n")
                self._snapshot = False
        return self._snapshot or None

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

    def exitstatus(self) -> ExitCode:
        if self.interrupted:
            return ExitCode.INTERRUPTED
        unsuccessful = (*reports.UNSUCCESSFUL, reports.TEARDOWN_ERROR)
        if self.collect_errors or any(self.counts[o] for o in unsuccessful):
            return ExitCode.RUNS_FAILED  # a run failed, a worker died under it, a teardown...
        if not self.runs:
            return ExitCode.NO_RUNS_COLLECTED
        return ExitCode.OK

    def main(self) -> int:
        hook = self.config.hook
        exitstatus: int = ExitCode.OK
        previous = _install_sigterm()
        try:
            hook.xprun_sessionstart(session=self)
            self.collect()
            self.expand()
            if not self.config.option.collect_only and self.runs:
                for scheduler, runs in self.schedule():
                    if self.shouldstop:
                        break
                    scheduler = self._from_snapshot(scheduler)
                    self.scheduler_name = scheduler.name
                    scheduler.run(self, runs)
            exitstatus = self.exitstatus()
        except UsageError as exc:
            sys.stderr.write(f"ERROR: {exc}\n")
            self.usage_error = True
            exitstatus = ExitCode.USAGE_ERROR
        except (KeyboardInterrupt, Terminated):
            self.interrupted = True
            exitstatus = ExitCode.INTERRUPTED
        except Exception:
            sys.stderr.write("INTERNAL ERROR:\n" + traceback.format_exc())
            exitstatus = ExitCode.INTERNAL_ERROR
        finally:
            errors = self.session_fixtures.teardown()
            for error in errors:
                sys.stderr.write(f"error in session fixture teardown: {error!r}\n")
            _restore_sigterm(previous)
        hook.xprun_sessionfinish(session=self, exitstatus=int(exitstatus))
        return int(exitstatus)


# Raised while importing, these end the session as they would anywhere else; anything else
# (SystemExit included) is the file's collection error.
_NOT_COLLECTION_ERRORS = (KeyboardInterrupt, Terminated, UsageError)


def _selected(experiment: Experiment, wanted: set[str]) -> bool:
    name = experiment.func.__name__
    return any(s == name or s.startswith(name + "[") for s in wanted)


def _install_sigterm() -> Any:
    """SIGTERM ends the current run as interrupted (installed for the session only)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, raising(Terminated))


def _restore_sigterm(previous: Any) -> None:
    if previous is not None:
        signal.signal(signal.SIGTERM, previous)


def make_config(
    argv: list[str], cwd: Path, settings: ProjectSettings | None = None, terminal: bool = True
) -> Config:
    """Plugins registered, options parsed, plugins configured: a ``Config`` for ``argv``."""
    if settings is None:
        settings = load_settings(_candidate_paths(argv, cwd), cwd)
    pm = make_pluginmanager()
    pm.register(sys.modules[__name__], name="xprun.main")
    if not terminal:
        pm.unregister(name="xprun.terminal")
    parser = build_parser(pm, settings)
    option = parser.parse_intermixed_args(argv)
    config = Config(pm, settings, option, cwd)
    pm.hook.xprun_configure.call_historic(kwargs={"config": config})
    return config


def main(argv: list[str] | None = None) -> int:
    """Run ``xprun`` with ``argv`` (default: the command line); return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        config = make_config(argv, Path.cwd())
    except (UsageError, CollectError) as exc:  # CollectError: a plugin failed to load
        sys.stderr.write(f"ERROR: {exc}\n")
        return int(ExitCode.USAGE_ERROR)
    try:
        return Session(config).main()
    finally:
        config.hook.xprun_unconfigure(config=config)
