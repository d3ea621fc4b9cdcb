"""Retrying failed runs: ``--retries N``, ``--retry-on REGEX`` and ``@xprun.config(retries=N)``.

As pytest-rerunfailures (``--reruns``, ``--only-rerun``): a run whose attempt fails is tried
again, up to N times, at once and in the process that executes it (inline, a pool worker, a
cluster job), through the built-in run protocol (:func:`xprun.runner.run_protocol`).  Each
retry is a new attempt in the same run directory (``attempt`` counts up in ``run.json``, the
directory's files are kept, as when a failed run is launched again, so a logger resumes from
its checkpoint); only the last attempt is reported, and its ``run.json`` lists the failed ones
under ``retried``.  The terminal summary lists the runs that were retried.

``--retry-on REGEX`` (repeatable) retries only failures whose ``ExceptionType: message``
matches one of the expressions (``re.search``).  Never retried: an interrupt, a time limit,
a lost claim, a full disk, a session fixture that failed earlier.

The command line's values reach workers and cluster jobs through the project settings
recorded in their job spec (``[tool.xprun.retries] retries`` and ``retry_on``, which a project
may also set as its defaults).
"""

from __future__ import annotations

import argparse
import json
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import Config
    from .reports import RunReport
    from .runcontext import RunContext
    from .runspec import RunSpec
    from .session import Session

#: The settings table that holds the project's defaults (and carries the options to workers).
SETTINGS_TABLE = "retries"


def count(text: Any) -> int:
    """A number of retries: an integer, 0 or more."""
    try:
        value = int(text)
    except (TypeError, ValueError):
        value = -1
    if isinstance(text, bool | float) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number, 0 or more, got {text!r}")
    return value


def xprun_addoption(parser: argparse.ArgumentParser, settings: dict[str, Any]) -> None:
    table = settings.get(SETTINGS_TABLE)
    table = table if isinstance(table, dict) else {}
    group = parser.add_argument_group("retries")
    group.add_argument(
        "--retries",
        type=count,
        default=table.get("retries", 0),
        metavar="N",
        help="retry a failed run up to N times, at once, in the same run directory (a new "
        "attempt each time); @xprun.config(retries=...) overrides it for its experiment "
        "(default: [tool.xprun.retries] retries, else 0)",
    )
    group.add_argument(
        "--retry-on",
        action="append",
        dest="retry_on",
        default=None,
        metavar="REGEX",
        help="retry only failures whose 'ExceptionType: message' matches REGEX (re.search; "
        "repeatable: any of them)",
    )


class _Retries:
    """The session's retry policy, and the runs it retried (for the summary)."""

    def __init__(self, retries: int, patterns: list[re.Pattern[str]]) -> None:
        self.retries = retries
        self.patterns = patterns
        self.retried: list[tuple[str, str, int]] = []  # (node id, status, retries)

    def for_run(self, run: RunSpec) -> int:
        declared = getattr(run.experiment.declaration, "retries", None)
        return self.retries if declared is None else declared

    def matches(self, error: BaseException) -> bool:
        if not self.patterns:
            return True
        from .errors import safe_str

        text = f"{type(error).__name__}: {safe_str(error)}"
        return any(pattern.search(text) for pattern in self.patterns)


_policies: list[_Retries] = []  # the configured session's (one session configures at a time)


def _usage_error(message: str) -> Exception:
    from .errors import UsageError

    return UsageError(message)


def xprun_configure(config: Config) -> None:
    option = config.option
    table = config.settings.values.get(SETTINGS_TABLE)
    table = dict(table) if isinstance(table, dict) else {}
    try:
        retries = count(option.retries)
    except argparse.ArgumentTypeError as exc:
        raise _usage_error(f"[tool.xprun.{SETTINGS_TABLE}] retries: {exc}") from None
    texts = option.retry_on if option.retry_on is not None else table.get("retry_on", [])
    if isinstance(texts, str):
        texts = [texts]
    patterns = []
    for text in texts:
        if not isinstance(text, str):
            raise _usage_error(
                f"[tool.xprun.{SETTINGS_TABLE}] retry_on: expected regular expressions "
                f"(strings), got {text!r}"
            )
        try:
            patterns.append(re.compile(text))
        except re.error as exc:
            raise _usage_error(
                f"--retry-on {text!r} is not a valid regular expression: {exc}; quote it "
                "for the shell, and escape what it should match literally (\\., \\()"
            ) from None
    # Job specs record the settings: workers and cluster jobs retry the same way.
    config.settings.values[SETTINGS_TABLE] = {**table, "retries": retries, "retry_on": texts}
    _policies[:] = [_Retries(retries, patterns)]


def xprun_unconfigure(config: Config) -> None:
    _policies.clear()


def xprun_run_protocol(run: RunSpec, context: RunContext) -> RunReport | None:
    """The built-in protocol with retries, for a run that may be retried; else None (the
    built-in protocol as it is)."""
    for policy in _policies:
        retries = policy.for_run(run)
        if retries:
            from .runner import run_protocol

            return run_protocol(run, context, retries, policy.matches)
    return None


def xprun_run_logreport(report: RunReport) -> None:
    """Note the runs that were retried (their ``run.json`` lists the failed attempts): the
    report may come from a pool worker or a cluster job, which retried them there."""
    from .states import Status

    if report.status not in (Status.COMPLETE, Status.FAILED, Status.XFAIL, Status.TIMEOUT):
        return
    for policy in _policies:
        if not policy.for_run(report.run):
            return
        try:
            with open(report.run.run_dir / "run.json", encoding="utf-8") as file:
                retried = json.load(file).get("retried")
        except (OSError, ValueError, AttributeError):
            return
        if isinstance(retried, list) and retried:
            policy.retried.append((report.run.nodeid, str(report.status), len(retried)))


def xprun_runs_cached() -> None:
    """Runs the batched skip check found complete were not retried in this session: nothing
    to note (so no report per run reaches ``xprun_run_logreport`` above)."""


def xprun_terminal_summary(session: Session, exitstatus: int) -> None:
    """A ``retried`` section: each retried run, how often, and how it ended."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    for policy in _policies:
        if not policy.retried or reporter is None:
            return
        reporter.rule("retried", "_")
        for nodeid, status, times in policy.retried:
            reporter.write(f"RETRIED {nodeid} - retried {times}\u00d7, then {status}\n")
