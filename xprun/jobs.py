"""Job specs: what a worker process needs to execute runs, written by the launcher.

A spec is one JSON file per submission in ``<log_dir>/.xprun-jobs/<id>/spec.json``: the
code to import (a snapshot, or the work tree), the log directory, the settings, the Git state
and the launch's provenance (session id, snapshot) to record, and each run's node id,
resolved config, fixture params, digest and directory.
Workers read it and never re-parse a shell script or re-expand the sweep, so what runs is
exactly what the launcher decided.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import store
from .markers import mark_numbers
from .serialize import jsonable
from .timestamps import timestamp

if TYPE_CHECKING:
    from .runspec import RunSpec
    from .session import Session
    from .snapshot import Snapshot

SPEC_FORMAT = 1
JOBS_DIR = ".xprun-jobs"


def new_id() -> str:
    """``YYYYMMDDTHHMMSSZ-<8 hex>``: names job folders and sessions (sorted by time)."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return f"{stamp}-{uuid.uuid4().hex[:8]}"


def new_job_dir(log_dir: Path) -> Path:
    path = log_dir / JOBS_DIR / new_id()
    path.mkdir(parents=True)
    return path


def write_spec(
    session: Session,
    runs: list[RunSpec],
    scheduler: str,
    snapshot: Snapshot | None,
    job_dir: Path,
    resources: dict[str, Any] | None = None,
) -> Path:
    """Write ``spec.json`` for ``runs`` into ``job_dir``; returns its path."""
    from .provenance import session_fields

    config = session.config
    git_fields, patch = session.git_state()
    if snapshot is not None:
        git_fields = {**git_fields, **snapshot.fields()}
    spec = {
        "format": SPEC_FORMAT,
        "created": timestamp(),
        "scheduler": scheduler,
        "rootdir": str(snapshot.rootdir if snapshot else config.rootdir),
        "source_rootdir": str(config.rootdir),
        "source_top": str(snapshot.source) if snapshot else None,  # what jobs must not import
        "log_dir": str(config.log_dir),
        "python": sys.executable,
        "settings": config.settings.values,
        "force": bool(config.option.force),
        "capture": config.option.capture,
        "full_trace": bool(config.option.full_trace),  # tracebacks are cut in the workers
        "plugins": list(config.option.plugins),  # -p NAME / -p no:NAME, for the workers too
        "git": git_fields,
        "patch": patch,
        "resources": resources or {},
        "provenance": session_fields(session, snapshot),  # the launch's session and snapshot
        "runs": [run_entry(run) for run in runs],
    }
    path = job_dir / "spec.json"
    store.write_json_atomic(path, spec)
    return path


def run_entry(run: RunSpec) -> dict[str, Any]:
    """One run of a job spec (what ``worker.Worker.runspec`` rebuilds the run from); the
    local pool also sends runs it is handed after the spec was written in this form."""
    return {
        "nodeid": run.experiment.nodeid,
        "label": run.label,
        "config": run.config,
        "param_indices": run.param_indices,
        "param_ids": run.param_ids,
        "assignments": jsonable(run.assignments, default=_as_text),
        "marks": mark_numbers(run),
        "volatile": run.volatile,
        "digest": run.digest,
        "run_dir": str(run.run_dir),
    }


def _as_text(value: Any, where: str) -> str:
    """What ``jsonable`` cannot convert in an assignment is recorded as its ``repr`` (it is
    only shown)."""
    return repr(value)


def read_spec(path: Path) -> dict[str, Any]:
    spec = store.read_json(path)
    if not isinstance(spec, dict) or spec.get("format") != SPEC_FORMAT:
        raise ValueError(f"{path} is not an xprun job spec of format {SPEC_FORMAT}")
    return spec


def record_submission(
    job_dir: Path,
    scheduler: str,
    job_ids: list[str],
    runs: list[RunSpec],
    tasks: list[dict[str, Any]],
) -> None:
    """``job.json``: which scheduler jobs carry which runs (read by ``xprun status``).

    ``tasks[i]`` says where ``runs[i]`` went (job id, array index, task id), so a run is
    followed by its own task even when a sweep was split over several arrays.
    """
    store.write_json_atomic(
        job_dir / "job.json",
        {
            "scheduler": scheduler,
            "job_ids": job_ids,
            "submitted": timestamp(),
            "runs": [str(run.run_dir) for run in runs],
            "tasks": tasks,
            "pid": os.getpid(),
        },
    )


def submissions(log_dir: Path) -> list[dict[str, Any]]:
    """Every recorded submission under a log directory."""
    found = []
    for path in sorted((log_dir / JOBS_DIR).glob("*/job.json")):
        try:
            found.append({**store.read_json(path), "dir": str(path.parent)})
        except (OSError, ValueError):
            continue
    return found
