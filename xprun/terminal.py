"""Terminal reporting: a pytest-like progress line per experiment, then a summary.

One character per run, by its end state (``RunReport.status``, a ``Status``): ``.``
complete, ``E`` complete but a fixture teardown raised, ``c`` cached, ``F`` failed, ``T``
timeout, ``I`` interrupted, ``x`` xfail, ``s`` skipped, ``L`` lost claim, ``R`` running
elsewhere, ``S`` submitted to a cluster.  After the k-th of n runs the percentage is
``100 * k // n``, as pytest's (never 100% before the last run).

Levels, as pytest's: ``-v`` a line per run (node id, status word, hash, duration,
percentage), ``-vv`` also the whole captured output of failed runs; ``-q`` no header and the
letters without experiment names, ``-qq`` only the summary.  The summary uses the statuses'
own words: ``N complete, N cached, N failed, ... in X s``; an interrupted run is one
``!!! Interrupted`` line, not a failure with a traceback.  ``--color`` and the ``NO_COLOR``
and ``FORCE_COLOR`` variables decide colors.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from itertools import groupby
from typing import TYPE_CHECKING, TextIO

from . import reports
from .hookimpl import hookimpl
from .states import Status
from .tracebacks import crash_line, location

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .config import Config
    from .runspec import RunSpec
    from .session import Session

LETTERS = {
    Status.COMPLETE: ".",
    Status.CACHED: "c",
    Status.FAILED: "F",
    Status.TIMEOUT: "T",
    Status.INTERRUPTED: "I",
    Status.XFAIL: "x",
    Status.PRUNED: "p",
    Status.SKIPPED: "s",
    Status.LOST: "L",
    Status.ELSEWHERE: "R",
    Status.SUBMITTED: "S",
}
TEARDOWN_LETTER = "E"

# pytest's colors: green went well, red is a failure, yellow is neither.
_GREEN, _RED, _YELLOW = "32", "31", "33"
_COLORS = {
    Status.COMPLETE: _GREEN,
    Status.CACHED: _GREEN,
    Status.FAILED: _RED,
    Status.TIMEOUT: _RED,
    Status.LOST: _RED,
    Status.INTERRUPTED: _YELLOW,
    Status.XFAIL: _YELLOW,
    Status.PRUNED: _YELLOW,
    Status.SKIPPED: _YELLOW,
    Status.ELSEWHERE: _YELLOW,
    Status.SUBMITTED: _YELLOW,
}
_PERCENT_WIDTH = len(" [100%]")


def use_color(choice: str, out: TextIO) -> bool:
    """``--color``: ``yes``, ``no``, or ``auto``: not when ``NO_COLOR`` is set (not empty),
    else when ``FORCE_COLOR`` is, else on a terminal (not ``TERM=dumb``).  pytest's order."""
    if choice != "auto":
        return choice == "yes"
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    try:
        tty = out.isatty()
    except (AttributeError, ValueError):  # no such method, or a closed file
        return False
    return tty and os.environ.get("TERM") != "dumb"


