"""Git snapshots: the user's branch, index and stash untouched; policies; atomic extraction."""

from __future__ import annotations

import subprocess
import threading

import pytest
from conftest import git_commit_all

from xprun import snapshot
from xprun.errors import UsageError


def git(root, *args):
    return subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture
def repo(project):
    project.write("model.py", "WIDTH = 1\n")
    project.write("data/big.bin", "committed\n")
    git_commit_all(project.root, "first")
    return project


def take(project, **policies):
    return snapshot.take(
        project.root,
        project.root / ".xprun" / "snapshots",
        [project.log_dir, project.root / ".xprun"],
        policies,
    )


def test_snapshot_captures_changes_and_untracked_files_without_touching_the_repo(repo):
    root = repo.root
    repo.write("model.py", "WIDTH = 2\n")  # unstaged change
    repo.write("staged.py", "X = 1\n")
    git(root, "add", "staged.py")  # a staged new file
    repo.write("new_module.py", "Y = 3\n")  # untracked, not ignored
    repo.write("xprun_logs/junk.txt", "logs are ignored\n")
    before = (
        git(root, "status", "--porcelain"),
        git(root, "rev-parse", "HEAD"),
        git(root, "stash", "list"),
        git(root, "diff", "--cached"),
    )
    snap = take(repo)
    after = (
        git(root, "status", "--porcelain"),
        git(root, "rev-parse", "HEAD"),
        git(root, "stash", "list"),
        git(root, "diff", "--cached"),
    )
    assert before == after  # branch, index, stash and work tree as they were
    assert snap.dirty and snap.base == before[1].strip()
    assert (snap.rootdir / "model.py").read_text() == "WIDTH = 2\n"
    assert (snap.rootdir / "staged.py").read_text() == "X = 1\n"
    assert (snap.rootdir / "new_module.py").read_text() == "Y = 3\n"
    assert not (snap.rootdir / "xprun_logs").exists()
    assert git(root, "cat-file", "-t", snap.commit).strip() == "commit"
    assert git(root, "rev-parse", f"refs/xprun/snapshots/{snap.commit}").strip() == snap.commit
    again = take(repo)
    assert again.commit == snap.commit and again.root == snap.root  # same code, same snapshot


def test_policies(repo):
    repo.write("model.py", "WIDTH = 2\n")
    repo.write("scratch.py", "pass\n")
    with pytest.raises(UsageError, match=r"uncommitted changes.*model\.py"):
        take(repo, dirty="error")
    with pytest.raises(UsageError, match=r"untracked files.*scratch\.py"):
        take(repo, untracked="error")
    ignored = take(repo, dirty="ignore", untracked="ignore")
    assert (ignored.rootdir / "model.py").read_text() == "WIDTH = 1\n"
    assert not (ignored.rootdir / "scratch.py").exists() and not ignored.dirty
    with pytest.raises(UsageError, match="dirty must be one of"):
        take(repo, dirty="maybe")


def test_not_a_repository_is_a_clear_error(project):
    project.write("xp.py", "pass\n")
    with pytest.raises(UsageError, match="not in a Git repository"):
        take(project)


def test_concurrent_extraction_yields_one_complete_snapshot(repo):
    commit = take(repo).commit
    target = repo.root / "other-snapshots"
    results, errors = [], []

    def extract():
        try:
            results.append(snapshot.extract(repo.root, commit, target))
        except Exception as exc:  # pragma: no cover - the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=extract) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(results)) == 1
    assert sorted(p.name for p in target.iterdir()) == [".gitignore", commit]  # no tmp left
    assert (target / commit / "model.py").read_text() == "WIDTH = 1\n"
