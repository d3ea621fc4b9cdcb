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
OUTCOMES = (COMPLETE, CACHED, FAILED, INTERRUPTED, ELSEWHERE, SUBMITTED)


@dataclass
class RunReport:
    run: RunSpec
    outcome: str
    duration: float = 0.0
    longrepr: str = ""  # traceback or explanation
    stdout: str = ""
    stderr: str = ""

    @property
    def failed(self) -> bool:
        return self.outcome == FAILED


@dataclass
class CollectReport:
    path: Path
    nodeid: str
    failed: bool
    longrepr: str = ""
    count: int = 0
