"""Issue 8, snapshots: runs execute the code as snapshotted, the whole of it, and only it.

Real Git repositories (ignored files, a submodule, a file named like a pathspec, a symlink
leading out of the repository) driven through the real CLI.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import git_commit_all

pytestmark = pytest.mark.inprocess  # xprun launched in the test's process (tests/launch.py)

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@x",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@x",
}


def git(root: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ENV, "HOME": str(root)}
    return subprocess.run(
        ["git", "-c", "protocol.file.allow=always", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def outcome(run_dir: Path) -> dict:
    return json.loads((run_dir / "outcome.json").read_text())


def snapshot_of(project, record: dict) -> Path:
    return project.root / ".xprun" / "snapshots" / record["git"]["snapshot"]


def test_i8_05_snapshot_option_runs_inline_from_a_snapshot(project):
    project.write("helper.py", "VALUE = 'committed'\n")
    project.write(
        "xp_inline.py",
        "import helper\n\ndef xp_inline():\n"
        "    return {'value': helper.VALUE, 'file': helper.__file__}\n",
    )
    git_commit_all(project.root)
    project.write("helper.py", "VALUE = 'edited'\n")
    result = project.run("--snapshot")
    assert result.returncode == 0, result.output
    (record,) = project.records()
    assert record["status"] == "complete" and record["scheduler"] == "inline"
    assert record["git"].get("snapshot"), record["git"]
    assert record["git"]["snapshot_dirty"] is True
    snapshot = snapshot_of(project, record)
    assert (snapshot / "helper.py").read_text() == "VALUE = 'edited'\n"
    (run_dir,) = project.run_dirs()
    result = outcome(run_dir)
    assert result["value"] == "edited"
    assert Path(result["file"]).resolve() == (snapshot / "helper.py").resolve()


IMPORTS_LOCAL = """
import local_helper

def xp_local():
    return {"value": local_helper.VALUE, "file": local_helper.__file__}
