"""Schedulers: where a session's runs execute.

A scheduler is any object with a ``name`` and a ``run(session, runs)`` method; plugins return
one from ``xprun_choose_scheduler`` when ``--scheduler`` names it (or a ``scheduler`` fixture
returns one).  Built in, each a plugin of its own module: ``inline`` (this process, one run
after another), ``local`` (a pool of worker processes, ``pool.py``), ``slurm`` and ``oar``
(job arrays, ``batch.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..runspec import RunSpec
    from ..session import Session


class Scheduler(Protocol):
    name: str

    def run(self, session: Session, runs: list[RunSpec]) -> None:
        """Execute ``runs``; each run ends through the ``xprun_run_protocol`` hook, called
        with ``context=session.run_context()`` where the run executes."""


def pending(session: Session, runs: list[RunSpec]) -> list[RunSpec]:
    """The runs to send out: neither complete (unless --force) nor running elsewhere.

    The others are reported here, as cached or running elsewhere, before any submission,
    by the same check the run protocol makes (``xprun_run_skip``).
    """
    context = session.run_context()
    skip = context.hook.xprun_run_skip
    todo = []
    for run in runs:
        report = skip(run=run, context=context)
        if report is None:
            todo.append(run)
        else:
            context.record(report)
    return todo
