"""Stale results: flagged, never silently reused or silently rerun.

Each run records the code it ran (``code`` in ``run.json``: the digest of its experiment's
module and of every project module it imports, see :mod:`xprun.codedigest`), through
``xprun_run_record``.  A complete run whose recorded digest differs from today's code is
*stale*: it is still cached (a result is never thrown away behind the user's back), but the
summary says so (``12 cached (4 stale: code changed since they ran)``), ``--collect-only``
lists it ``complete, stale``, ``-v`` says ``CACHED (STALE)``, and the Reader has a ``stale``
column.  ``--rerun-stale`` (or ``[tool.xprun.staleness] rerun_stale = true``) runs exactly
the stale runs again, as ``--force`` would (the replaced attempt is kept in
``previous/<N>/``).  A run recorded without ``code`` (format 1) is never stale: unknown.

``xprun why RUN`` says which files and functions changed, with a unified diff between the
code the run ran and today's.

Today's digest is computed once per experiment per session, never per run: the batched skip
check (``Session.skip_complete``) judges each distinct recorded digest once per experiment,
from the experiment folder's completion summary (:mod:`xprun.completion_summary`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .cli import Command
    from .collect import Experiment
    from .config import Config
    from .reports import RunReport
    from .runcontext import RunContext
    from .runspec import RunSpec

#: The settings table of this plugin (and how ``--rerun-stale`` reaches workers: job specs
#: record the settings).
SETTINGS_TABLE = "staleness"
#: What the summary adds to the cached count.
STALE_NOTE = "stale: code changed since they ran"


def xprun_addoption(parser: argparse.ArgumentParser, settings: dict[str, Any]) -> None:
    from .options import option_group

    table = settings.get(SETTINGS_TABLE)
    table = table if isinstance(table, dict) else {}
    option_group(parser, "running").add_argument(
        "--rerun-stale",
        action="store_true",
        default=bool(table.get("rerun_stale", False)),
        help="run again the complete runs whose code changed since they ran (stale: their "
        "module or a project module it imports); without it they stay cached and are "
        "counted as stale (default: [tool.xprun.staleness] rerun_stale, else false)",
    )


class _Staleness:
    """The session's view of today's code: one ``code`` object per experiment."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.rerun = bool(getattr(config.option, "rerun_stale", False))
        self._code: dict[str, dict[str, Any]] = {}  # experiment node id → code object

    def root(self) -> Path:
        """The user's work tree: the rootdir, or in a worker that runs from a snapshot, the
        launcher's rootdir named by the job spec."""
        worker = self.config.pluginmanager.get_plugin("xprun.worker")
        spec = getattr(worker, "spec", None)
        source = spec.get("source_rootdir") if isinstance(spec, dict) else None
        return Path(source) if isinstance(source, str) else self.config.rootdir

    def code(self, experiment: Experiment) -> dict[str, Any]:
        """The ``code`` object of ``experiment``'s runs, computed once per session."""
        found = self._code.get(experiment.nodeid)
        if found is None:
            from .codedigest import experiment_code

            config = self.config
            found = self._code[experiment.nodeid] = experiment_code(
                experiment.path,
                config.rootdir,
                [config.log_dir, config.snapshot_dir],
                root=self.root(),
                version=getattr(experiment.declaration, "code_version", None),
                also=_fixture_files(experiment),
                function=experiment.nodeid.rpartition("::")[2] or None,
                patterns=config.settings.patterns("experiment_functions"),
            )
        return found

    def is_stale(self, run: RunSpec, record: dict[str, Any]) -> bool:
        """Whether the complete ``record`` of ``run`` was made by other code than today's;
        False when it recorded none (unknown)."""
        return self.is_stale_digest(run.experiment, code_digest_of(record))

    def is_stale_digest(self, experiment: Experiment, recorded: str | None) -> bool:
        """``is_stale`` of a record that names the code digest ``recorded`` (None: none):
        all the skip check keeps of a record (``xprun.completion_summary``)."""
        return recorded is not None and recorded != self.code(experiment)["digest"]

    def stale_on_disk(self, run: RunSpec) -> bool:
        """``is_stale`` of the run's recorded ``run.json`` (False without a complete one)."""
        from . import store
        from .states import Status

        record = store.read_record(run.run_dir)
        if not record or record.get("status") != Status.COMPLETE:
            return False
        return self.is_stale(run, record)


def code_digest_of(record: dict[str, Any]) -> str | None:
    """The code digest a record names (``code.digest``), or None (format 1, or the plugin
    blocked when it ran): what staleness compares, and all it needs of a record."""
    code = record.get("code")
    if type(code) is not dict:
        return None
    digest = code.get("digest")
    return digest if type(digest) is str else None


