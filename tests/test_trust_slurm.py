"""Issue 8, SLURM: split arrays are followed task by task, an unanswering queue is retried.

On the real single-node cluster of .ci/start-slurm.sh (skipped without one, as
tests/test_slurm.py).  A failing ``squeue`` is a wrapper script first on PATH.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import git_commit_all
from test_slurm import completed, job_records, slurm, wait_for  # noqa: F401 (fixture)


def wrapper(tmp_path: Path, name: str, failures: int | None) -> Path:
    """A ``name`` command that fails its first ``failures`` calls (all when None) as an
    overloaded controller does, then runs the real one; returns its folder."""
    real = shutil.which(name)
    folder = tmp_path / "bin"
    folder.mkdir(exist_ok=True)
    count = tmp_path / f"{name}.calls"
    limit = "1000000000" if failures is None else str(failures)
    script = folder / name
    script.write_text(
        "#!/bin/sh\n"
        f"n=$(cat {count} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {count}\n"
        f'if [ "$n" -le {limit} ]; then\n'
        "  echo 'slurm_load_jobs error: Socket timed out on send/recv operation' >&2\n"
        "  exit 1\n"
        "fi\n"
        f'exec {real} "$@"\n'
    )
    script.chmod(0o755)
    return folder


def test_i8_19_runs_of_a_later_array_are_not_resubmitted_when_the_first_ends(
    slurm,  # noqa: F811
    project,
    tmp_path,
):
    calls = tmp_path / "sbatch-calls.log"
    sbatch = tmp_path / "bin" / "sbatch"
    sbatch.parent.mkdir()
    sbatch.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexec {shutil.which("sbatch")} "$@"\n')
    sbatch.chmod(0o755)
    project.write(
        "pyproject.toml",
        '[tool.xprun]\nlog_dir = "xprun_logs"\n[tool.xprun.slurm]\nmax_array_size = 2\n'
        'sbatch_args = ["--hold"]\n',
    )
    project.write(
        "xp_split.py",
        "import xprun\n\n@xprun.grid(i=[0, 1, 2, 3])\ndef xp_split(config):\n"
        "    return {'i': config.i}\n",
    )
    git_commit_all(project.root)
    env = project.with_path(sbatch.parent)
    submit = project.run("--scheduler", "slurm", env=env)
    assert submit.returncode == 0, submit.output
    (job,) = job_records(project)
    first, second = job["job_ids"]
    try:
        subprocess.run(["scontrol", "release", first], check=True)
        wait_for(completed(project, 2), 180, "the first array's 2 runs to complete")
        wait_for(
            lambda: (
                not subprocess.run(
                    ["squeue", "-h", "-j", first], capture_output=True, text=True
                ).stdout.strip()
            ),
            120,
            "the first array to leave the queue",
        )
        again = project.run("--scheduler", "slurm", env=env)
        assert again.returncode == 0, again.output
        assert "2 cached" in again.stdout and "2 running elsewhere" in again.stdout, again.stdout
        assert len(calls.read_text().splitlines()) == 2  # the two arrays, nothing more
        assert len(job_records(project)) == 1
        assert [t["job_id"] for t in job["tasks"]] == [first, first, second, second]
        assert [t["index"] for t in job["tasks"]] == [0, 1, 0, 1]
    finally:  # every job submitted, a wrongly resubmitted one included
        jobs = [j for record in job_records(project) for j in record["job_ids"]]
        subprocess.run(["scancel", *jobs], capture_output=True)


SWEEP = (
    "import xprun\n\n@xprun.grid(i=[0, 1, 2])\ndef xp_wait(config):\n    return {'i': config.i}\n"
)


def test_i8_20_wait_rides_out_a_transient_squeue_failure(slurm, project, tmp_path):  # noqa: F811
    project.write(
        "pyproject.toml",
        '[tool.xprun]\nlog_dir = "xprun_logs"\n[tool.xprun.slurm]\npoll_seconds = 0.5\n',
    )
    project.write("xp_wait.py", SWEEP)
    git_commit_all(project.root)
    env = project.with_path(wrapper(tmp_path, "squeue", failures=2))
    result = project.run("--scheduler", "slurm", "--wait", env=env, timeout=300)
    assert result.returncode == 0, result.output
    assert "3 complete" in result.stdout, result.stdout
    assert "did not answer" in result.stderr  # the retries are said, not hidden
    assert int((tmp_path / "squeue.calls").read_text()) > 2


def test_i8_20_a_queue_that_stays_unreachable_is_reported_and_runs_left_honest(
    slurm,  # noqa: F811
    project,
    tmp_path,
):
    project.write(
        "pyproject.toml",
        '[tool.xprun]\nlog_dir = "xprun_logs"\n[tool.xprun.slurm]\npoll_seconds = 0.5\n'
        'queue_timeout = 2\nsbatch_args = ["--hold"]\n',
    )
    project.write("xp_wait.py", SWEEP)
    git_commit_all(project.root)
    env = project.with_path(wrapper(tmp_path, "squeue", failures=None))
    result = project.run("--scheduler", "slurm", "--wait", env=env, timeout=300)
    jobs = [j for record in job_records(project) for j in record["job_ids"]]
    try:
        assert result.returncode == 4, result.output
        assert "queue did not answer" in result.stderr and "xprun status" in result.stderr
        assert "3 of 3 runs have not ended" in result.stderr
        assert "interrupted" not in result.stdout and "failed" not in result.stdout
        assert project.records() == []  # nothing recorded as ended: the jobs are held
        # The jobs were left alone: released, they run and complete.
        subprocess.run(["scontrol", "release", *jobs], check=True)
        wait_for(completed(project, 3), 180, "the 3 runs to complete")
        outcomes = [json.loads((d / "outcome.json").read_text()) for d in project.run_dirs()]
        assert sorted(o["i"] for o in outcomes) == [0, 1, 2]
    finally:
        if jobs:
            subprocess.run(["scancel", *jobs], capture_output=True)


@pytest.mark.parametrize("import_at", ["collection", "run"])
def test_i8_16_slurm_tasks_import_only_from_the_snapshot(
    slurm,  # noqa: F811
    project,
    import_at,
):
    body = "    import local_helper\n\n" if import_at == "run" else ""
    header = "import local_helper\n\n" if import_at == "collection" else ""
    project.write(
        "xp_local.py",
        f"{header}def xp_local():\n{body}    return {{'value': local_helper.VALUE}}\n",
    )
    git_commit_all(project.root)
    with (project.root / ".gitignore").open("a") as f:
        f.write("local_helper.py\n")
    project.write("local_helper.py", "VALUE = 'ignored by git'\n")
    project.write(
        "pyproject.toml",
        '[tool.xprun]\nlog_dir = "xprun_logs"\n[tool.xprun.slurm]\npoll_seconds = 0.5\n',
    )
    result = project.run("--scheduler", "slurm", "--wait", timeout=300)
    if import_at == "collection":  # the launcher sees it: nothing is submitted
        assert result.returncode == 4, result.output
        assert "local_helper.py" in result.stderr and "snapshot_include" in result.stderr
        assert job_records(project) == []
    else:  # only the task imports it, from the snapshot, where it is not
        assert result.returncode == 1, result.output
        (record,) = project.records()
        assert record["status"] == "failed"
        assert record["error"]["type"] == "ModuleNotFoundError"
