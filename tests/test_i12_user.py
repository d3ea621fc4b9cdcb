"""Issue 12 as a demanding new user tries it: its features combined (a file and a node id
of it, ...), each defect found pinned through the real command line."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Project, git_commit_all

pytestmark = pytest.mark.inprocess  # xprun launched in the test's process (tests/launch.py)

SWEEP = """
import xprun

@xprun.config({"lr": 0.1, "opt": "sgd"})
@xprun.grid(lr=[0.1, 1.0], opt=["sgd", "adam"])
def xp_train(config):
    return {"loss": config.lr}
"""

MAIN = """
if __name__ == "__main__":
    raise SystemExit(xprun.main())
"""


def test_i12_user_file_and_node_id_of_it(project: Project) -> None:
    """``xprun xp_train.py "xp_train.py::xp_train[...]"`` (a file and a run of it, as pytest
    takes ``test_a.py test_a.py::test_x``) collects the file: the node id names a run of it,
    so it is not "not found"; a node id that names no run still is."""
    project.write("xp_train.py", SWEEP)
    nodeid = "xp_train.py::xp_train[lr=0.1-opt=sgd]"
    both = project.run("xp_train.py", nodeid, "--collect-only")
    assert both.returncode == 0, both.output
    assert both.stdout.count("xp_train.py::xp_train[") == 4, both.output
    by_hash = project.run(
        "xp_train.py", re.findall(r"\b[0-9a-f]{32}\b", both.stdout)[0][:8], "--collect-only"
    )
    assert by_hash.returncode == 0, by_hash.output
    wrong = project.run("xp_train.py", "xp_train.py::xp_train[lr=0.5-opt=sgd]", "--co")
    assert wrong.returncode == 4 and "not found: xp_train.py::xp_train[lr=0.5" in wrong.stderr


def script(project: Project, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python xp_train.py ARGS`` (the file calls ``xprun.main()``), from ``cwd``."""
    return subprocess.run(
        [sys.executable, str(project.root / "xp_train.py"), *args],
        cwd=cwd,
        env=project.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_i12_user_script_with_a_hash_or_a_node_id(project: Project) -> None:
    """An IDE's "run this file" with a run's hash (copied from ``xprun show``) or its node id
    (as run.json records it, relative to the rootdir, from a subfolder) runs that run only,
    as ``xprun HASH`` does: the words name what to run, so the script's whole file is not
    added to them."""
    project.write("xp_train.py", SWEEP + MAIN)
    (project.root / "sub").mkdir()
    listing = project.run("--collect-only")
    hashes = dict(re.findall(r"\b([0-9a-f]{32})  (\S+)", listing.stdout))
    first, nodeid = next(iter(hashes.items()))
    by_hash = script(project, first[:8], "--collect-only", cwd=project.root)
    assert by_hash.returncode == 0, by_hash.stdout + by_hash.stderr
    assert re.findall(r"\b[0-9a-f]{32}\b", by_hash.stdout) == [first], by_hash.stdout
    by_id = script(project, nodeid, "--collect-only", cwd=project.root / "sub")
    assert by_id.returncode == 0, by_id.stdout + by_id.stderr
    assert re.findall(r"\b[0-9a-f]{32}\b", by_id.stdout) == [first], by_id.stdout
    whole = script(project, "--collect-only", cwd=project.root / "sub")
    assert len(re.findall(r"\b[0-9a-f]{32}\b", whole.stdout)) == 4, whole.stdout


def test_i12_user_one_run_collected(project: Project) -> None:
    """``--collect-only`` of one run says "1 run collected", as pytest's "1 test collected"."""
    project.write("xp_train.py", SWEEP)
    one = project.run("xp_train.py::xp_train[lr=0.1-opt=sgd]", "--collect-only")
    assert "1 run collected in" in one.stdout, one.output
    picked = project.run("-k", "lr=0.1 and sgd", "--collect-only")
    assert "1/4 runs collected (3 deselected)" in picked.stdout, picked.output


def test_i12_user_markdown_missing_integer_is_blank(project: Project) -> None:
    """In ``xprun show -f markdown`` a run without an integer key has an empty cell, as a run
    without a float key has, not pandas' ``<NA>`` (integers are nullable Int64 since issue
    12 item 16)."""
    project.write(
        "xp_two.py",
        """
        import xprun

        @xprun.config({"epochs": 3})
        def xp_int(config):
            return 1

        @xprun.config({"lr": 0.5})
        def xp_float(config):
            return 2
        """,
    )
    assert project.run().returncode == 0
    table = project.run("show", "-f", "markdown", str(project.log_dir))
    assert table.returncode == 0, table.output
    assert "| 3 |" in table.stdout and "| 0.5 |" in table.stdout, table.stdout
    assert "<NA>" not in table.stdout and "nan" not in table.stdout.lower(), table.stdout


def test_i12_user_completion_reads_the_file_given_first(project: Project) -> None:
    """``xprun xp_b.py lr=<Tab>`` offers the values of xp_b.py's runs, not of every file
    below: the first word after ``xprun`` is a path given, as the later ones are."""
    project.write("xp_train.py", SWEEP)
    project.write("xp_b.py", SWEEP.replace("xp_train", "xp_b").replace("1.0]", "0.5]"))
    line = "xprun xp_b.py lr="
    args = ("completion", "--complete", f"--line={line}", "--point=-1", "--current=lr=", "--")
    done = project.run(*args, "xprun", "xp_b.py")
    assert done.returncode == 0, done.output
    assert done.stdout.split() == ["lr=0.1", "lr=0.5"], done.output


def _slurm_up() -> bool:
    if not shutil.which("sbatch"):
        return False
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=30)
    return "UP" in ping.stdout


