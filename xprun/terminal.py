"""Terminal reporting: a pytest-like progress line per experiment, then a summary.

One character per run, by its end state (``RunReport.status``, a ``Status``: ``.`` complete,
``E`` complete but a fixture teardown raised, ``c`` cached, ``F`` failed, ``I`` interrupted,
``L`` lost claim, ``R`` running elsewhere, ``s`` submitted to a cluster); ``-v`` prints a line
per run, ``-q`` only the summary.  The summary uses the same words, the statuses' own:
``N complete, N cached, N failed, N interrupted, N teardown errors in X s``.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from typing import TYPE_CHECKING, TextIO

from . import reports
from .hookimpl import hookimpl
from .states import Status

if TYPE_CHECKING:
    from .config import Config
    from .session import Session

LETTERS = {
    Status.COMPLETE: ".",
    Status.CACHED: "c",
    Status.FAILED: "F",
    Status.INTERRUPTED: "I",
    Status.LOST: "L",
    Status.ELSEWHERE: "R",
    Status.SUBMITTED: "s",
}


class TerminalReporter:
    def __init__(self, config: Config, out: TextIO) -> None:
        self.config = config
        self.out = out
        self.verbosity = config.option.verbose - config.option.quiet
        self.width = min(shutil.get_terminal_size((80, 24)).columns, 120)
        self.session: Session | None = None
        self._line_experiment: str | None = None
        self._line_len = 0
        self._done = 0
        self._failed: list[reports.RunReport] = []
        self._collect_errors: list[reports.CollectReport] = []

    def write(self, text: str) -> None:
        try:
            self.out.write(text)
        except BrokenPipeError:  # `xprun | head`: keep running, stop printing
            self.out = open(os.devnull, "w")  # noqa: SIM115

    def flush(self) -> None:
        try:
            self.out.flush()
        except BrokenPipeError:
            self.out = open(os.devnull, "w")  # noqa: SIM115

    def rule(self, title: str = "", char: str = "=") -> None:
        title = f" {title} " if title else ""
        side = max(3, (self.width - len(title)) // 2)
        line = char * side + title + char * side
        self.write(line[: self.width] + "\n")

    # -- hooks --------------------------------------------------------------------------------

    @hookimpl
    def xprun_sessionstart(self, session: Session) -> None:
        from ._version import __version__

        self.session = session
        if self.verbosity >= 0:
            config = self.config
            self.rule("xprun session starts")
            self.write(f"xprun {__version__} -- Python {sys.version.split()[0]}\n")
            self.write(f"rootdir: {config.rootdir}\nlog dir: {config.log_dir}\n")
            self.flush()

    @hookimpl
    def xprun_collectreport(self, report: reports.CollectReport) -> None:
        if report.failed:
            self._collect_errors.append(report)

    @hookimpl
    def xprun_collection_finish(self, session: Session) -> None:
        if self.config.option.collect_only:
            self._list_runs(session)
        if self.verbosity < 0:
            return
        n_runs, n_xp = len(session.runs), len({r.experiment.nodeid for r in session.runs})
        errors = len(self._collect_errors)
        text = (
            f"collected {n_runs} run{'s' * (n_runs != 1)} from {n_xp} experiment{'s' * (n_xp != 1)}"
        )
        if errors:
            text += f" / {_plural(errors, 'error')}"
        self.write(text + "\n")
        self.flush()

    def _list_runs(self, session: Session) -> None:
        for run in session.runs:
            status = session.run_state(run).status
            self.write(f"{status:<12} {run.hash}  {run.nodeid}\n")

    @hookimpl
    def xprun_run_logreport(self, report: reports.RunReport) -> None:
        if report.status.unsuccessful or report.teardown_error:
            self._failed.append(report)  # for the failures section (not every run: 1M cached)
        self._done += 1
        if self.verbosity < 0:
            return
        if self.verbosity > 0:
            status = report.status.upper() + (" (TEARDOWN ERROR)" if report.teardown_error else "")
            timing = f" {report.duration:.2f}s" if report.duration else ""
            self.write(f"{report.run.nodeid} {status} {report.run.hash[:12]}{timing}\n")
            self.flush()
            return
        experiment = report.run.experiment.nodeid
        if experiment != self._line_experiment:
            self._end_line()
            self.write(f"{experiment} ")
            self._line_len = len(experiment) + 1
            self._line_experiment = experiment
        self.write("E" if report.teardown_error else LETTERS[report.status])
        self._line_len += 1
        if report.status is not Status.CACHED:
            # Cached runs are reported by the thousand in one pass: their letters go out
            # with the buffer (the next run that ran, the line's end), not one write each.
            self.flush()

    def _end_line(self) -> None:
        if self._line_experiment is None or self.session is None:
            return
        total = max(len(self.session.runs), 1)
        percent = f"[{100 * self._done // total:3d}%]"
        pad = max(1, self.width - self._line_len - len(percent))
        self.write(" " * pad + percent + "\n")
        self._line_experiment = None

    @hookimpl
    def xprun_sessionfinish(self, session: Session, exitstatus: int) -> None:
        self._end_line()
        self._errors_section()
        self._failures_section()
        session.config.hook.xprun_terminal_summary(session=session, exitstatus=exitstatus)
        if session.interrupted:
            self.write("!!! interrupted !!!\n")
        if isinstance(session.shouldstop, str) and session.shouldstop:
            self.write(f"!!! {session.shouldstop} !!!\n")
        self.rule(self.summary_line(session))
        self.flush()

    def _errors_section(self) -> None:
        if not self._collect_errors:
            return
        self.rule("ERRORS")
        for report in self._collect_errors:
            self.rule(f"ERROR collecting {report.nodeid}", "_")
            self.write(report.longrepr.rstrip() + "\n")

    def _failures_section(self) -> None:
        failed = self._failed
        if not failed or self.verbosity < -1:
            return
        self.rule("FAILURES")
        for report in failed:
            self.rule(report.run.nodeid, "_")
            if report.longrepr.strip():
                self.write(report.longrepr.rstrip() + "\n")
            if report.teardown_error:
                self.write(
                    f"--- error in fixture teardown (the run's result is kept) ---\n"
                    f"{report.teardown_error.rstrip()}\n"
                )
            for name, text in (("stdout", report.stdout), ("stderr", report.stderr)):
                if text.strip():
                    self.write(f"--- captured {name} (tail) ---\n{text.rstrip()[-2000:]}\n")
            self.write(f"run directory: {report.run.run_dir}\n")
        self.rule("short summary")
        for report in failed:
            if report.status.unsuccessful:
                last = _last_line(report.longrepr)
                self.write(f"{report.status.upper()} {report.run.nodeid} - {last}\n")
            if report.teardown_error:
                last = _last_line(report.teardown_error)
                self.write(f"ERROR {report.run.nodeid} - in fixture teardown: {last}\n")

    def summary_line(self, session: Session) -> str:
        counts = session.counts
        parts = [f"{counts[s]} {s}" for s in reports.SUMMARY_ORDER if counts[s]]
        if counts[reports.TEARDOWN_ERROR]:
            parts.append(_plural(counts[reports.TEARDOWN_ERROR], reports.TEARDOWN_ERROR))
        if session.config.option.collect_only:
            parts = [f"{len(session.runs)} runs collected"]
        errors = len(self._collect_errors)
        if errors:
            parts.append(_plural(errors, "error"))
        if session.usage_error:
            parts = ["usage error, nothing ran"]
        return f"{', '.join(parts) or 'no runs ran'} in {time.time() - session.started:.2f}s"


def _last_line(text: str) -> str:
    return text.strip().splitlines()[-1] if text.strip() else ""


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' * (count != 1)}"


@hookimpl
def xprun_configure(config: Config) -> None:
    config.pluginmanager.register(TerminalReporter(config, sys.stdout), "terminalreporter")
