"""``--report-log PATH``: one JSON object per line for each event of the session, as
pytest-reportlog, for programs that follow a sweep (dashboards, CI, notebooks).

Events, each with ``"$report_type"``:

- ``SessionStart``: ``xprun_version``, ``rootdir``, ``log_dir``;
- ``CollectionFinish``: ``runs`` (selected), ``experiments``, ``errors`` (each a
  ``nodeid`` and ``longrepr``: files that failed to import);
- ``RunReport``: one per run, in the launching process (so also for the runs of ``-n`` and of
  ``--wait``): ``nodeid``, ``experiment``, ``hash``, ``run_dir``, ``status`` (an
  ``xprun.Status`` word), ``duration`` (seconds), ``phases`` (seconds of ``setup``, ``call``
  and ``teardown`` when the run was executed), ``longrepr``, ``teardown_error``, ``stdout``,
  ``stderr``;
- ``SessionFinish``: ``exitstatus``, ``counts`` (by status), ``duration``.

Each line is written whole and flushed as its event happens, so a reader tailing the file (or
one reading it after the launcher was killed) sees every event so far.  The module imports only
the standard library (its option is listed by ``xprun --help`` without the plugin manager).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse

    from .config import Config
    from .reports import RunReport
    from .session import Session


def xprun_addoption(parser: argparse.ArgumentParser, settings: dict[str, Any]) -> None:
    from .options import option_group

    group = option_group(parser, "machine-readable output")
    group.add_argument(
        "--report-log",
        metavar="PATH",
        dest="reportlog",
        default=None,
        help="write one JSON line per event (session start, collection, each run, session "
        "finish) to PATH, as pytest-reportlog",
    )


def output_path(config: Config, value: str, flag: str) -> Path:
    """The file an output option names, relative to the invocation directory; its folder is
    made.  A usage error, before anything runs, when it cannot be a file."""
    from .errors import UsageError

    path = (config.cwd / value).resolve()
    if path.is_dir():
        raise UsageError(f"{flag} {value}: is a directory; name a file, e.g. {flag} out/report")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(
            f"{flag} {value}: cannot make its folder {path.parent} ({exc.strerror or exc})"
        ) from None
    if not os.access(path.parent, os.W_OK):
        raise UsageError(f"{flag} {value}: its folder {path.parent} is not writable")
    return path


def run_fields(report: RunReport) -> dict[str, Any]:
    """What a run's report says, as JSON data (shared by the report log and tests)."""
    run = report.run
    return {
        "nodeid": run.nodeid,
        "experiment": run.experiment.name,
        "hash": run.hash,
        "run_dir": str(run.run_dir),
        "status": str(report.status),
        "duration": report.duration,
        "phases": dict(report.phases),
        "longrepr": report.longrepr,
        "teardown_error": report.teardown_error,
        "stdout": report.stdout,
        "stderr": report.stderr,
    }


class ReportLog:
    """The plugin registered by ``--report-log``: writes the events to its file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file: IO[str] | None = open(path, "w", encoding="utf-8")  # noqa: SIM115
        self.started = time.time()

    def write(self, event: str, **fields: Any) -> None:
        if self.file is None:
            return
        line = json.dumps({"$report_type": event, **fields}, default=str, allow_nan=False)
        self.file.write(line + "\n")
        self.file.flush()

    def xprun_sessionstart(self, session: Session) -> None:
        from ._version import __version__

        config = session.config
        self.started = session.started
        self.write(
            "SessionStart",
            xprun_version=__version__,
            rootdir=str(config.rootdir),
            log_dir=str(config.log_dir),
        )

    def xprun_collection_finish(self, session: Session) -> None:
        self.write(
            "CollectionFinish",
            runs=len(session.runs),
            experiments=len({r.experiment.nodeid for r in session.runs}),
            errors=[{"nodeid": n, "longrepr": text} for n, text in session.collect_errors],
        )

    def xprun_run_logreport(self, report: RunReport) -> None:
        self.write("RunReport", **_finite(run_fields(report)))

    def xprun_sessionfinish(self, session: Session, exitstatus: int) -> None:
        self.write(
            "SessionFinish",
            exitstatus=int(exitstatus),
            counts=dict(session.counts),
            duration=time.time() - self.started,
        )

    def xprun_unconfigure(self, config: Config) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


def _finite(fields: dict[str, Any]) -> dict[str, Any]:
    """JSON has no NaN: a duration that is not a number is null."""
    duration = fields["duration"]
    if not isinstance(duration, int | float) or duration != duration:
        fields["duration"] = None
    return fields


def xprun_configure(config: Config) -> None:
    value = getattr(config.option, "reportlog", None)
    if value:
        path = output_path(config, value, "--report-log")
        config.pluginmanager.register(ReportLog(path), "reportlog-file")
