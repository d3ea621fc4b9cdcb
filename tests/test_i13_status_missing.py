"""``xprun status`` after jobs left the queue without writing their runs (cancelled before
they started, or their runs removed with ``xprun rm``): those runs are "missing", not
"queued" for ever; a run submitted twice counts once."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

import pytest
from conftest import Project, git_commit_all

HELD = '[tool.xprun]\nlog_dir = "xprun_logs"\n[tool.xprun.slurm]\nsbatch_args = ["--hold"]\n'


def _slurm_up() -> bool:
    if not shutil.which("sbatch"):
        return False
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=30)
    return "UP" in ping.stdout


def _row(project: Project) -> dict[str, int]:
    result = project.run("status")
    assert result.returncode == 0, result.output
    header, row = result.stdout.splitlines()[:2]
    return dict(zip(header.split()[1:], map(int, row.split()[1:]), strict=True))


def _gone(job_id: str) -> bool:
    out = subprocess.run(["squeue", "-h", "-j", job_id], capture_output=True, text=True)
    return not out.stdout.strip()


def test_i13_status_cancelled_jobs_runs_are_missing_and_resubmitted_runs_count_once(
    project: Project,
) -> None:
    if not _slurm_up():
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but no SLURM cluster answers")
        pytest.skip("no SLURM cluster here")
    project.write("pyproject.toml", HELD)
    project.write(
        "xp_q.py",
        "import xprun\n\n@xprun.grid(i=[1, 2])\n@xprun.config({'i': 0})\n"
        "def xp_q(config):\n    return {'v': config.i}\n",
    )
    git_commit_all(project.root)
    jobs: list[str] = []
    try:
        assert project.run("--scheduler", "slurm").returncode == 0
        (job_dir,) = (project.log_dir / ".xprun-jobs").iterdir()
        jobs += json.loads((job_dir / "job.json").read_text())["job_ids"]
        held = _row(project)
        assert held["queued"] == 2 and held["missing"] == 0, held

        subprocess.run(["scancel", *jobs], check=True)
        deadline = time.monotonic() + 60
        while not all(map(_gone, jobs)):
            assert time.monotonic() < deadline, "the cancelled job stayed in the queue"
            time.sleep(0.5)
        cancelled = _row(project)
        assert cancelled["queued"] == 0 and cancelled["missing"] == 2, cancelled

        again = project.run("--scheduler", "slurm")  # the same two runs, submitted anew
        assert again.returncode == 0, again.output
        for folder in (project.log_dir / ".xprun-jobs").iterdir():
            jobs += json.loads((folder / "job.json").read_text())["job_ids"]
        resubmitted = _row(project)
        assert resubmitted["queued"] == 2 and resubmitted["missing"] == 0, resubmitted
    finally:
        subprocess.run(["scancel", *jobs], capture_output=True)  # never left held
