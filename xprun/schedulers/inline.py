"""The ``inline`` scheduler: every run in this process, one after another."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..hookimpl import hookimpl

if TYPE_CHECKING:
    from ..config import Config
    from ..runspec import RunSpec
    from ..session import Session


class InlineScheduler:
    name = "inline"

    def run(self, session: Session, runs: list[RunSpec]) -> None:
        protocol = session.config.hook.xprun_run_protocol
        context = session.run_context()
        for run in runs:
            if session.shouldstop:
                break
            protocol(run=run, context=context)


@hookimpl(trylast=True)
def xprun_choose_scheduler(name: str, config: Config) -> InlineScheduler | None:
    return InlineScheduler() if name == "inline" else None
