"""Issue 11, target 5: the launcher's path to its first pool run, kept as true as before.

- the work tree's Git state is read with plain ``git`` calls instead of GitPython (whose
  import cost every launch ~0.15 s of CPU): the fields and the patch must be those the
  GitPython implementation gave, on every kind of repository a project lives in, checked
  here against a copy of that implementation (``_gitpython_state``);
- the pool's launcher reads that state and gathers its provenance session's package list in
  threads while it takes the snapshot: the records are the same, and a launcher killed
  (SIGKILL) at any point leaves no spec and no run naming a session file that is not there.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from xprun import metadata

_IDENTITY = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@x",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@x",
}


def git(root: Path, *args: str, check: bool = True) -> str:
    proc = subprocess.run(
        ["git", "-c", "protocol.file.allow=always", *args],
        cwd=root,
        env={**os.environ, **_IDENTITY},
        capture_output=True,
        text=True,
    )
    if check and proc.returncode:
        raise AssertionError(f"git {' '.join(args)}: {proc.stderr}")
    return proc.stdout


def repo(root: Path, files: dict[str, str | bytes], ignore: str = "xprun_logs/\n") -> Path:
    """A repository at ``root`` with ``files`` committed on ``main``."""
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    (root / ".gitignore").write_text(ignore)
    for name, data in files.items():
        write(root / name, data)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "start")
    return root


def write(path: Path, data: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data)


# -- the implementation replaced (xprun/metadata.py before issue 11's launch-path work) -------


def _gitpython_untracked(repo: Any, exclude: list[Path]) -> list[str]:
    root = Path(repo.working_tree_dir)
    specs = ["."]
    for path in exclude:
        try:
            specs.append(f":(exclude){path.resolve().relative_to(root.resolve()).as_posix()}")
        except ValueError:
            continue
    out = repo.git.ls_files(
        "--others", "--exclude-standard", "--directory", "--no-empty-directory", "--", *specs
    )
    return [line for line in out.splitlines() if line]


def _gitpython_state(path: Path, exclude: list[Path]) -> tuple[dict[str, Any], str | None]:
    import git

    try:
        repo = git.Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return {"available": False, "reason": "not a Git repository"}, None
    fields: dict[str, Any] = {"available": True, "root": repo.working_tree_dir}
    patch: str | None = None
    try:
        fields["commit"] = repo.head.commit.hexsha
    except ValueError:
        fields["commit"] = None
        fields["reason"] = "the repository has no commits yet"
    try:
        fields["branch"] = repo.active_branch.name
        fields["detached"] = False
    except TypeError:
        fields["branch"] = None
        fields["detached"] = True
    try:
        fields["untracked"] = _gitpython_untracked(repo, exclude)
        if fields["commit"] is not None:
            patch = repo.git.diff("HEAD", binary=True) or None
        fields["dirty"] = bool(patch) or bool(fields["untracked"])
    except Exception as exc:
        fields["dirty"] = None
        fields["error"] = str(exc).strip().splitlines()[-1] if str(exc).strip() else repr(exc)
    if patch and not patch.endswith("\n"):
        patch += "\n"
    return fields, patch


def assert_same_state(rootdir: Path) -> tuple[dict[str, Any], str | None]:
    """Both implementations give the same fields and patch for the project at ``rootdir``
    (its log and snapshot folders left out, as the session does); returns the state."""
    exclude = [rootdir / "xprun_logs", rootdir / ".xprun" / "snapshots"]
    new = metadata.git_state(rootdir, exclude)
    old = _gitpython_state(rootdir, exclude)
    assert new == old
    assert json.dumps(new[0]) == json.dumps(old[0])  # the same keys in the same order
    return new


# -- the Git state, identical ------------------------------------------------------------


def test_i11_launch_path_git_state_of_a_clean_repository(tmp_path):
    root = repo(tmp_path / "p", {"xp_a.py": "x = 1\n", "pkg/m.py": "y = 2\n"})
    fields, patch = assert_same_state(root)
    assert fields["dirty"] is False and fields["untracked"] == [] and patch is None
    assert fields["commit"] == git(root, "rev-parse", "HEAD").strip()
    assert fields["branch"] == "main" and fields["root"] == str(root.resolve())


def test_i11_launch_path_git_state_of_a_dirty_repository(tmp_path):
    """Modified, staged, deleted, binary and non-UTF-8 files, no final newline, untracked
    files and folders with names git quotes, a log folder that is not ignored (left out)."""
    root = repo(
        tmp_path / "p",
        {
            "xp_a.py": "x = 1\n",
            "gone.py": "z = 0\n",
            "staged.py": "s = 0\n",
            "latin.txt": "caf\xe9\n".encode("latin-1"),
            "blob.bin": bytes(range(256)),
            "crlf.txt": b"a\r\nb\r\n",
        },
        ignore="",
    )
    write(root / "xp_a.py", "x = 2")  # no final newline
    (root / "gone.py").unlink()
    write(root / "staged.py", "s = 1\n")
    git(root, "add", "staged.py")
    write(root / "latin.txt", "th\xe9\n".encode("latin-1"))
    write(root / "blob.bin", bytes(range(255, -1, -1)))
    write(root / "crlf.txt", b"a\r\nc\r\n")
    write(root / "notes.txt", "n\n")
    write(root / "new/deep/f.py", "f = 1\n")
    write(root / 'caf\xe9 "q".py', "q = 1\n")
    write(root / "tab\tname.txt", "t\n")
    write(root / "xprun_logs/xp_a/0123/run.json", "{}")  # the log folder, not ignored
    (root / ".xprun" / "snapshots").mkdir(parents=True)
    write(root / ".xprun/snapshots/abc/x.py", "x\n")
    fields, patch = assert_same_state(root)
    assert fields["dirty"] is True and patch is not None and "GIT binary patch" in patch
    assert "new/" in fields["untracked"] and "notes.txt" in fields["untracked"]
    assert not any(u.startswith(("xprun_logs", ".xprun")) for u in fields["untracked"])
    assert '"caf\\303\\251 \\"q\\".py"' in fields["untracked"]  # quoted as git quotes it


def test_i11_launch_path_git_state_of_changes_git_diff_does_not_show(tmp_path):
    """A change staged then undone in the work tree (the index differs, the files do not),
    and a file only touched: ``git status`` sees the first, ``git diff HEAD`` neither; the
    patch is None and the tree clean, as before."""
    root = repo(tmp_path / "p", {"a.py": "a = 1\n", "b.py": "b = 1\n"})
    write(root / "a.py", "a = 2\n")
    git(root, "add", "a.py")
    write(root / "a.py", "a = 1\n")
    os.utime(root / "b.py", (1, 1))
    fields, patch = assert_same_state(root)
    assert fields["dirty"] is False and patch is None


def test_i11_launch_path_git_state_detached_and_branch_with_slash(tmp_path):
    root = repo(tmp_path / "p", {"a.py": "a = 1\n"})
    git(root, "checkout", "-q", "-b", "feature/deep/x")
    fields, _ = assert_same_state(root)
    assert fields["branch"] == "feature/deep/x"
    git(root, "checkout", "-q", "--detach")
    write(root / "a.py", "a = 2\n")
    fields, patch = assert_same_state(root)
    assert fields["detached"] is True and fields["branch"] is None and patch


def test_i11_launch_path_git_state_of_an_unborn_branch(tmp_path):
    """No commit yet: no commit, the branch named, staged files not dirty (no patch without
    a commit), untracked ones dirty."""
    root = tmp_path / "p"
    root.mkdir()
    git(root, "init", "-q", "-b", "trunk")
    write(root / "staged.py", "s = 1\n")
    git(root, "add", "staged.py")
    fields, patch = assert_same_state(root)
    assert fields["commit"] is None and fields["branch"] == "trunk" and patch is None
    assert fields["dirty"] is False and "no commits" in fields["reason"]
    write(root / "loose.py", "l = 1\n")
    fields, _ = assert_same_state(root)
    assert fields["dirty"] is True and fields["untracked"] == ["loose.py"]


def test_i11_launch_path_git_state_untracked_only_and_an_empty_folder(tmp_path):
    root = repo(tmp_path / "p", {"a.py": "a = 1\n"})
    (root / "empty" / "inner").mkdir(parents=True)  # empty folders: not listed
    write(root / "data/only.csv", "1\n")
    (root / "ignored").mkdir()
    write(root / "ignored/x.pyc", "")
    write(root / ".gitignore", "xprun_logs/\n*.pyc\n")
    git(root, "commit", "-qam", "ignore pyc")
    fields, patch = assert_same_state(root)
    assert fields["untracked"] == ["data/"] and fields["dirty"] is True and patch is None


def test_i11_launch_path_git_state_in_a_subfolder_and_a_linked_work_tree(tmp_path):
    """The project is a folder of the repository (its log folder inside it), and then a
    linked work tree (``git worktree add``: a ``.git`` file) of that repository."""
    root = repo(tmp_path / "p", {"proj/xp_a.py": "a = 1\n", "other/b.py": "b = 1\n"})
    project = root / "proj"
    write(project / "xprun_logs/xp_a/0/run.json", "{}")  # not ignored: under the project
    write(root / "other/new.py", "n\n")
    write(project / "xp_a.py", "a = 2\n")
    fields, patch = assert_same_state(project)
    assert fields["root"] == str(root.resolve()) and fields["untracked"] == ["other/new.py"]
    git(root, "worktree", "add", "-q", str(tmp_path / "wt"), "-b", "side")
    write(tmp_path / "wt/proj/xp_a.py", "a = 3\n")
    fields, patch = assert_same_state(tmp_path / "wt" / "proj")
    assert fields["root"] == str((tmp_path / "wt").resolve()) and fields["branch"] == "side"
    assert patch and "+a = 3" in patch


def test_i11_launch_path_git_state_with_submodules(tmp_path):
    """A superproject whose submodule moved, is dirty or has untracked files (whatever
    ``diff.ignoreSubmodules`` says), and a project that is itself the submodule."""
    sub = repo(tmp_path / "sub", {"lib.py": "v = 1\n"})
    root = repo(tmp_path / "super", {"xp_a.py": "a = 1\n"})
    git(root, "submodule", "add", "-q", str(sub), "vendor/lib")
    git(root, "commit", "-qm", "submodule")
    fields, patch = assert_same_state(root)
    assert fields["dirty"] is False and patch is None
    inner = root / "vendor" / "lib"
    write(inner / "scratch.txt", "s\n")  # untracked inside the submodule
    assert_same_state(root)
    write(inner / "lib.py", "v = 2\n")  # modified inside it
    fields, patch = assert_same_state(root)
    assert patch and "-dirty" in patch
    git(root, "config", "diff.ignoreSubmodules", "all")
    fields, patch = assert_same_state(root)
    assert patch is None  # git diff HEAD hides it: so was it recorded before
    git(root, "config", "--unset", "diff.ignoreSubmodules")
    git(inner, "commit", "-qam", "moved")  # a new commit in the submodule
    fields, patch = assert_same_state(root)
    assert patch and "Subproject commit" in patch
    fields, _ = assert_same_state(inner)  # the project is the submodule
    assert fields["root"] == str(inner.resolve()) and fields["untracked"] == ["scratch.txt"]


def test_i11_launch_path_git_state_outside_a_repository_and_broken_ones(tmp_path):
    """Outside any repository, under a ``.git`` file naming nothing, and under an empty
    ``.git`` folder (skipped: the repository above counts): the same answers; a corrupt
    index is recorded with the commit and branch, ``dirty`` unknown and git's error."""
    plain = tmp_path / "plain" / "sub"
    plain.mkdir(parents=True)
    assert assert_same_state(plain) == (
        {"available": False, "reason": "not a Git repository"},
        None,
    )
    write(tmp_path / "plain" / ".git", "gitdir: elsewhere\n")
    # Not compared with the GitPython implementation here: the oldest GitPython this project
    # allows opens such a repository and then fails on its HEAD (ValueError), the newest
    # refuses to open it; git itself says it is no repository.
    assert metadata.git_state(plain, [])[0]["available"] is False
    root = repo(tmp_path / "p", {"proj/a.py": "a = 1\n"})
    (root / "proj" / ".git").mkdir()
    fields, _ = assert_same_state(root / "proj")
    assert fields["root"] == str(root.resolve())
    (root / ".git" / "index").write_bytes(b"DIRC\0\0\0\2garbage")
    exclude = [root / "xprun_logs"]
    new, old = metadata.git_state(root, exclude), _gitpython_state(root, exclude)
    assert new[0].pop("error") and old[0].pop("error")  # git's message, worded apiece
    assert new == old and new[0]["dirty"] is None and new[0]["commit"]


