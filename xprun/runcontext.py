"""What the run protocol may use: a narrow context, not the whole session.

A run is executed the same way inline, in a local pool worker and on a cluster node; what it
needs from around it is small and listed here, so a runner (built-in or a plugin's
``xprun_run_protocol``) cannot come to depend on collection, scheduling or reporting state.
The session builds one per scheduler it dispatches to (``Session.run_context()``); a worker
builds its own session from a job spec and does the same.

Behaviour a fixture needs when its run returns or is interrupted (the logger flushing its
metrics, saving a checkpoint on Ctrl-C) is not named here: it is registered through the
``xprun_run_returned`` and ``xprun_run_interrupted`` hooks (see ``builtin_fixtures.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pluggy

    from .fixtures import SessionFixtures
    from .reports import RunReport
    from .store import FsClock, Heartbeat


class MetadataProvider(Protocol):
    """What ``run.json`` records about where and from what code a run executes."""

    @property
    def scheduler(self) -> str:
        """The name of the scheduler executing the runs (``inline``, ``local``, ``slurm``...)."""

    def git_state(self) -> tuple[dict[str, Any], str | None]:
        """The code's Git state: the ``git`` fields of ``run.json`` and the uncommitted patch."""

    def packages(self) -> dict[str, str]:
        """Versions of the top-level packages imported so far (``packages`` of ``run.json``)."""


#: A recorder receives every report the run protocol makes (the session's is the
#: ``xprun_run_logreport`` hook: counting, ``-x``, the terminal).
Recorder = Callable[["RunReport"], None]


@dataclass(frozen=True)
class RunContext:
    """Everything the run protocol uses besides the run itself.

    - ``hook``: the hook relay, for the per-run hooks (``xprun_run_setup``...);
    - ``clock``: the log directory's file-system clock (staleness of claims);
    - ``heartbeat``: interval and timeout of claim heartbeats;
    - ``metadata``: Git state, package versions and scheduler name for ``run.json``;
    - ``recorders``: called in order with each report the protocol makes;
    - ``session_fixtures``: the cache of session-scoped fixture values;
    - ``force``: ``--force``, run again runs that are complete;
    - ``capture``: ``"sys"`` (output to files) or ``"no"`` (``-s``, also echoed);
    - ``full_trace``: ``--full-trace``, keep xprun's and pluggy's frames in tracebacks.
    """

    hook: pluggy.HookRelay
    clock: FsClock
    heartbeat: Heartbeat
    metadata: MetadataProvider
    recorders: tuple[Recorder, ...]
    session_fixtures: SessionFixtures
    force: bool = False
    capture: str = "sys"
    full_trace: bool = False

    def record(self, report: RunReport) -> RunReport:
        """Hand ``report`` to every recorder; return it."""
        for recorder in self.recorders:
            recorder(report)
        return report
