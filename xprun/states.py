"""``Status``: the one vocabulary for where a run is, on disk and in a session.

A ``StrEnum``, so a member is the very string stored in ``run.json`` and shown in the
Reader's ``status`` column (``Status.COMPLETE == "complete"``): log directories written
before the enum existed read unchanged, and a record written today reads with an older xprun.
"""

from __future__ import annotations

import enum


class Status(enum.StrEnum):
    """Where a run is.

    Written in ``run.json`` (``status``) by the process that executes the run (the runner),
    and so shown by the Reader, ``xprun --collect-only`` and ``xprun status``:

    - ``NEW`` (``"new"``): no attempt has started; never written, it is what a run
      directory without a record reads as (a run still queued on a cluster, or not yet run).
    - ``RUNNING`` (``"running"``): an attempt started (written when it does); believed only
      while the owner's claim has a fresh heartbeat: otherwise the run reads as
      ``INTERRUPTED``.
    - ``COMPLETE`` (``"complete"``): the function returned and its outcome (``outcome.json``)
      is saved; written last, after teardown.
    - ``FAILED`` (``"failed"``): the function or one of its fixtures raised (``error`` and
      ``error.txt`` say what).
    - ``INTERRUPTED`` (``"interrupted"``): SIGINT, SIGTERM or SIGUSR2 ended the attempt, or
      its process died (a ``running`` record whose claim is stale).
    - ``TIMEOUT`` (``"timeout"``): the attempt ran past its time limit (``--timeout``,
      ``@xprun.config(timeout=...)``) and was stopped; its checkpoints are kept.
    - ``XFAIL`` (``"xfail"``): the run failed as its ``xfail`` mark expected; not a failure,
      and not rerun by ``--lf``.
    - ``PRUNED`` (``"pruned"``): a trial of a search that its pruner stopped early
      (``trial.should_prune`` said yes, then the experiment returned; its outcome is saved).
      Ended, as complete is: cached, not run again.

    Only in a session's reports (``RunReport.status``), for runs this session did not
    execute to an end; passed to ``xprun_run_logreport`` and counted in the summary, never
    written to ``run.json``:

    - ``CACHED`` (``"cached"``): already complete; not run again (the runner's skip check).
    - ``ELSEWHERE`` (``"running elsewhere"``): another live process holds its claim.
    - ``SUBMITTED`` (``"submitted"``): sent to a cluster scheduler; it runs later.
    - ``LOST`` (``"lost claim"``): another launcher took the run over while this one was
      paused past the heartbeat timeout; this execution recorded nothing over it.
    - ``SKIPPED`` (``"skipped"``): a ``skip`` or ``skipif`` mark (or a plugin) said not to run
      it; nothing is written.
    """

    NEW = "new"
    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    TIMEOUT = "timeout"
    XFAIL = "xfail"
    PRUNED = "pruned"
    CACHED = "cached"
    ELSEWHERE = "running elsewhere"
    SUBMITTED = "submitted"
    LOST = "lost claim"
    SKIPPED = "skipped"

    @property
    def unsuccessful(self) -> bool:
        """Whether a session that reports it exits with 1 (as a failed test in pytest)."""
        return self in (Status.FAILED, Status.INTERRUPTED, Status.TIMEOUT, Status.LOST)


#: What ``run.json`` may say (the others are never written there).
RECORDED = (
    Status.RUNNING,
    Status.COMPLETE,
    Status.FAILED,
    Status.INTERRUPTED,
    Status.TIMEOUT,
    Status.XFAIL,
    Status.PRUNED,
)
