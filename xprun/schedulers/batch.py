"""What every batch scheduler shares: choose the runs, snapshot, write specs, submit, wait.

A batch scheduler (SLURM, OAR, and PBS or LSF as small plugins) only says how to submit an
array of ``n`` worker tasks for one job directory (:meth:`BatchScheduler.submit`) and how to
ask which of its jobs are still queued or running (:meth:`BatchScheduler.queue_states`).
Everything else is here: runs already complete or running elsewhere are skipped before
submission; runs are grouped by the resources they need (one array per group, so one sbatch
call for a sweep); the code is snapshotted; the spec and the job record (which job, and which
task of it, holds each run) are written; and with ``--wait`` the launcher follows the jobs
until they end.  The queue is asked again, with backoff, when it does not answer: a queue
that stays silent for ``queue_timeout`` seconds is reported as such, and the runs are left
as they are (no run is reported or recorded as ended because the queue was unreachable).
"""

from __future__ import annotations

import contextlib
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import reports
from ..declare import RESOURCE_KEYS
from ..errors import UsageError
from ..jobs import new_job_dir, record_submission, write_spec
from ..states import Status
from ..terminal import write_message
from . import pending

if TYPE_CHECKING:
    from ..runspec import RunSpec
    from ..session import Session


#: The queue states (as ``queue_states`` normalises them, SLURM's names) of a job that has not
#: started yet; any other state of a listed job is running.
WAITING_STATES = ("PENDING", "CONFIGURING", "REQUEUED")


def waiting(queue_state: str) -> bool:
    """Whether a job in this queue state waits to start (``xprun status``, ``--wait``)."""
    return queue_state in WAITING_STATES


def merge_resources(defaults: dict[str, Any], declared: dict[str, Any]) -> dict[str, Any]:
    """The experiment's ``@resources`` over the scheduler's defaults (``extra`` is joined)."""
    merged = {k: v for k, v in defaults.items() if k in RESOURCE_KEYS and v is not None}
    for key, value in declared.items():
        if key == "extra":
            merged["extra"] = [*merged.get("extra", []), *value]
        else:
            merged[key] = value
    return merged


def run_command(args: list[str], what: str) -> str:
    """Run a scheduler command; a failure is a ``UsageError`` that shows its output."""
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        raise UsageError(f"{args[0]} not found: is {what} installed and on PATH here?") from None
    except subprocess.TimeoutExpired:
        raise UsageError(f"{shlex.join(args)} did not answer within 120 s") from None
    if proc.returncode != 0:
        raise UsageError(
            f"{shlex.join(args[:3])}... failed (exit code {proc.returncode}): "
            f"{(proc.stderr or proc.stdout).strip()}"
        )
    return proc.stdout


class QueueUnreachable(UsageError):
    """The scheduler's queue did not answer, however often it was asked."""


#: settings every batch scheduler has
COMMON_DEFAULTS: dict[str, Any] = {
    "queue_timeout": 300.0,  # seconds of unanswered queue queries before giving up
}


