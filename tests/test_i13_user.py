"""Issue 13 as a demanding new user tries it: the defects found, each through the CLI."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from conftest import Project, git_commit_all

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
