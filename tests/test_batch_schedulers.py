"""Batch schedulers without a live cluster: OAR scripts and job ids, resources, splitting,
scheduler fixtures.  OAR cannot run here (it needs PostgreSQL, its own sshd and non-root
users), so its ``oarsub`` is a stand-in that records its arguments and prints real oarsub
output; the generated job script itself is executed for real with ``sh``, as OAR would."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import git_commit_all

from xprun.schedulers.batch import merge_resources
from xprun.schedulers.oar import _walltime, parse_oarsub
from xprun.schedulers.slurm import SlurmScheduler, parse_job_id

OARSUB_SINGLE = """[ADMISSION RULE] Modify resource description with type constraints
[ADMISSION RULE] Set default walltime to 7200.
OAR_JOB_ID=3381842
"""
OARSUB_ARRAY = """[ADMISSION RULE] Set default walltime to 3600.
[ADMISSION RULE] Modify resource description with type constraints
OAR_JOB_ID=4216
OAR_JOB_ID=4217
OAR_JOB_ID=4218
OAR_ARRAY_ID=4216
"""


def test_oarsub_output_parsing():
    assert parse_oarsub(OARSUB_SINGLE) == (None, ["3381842"])
    assert parse_oarsub(OARSUB_ARRAY) == ("4216", ["4216", "4217", "4218"])
    with pytest.raises(ValueError, match="no OAR_JOB_ID"):
        parse_oarsub("[ADMISSION RULE] Error: walltime too long\n")


def test_sbatch_output_parsing():
    assert parse_job_id("4242\n") == "4242"
    assert parse_job_id("4242;cluster-a\n") == "4242"
    with pytest.raises(ValueError):
        parse_job_id("sbatch: error: Batch job submission failed\n")


def test_walltimes():
    assert _walltime("02:00:00") == "2:00:00"
    assert _walltime("1-02:30:00") == "26:30:00"
    assert _walltime("90") == "0:90:00"
    assert _walltime("1:30") == "1:30:00"


def test_resources_merge_over_scheduler_defaults():
    defaults = {"cpus": 2, "mem": "4G", "extra": ["--qos=normal"], "throttle": 5}
    merged = merge_resources(defaults, {"cpus": 8, "gpus": 1, "extra": ["--exclusive"]})
    assert merged == {"cpus": 8, "mem": "4G", "gpus": 1, "extra": ["--qos=normal", "--exclusive"]}


def test_sbatch_command_line(tmp_path):
    scheduler = SlurmScheduler(throttle=4, signal_seconds=300, sbatch_args=["--account=lab"])
    args = scheduler.sbatch_command(
        tmp_path,
        tmp_path / "job-0.sh",
        0,
        11,
        {
            "cpus": 4,
            "gpus": 2,
            "mem": "16G",
            "time": "01:00:00",
            "partition": "gpu",
            "extra": ["--exclusive"],
        },
        "xprun:xp",
    )
    assert args[0] == "sbatch" and args[-1] == str(tmp_path / "job-0.sh")
    for option in (
        "--array=0-11%4",
        "--signal=B:USR2@300",
        "--requeue",
        "--cpus-per-task=4",
        "--gres=gpu:2",
        "--mem=16G",
        "--time=01:00:00",
        "--partition=gpu",
        "--account=lab",
        "--exclusive",
        "--parsable",
    ):
        assert option in args, option


def test_unknown_scheduler_setting_is_a_usage_error():
    from xprun.errors import UsageError

    with pytest.raises(UsageError, match="throtle"):
        SlurmScheduler(throtle=3)


def make_sweep(project, runs=3, decorators=""):
    project.write(
        "xp_batch.py",
        f"""
        import xprun

        {decorators}
        @xprun.grid(i=list(range({runs})))
        def xp_batch(config):
            return {{"i": config.i}}
        """,
    )
    git_commit_all(project.root)


def fake_oarsub(tmp_path: Path) -> tuple[Path, Path]:
    calls = tmp_path / "oarsub-calls.log"
    fake = tmp_path / "bin" / "oarsub"
    fake.parent.mkdir(exist_ok=True)
    sample = OARSUB_ARRAY.replace("\n", "\\n")
    fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nprintf "{sample}"\n')
    fake.chmod(0o755)
    return fake.parent, calls


def test_oar_submission_script_and_command_line_and_the_script_runs(project, tmp_path):
    project.write(
        "pyproject.toml",
        '[tool.xprun]\nlog_dir = "xprun_logs"\n[tool.xprun.oar]\ncheckpoint_seconds = 300\nproject = "lab"\n',
    )
    make_sweep(project, decorators='@xprun.resources(cpus=4, time="1-00:00:00", partition="prod")')
    bindir, calls = fake_oarsub(tmp_path)
    env = project.with_path(bindir)
    proc = project.run("--scheduler", "oar", env=env)
    assert proc.returncode == 0, proc.output
    assert "3 submitted" in proc.stdout and "4216" in proc.stderr
    (job_dir,) = [p.parent for p in project.log_dir.glob(".xprun-jobs/*/job.json")]
    job = json.loads((job_dir / "job.json").read_text())
    assert job["scheduler"] == "oar" and job["job_ids"] == ["4216", "4217", "4218"]
    (call,) = calls.read_text().splitlines()
    assert call == f"-S {job_dir / 'job.sh'}"
    script = (job_dir / "job.sh").read_text().splitlines()
    assert script[0] == "#!/bin/sh"
    for directive in (
        "#OAR -l /nodes=1/core=4,walltime=24:00:00",
        f"#OAR --array-param-file {job_dir / 'params.txt'}",
        "#OAR -t idempotent",
        "#OAR --checkpoint 300",
        "#OAR -q prod",
        "#OAR --project lab",
    ):
        assert directive in script, directive
    assert (job_dir / "params.txt").read_text() == "0\n1\n2\n"
    assert script[-1].endswith('--index "$1"')

    # The script, run as OAR runs an array task (its parameter line as arguments):
    for index in ("0", "1", "2"):
        task = subprocess.run(
            ["sh", str(job_dir / "job.sh"), index],
            env={**project.env(), **env, "OAR_JOB_ID": "4216"},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert task.returncode == 0, task.stderr
    records = project.records()
    assert sorted(
        json.loads((d / "outcome.json").read_text())["i"] for d in project.run_dirs()
    ) == [0, 1, 2]
    assert {r["scheduler"] for r in records} == {"oar"} and records[0]["job"][
        "OAR_JOB_ID"
    ] == "4216"


def test_a_scheduler_fixture_configures_the_experiments_below_it(project):
    project.write(
        "cluster/conftest.py",
        """
        import xprun
        from xprun.schedulers.pool import LocalScheduler

        @xprun.fixture(scope="session")
        def scheduler():
            return LocalScheduler(workers=1)
        """,
    )
    project.write("cluster/xp_far.py", "def xp_far():\n    return {'where': 'cluster'}\n")
    project.write("xp_near.py", "def xp_near():\n    return {'where': 'here'}\n")
    git_commit_all(project.root)
    result = project.run()
    assert result.returncode == 0, result.output
    schedulers = {r["nodeid"]: r["scheduler"] for r in project.records()}
    assert schedulers == {"cluster/xp_far.py::xp_far": "local", "xp_near.py::xp_near": "inline"}
    forced = project.run("--force", "--scheduler", "inline")
    assert forced.returncode == 0
    assert {r["scheduler"] for r in project.records()} == {"inline"}
