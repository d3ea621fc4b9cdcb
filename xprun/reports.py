"""Reports: what collection and each run ended with, handed to the reporting hooks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .runspec import RunSpec

# How a run ended in this session; "cached" and "elsewhere" mean this session did not run it.
COMPLETE = "complete"
CACHED = "cached"
FAILED = "failed"
INTERRUPTED = "interrupted"
ELSEWHERE = "running elsewhere"
SUBMITTED = "submitted"  # sent to a cluster scheduler; it runs later
# Another launcher took the run over while this one was paused (stale heartbeat): this
# execution recorded nothing over the new owner's run.
LOST = "lost claim"
OUTCOMES = (COMPLETE, CACHED, FAILED, INTERRUPTED, LOST, ELSEWHERE, SUBMITTED)
# Outcomes that make the session's exit code 1 (as a failed test does in pytest).
UNSUCCESSFUL = (FAILED, INTERRUPTED, LOST)
# Counted beside the outcomes: complete runs whose fixture teardown raised (their result is
# kept, as pytest keeps a passed test whose teardown errors, and reports the error).
TEARDOWN_ERROR = "teardown error"


@dataclass
class RunReport:
    run: RunSpec
    outcome: str
    duration: float = 0.0
    longrepr: str = ""  # traceback or explanation
    stdout: str = ""
    stderr: str = ""
    teardown_error: str = ""  # traceback of a fixture teardown that raised after the call
    shouldstop: str = ""  # why no further run should start (a full disk)

    @property
    def failed(self) -> bool:
        """A failure for ``-x``: a failed run, a lost claim, or a teardown error."""
        return self.outcome in (FAILED, LOST) or bool(self.teardown_error)


@dataclass
class CollectReport:
    path: Path
    nodeid: str
    failed: bool
    longrepr: str = ""
    count: int = 0