def _fixture_files(experiment: Experiment) -> list[str]:
    """The files defining the fixtures the experiment's runs set up (its closure): a
    fixture in a conftest.py computes part of every result, as the module does.  Files
    outside the rootdir (xprun's built-in fixtures, installed plugins) are left out by
    ``experiment_code``."""
    files = set()
    for fixture in experiment.fixtures.values():
        code = getattr(getattr(fixture, "func", None), "__code__", None)
        if code is not None:
            files.add(code.co_filename)
    return sorted(files)


_sessions: list[_Staleness] = []  # the configured session's (one configures at a time)


def current() -> _Staleness | None:
    """The configured session's staleness, or None (the plugin blocked, or no session)."""
    return _sessions[-1] if _sessions else None


def xprun_configure(config: Config) -> None:
    table = config.settings.values.get(SETTINGS_TABLE)
    table = dict(table) if isinstance(table, dict) else {}
    if not isinstance(table.get("rerun_stale", False), bool):
        from .errors import UsageError

        raise UsageError(
            f"[tool.xprun.{SETTINGS_TABLE}] rerun_stale must be true or false, got "
            f"{table['rerun_stale']!r}"
        )
    staleness = _Staleness(config)
    # Job specs record the settings: workers and cluster jobs rerun stale runs too.
    config.settings.values[SETTINGS_TABLE] = {**table, "rerun_stale": staleness.rerun}
    _sessions[:] = [staleness]
    if staleness.rerun:
        _mark_hookimpls()
        config.pluginmanager.register(_RerunStale(staleness), "xprun.staleness.rerun")


class _RerunStale:
    """``--rerun-stale``: a stale run is not skipped, wherever the skip check is made (the
    launcher before sending runs out, the process executing them), and goes through the
    protocol as ``--force`` sends it (the replaced attempt set aside in ``previous/<N>/``).

    Registered only then: it sees every run (the batched skip check steps aside for it), a
    cost paid only when asked for."""

    def __init__(self, staleness: _Staleness) -> None:
        self.staleness = staleness

    def xprun_run_skip(self, run: RunSpec, context: RunContext) -> Any:
        report = yield
        cached = report is not None and report.status == "cached" and not context.force
        if cached and self.staleness.stale_on_disk(run):
            return None  # run it
        return report

    def xprun_run_protocol(self, run: RunSpec, context: RunContext) -> RunReport | None:
        if context.force or not self.staleness.stale_on_disk(run):
            return None
        import dataclasses

        forced = dataclasses.replace(context, force=True)
        report: RunReport | None = context.hook.xprun_run_protocol(run=run, context=forced)
        return report


def _mark_hookimpls() -> None:
    """Give ``_RerunStale``'s hooks their options once pluggy is loaded (this module is
    imported by ``xprun --help``, which imports nothing but the standard library): its skip
    check wraps the others, and its protocol comes before the others (``--retries``')."""
    from .hookimpl import hookimpl

    hookimpl(wrapper=True)(_RerunStale.xprun_run_skip)
    hookimpl(tryfirst=True)(_RerunStale.xprun_run_protocol)


def xprun_unconfigure(config: Config) -> None:
    _sessions.clear()


def xprun_run_record(run: RunSpec, context: RunContext) -> dict[str, Any] | None:
    staleness = current()
    return None if staleness is None else {"code": staleness.code(run.experiment)}


def xprun_run_logreport(report: RunReport) -> None:
    """A cached run that the batched skip check did not judge (the per-run skip check, a
    worker's report) is judged here, before the terminal counts it."""
    staleness = current()
    if staleness is not None and report.stale is None and report.status == "cached":
        report.stale = staleness.stale_on_disk(report.run)


def xprun_runs_cached() -> None:
    """The batched skip check judges its cached runs itself (``Session.skip_complete``):
    nothing left to judge (so no report per run reaches ``xprun_run_logreport`` above)."""


def xprun_subcommand() -> Iterable[Command]:
    from .cli import Command

    return (Command("why", why_main, "why a cached run is stale: the code changed since"),)


# -- xprun why ---------------------------------------------------------------------------------


def make_parser() -> Any:
    from .options import ArgumentParser
    from .runref import add_log_dir_option

    parser = ArgumentParser(
        prog="xprun why",
        description="Say why runs are stale: which of the files they ran changed since, which "
        "functions, and a unified diff between the code they ran and today's.",
    )
    parser.add_argument(
        "runs",
        nargs="+",
        metavar="RUN",
        help="a hash, a unique hash prefix (4+ characters), a node id, or a query",
    )
    add_log_dir_option(parser)
    return parser