def test_i11_launch_path_a_launch_reads_git_without_gitpython(project):
    """An inline run in a dirty repository records its Git state and patch, and no
    ``GitPython`` among its packages: the experiment does not import it, and xprun no longer
    does (its packages are the run's own)."""
    from conftest import git_commit_all

    project.write("xp_a.py", "def xp_a(seed):\n    return {'seed': seed}\n")
    git_commit_all(project.root)
    project.write("xp_a.py", "def xp_a(seed):\n    return {'seed': seed + 1}\n")
    result = project.run("seed=1")
    assert result.returncode == 0, result.output
    (record,) = project.records()
    assert record["git"]["dirty"] is True and record["git"]["patch"] == "git.patch"
    assert record["git"]["commit"] == git(project.root, "rev-parse", "HEAD").strip()
    patch = (project.run_dirs()[0] / "git.patch").read_text()
    assert patch == git(project.root, "diff", "--binary", "HEAD")
    assert "GitPython" not in record["packages"] and "xprun" in record["packages"]


def test_i11_launch_path_the_pool_records_the_same_git_state_as_inline(project):
    """The pool's launcher reads the Git state in a thread while it takes the snapshot: its
    runs record what an inline launch of the same dirty tree records, and the same patch."""
    from conftest import git_commit_all

    project.write("xp_a.py", "def xp_a(seed):\n    return {'seed': seed}\n")
    git_commit_all(project.root)
    project.write("xp_a.py", "def xp_a(seed):\n    return {'seed': -seed}\n")
    project.write("notes/todo.txt", "x\n")
    assert project.run("seed=1").returncode == 0
    result = project.run("-n", "2", "seed=2,3")
    assert result.returncode == 0, result.output
    inline, *pooled = sorted(project.records(), key=lambda r: r["scheduler"] != "inline")
    assert inline["scheduler"] == "inline" and {r["scheduler"] for r in pooled} == {"local"}
    patches = {(d / "git.patch").read_text() for d in project.run_dirs()}
    assert len(patches) == 1 and "-seed" in patches.pop()
    for record in pooled:
        assert record["git"]["snapshot"]  # the pool's runs name the snapshot they imported
        same = {k: v for k, v in record["git"].items() if not k.startswith("snapshot")}
        assert same == inline["git"] and inline["git"]["untracked"] == ["notes/"]


