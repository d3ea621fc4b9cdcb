"""What every batch scheduler shares: choose the runs, snapshot, write specs, submit, wait.

A batch scheduler (SLURM, OAR, and PBS or LSF as small plugins) only says how to submit an
array of ``n`` worker tasks for one job directory (:meth:`BatchScheduler.submit`) and how to
ask which of its jobs are still queued or running (:meth:`BatchScheduler.queue_states`).
Everything else is here: runs already complete or running elsewhere are skipped before
submission; runs are grouped by the resources they need (one array per group, so one sbatch
call for a sweep); the code is snapshotted; the spec and the job record are written; and
with ``--wait`` the launcher follows the jobs until they end.
"""

from __future__ import annotations

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
from . import pending

if TYPE_CHECKING:
    from ..main import Session
    from ..runspec import RunSpec


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


class BatchScheduler:
    """Base class of the cluster schedulers."""

    name = "batch"
    #: scheduler-specific defaults, overridden by ``[tool.xprun.<name>]`` and the constructor
    defaults: dict[str, Any] = {}

    def __init__(self, **settings: Any) -> None:
        unknown = sorted(set(settings) - set(self.defaults) - set(RESOURCE_KEYS))
        if unknown:
            raise UsageError(
                f"unknown {self.name} setting(s) {', '.join(unknown)}; known: "
                f"{', '.join(sorted({*self.defaults, *RESOURCE_KEYS}))}"
            )
        self.settings = {**self.defaults, **settings}

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

    def worker_command(self, spec: Path, index: str) -> str:
        """The shell command a task runs: the worker on one run of the spec."""
        python = self.settings.get("python") or sys.executable
        return f"exec {shlex.quote(python)} -m xprun worker {shlex.quote(str(spec))} {index}"

    # -- shared ------------------------------------------------------------------------------

    def queued_elsewhere(self, session: Session, runs: list[RunSpec]) -> list[RunSpec]:
        """Leave out runs that an earlier submission still has in the queue (one query)."""
        from ..jobs import submissions

        owner: dict[str, str] = {}
        for submission in submissions(session.config.log_dir):
            if submission.get("scheduler") != self.name:
                continue
            for run_dir in submission.get("runs", []):
                owner[run_dir] = submission["job_ids"][0]
        wanted = {owner[str(r.run_dir)] for r in runs if str(r.run_dir) in owner}
        if not wanted:
            return runs
        try:
            live = {task.split("_")[0] for task in self.queue_states(sorted(wanted))}
        except UsageError:
            return runs  # the queue cannot be asked: submit, claims keep runs single
        todo = []
        for run in runs:
            job = owner.get(str(run.run_dir))
            if job in live:
                report = reports.RunReport(run, reports.ELSEWHERE, longrepr=f"queued as job {job}")
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
            record_submission(job_dir, self.name, job_ids, group)
            all_jobs.extend(job_ids)
            for run in group:
                report = reports.RunReport(run, reports.SUBMITTED, longrepr=f"job {job_ids[0]}")
                hook.xprun_run_logreport(report=report)
        sys.stderr.write(
            f"submitted {len(todo)} run{'s' * (len(todo) != 1)} to {self.name} as "
            f"{', '.join(all_jobs)}; follow them with: xprun status\n"
        )
        if session.config.option.wait:
            self.wait(session, all_jobs, todo)

    def wait(self, session: Session, job_ids: list[str], runs: list[RunSpec]) -> None:
        """Follow the jobs until none is queued or running, then report how each run ended."""
        from .. import store

        interval = float(self.settings.get("poll_seconds", 2.0))
        last = ""
        while True:
            states = self.queue_states(job_ids)
            queued = sum(1 for s in states.values() if s in ("PENDING", "CONFIGURING", "REQUEUED"))
            running = sum(
                1 for s in states.values() if s not in ("PENDING", "CONFIGURING", "REQUEUED")
            )
            done = sum(1 for r in runs if session.run_state(r).complete)
            line = f"{self.name}: {queued} queued, {running} running, {done}/{len(runs)} complete"
            if line != last:
                sys.stderr.write(line + "\n")
                last = line
            if not states:
                break
            time.sleep(interval)
        outcome_of = {
            store.STATUS_COMPLETE: reports.COMPLETE,
            store.STATUS_FAILED: reports.FAILED,
        }
        hook = session.config.hook
        for run in runs:
            state = session.run_state(run)
            outcome = outcome_of.get(state.status, reports.INTERRUPTED)
            record = state.record or {}
            error = record.get("error") or {}
            longrepr = f"{error.get('type', '')}: {error.get('message', '')}" if error else ""
            if state.status in ("new",):
                longrepr = "the job ended without running it; see the job's output in " + str(
                    Path(session.config.log_dir) / ".xprun-jobs"
                )
            hook.xprun_run_logreport(
                report=reports.RunReport(
                    run, outcome, duration=record.get("duration") or 0.0, longrepr=longrepr
                )
            )
