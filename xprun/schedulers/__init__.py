"""Schedulers: where a session's runs execute.

A scheduler is any object with a ``name`` and a ``run(session, runs)`` method; plugins return
one from ``xprun_choose_scheduler`` when ``--scheduler`` names it.  ``inline`` (this process,
one run after another) is built in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..main import Session
    from ..runspec import RunSpec


class Scheduler(Protocol):
    name: str

    def run(self, session: Session, runs: list[RunSpec]) -> None:
        """Execute ``runs``; each run ends through the ``xprun_run_protocol`` hook."""


def pending(session: Session, runs: list[RunSpec]) -> list[RunSpec]:
    """The runs to send out: neither complete (unless --force) nor running elsewhere.

    The others are reported here, as cached or running elsewhere, before any submission,
    by the same check the run protocol makes.
    """
    from ..runner import skip_report

    hook = session.config.hook
    todo = []
    for run in runs:
        report = skip_report(session, run)
        if report is None:
            todo.append(run)
        else:
            hook.xprun_run_logreport(report=report)
    return todo