def test_i11_launch_path_a_killed_launcher_leaves_nothing_naming_a_missing_session(project):
    """SIGKILL to the launcher as soon as its job spec exists, then as soon as a run has
    started: the spec and every run that names a provenance session name one whose file
    is there, whole (it is written before the spec that names it, which comes before any
    run).  A launcher that wrote it later, in a thread or after handing runs out, would
    leave a spec or a run naming nothing here."""
    from conftest import git_commit_all

    from xprun.provenance import load_session

    project.write(
        "xp_slow.py",
        "import time\nimport xprun\n\n@xprun.grid(i=list(range(6)))\n"
        "def xp_slow(config):\n    time.sleep(0.3)\n    return {'i': config.i}\n",
    )
    git_commit_all(project.root)
    for pattern in (".xprun-jobs/*/spec.json", "xp_slow.xp_slow/*/run.json"):
        shutil.rmtree(project.log_dir, ignore_errors=True)
        proc = project.popen("-n", "2", "-q")
        deadline = time.monotonic() + 60
        while not list(project.log_dir.glob(pattern)):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the launch never got there"
            time.sleep(0.001)
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)  # the workers share its stderr: they are gone too
        named = []
        for spec in project.log_dir.glob(".xprun-jobs/*/spec.json"):
            named.append(json.loads(spec.read_text())["provenance"]["session"])
        for record in project.records():
            named.append(record["session"])
        assert named, "nothing was written before the kill"
        for session in named:
            data = load_session(project.log_dir, session)
            assert data is not None, f"{session} is named, its session file is missing"
            assert data["distributions"] and "xp_slow.py" in data["sources"]


