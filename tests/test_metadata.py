"""What run.json records: identity, times, machine, packages, scheduler job, Git state."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime

import pytest

pytestmark = pytest.mark.inprocess  # xprun launched in the test's process (tests/launch.py)

XP = "import json\n\ndef xp_meta():\n    return {'ok': 1}\n"


def git(cwd, *args):
    subprocess.run(
        ["git", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        env={
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@x",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@x",
            "PATH": "/usr/bin:/bin",
            "HOME": str(cwd),
        },
    )


def head(cwd):
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True
    ).stdout.strip()


def test_record_fields(project):
    project.write("xp_meta.py", XP)
    result = project.run()
    assert result.returncode == 0, result.output
    (record,) = project.records()
    for key in (
        "digest",
        "hash",
        "experiment",
        "nodeid",
        "status",
        "attempt",
        "start",
        "end",
        "duration",
        "host",
        "user",
        "pid",
        "python",
        "platform",
        "argv",
        "cwd",
        "packages",
        "git",
        "format",
    ):
        assert key in record, key
    start, end = datetime.fromisoformat(record["start"]), datetime.fromisoformat(record["end"])
    assert start.utcoffset().total_seconds() == 0 and end >= start
    assert record["duration"] == pytest.approx((end - start).total_seconds(), abs=0.002)
    assert record["packages"]["xprun"] == "0.1.0" and "omegaconf" in record["packages"]
    assert record["git"] == {"available": False, "reason": "not a Git repository"}
    assert record["job"] is None


def test_scheduler_job_ids_are_recorded(project):
    project.write("xp_meta.py", XP)
    env = project.env()
    env.update(SLURM_JOB_ID="4242", SLURM_ARRAY_TASK_ID="7")
    subprocess.run(
        [*__import__("sys").executable.split(), "-m", "xprun"],
        cwd=project.root,
        env=env,
        check=True,
        capture_output=True,
    )
    (record,) = project.records()
    assert record["job"] == {
        "scheduler": "slurm",
        "SLURM_JOB_ID": "4242",
        "SLURM_ARRAY_TASK_ID": "7",
    }


def test_dirty_repository_diff_is_saved_as_a_patch(project):
    project.write("xp_meta.py", XP)
    project.write("model.py", "WIDTH = 1\n")
    git(project.root, "init", "-q", "-b", "main")
    git(project.root, "add", "xp_meta.py", "model.py", "pyproject.toml")
    git(project.root, "commit", "-q", "-m", "first")
    project.write("model.py", "WIDTH = 2\n")
    project.write("notes.txt", "untracked\n")
    result = project.run("--log-dir", "../logs")
    assert result.returncode == 0, result.output
    project.log_dir = project.root.parent / "logs"
    (record,) = project.records()
    assert record["git"]["commit"] == head(project.root)
    assert record["git"]["branch"] == "main" and record["git"]["detached"] is False
    assert record["git"]["dirty"] is True and record["git"]["untracked"] == ["notes.txt"]
    patch = (project.run_dirs()[0] / "git.patch").read_text()
    assert "-WIDTH = 1" in patch and "+WIDTH = 2" in patch
    # The patch applies to the recorded commit: the run's code can be rebuilt from it.
    git(project.root, "stash", "-q")
    check = subprocess.run(
        ["git", "apply", "--check", str(project.run_dirs()[0] / "git.patch")],
        cwd=project.root,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr


def test_detached_head_and_clean_tree(project):
    project.write("xp_meta.py", XP)
    project.write(".gitignore", "xprun_logs/\n")
    git(project.root, "init", "-q", "-b", "main")
    git(project.root, "add", ".")
    git(project.root, "commit", "-q", "-m", "first")
    git(project.root, "checkout", "-q", "--detach")
    assert project.run().returncode == 0
    (record,) = project.records()
    assert record["git"]["detached"] is True and record["git"]["branch"] is None
    assert record["git"]["dirty"] is False and "patch" not in record["git"]
    assert not (project.run_dirs()[0] / "git.patch").exists()


def test_repository_without_commits_is_recorded_not_fatal(project):
    project.write("xp_meta.py", XP)
    git(project.root, "init", "-q", "-b", "main")
    result = project.run()
    assert result.returncode == 0, result.output
    (record,) = project.records()
    assert record["git"]["available"] is True and record["git"]["commit"] is None
    assert "no commits" in record["git"]["reason"]
    assert json.loads((project.run_dirs()[0] / "outcome.json").read_text()) == {"ok": 1}


def test_log_folder_inside_the_repository_does_not_make_the_tree_dirty(project):
    project.write("xp_meta.py", XP)
    git(project.root, "init", "-q", "-b", "main")
    git(project.root, "add", ".")
    git(project.root, "commit", "-q", "-m", "first")
    assert project.run().returncode == 0
    assert project.run("--force").returncode == 0  # the log folder exists now
    (record,) = project.records()
    assert record["git"]["dirty"] is False and record["git"]["untracked"] == []


# The on-disk map is written by a launch whose process has none in memory yet
# (metadata._DISTRIBUTIONS): in a process that launched before, it would not be.
@pytest.mark.inprocess(False)
def test_i12_14_packages_are_recorded_by_distribution_name(project, tmp_path):
    """run.json's ``packages`` names what ``pip install`` takes (GitPython, PyYAML), not the
    import names (git, yaml); the import→distribution map is cached on disk, and a cached
    map gives the same record."""
    project.write(
        "xp_pkgs.py",
        "import git\nimport yaml\n\ndef xp_pkgs(seed):\n    return {'seed': seed}\n",
    )
    cache = tmp_path / "cache"
    env = {"XDG_CACHE_HOME": str(cache)}
    assert project.run("seed=0", env=env).returncode == 0
    cached = list((cache / "xprun").glob("distributions-*.json"))  # written by the first run
    assert project.run("seed=1", env=env).returncode == 0  # this one reads the cache
    first, second = sorted(project.records(), key=lambda r: r["nodeid"])
    for record in (first, second):
        packages = record["packages"]
        assert "GitPython" in packages and "PyYAML" in packages, packages
        assert "git" not in packages and "yaml" not in packages, packages
        assert packages["xprun"] == "0.1.0"
    assert first["packages"] == second["packages"]
    assert cached


def test_i11_the_distributions_cache_keeps_a_bounded_number_of_files(tmp_path, monkeypatch):
    """Each installed set makes a new cache file; the folder must not grow with every
    environment ever seen (a machine had 3,000 of them): the newest CACHE_KEEP stay."""
    import os

    from xprun import metadata

    folder = tmp_path / "xprun"
    folder.mkdir()
    old = []
    for i in range(metadata.CACHE_KEEP + 5):
        path = folder / f"distributions-old{i:02d}.json"
        path.write_text("{}")
        os.utime(path, ns=(i * 10**9, i * 10**9))  # written in this order
        old.append(path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(metadata, "_DISTRIBUTIONS", None)
    found = metadata.import_distributions()
    assert "yaml" in found  # built, not read from a stale file
    left = sorted(p.name for p in folder.glob("distributions-*.json"))
    assert len(left) == metadata.CACHE_KEEP + 1
    assert set(left) >= {p.name for p in old[-metadata.CACHE_KEEP :]}  # the newest kept
    assert not any(p.exists() for p in old[:5])  # the oldest removed


def test_git_state_outside_a_repository_does_not_import_gitpython(tmp_path, monkeypatch):
    """Outside a repository the answer comes from a look for ``.git``, without GitPython
    (its import cost every launch ~0.15 s of CPU): with GitPython made unimportable the
    record still says "not a Git repository", not "GitPython or git is not installed"."""
    from xprun import metadata

    monkeypatch.setitem(sys.modules, "git", None)  # `import git` now fails
    folder = tmp_path / "plain" / "sub"
    folder.mkdir(parents=True)
    assert metadata.git_state(folder) == (
        {"available": False, "reason": "not a Git repository"},
        None,
    )
    # Wherever a repository may be, git is asked (GitPython never is, issue 11): here it says
    # the .git file names none, and without git on the PATH the record says so.
    (tmp_path / "plain" / ".git").write_text("gitdir: elsewhere\n")  # a worktree's .git file
    assert metadata.git_state(folder)[0]["reason"] == "not a Git repository"
    bare = tmp_path / "bare.git"
    (bare / "objects").mkdir(parents=True)
    (bare / "refs").mkdir()
    (bare / "HEAD").write_text("ref: refs/heads/main\n")
    monkeypatch.setenv("PATH", str(tmp_path / "no-git-here"))
    missing = ({"available": False, "reason": "git is not installed"}, None)
    assert metadata.git_state(bare) == missing
    assert metadata.git_state(tmp_path / "elsewhere") == (
        {"available": False, "reason": "not a Git repository"},
        None,
    )


def test_git_state_in_a_subfolder_of_a_repository_finds_it(tmp_path):
    from xprun import metadata

    git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "f.txt").write_text("x\n")
    git(tmp_path, "add", "f.txt")
    git(tmp_path, "commit", "-q", "-m", "one")
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    fields, patch = metadata.git_state(sub)
    assert fields["available"] is True and fields["branch"] == "main"
    assert len(fields["commit"]) == 40 and patch is None