class TerminalReporter:
    def __init__(self, config: Config, out: TextIO) -> None:
        self.config = config
        self.out = out
        self.verbosity = config.option.verbose - config.option.quiet
        self.color = use_color(config.option.color, out)
        self.full_trace = bool(config.option.full_trace)
        self.width = min(shutil.get_terminal_size((80, 24)).columns, 120)
        self.session: Session | None = None
        self._line_experiment: str | None = None
        self._line_len = 0
        self._done = 0  # runs reported, each once (a run reported submitted, then ended)
        self._submitted: set[str] = set()  # hashes of runs reported submitted, not yet ended
        self._deselected = 0
        self._stale = 0  # cached runs made by other code than today's (xprun.staleness)
        self._deselected_experiments: set[str] = set()
        self._failed: list[reports.RunReport] = []
        self._interrupted: list[reports.RunReport] = []
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

    def markup(self, text: str, color: str = "", bold: bool = False) -> str:
        """``text`` in ``color`` (an SGR code) when colors are on."""
        if not self.color or not text or not (color or bold):
            return text
        codes = f"1;{color}" if bold and color else color or "1"
        return f"\x1b[{codes}m{text}\x1b[0m"

    def rule(self, title: str = "", char: str = "=", color: str = "", bold: bool = False) -> None:
        title = f" {title} " if title else ""
        side = max(3, (self.width - len(title)) // 2)
        line = (char * side + title + char * side)[: self.width]
        self.write(self.markup(line, color, bold) + "\n")

    # -- hooks --------------------------------------------------------------------------------

    @hookimpl
    def xprun_sessionstart(self, session: Session) -> None:
        from ._version import __version__

        self.session = session
        if self.verbosity >= 0:
            config = self.config
            self.rule("xprun session starts", bold=True)
            self.write(f"xprun {__version__} -- Python {sys.version.split()[0]}\n")
            self.write(f"rootdir: {config.rootdir}\nlog dir: {config.log_dir}\n")
            self.flush()

    @hookimpl
    def xprun_collectreport(self, report: reports.CollectReport) -> None:
        if report.failed:
            self._collect_errors.append(report)

    @hookimpl
    def xprun_deselected(self, runs: list[RunSpec]) -> None:
        self._deselected += len(runs)
        self._deselected_experiments.update(run.experiment.nodeid for run in runs)

    @hookimpl
    def xprun_collection_finish(self, session: Session) -> None:
        if self.config.option.collect_only:
            self._list_runs(session)
        if self.verbosity < 0:
            return
        selected = len(session.runs)
        # Every collected experiment counts, also one whose runs are asked later (a search).
        experiments = {r.experiment.nodeid for r in session.runs} | self._deselected_experiments
        experiments |= {experiment.nodeid for experiment in session.experiments}
        text = f"collected {_plural(selected + self._deselected, 'run')} from "
        text += _plural(len(experiments), "experiment")
        if self._collect_errors:
            text += f" / {_plural(len(self._collect_errors), 'error')}"
        if self._deselected:
            text += f" / {self._deselected} deselected / {selected} selected"
        self.write(text + "\n")
        self.flush()

    def _list_runs(self, session: Session) -> None:
        from .markers import shown
        from .staleness import current

        staleness = current()
        words: list[str] = []
        for run in session.runs:
            state = session.run_state(run)
            stale = (  # a complete run made by other code than today's
                staleness is not None
                and state.status == Status.COMPLETE
                and staleness.is_stale(run, state.record or {})
            )
            words.append(f"{state.status}, stale" if stale else str(state.status))
        width = max(12, *(len(word) for word in words)) if words else 12
        for run, word in zip(session.runs, words, strict=True):
            marks = f"  {shown(run.marks)}" if run.marks else ""
            self.write(f"{word:<{width}} {run.hash}  {run.nodeid}{marks}\n")

    @hookimpl
    def xprun_run_logreport(self, report: reports.RunReport) -> None:
        status = report.status
        if report.stale and status is Status.CACHED:
            self._stale += 1
        if status is Status.SUBMITTED:
            self._submitted.add(report.run.hash)
        elif report.run.hash in self._submitted:  # --wait: how it ended, already counted
            self._submitted.discard(report.run.hash)
            self._done -= 1
        if status is Status.INTERRUPTED:
            self._interrupted.append(report)  # a line of its own, not a failure
        elif status.unsuccessful or report.teardown_error:
            self._failed.append(report)  # for the failures section (not every run: 1M cached)
        if self.verbosity > 0:
            self._done += 1
            self._run_line(report)
        elif self.verbosity == 0:
            self._letter(report, report.run.experiment.nodeid)
        elif self.verbosity == -1:
            self._letter(report, "")
        else:
            self._done += 1

    @hookimpl
    def xprun_runs_cached(self, runs: Sequence[RunSpec], stale: Sequence[bool | None]) -> None:
        """The batched skip check's cached runs: what ``xprun_run_logreport`` would show for
        each, with one write per line of letters."""
        if self.verbosity > 0 or self._submitted:  # a line per run; --wait's bookkeeping
            for run, judged in zip(runs, stale, strict=True):
                self.xprun_run_logreport(reports.RunReport(run, Status.CACHED, stale=judged))
            return
        self._stale += stale.count(True)
        if self.verbosity < -1:
            self._done += len(runs)
            return
        letter, color = LETTERS[Status.CACHED], _COLORS.get(Status.CACHED, "")
        for experiment, group in groupby(runs, lambda run: run.experiment.nodeid):
            count = sum(1 for _ in group)
            self._letters(letter, color, count, experiment if self.verbosity == 0 else "")

    def _run_line(self, report: reports.RunReport) -> None:
        """``-v``: ``node id STATUS hash duration [ pct%]``."""
        word = report.status.upper() + (" (TEARDOWN ERROR)" if report.teardown_error else "")
        word += " (STALE)" if report.stale and report.status is Status.CACHED else ""
        color = _RED if report.teardown_error else _COLORS.get(report.status, "")
        timing = f" {report.duration:.2f}s" if report.duration else ""
        tail = f" {report.run.hash[:12]}{timing}"
        percent = self._percent()
        used = len(report.run.nodeid) + 1 + len(word) + len(tail) + len(percent)
        self.write(
            f"{report.run.nodeid} {self.markup(word, color)}{tail}"
            f"{' ' * max(1, self.width - used)}{self.markup(percent, color)}\n"
        )
        self.flush()

    def _letter(self, report: reports.RunReport, experiment: str) -> None:
        """One letter on the current line (see ``_letters``)."""
        if report.teardown_error:
            letter, color = TEARDOWN_LETTER, _RED
        else:
            letter, color = LETTERS.get(report.status, "?"), _COLORS.get(report.status, "")
        self._letters(letter, color, 1, experiment)
        if report.status is not Status.CACHED:
            # Cached runs are reported by the thousand in one pass: their letters go out
            # with the buffer (the next run that ran, the line's end), not one write each.
            self.flush()

    def _letters(self, letter: str, color: str, count: int, experiment: str) -> None:
        """``count`` letters on the current line: a new line for a new experiment
        (``experiment`` is ``""`` under ``-q``: one line for all), the percentage at its end
        and wherever the line reaches the terminal's edge, as pytest."""
        if experiment != self._line_experiment:
            self._end_line()  # its percentage counts the runs before this one
            if experiment:
                self.write(f"{experiment} ")
                self._line_len = len(experiment) + 1
            self._line_experiment = experiment
        edge = self.width - _PERCENT_WIDTH - 1  # the line wraps once it is this long
        while count:
            written = min(count, max(1, edge - self._line_len))
            count -= written
            self._done += written
            self.write(self.markup(letter * written, color))
            self._line_len += written
            if self._line_len >= edge:
                self.write(f"{self._percent()}\n")
                self._line_len = 0  # the experiment's letters go on, on the next line

    def _percent(self) -> str:
        total = len(self.session.runs) if self.session is not None else 0
        return f"[{100 * self._done // total if total else 100:3d}%]"

    def ensure_newline(self) -> None:
        """End the line of letters begun (with its percentage), so that what another part
        writes next starts a line of its own (pytest's ``ensure_newline``); the next letters
        start a new line, with their experiment's name."""
        self._end_line()
        self.flush()

    def _end_line(self) -> None:
        if self._line_experiment is None:
            return
        if self._line_len:
            pad = max(1, self.width - self._line_len - len(self._percent()))
            self.write(" " * pad + self._percent() + "\n")
        self._line_experiment = None
        self._line_len = 0

    @hookimpl
    def xprun_sessionfinish(self, session: Session, exitstatus: int) -> None:
        self._end_line()
        self._errors_section()
        self._failures_section()
        self._interrupted_lines()
        session.config.hook.xprun_terminal_summary(session=session, exitstatus=exitstatus)
        if session.interrupted:
            self.write(self.markup("!!! interrupted !!!", _YELLOW) + "\n")
        if isinstance(session.shouldstop, str) and session.shouldstop:
            self.write(f"!!! {session.shouldstop} !!!\n")
        color = self._main_color(session)
        if self.verbosity < 0:
            self.write(self.markup(self.summary_line(session), color) + "\n")
        else:
            self.rule(self.summary_line(session), color=color, bold=True)
        self.flush()

    def _main_color(self, session: Session) -> str:
        """Red when anything failed, green when runs went well, else yellow (pytest's)."""
        counts = session.counts
        failed = any(counts[s] for s in reports.UNSUCCESSFUL if s is not Status.INTERRUPTED)
        if failed or counts[reports.TEARDOWN_ERROR] or self._collect_errors:
            return _RED
        if session.usage_error or session.interrupted or counts[Status.INTERRUPTED]:
            return _YELLOW
        ended = [s for s in reports.SUMMARY_ORDER if counts[s]]
        return _GREEN if ended and set(ended) <= {Status.COMPLETE, Status.CACHED} else _YELLOW

    def _errors_section(self) -> None:
        if not self._collect_errors:
            return
        self.rule("ERRORS")
        for report in self._collect_errors:
            self.rule(f"ERROR collecting {report.nodeid}", "_", _RED, bold=True)
            self.write(report.longrepr.rstrip() + "\n")

    def _failures_section(self) -> None:
        failed = self._failed
        if not failed or self.verbosity < -1:
            if failed:
                self._short_summary()
            return
        self.rule("FAILURES")
        tail = None if self.verbosity > 1 else -2000  # -vv: the whole captured output
        for report in failed:
            self.rule(report.run.nodeid, "_", _RED, bold=True)
            if report.longrepr.strip():
                self.write(report.longrepr.rstrip() + "\n")
            if report.teardown_error:
                self.write(
                    f"--- error in fixture teardown (the run's result is kept) ---\n"
                    f"{report.teardown_error.rstrip()}\n"
                )
            for name, text in (("stdout", report.stdout), ("stderr", report.stderr)):
                if text.strip():
                    title = "" if tail is None else " (tail)"
                    self.write(f"--- captured {name}{title} ---\n{text.rstrip()[tail:]}\n")
            self.write(f"run directory: {report.run.run_dir}\n")
        self._short_summary()

    def _short_summary(self) -> None:
        """pytest's "short test summary info": one line per failure, with what failed."""
        self.rule("short summary")
        for report in self._failed:
            nodeid = report.run.nodeid
            if report.status.unsuccessful:
                word = self.markup(report.status.upper(), _RED)
                self.write(f"{word} {nodeid} - {crash_line(report.longrepr)}\n")
            if report.teardown_error:
                crash = crash_line(report.teardown_error)
                word = self.markup("ERROR", _RED)
                self.write(f"{word} {nodeid} - in fixture teardown: {crash}\n")

    def _interrupted_lines(self) -> None:
        """An interrupted run is a short line (where it was), not a failure; ``--full-trace``
        adds its traceback."""
        for report in self._interrupted:
            where = location(report.longrepr)
            text = f"!!! Interrupted: {report.run.nodeid} - {crash_line(report.longrepr)}"
            text += f" (at {where})" if where else ""
            self.write(self.markup(text, _YELLOW) + "\n")
            if self.full_trace and report.longrepr.strip():
                self.write(report.longrepr.rstrip() + "\n")

    def _note(self, status: Status) -> str:
        """What the summary says beside a count: how many cached runs are stale."""
        if status is Status.CACHED and self._stale:
            from .staleness import STALE_NOTE

            return f" ({self._stale} {STALE_NOTE})"
        return ""

    def summary_line(self, session: Session) -> str:
        counts = session.counts
        parts = [f"{counts[s]} {s}{self._note(s)}" for s in reports.SUMMARY_ORDER if counts[s]]
        if counts[reports.TEARDOWN_ERROR]:
            parts.append(_plural(counts[reports.TEARDOWN_ERROR], reports.TEARDOWN_ERROR))
        if self._deselected:
            parts.append(f"{self._deselected} deselected")
        if session.config.option.collect_only:
            selected, deselected = len(session.runs), self._deselected
            parts = [f"{_plural(selected, 'run')} collected"]
            if session.deferred:  # a search: its runs are asked as it goes
                searches = len(session.deferred)
                parts[0] += f" (and {searches} search{'es' * (searches != 1)})"
            if deselected:
                total = _plural(selected + deselected, "run")
                parts = [f"{selected}/{total} collected ({deselected} deselected)"]
        errors = len(self._collect_errors)
        if errors:
            parts.append(_plural(errors, "error"))
        if session.usage_error:
            parts = ["usage error, nothing ran"]
        return f"{', '.join(parts) or 'no runs ran'} in {time.time() - session.started:.2f}s"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' * (count != 1)}"


def write_message(config: Config, text: str) -> None:
    """``text`` on stderr, on a line of its own: a scheduler's or the search's word between
    the letters of the runs (the terminal reporter's line is ended first, if there is one)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.ensure_newline()
    sys.stderr.write(text.rstrip("\n") + "\n")


@hookimpl
def xprun_configure(config: Config) -> None:
    config.pluginmanager.register(TerminalReporter(config, sys.stdout), "terminalreporter")