class BatchScheduler:
    """Base class of the cluster schedulers."""

    name = "batch"
    #: scheduler-specific defaults, overridden by ``[tool.xprun.<name>]`` and the constructor
    defaults: dict[str, Any] = {}

    def __init__(self, **settings: Any) -> None:
        known = {*COMMON_DEFAULTS, *self.defaults, *RESOURCE_KEYS}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise UsageError(
                f"unknown {self.name} setting(s) {', '.join(unknown)}; known: "
                f"{', '.join(sorted(known))}"
            )
        self.settings = {**COMMON_DEFAULTS, **self.defaults, **settings}

    @classmethod
    def choose(cls, name: str, config: Any) -> BatchScheduler | None:
        """For ``xprun_choose_scheduler``: this scheduler, from the settings, if it is named."""
        return cls.from_settings(config.settings.values) if name == cls.name else None

    @staticmethod
    def write_script(path: Path, text: str) -> Path:
        path.write_text(text)
        path.chmod(0o755)
        return path

    @classmethod
    def from_settings(cls, values: dict[str, Any]) -> BatchScheduler:
        table = values.get(cls.name) or {}
        if not isinstance(table, dict):
            raise UsageError(f"[tool.xprun.{cls.name}] must be a table")
        return cls(**table)

    # -- to implement -------------------------------------------------------------------------

    def submit(
        self, job_dir: Path, spec: Path, count: int, resources: dict[str, Any], name: str
    ) -> list[str]:
        """Submit ``count`` worker tasks (indices 0..count-1 of ``spec``); return job ids."""
        raise NotImplementedError

    def queue_states(self, job_ids: list[str]) -> dict[str, str]:
        """Task id → state (PENDING, RUNNING, ...) for the jobs still known to the queue."""
        raise NotImplementedError

    def tasks(self, job_ids: list[str], count: int) -> list[dict[str, Any]]:
        """Where each of the ``count`` runs went, in spec order: its job id, its index in
        that job's array, and its task id (the key of :meth:`queue_states`).

        The default fits a scheduler that gives every task a job id of its own (OAR); for
        any other it records no task (``None``), and a run then counts as queued while any
        job of its submission is.  One that splits runs over arrays (SLURM) says how.
        """
        if len(job_ids) == count:
            return [{"job_id": j, "index": i, "task_id": j} for i, j in enumerate(job_ids)]
        return [{"job_id": None, "index": i, "task_id": None} for i in range(count)]

    def worker_command(self, spec: Path, index: str) -> str:
        """The shell command a task runs: the worker on one run of the spec."""
        python = self.settings.get("python") or sys.executable
        return f"exec {shlex.quote(python)} -m xprun worker {shlex.quote(str(spec))} {index}"

    # -- shared ------------------------------------------------------------------------------

    def ask_queue(self, job_ids: list[str], patience: float | None = None) -> dict[str, str]:
        """:meth:`queue_states`, asked again with backoff while the queue does not answer
        (a busy or restarting controller); :class:`QueueUnreachable` after ``patience``
        seconds (default: the ``queue_timeout`` setting)."""
        if patience is None:
            patience = float(self.settings["queue_timeout"])
        deadline = time.monotonic() + patience
        delay = max(0.5, float(self.settings.get("poll_seconds") or 2.0))
        while True:
            try:
                return self.queue_states(job_ids)
            except UsageError as exc:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise QueueUnreachable(
                        f"{self.name}'s queue did not answer for {patience:g} s "
                        f"([tool.xprun.{self.name}] queue_timeout); last error: {exc}"
                    ) from None
                pause = min(delay, left)
                sys.stderr.write(
                    f"{self.name}: the queue did not answer ({exc}); asking again in "
                    f"{pause:.1f} s\n"
                )
                time.sleep(pause)
                delay = min(2 * delay, 60.0)

    def queued_elsewhere(self, session: Session, runs: list[RunSpec]) -> list[RunSpec]:
        """Leave out runs whose task an earlier submission still has in the queue (one
        query).  Each run is followed by its own task: when runs were split over several
        arrays, one array ending says nothing about the runs of the others."""
        from ..jobs import submissions

        owner: dict[str, tuple[list[str], str | None]] = {}  # run dir → (jobs, task id)
        for submission in submissions(session.config.log_dir):
            if submission.get("scheduler") != self.name:
                continue
            tasks = submission.get("tasks") or []
            for i, run_dir in enumerate(submission.get("runs", [])):
                task = tasks[i] if i < len(tasks) else {}
                if task.get("task_id"):
                    owner[run_dir] = ([task["job_id"]], task["task_id"])
                else:  # no task known (or recorded before tasks were): any job may hold it
                    owner[run_dir] = (list(submission["job_ids"]), None)
        wanted = {j for r in runs for j in owner.get(str(r.run_dir), ([], None))[0]}
        if not wanted:
            return runs
        try:
            live = set(self.ask_queue(sorted(wanted)))
        except QueueUnreachable as exc:  # submit: claims keep each run single
            write_message(
                session.config, f"warning: cannot tell which runs are still queued: {exc}"
            )
            return runs
        live_jobs = {task.split("_")[0] for task in live}
        todo = []
        for run in runs:
            jobs, task = owner.get(str(run.run_dir), ([], None))
            if task is not None:
                held = task if task in live else None
            else:
                held = next((job for job in jobs if job in live_jobs), None)
            if held is not None:
                report = reports.RunReport(run, Status.ELSEWHERE, longrepr=f"queued as {held}")
                session.config.hook.xprun_run_logreport(report=report)
            else:
                todo.append(run)
        return todo

    def run(self, session: Session, runs: list[RunSpec]) -> None:
        todo = self.queued_elsewhere(session, pending(session, runs))
        if not todo:
            return
        snapshot = session.snapshot(required=True)
        groups: dict[str, tuple[dict[str, Any], list[RunSpec]]] = {}
        for run in todo:
            resources = merge_resources(self.settings, run.experiment.declaration.resources)
            key = json.dumps(resources, sort_keys=True)
            groups.setdefault(key, (resources, []))[1].append(run)
        all_jobs: list[str] = []
        hook = session.config.hook
        for resources, group in groups.values():
            job_dir = new_job_dir(session.config.log_dir)
            spec = write_spec(session, group, self.name, snapshot, job_dir, resources)
            name = "xprun:" + ",".join(sorted({r.experiment.name for r in group}))[:100]
            job_ids = self.submit(job_dir, spec, len(group), resources, name)
            tasks = self.tasks(job_ids, len(group))
            record_submission(job_dir, self.name, job_ids, group, tasks)
            all_jobs.extend(job_ids)
            for run, task in zip(group, tasks, strict=True):
                where = task["task_id"] or ", ".join(job_ids)
                report = reports.RunReport(run, Status.SUBMITTED, longrepr=f"job {where}")
                hook.xprun_run_logreport(report=report)
        write_message(
            session.config,
            f"submitted {len(todo)} run{'s' * (len(todo) != 1)} to {self.name} as "
            f"{', '.join(all_jobs)}; follow them with: xprun status",
        )
        if session.config.option.wait:
            self.wait(session, all_jobs, todo)

    def wait(self, session: Session, job_ids: list[str], runs: list[RunSpec]) -> None:
        """Follow the jobs until none is queued or running, then report how each run ended."""
        interval = float(self.settings.get("poll_seconds", 2.0))
        last = ""
        while True:
            try:
                states = self.ask_queue(job_ids)
            except QueueUnreachable as exc:
                self._unreachable(session, runs, exc)
            queued = sum(1 for s in states.values() if waiting(s))
            running = len(states) - queued
            done = sum(1 for r in runs if session.run_state(r).complete)
            line = f"{self.name}: {queued} queued, {running} running, {done}/{len(runs)} complete"
            if line != last:
                write_message(session.config, line)
                last = line
            if not states:
                break
            time.sleep(interval)
        for run in runs:
            self._report_end(session, run)

    def _report_end(self, session: Session, run: RunSpec, ended_only: bool = False) -> bool:
        """Report how ``run`` ended, from its record; with ``ended_only``, only a run that
        is complete or failed (the others may still be queued or running).  Whether
        reported."""
        state = session.run_state(run)
        ended = state.status in (
            Status.COMPLETE,
            Status.FAILED,
            Status.TIMEOUT,
            Status.XFAIL,
            Status.PRUNED,
        )
        if ended_only and not ended:
            return False
        status = Status(state.status) if ended else Status.INTERRUPTED
        record = state.record or {}
        error = record.get("error") or {}
        longrepr = f"{error.get('type', '')}: {error.get('message', '')}" if error else ""
        if error:  # the traceback, as an inline run shows it (the last attempt's, as error)
            with contextlib.suppress(OSError, UnicodeDecodeError):
                longrepr = (Path(run.run_dir) / "error.txt").read_text(encoding="utf-8")
        if state.status == Status.NEW:
            longrepr = "the job ended without running it; see the job's output in " + str(
                Path(session.config.log_dir) / ".xprun-jobs"
            )
        session.config.hook.xprun_run_logreport(
            report=reports.RunReport(
                run, status, duration=record.get("duration") or 0.0, longrepr=longrepr
            )
        )
        return True

    def _unreachable(self, session: Session, runs: list[RunSpec], exc: QueueUnreachable) -> None:
        """Stop waiting: report the runs known to have ended, leave the others untouched
        (their jobs may well be running), and say so."""
        unknown = [run for run in runs if not self._report_end(session, run, ended_only=True)]
        raise QueueUnreachable(
            f"{exc}; stopped waiting. {len(unknown)} of {len(runs)} runs have not ended as "
            "far as their records show and were left as they are (their jobs may still be "
            "queued or running): follow them with 'xprun status'"
        ) from None