"""


def _ignored_helper(project) -> None:
    project.write("xp_local.py", IMPORTS_LOCAL)
    git_commit_all(project.root)
    with (project.root / ".gitignore").open("a") as f:
        f.write("local_helper.py\n")
    project.write("local_helper.py", "VALUE = 'ignored by git'\n")


def test_i8_16_ignored_module_stops_the_launch_unless_included(project):
    _ignored_helper(project)
    result = project.run("-n", "2", "--snapshot")
    assert result.returncode == 4, result.output
    assert "local_helper.py" in result.stderr and "ignored by Git" in result.stderr
    assert "snapshot_include" in result.stderr
    assert project.records() == []  # nothing ran from the live work tree

    project.write(
        "pyproject.toml",
        '[tool.xprun]\nlog_dir = "xprun_logs"\nsnapshot_include = ["local_helper.py"]\n',
    )
    result = project.run("-n", "2", "--snapshot")
    assert result.returncode == 0, result.output
    (record,) = project.records()
    snapshot = snapshot_of(project, record)
    (run_dir,) = project.run_dirs()
    assert outcome(run_dir)["value"] == "ignored by git"
    assert Path(outcome(run_dir)["file"]).resolve() == (snapshot / "local_helper.py").resolve()
    assert record["git"]["snapshot_dirty"] is True


def test_i8_16_workers_never_import_from_the_work_tree(project):
    # Imported only when the run executes, so the launcher cannot see it: the worker,
    # started in the work tree, must still not find it there.
    project.write(
        "xp_lazy.py",
        "def xp_lazy():\n    import local_helper\n\n    return {'value': local_helper.VALUE}\n",
    )
    git_commit_all(project.root)
    with (project.root / ".gitignore").open("a") as f:
        f.write("local_helper.py\n")
    project.write("local_helper.py", "VALUE = 'ignored by git'\n")
    result = project.run("-n", "2", "--snapshot")
    assert result.returncode == 1, result.output
    (record,) = project.records()
    assert record["status"] == "failed"
    assert "local_helper" in record["error"]["message"], record["error"]
    assert record["error"]["type"] == "ModuleNotFoundError"


def test_i8_16_submodule_contents_are_left_out_unless_asked_for(project, tmp_path):
    lib = tmp_path / "vlib-repo"
    lib.mkdir()
    (lib / "vlib.py").write_text("VALUE = 'from the submodule'\n")
    git(lib, "init", "-q", "-b", "main")
    git(lib, "add", "-A")
    git(lib, "commit", "-q", "-m", "lib")
    project.write(
        "xp_sub.py",
        "from vendor import vlib\n\ndef xp_sub():\n"
        "    return {'value': vlib.VALUE, 'file': vlib.__file__}\n",
    )
    git_commit_all(project.root)
    git(project.root, "submodule", "add", "-q", str(lib), "vendor")
    git(project.root, "commit", "-q", "-m", "submodule")
    (project.root / "vendor" / "vlib.py").write_text("VALUE = 'edited in the submodule'\n")

    result = project.run("-n", "2", "--snapshot")
    assert result.returncode == 4, result.output
    assert "vendor/vlib.py" in result.stderr and "snapshot_submodules" in result.stderr
    assert project.records() == []

    project.write(
        "pyproject.toml",
        '[tool.xprun]\nlog_dir = "xprun_logs"\nsnapshot_submodules = true\n',
    )
    before = git(project.root, "status", "--porcelain"), git(project.root, "-C", "vendor", "status")
    result = project.run("-n", "2", "--snapshot")
    assert result.returncode == 0, result.output
    (record,) = project.records()
    snapshot = snapshot_of(project, record)
    (run_dir,) = project.run_dirs()
    assert outcome(run_dir)["value"] == "edited in the submodule"
    assert Path(outcome(run_dir)["file"]).resolve() == (snapshot / "vendor/vlib.py").resolve()
    after = git(project.root, "status", "--porcelain"), git(project.root, "-C", "vendor", "status")
    assert after == before  # neither repository touched


def test_i8_16_file_names_are_never_pathspecs(project):
    project.write("helper.py", "VALUE = 'committed'\n")
    project.write(
        "xp_names.py", "import helper\n\ndef xp_names():\n    return {'value': helper.VALUE}\n"
    )
    git_commit_all(project.root)
    project.write("helper.py", "VALUE = 'edited'\n")
    project.write(":(exclude)helper.py", "an untracked file with a strange name\n")
    result = project.run("-n", "2", "--snapshot")
    assert result.returncode == 0, result.output
    (record,) = project.records()
    assert record["git"]["snapshot_dirty"] is True
    (run_dir,) = project.run_dirs()
    assert outcome(run_dir) == {"value": "edited"}
    snapshot = snapshot_of(project, record)
    assert (snapshot / ":(exclude)helper.py").is_file()


def test_i8_16_symlinks_leading_out_of_the_repository(project, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "value.txt").write_text("outside\n")
    project.write(
        "xp_links.py",
        "from pathlib import Path\n\ndef xp_links():\n"
        "    here = Path(__file__).parent\n"
        "    return {'absolute': (here / 'data' / 'value.txt').read_text(),\n"
        "            'relative': (here / 'rel' / 'value.txt').read_text()}\n",
    )
    os.symlink(shared, project.root / "data")  # absolute target
    os.symlink("../shared", project.root / "rel")  # relative, leaving the repository
    git_commit_all(project.root)
    result = project.run("-n", "2", "--snapshot")
    assert result.returncode == 0, result.output
    assert "INTERNAL ERROR" not in result.output
    (run_dir,) = project.run_dirs()
    assert outcome(run_dir) == {"absolute": "outside\n", "relative": "outside\n"}
    (record,) = project.records()
    snapshot = snapshot_of(project, record)
    assert (snapshot / "data").is_symlink() and (snapshot / "rel").is_symlink()
