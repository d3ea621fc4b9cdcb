"""``--durations N``: the N slowest runs of the session, with their setup, call and teardown
times, in a section of the terminal summary (as pytest's ``--durations``).

- ``--durations 0`` lists every run; runs shorter than ``--durations-min`` (default 0.005 s,
  pytest's) are left out and counted.
- Only runs executed in this session are listed (not cached ones, nor runs submitted to a
  cluster, whose times are in their records: ``xprun show``).

The phase times are measured where a run executes (this process, or a pool worker, whose
report carries them back), by the run protocol itself around the run's ``xprun_run_setup``,
``xprun_run_call`` and ``xprun_run_teardown``, as pytest's runner times its phases: every
report has them in ``RunReport.phases``, whatever ``--durations`` says (``--report-log``
writes them too).  Standard library only at import (``xprun --help``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse

    from .config import Config
    from .reports import RunReport
    from .session import Session

DEFAULT_MIN = 0.005  # seconds, as pytest's --durations-min
_PHASES = ("setup", "call", "teardown")


def xprun_addoption(parser: argparse.ArgumentParser, settings: dict[str, Any]) -> None:
    from .options import option_group

    group = option_group(parser, "reporting")
    group.add_argument(
        "--durations",
        type=int,
        metavar="N",
        default=None,
        help="list the N slowest runs with their setup, call and teardown times (0: all)",
    )
    group.add_argument(
        "--durations-min",
        type=float,
        metavar="SECONDS",
        default=DEFAULT_MIN,
        help=f"leave runs shorter than this out of --durations (default {DEFAULT_MIN})",
    )


class Durations:
    """The plugin registered by ``--durations``: the summary section."""

    def __init__(self, count: int, minimum: float) -> None:
        self.count = count
        self.minimum = minimum
        self.executed: list[RunReport] = []

    def xprun_run_logreport(self, report: RunReport) -> None:
        if report.phases or report.duration:
            self.executed.append(report)

    def xprun_runs_cached(self) -> None:
        """Cached runs took no time here: not among the slowest."""

    def xprun_terminal_summary(self, session: Session, exitstatus: int) -> None:
        import sys

        ranked = sorted(self.executed, key=lambda r: -r.duration)
        above = [r for r in ranked if r.duration >= self.minimum]
        shown = above[: self.count] if self.count else above
        out = sys.stdout
        title = f" slowest {self.count} runs " if self.count else " slowest runs "
        out.write(title.center(80, "=") + "\n")
        if shown:
            out.write(f"{'duration':>9} {'setup':>8} {'call':>8} {'teardown':>9}  run\n")
        for report in shown:
            setup, call, teardown = (_seconds(report.phases.get(p)) for p in _PHASES)
            out.write(
                f"{report.duration:>8.2f}s {setup:>8} {call:>8} {teardown:>9}  "
                f"{report.run.nodeid}\n"
            )
        under = len(ranked) - len(above)
        if under:
            out.write(
                f"({under} run{'s' * (under != 1)} under {self.minimum:g}s hidden; "
                "--durations-min 0 shows them)\n"
            )


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


def xprun_configure(config: Config) -> None:
    from .errors import UsageError

    count = getattr(config.option, "durations", None)
    if count is None:
        return
    minimum = config.option.durations_min
    if count < 0 or not minimum >= 0:
        raise UsageError(
            f"--durations must be 0 (all) or a positive number of runs, and --durations-min "
            f"a number of seconds >= 0; got {count} and {minimum}"
        )
    config.pluginmanager.register(Durations(count, minimum), "durations-summary")