def why_main(argv: list[str]) -> int:
    from .errors import ExitCode, UsageError
    from .runref import RunResolver, default_log_dir
    from .show import warnings_to_stderr

    try:
        args = make_parser().parse_args(argv)
        log_dir = default_log_dir(args.log_dir)
        with warnings_to_stderr():
            found = RunResolver(log_dir).resolve_all(args.runs)
    except UsageError as exc:
        sys.stderr.write(f"ERROR: {exc}\n")
        return int(ExitCode.USAGE_ERROR)
    seen: dict[tuple[str, str], str] = {}  # runs of the same code are explained once
    sys.stdout.write("".join(explain(log_dir, run_dir, seen) for run_dir in found))
    return int(ExitCode.OK)


def explain(log_dir: Path, run_dir: Path, seen: dict[tuple[str, str], str] | None = None) -> str:
    """What ``xprun why`` prints about one run directory (``seen``: the code already
    explained, by root and digest, with the run that was: said once)."""
    from . import store

    try:
        record = store.read_json(run_dir / store.RUN_JSON)
    except (OSError, ValueError) as exc:
        return f"{run_dir}: run.json cannot be read ({exc})\n"
    record = record if isinstance(record, dict) else {}
    name = f"{str(record.get('hash', run_dir.name))[:12]}  {record.get('nodeid', run_dir)}"
    code = record.get("code")
    if not isinstance(code, dict) or not isinstance(code.get("files"), dict):
        return (
            f"{name}: its code was not recorded (made by an xprun that did not record it): "
            "whether it is stale is unknown\n"
        )
    key = (str(code.get("root")), str(code.get("digest")))
    if seen is not None and key in seen:
        return f"{name}: ran the same code as {seen[key]} (above)\n"
    if seen is not None:
        seen[key] = name.split()[0]
    changes = changed_files(code)
    if not changes:
        return f"{name}: not stale: every file it ran is as it was\n"
    lines = [f"{name}: stale: {len(changes)} of the {len(code['files'])} files it ran changed\n"]
    for relpath, today in changes:
        lines.append(_explain_file(log_dir, record, code, relpath, today))
    return "".join(lines)


def changed_files(code: dict[str, Any]) -> list[tuple[str, str | None]]:
    """The recorded files whose digest differs today, each with today's digest (None: the
    file is gone), in path order."""
    from .codedigest import recorded_digest

    root = Path(str(code.get("root", "")))
    changes = []
    for relpath, recorded in sorted(code["files"].items()):
        path = _inside(root, relpath)
        today = recorded_digest(path, relpath, code) if path is not None else None
        if today != recorded:
            changes.append((relpath, today))
    return changes


def _inside(root: Path, relpath: Any) -> Path | None:
    """``root/relpath`` for a plain relative path (a record may come from anyone)."""
    if not isinstance(relpath, str) or not relpath or relpath.startswith("/"):
        return None
    if ".." in relpath.split("/") or "\0" in relpath:
        return None
    return root / relpath


def _explain_file(
    log_dir: Path, record: dict[str, Any], code: dict[str, Any], relpath: str, today: str | None
) -> str:
    import difflib

    from .codedigest import function_digests

    path = _inside(Path(str(code.get("root", ""))), relpath)
    if today is None or path is None:
        return f"  {relpath}: deleted since (not found in {code.get('root')})\n"
    now = path.read_bytes()
    then = _recorded_source(log_dir, record, relpath)
    if then is None:
        return (
            f"  {relpath}: changed (the source it ran is not recorded, neither in a snapshot "
            "nor in the source store: only its digest is known)\n"
        )
    before, after = function_digests(then), function_digests(now)
    names = sorted(n for n in {*before, *after} if before.get(n) != after.get(n))
    described = [
        f"{n} ({'added' if n not in before else 'removed' if n not in after else 'changed'})"
        for n in names
    ]
    text = f"  {relpath}: changed: {', '.join(described) or 'module-level code'}\n"
    diff = difflib.unified_diff(
        then.decode("utf-8", "replace").splitlines(keepends=True),
        now.decode("utf-8", "replace").splitlines(keepends=True),
        f"a/{relpath} (as it ran)",
        f"b/{relpath} (today)",
    )
    body = "".join(line if line.endswith("\n") else line + "\n" for line in diff)
    return text + "".join(f"    {line}" for line in body.splitlines(keepends=True))


def _recorded_source(log_dir: Path, record: dict[str, Any], relpath: str) -> bytes | None:
    try:
        from .provenance import recorded_source
    except ImportError:  # an xprun without the source store
        return None
    found: bytes | None = recorded_source(log_dir, record, relpath)
    return found
