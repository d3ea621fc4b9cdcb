"""Issue 13 as a demanding new user tries it: the defects found, each through the CLI."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import Project, git_commit_all

pytestmark = pytest.mark.inprocess  # xprun launched in the test's process (tests/launch.py)

EXPERIMENT = """
import xprun

@xprun.grid(x=[1, 2])
def xp_calc(config):
    return {"y": 3 * config.x}
"""


def test_i13_user_reproduce_in_a_clone_ignores_untracked_files_never_imported(
    project: Project, tmp_path: Path
) -> None:
    """An untracked Python file the run never imported (a scratch script, another
    experiment not launched) is not in the source store, and need not be: a clone
    reproduces the run from its commit, git.patch and the store, and names the file left
    out as a warning, instead of refusing the run."""
    project.write("xp_calc.py", EXPERIMENT)
    git_commit_all(project.root)
    project.write("scratch.py", "raise SystemExit('never imported')\n")
    assert project.run("xp_calc.py", "-q").returncode == 0
    digest = project.run_dirs("xp_calc.xp_calc")[0].name
    git_commit_all(project.root, "more")  # the snapshot is not on any branch a clone gets
    clone = tmp_path / "clone"
    subprocess.run(
        ["git", "clone", "-q", f"file://{project.root}", str(clone)], check=True, timeout=60
    )
    shutil.copytree(project.log_dir, clone / "xprun_logs")
    project.root.rename(tmp_path / "gone")
    result = Project(clone).run("reproduce", "--check", digest)
    assert result.returncode == 0, result.output
    assert "outcome agrees" in result.stdout
    assert "scratch.py" in result.output  # named as left out


def test_i13_user_node_id_with_a_wrong_label_lists_the_experiments_runs(
    project: Project,
) -> None:
    """A node id whose label names no run (``[x=1,y=0]`` for ``[x=1-y=0]``) is exit 4 that
    lists the node ids of that experiment's runs, as the docs promise ("lists the
    candidates"), so the user can copy the right one; nothing is removed."""
    project.write("xp_calc.py", EXPERIMENT.replace("grid(x=[1, 2])", "grid(x=[1, 2], y=[0, 1])"))
    assert project.run("xp_calc.py", "-q").returncode == 0
    for command in ("why", "reproduce", "rm"):
        result = project.run(command, "xp_calc.py::xp_calc[x=1,y=0]")
        assert result.returncode == 4, result.output
        assert "matches the node id 'xp_calc.py::xp_calc[x=1,y=0]'" in result.stderr
        assert "xp_calc.py::xp_calc[x=1-y=0]" in result.stderr
        assert "xp_calc.py::xp_calc[x=2-y=0]" in result.stderr
    assert len(project.run_dirs()) == 4
    other = project.run("why", "xp_other.py::xp_other[x=1]")
    assert other.returncode == 4 and "xp_calc.py::" not in other.stderr
