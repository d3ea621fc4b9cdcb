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

    The others are reported here, as cached or running elsewhere, before any submission.
    """
    from .. import reports, store

    force = session.config.option.force
    hook = session.config.hook
    todo = []
    for run in runs:
        state = session.run_state(run)
        if state.complete and not force:
            hook.xprun_run_logreport(report=reports.RunReport(run, reports.CACHED))
        elif state.status == store.STATUS_RUNNING and state.owner is not None:
            where = state.owner.describe(session.clock)
            report = reports.RunReport(
                run, reports.ELSEWHERE, longrepr=f"running elsewhere: {where}"
            )
            hook.xprun_run_logreport(report=report)
        else:
            todo.append(run)
    return todo
