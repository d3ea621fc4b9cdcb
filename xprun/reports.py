"""Reports: what collection and each run ended with, handed to the reporting hooks.

A run's end state in this session is ``RunReport.status``, a :class:`~xprun.states.Status`;
"outcome" means only what the experiment returned (``outcome.json``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .states import Status

if TYPE_CHECKING:
    from .runspec import RunSpec

# Aliases of the Status members, for code written against xprun 0.1; use Status.
COMPLETE = Status.COMPLETE
CACHED = Status.CACHED
FAILED = Status.FAILED
INTERRUPTED = Status.INTERRUPTED
ELSEWHERE = Status.ELSEWHERE
SUBMITTED = Status.SUBMITTED
LOST = Status.LOST

#: The end states a session reports, in the order of the summary line (every ``Status``
#: but ``NEW`` and ``RUNNING``, which are never a run's end in a session).
SUMMARY_ORDER = (
    Status.COMPLETE,
    Status.CACHED,
    Status.FAILED,
    Status.TIMEOUT,
    Status.INTERRUPTED,
    Status.XFAIL,
    Status.PRUNED,
    Status.SKIPPED,
    Status.LOST,
    Status.ELSEWHERE,
    Status.SUBMITTED,
)
# End states that make the session's exit code 1 (as a failed test does in pytest).
UNSUCCESSFUL = tuple(s for s in Status if s.unsuccessful)
# Counted beside the end states: complete runs whose fixture teardown raised (their result is
# kept, as pytest keeps a passed test whose teardown errors, and reports the error).  Not a
# Status: such a run is complete.
TEARDOWN_ERROR = "teardown error"


@dataclass
class RunReport:
    """How one run ended in this session, given to ``xprun_run_logreport``."""

    run: RunSpec
    status: Status
    duration: float = 0.0
    longrepr: str = ""  # traceback or explanation
    stdout: str = ""
    stderr: str = ""
    teardown_error: str = ""  # traceback of a fixture teardown that raised after the call
    shouldstop: str = ""  # why no further run should start (a full disk)
    # Seconds of each phase of an executed run ("setup", "call", "teardown"), measured where
    # it executed (the durations plugin); empty for runs not executed here (cached...).
    phases: dict[str, float] = field(default_factory=dict)
    # A cached run made by other code than today's (``xprun.staleness``): True or False once
    # judged, None when not (the plugin blocked, or not a cached run).
    stale: bool | None = None

    def __post_init__(self) -> None:
        try:
            self.status = Status(self.status)  # "cached" from a plugin is Status.CACHED
        except ValueError:
            raise ValueError(
                f"a RunReport's status must be an xprun.Status ({', '.join(Status)}), got "
                f"{self.status!r}"
            ) from None

    @property
    def failed(self) -> bool:
        """A failure for ``-x``: a failed or timed-out run, a lost claim, or a teardown error."""
        failures = (Status.FAILED, Status.TIMEOUT, Status.LOST)
        return self.status in failures or bool(self.teardown_error)

    @property
    def outcome(self) -> Status:
        """Deprecated name of :attr:`status` (xprun 0.1); "outcome" is what the run returned."""
        warnings.warn(
            "RunReport.outcome is now RunReport.status (the outcome is what the experiment "
            "returned, in outcome.json)",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.status


@dataclass
class CollectReport:
    path: Path
    nodeid: str
    failed: bool
    longrepr: str = ""
    count: int = 0
