"""Selection from history: ``--lf``, ``--ff``, ``--nf``, ``--sw``, ``--sw-skip``, ``--maxfail``.

pytest keeps its history in ``.pytest_cache``; xprun's history is the run directories
themselves (each run's ``run.json`` says how its latest attempt ended), so it holds across
machines, cluster jobs and log directories shared by a team, and there is no cache to go
stale.  A run "failed last time" when its latest attempt failed, was interrupted (also a
process that died under it: a stale claim) or timed out; an ``xfail`` run did not fail, and
a run that is running elsewhere right now is left alone.

- ``--lf``: only those runs (``-k``, node ids and overrides apply on top); with none, all the
  runs (``--lfnf all``, as pytest; complete ones are cached anyway) or none (``--lfnf none``).
- ``--ff``: those runs first, then the others; ``--nf``: runs without a directory first.
- ``--sw``: stop at the first failed run; the next ``--sw`` resumes from the first run that
  failed (the complete runs before it are deselected, as pytest's "skipping N already passed
  items").  ``--sw-skip``: skip that run (it is deselected; with no failed run on record, the
  first run to fail in this launch does not stop it) and stop at the next failure.
- ``--maxfail=N``: no new run starts after N failed runs (``-x`` is ``--maxfail=1``); runs
  already started, in a pool too, finish and are recorded.  The stop itself is the session's
  (``Session.maxfail``): this module only sets ``option.maxfail``.

The reorderings are stable and apply after ``--order`` (``xprun.ordering``), so the runs
sent to every scheduler (inline, the pool, a job array) come in this order.

Standard library only at the top: ``xprun --help`` imports this module without the plugin
manager.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import Config
    from .runspec import RunSpec
    from .session import Session

#: What a latest attempt may have ended as for the run to count as failed last time.
FAILED_LAST = ("failed", "interrupted", "timeout")


def xprun_addoption(parser: argparse.ArgumentParser, settings: dict[str, Any]) -> None:
    group = parser.add_argument_group(
        "selection from history (read from the run directories, not a cache)"
    )
    group.add_argument(
        "--lf",
        "--last-failed",
        action="store_true",
        dest="last_failed",
        help="only the runs whose latest attempt failed, was interrupted or timed out",
    )
    group.add_argument(
        "--ff",
        "--failed-first",
        action="store_true",
        dest="failed_first",
        help="those runs first, then the others",
    )
    group.add_argument(
        "--nf",
        "--new-first",
        action="store_true",
        dest="new_first",
        help="runs without a run directory first, then the others",
    )
    group.add_argument(
        "--lfnf",
        "--last-failed-no-failures",
        choices=("all", "none"),
        default="all",
        dest="last_failed_no_failures",
        help="with --lf and no failed run on record: run all (the default; complete runs are "
        "cached) or none",
    )
    group.add_argument(
        "--sw",
        "--stepwise",
        action="store_true",
        dest="stepwise",
        help="stop at the first failed run; the next --sw resumes from it",
    )
    group.add_argument(
        "--sw-skip",
        "--stepwise-skip",
        action="store_true",
        dest="stepwise_skip",
        help="as --sw, but skip the first failing run and stop at the next",
    )
    group.add_argument(
        "--maxfail",
        type=_count,
        default=0,
        metavar="N",
        help="start no new run after N failed runs (-x is --maxfail=1); runs already "
        "started finish",
    )


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(
            f"must be a number of failed runs (0: no limit), got {text!r}"
        )
    return value


def xprun_configure(config: Config) -> None:
    option = config.option
    if option.exitfirst and not option.maxfail:
        option.maxfail, option.maxfail_reason = 1, "-x"
    if option.stepwise_skip:
        option.stepwise = True
    if option.stepwise:
        option.maxfail, option.maxfail_reason = 1, "--sw"
    if option.maxfail:
        # A pool worker then stops after a failure of its own instead of starting a run it
        # holds ahead, and the pool starts a new worker while failures are under the limit:
        # no run starts once the limit is reached (see schedulers/pool.py).
        option.exitfirst = True


def xprun_collection_modifyitems(session: Session, runs: list[RunSpec]) -> None:
    option = session.config.option
    if not (option.last_failed or option.failed_first or option.new_first or option.stepwise):
        return
    states = [str(state.status) for state in session.run_states(runs)]
    if option.last_failed:
        _last_failed(session, runs, states)
    elif option.failed_first:
        failed = _failed(states)
        if any(failed):
            count = _plural(sum(failed), "failure")
            _say(session, f"run-last-failure: rerun previous {count} first")
            _reorder(runs, states, failed)
    if option.new_first:
        _reorder(runs, states, [status == "new" for status in states])
    if option.stepwise:
        _stepwise(session, runs, states)


def _failed(states: list[str]) -> list[bool]:
    return [status in FAILED_LAST for status in states]


def _last_failed(session: Session, runs: list[RunSpec], states: list[str]) -> None:
    failed = _failed(states)
    count = sum(failed)
    if count:
        _say(session, f"run-last-failure: rerun previous {_plural(count, 'failure')}")
        _keep(session, runs, states, failed)
        return
    if session.config.option.last_failed_no_failures == "none":
        _say(session, "run-last-failure: no previously failed runs, deselecting all runs")
        _keep(session, runs, states, [False] * len(runs))
    else:
        _say(session, "run-last-failure: no previously failed runs, not deselecting runs")


def _stepwise(session: Session, runs: list[RunSpec], states: list[str]) -> None:
    option = session.config.option
    first = next((i for i, f in enumerate(_failed(states)) if f), None)
    if first is None:
        if option.stepwise_skip:  # no failure on record: the first one of this launch
            option.maxfail, option.maxfail_reason = 2, "--sw-skip"
        return
    keep = [i >= first or states[i] != "complete" for i in range(len(runs))]
    passed = keep.count(False)
    if passed:
        _say(session, f"stepwise: skipping {_plural(passed, 'already complete run')}")
    if option.stepwise_skip:
        _say(session, f"stepwise: skipping the failing run {runs[first].nodeid}")
        keep[first] = False
    _keep(session, runs, states, keep)


def _keep(session: Session, runs: list[RunSpec], states: list[str], keep: list[bool]) -> None:
    """Keep the runs marked, in place (with their states); the others are deselected."""
    dropped = [run for run, k in zip(runs, keep, strict=True) if not k]
    if dropped:
        session.config.hook.xprun_deselected(runs=dropped)
    runs[:] = [run for run, k in zip(runs, keep, strict=True) if k]
    states[:] = [state for state, k in zip(states, keep, strict=True) if k]


def _reorder(runs: list[RunSpec], states: list[str], first: list[bool]) -> None:
    """The marked runs first, each part in its order (with their states)."""
    order = sorted(range(len(runs)), key=lambda i: not first[i])
    runs[:] = [runs[i] for i in order]
    states[:] = [states[i] for i in order]


def _say(session: Session, text: str) -> None:
    """A line through the terminal reporter, when there is one (``-p no:terminal`` and
    workers print nothing) and not under ``-q``."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and getattr(reporter, "verbosity", 0) >= 0:
        reporter.write(text + "\n")


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' * (count != 1)}"
