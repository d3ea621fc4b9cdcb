"""``skip``, ``skipif`` and ``xfail`` marks (pytest's ``skipping.py``).

- ``@xprun.mark.skip(reason=...)`` and ``@xprun.mark.skipif(condition, ..., reason=...)``: the
  run never starts.  It is reported ``skipped`` through ``xprun_run_skip`` (in the launcher
  before a pool or a cluster gets it, and in the run protocol inline), so nothing is written to
  its run directory.  A run that is already complete or running elsewhere is reported so
  first: the skip check only stops runs that would start.
- ``@xprun.mark.xfail(reason=..., raises=..., strict=False)``: the run is expected to fail.
  An attempt that fails (with an exception of type ``raises``, when given) is recorded
  ``xfail`` (``xprun_run_status``): not a failure, and a finished result, reported ``cached``
  by later launches (not run again, unless ``--force``) for as long as the run is marked
  ``xfail``; remove the mark and it runs again.  An attempt that returns is ``complete`` and
  listed as XPASS, or ``failed`` under ``strict=True``.

Conditions are values, never text to evaluate: ``skipif(sys.platform == "win32")``, not
pytest's ``skipif("sys.platform == 'win32'")``.  Mark arguments are checked once the
experiments are collected, so a wrong one is a usage error naming the experiment before any
run starts.
"""

from __future__ import annotations

import sys
from collections.abc import Generator, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import reports, store
from .errors import UsageError
from .hookimpl import hookimpl
from .markers import experiment_marks
from .states import Status

if TYPE_CHECKING:
    from .collect import Experiment
    from .config import Config
    from .marks import Mark
    from .runcontext import RunContext
    from .runspec import RunSpec
    from .session import Session

#: The keyword arguments each built-in mark takes.
_KEYWORDS = {
    "skip": ("reason",),
    "skipif": ("condition", "reason"),
    "xfail": ("condition", "reason", "raises", "strict"),
}


@dataclass(frozen=True)
class Xfail:
    """What an ``xfail`` mark expects of a run."""

    reason: str
    raises: type[BaseException] | tuple[type[BaseException], ...] | None
    strict: bool

    def expects(self, error: BaseException | None) -> bool:
        """Whether ``error`` is the failure expected."""
        return self.raises is None or isinstance(error, self.raises)


def _conditions(mark: Mark, default: tuple[Any, ...]) -> tuple[Any, ...]:
    if "condition" in mark.kwargs:
        return (mark.kwargs["condition"],)
    return mark.args or default


def skip_reason(marks: Iterable[Mark]) -> str | None:
    """Why a run with these marks must not start, or None: the first ``skip``, or ``skipif``
    whose condition holds."""
    for mark in marks:
        if mark.name == "skip":
            reason = mark.kwargs.get("reason", mark.args[0] if mark.args else None)
            return str(reason) if reason else "unconditional skip"
        if mark.name == "skipif":
            conditions = _conditions(mark, ())
            if not conditions or any(conditions):
                reason = mark.kwargs.get("reason")
                return str(reason) if reason else "skipif condition true"
    return None


def expected_failure(marks: Iterable[Mark]) -> Xfail | None:
    """The first ``xfail`` mark whose condition holds (default: it does), or None."""
    for mark in marks:
        if mark.name == "xfail" and any(_conditions(mark, (True,))):
            kwargs = mark.kwargs
            return Xfail(
                str(kwargs.get("reason") or ""), kwargs.get("raises"), bool(kwargs.get("strict"))
            )
    return None


# -- checked once collected --------------------------------------------------------------------


def _is_exception_type(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, BaseException)