def test_i11_launch_path_a_clean_snapshot_is_the_commit_a_temporary_index_made(tmp_path):
    """With nothing to add, the snapshot commits HEAD's tree without a temporary index: the
    same commit (fixed identity and date) as reading HEAD into an index and writing it; with
    a change, the change is in it; before the first commit, the untracked files are."""
    from xprun import snapshot

    root = repo(tmp_path / "p", {"a.py": "a = 1\n", "pkg/b.py": "b = 1\n"})
    taken = snapshot.commit(root, [root / "xprun_logs"], {})
    expected = subprocess.run(
        ["git", "commit-tree", "HEAD^{tree}", "-p", "HEAD", "-m", "xprun snapshot"],
        cwd=root,
        env={
            **os.environ,
            "GIT_AUTHOR_NAME": "xprun",
            "GIT_AUTHOR_EMAIL": "xprun@localhost",
            "GIT_COMMITTER_NAME": "xprun",
            "GIT_COMMITTER_EMAIL": "xprun@localhost",
            "GIT_AUTHOR_DATE": "1970-01-01T00:00:00Z",
            "GIT_COMMITTER_DATE": "1970-01-01T00:00:00Z",
        },
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert taken.commit == expected and taken.dirty is False
    assert git(root, "rev-parse", f"{snapshot.REF_PREFIX}{expected}").strip() == expected
    write(root / "a.py", "a = 2\n")
    changed = snapshot.commit(root, [root / "xprun_logs"], {})
    assert changed.commit != expected and changed.dirty is True
    assert git(root, "show", f"{changed.commit}:a.py") == "a = 2\n"
    unborn = tmp_path / "u"
    unborn.mkdir()
    git(unborn, "init", "-q", "-b", "main")
    write(unborn / "x.py", "x = 1\n")
    first = snapshot.commit(unborn, [], {})
    assert first.base is None and git(unborn, "show", f"{first.commit}:x.py") == "x = 1\n"


def test_i11_launch_path_package_versions_come_from_the_cache(project, tmp_path):
    """Once the import map is cached, a process records package versions without importing
    ``importlib.metadata`` (a pool worker's start-up paid ~20 ms for it), and the versions
    are those ``importlib.metadata.version`` gives, in a run's record too."""
    import importlib.metadata

    project.write(
        "xp_pkgs.py",
        "import yaml\nimport pluggy\n\ndef xp_pkgs(seed):\n    return {'seed': seed}\n",
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    script = (
        "import json, sys, yaml, pluggy\n"
        "from xprun.metadata import PackageVersions\n"
        "found = PackageVersions().imported()\n"
        "print(json.dumps([found, 'importlib.metadata' in sys.modules]))\n"
    )

    def versions() -> tuple[dict[str, str], bool]:
        out = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        ).stdout
        found, imported = json.loads(out)
        return found, imported

    first, imported_first = versions()  # builds the cache
    second, imported_second = versions()  # reads it
    assert imported_first and not imported_second
    assert first == second and first["PyYAML"] == importlib.metadata.version("PyYAML")
    assert all(importlib.metadata.version(name) == v for name, v in second.items())
    assert project.run("seed=1", env={"XDG_CACHE_HOME": str(tmp_path / "cache")}).returncode == 0
    (record,) = project.records()
    assert record["packages"]["pluggy"] == importlib.metadata.version("pluggy")