def test_i12_user_slurm_wait_progress_and_traceback(project: Project) -> None:
    """``--scheduler slurm --wait`` reports each run submitted, then how it ended: the
    percentage counts each run once (it said [200%]), and a failed run shows its traceback
    (from its ``error.txt``, as an inline run shows it), not only its last line."""
    if not _slurm_up():
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but no SLURM cluster answers: .ci/run must start it")
        pytest.skip("no SLURM cluster here (source /tmp/xprun-slurm/slurm.env)")
    project.write(
        "xp_fail.py",
        """
        import xprun

        def diverge(lr):
            raise ValueError(f"lr={lr} diverges")

        @xprun.grid(lr=[0.1, 10.0])
        def xp_fail(config):
            if config.lr > 1:
                diverge(config.lr)
            return config.lr
        """,
    )
    git_commit_all(project.root)
    result = project.run("--scheduler", "slurm", "--wait", "-v", timeout=300)
    assert result.returncode == 1, result.output
    percents = [int(p) for p in re.findall(r"\[\s*(\d+)%\]", result.stdout)]
    assert percents and max(percents) == 100, result.stdout
    assert "in diverge" in result.stdout, result.stdout  # the traceback's frames
    assert "FAILED xp_fail.py::xp_fail[lr=10.0] - ValueError: lr=10.0 diverges" in result.stdout


def test_i12_user_override_replaces_a_grid_only_axis(project: Project) -> None:
    """``xprun xp_s.py i=3`` on ``@xprun.grid(i=[...])`` without a config holding ``i``
    replaces the grid's axis, as the guide says of any override of a swept key (it said
    "Could not override 'i' ... use +i=3"); the run is the grid's own ``i=3`` run."""
    project.write(
        "xp_s.py",
        """
        import xprun

        @xprun.grid(i=[1, 2, 3], j=[0, 1])
        def xp_s(config):
            return config.i
        """,
    )
    grid = project.run("--collect-only")
    hashes = dict(re.findall(r"\b([0-9a-f]{32})  (\S+)", grid.stdout))
    wanted = {h for h, nodeid in hashes.items() if "i=3" in nodeid}
    replaced = project.run("i=3", "--collect-only")
    assert replaced.returncode == 0, replaced.output
    assert set(re.findall(r"\b[0-9a-f]{32}\b", replaced.stdout)) == wanted, replaced.output
    swept = project.run("i=3,4", "--collect-only")
    assert swept.returncode == 0 and "xp_s.py::xp_s[j=0-i=4]" in swept.stdout, swept.output


def test_i12_user_snapshot_folder_does_not_make_the_repo_dirty(project: Project) -> None:
    """A clean repository is recorded clean after ``-n 2`` ran from a snapshot: the
    ``.xprun/`` folder xprun made for it is not an untracked file of the user's."""
    project.write(
        "xp_c.py", "import xprun\n\n@xprun.grid(i=[1, 2])\ndef xp_c(config):\n    return 1\n"
    )
    git_commit_all(project.root)
    (project.root / ".gitignore").write_text("xprun_logs/\n__pycache__/\n")  # not .xprun/
    git_commit_all(project.root)
    result = project.run("-n", "2")
    assert result.returncode == 0, result.output
    assert (project.root / ".xprun").is_dir()
    for record in project.records():
        assert record["git"]["untracked"] == [] and record["git"]["dirty"] is False, record["git"]
    # and git status stays clean, as pytest's cache folder keeps it (a .gitignore in it)
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=project.root, capture_output=True, text=True
    )
    assert status.returncode == 0 and status.stdout == "", status.stdout