def _problem(mark: Mark) -> str | None:
    """What is wrong with a built-in mark's arguments, or None."""
    allowed = _KEYWORDS[mark.name]
    unknown = sorted(set(mark.kwargs) - set(allowed))
    if unknown:
        return f"unexpected argument {unknown[0]}= (it takes {', '.join(allowed)})"
    if mark.name == "skip":
        if len(mark.args) > 1 or (mark.args and "reason" in mark.kwargs):
            return "takes one reason"
        conditions: tuple[Any, ...] = ()
    else:
        conditions = _conditions(mark, ())
    texts = [c for c in conditions if isinstance(c, str)]
    if texts:
        return (
            f"condition {texts[0]!r} is text: xprun never evaluates text; pass the condition "
            f'itself, e.g. {mark.name}(sys.platform == "win32", reason="...")'
        )
    reason = mark.kwargs.get("reason", mark.args[0] if mark.name == "skip" and mark.args else "")
    if reason is not None and not isinstance(reason, str):
        return f"reason= must be text, got {type(reason).__name__} {reason!r}"
    raises = mark.kwargs.get("raises")
    if raises is not None and not (
        _is_exception_type(raises)
        or (isinstance(raises, tuple) and raises and all(_is_exception_type(r) for r in raises))
    ):
        return f"raises= must be an exception type or a tuple of them, got {raises!r}"
    if not isinstance(mark.kwargs.get("strict", False), bool):
        return f"strict= must be True or False, got {mark.kwargs['strict']!r}"
    return None


def check(experiment: Experiment) -> None:
    """A usage error naming the experiment when one of its built-in marks is wrong."""
    for mark in experiment_marks(experiment):
        if mark.name in _KEYWORDS:
            problem = _problem(mark)
            if problem:
                raise UsageError(f"{experiment.nodeid}: @xprun.mark.{mark.name}: {problem}")


# -- hooks -------------------------------------------------------------------------------------


def xprun_collection_modifyitems(session: Session, runs: list[RunSpec]) -> None:
    for experiment in session.experiments:
        check(experiment)


@hookimpl(wrapper=True)
def xprun_run_skip(run: RunSpec, context: RunContext) -> Generator[None, Any, Any]:
    """After the other skip checks (cached, running elsewhere): skipped, or a recorded xfail
    that is still expected (cached)."""
    report = yield
    if report is not None or not run.marks:
        return report
    reason = skip_reason(run.marks)
    if reason is not None:
        return reports.RunReport(run, Status.SKIPPED, longrepr=reason)
    if context.force or expected_failure(run.marks) is None:
        return None
    state = store.read_state(run.run_dir, context.clock, context.heartbeat)
    if state.status == Status.XFAIL:
        return reports.RunReport(run, Status.CACHED, longrepr="recorded xfail")
    return None


def xprun_run_status(
    run: RunSpec, context: RunContext, status: Status, error: BaseException | None
) -> Status | None:
    xfail = expected_failure(run.marks)
    if xfail is None:
        return None
    if status == Status.FAILED and xfail.expects(error):
        return Status.XFAIL
    if status == Status.COMPLETE and xfail.strict:
        return Status.FAILED
    return None


class MarksReporter:
    """Lists expected failures and unexpected passes after the progress (and, with ``-v``,
    the reasons runs were skipped), as pytest's short summary does with ``-rxXs``."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.lines: list[str] = []
        option = config.option
        self.verbose = option.verbose - option.quiet > 0

    @hookimpl(tryfirst=True)
    def xprun_run_logreport(self, report: reports.RunReport) -> None:
        run = report.run
        if report.status == Status.SKIPPED:
            if self.verbose:
                self.lines.append(f"SKIPPED {run.nodeid} - {report.longrepr}")
            return
        xfail = expected_failure(run.marks) if run.marks else None
        if xfail is None:
            return
        reason = f" - {xfail.reason}" if xfail.reason else ""
        if report.status == Status.XFAIL:
            crash = report.longrepr.strip().splitlines()[-1:] or [""]
            self.lines.append(f"XFAIL {run.nodeid}{reason} ({crash[0]})")
        elif report.status == Status.COMPLETE:
            self.lines.append(f"XPASS {run.nodeid}{reason}")
        elif report.status == Status.FAILED and xfail.strict and not report.longrepr:
            report.longrepr = f"[XPASS(strict)] {xfail.reason or 'the run was expected to fail'}"

    @hookimpl
    def xprun_runs_cached(self) -> None:
        """A cached run is neither skipped, xfailed nor xpassed in this session."""

    @hookimpl
    def xprun_terminal_summary(self, session: Session) -> None:
        option = self.config.option
        if not self.lines or option.verbose - option.quiet < 0:
            return
        sys.stdout.write("".join(f"{line}\n" for line in self.lines))


def xprun_configure(config: Config) -> None:
    config.pluginmanager.register(MarksReporter(config), "xprun.skipping.reporter")
