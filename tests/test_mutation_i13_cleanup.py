"""What ``xprun rm`` and ``xprun gc`` delete (``xprun.cleanup``'s decisions, ``xprun.trash``):
each rule checked where mutation testing (tools/mutation.py) found it unchecked.

The commands run in-process (tests/inprocess.py) on runs made in-process, so a mutant
loaded in the test's process is the one deciding (tests/test_i13_cleanup.py runs ``python
-m xprun``, which would import the original).  A live run is one whose claim this process
holds, taken with ``store.acquire`` as a launcher takes it.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import inprocess as _inprocess
import pytest

from xprun import store, trash

GRID = """
import xprun

@xprun.config({"i": 0})
@xprun.grid(i=[0, 1, 2, 3])
def xp_f(config, logger):
    for k in range(3):
        logger.save_checkpoint({"k": k}, keep=3)
    if config.i == 3:
        raise RuntimeError("boom")
    return {"v": config.i}
"""


@pytest.fixture
def xprun(project, monkeypatch):
    """``xprun ARGS`` in-process; ``xprun.main`` runs a launch only, so ``rm`` and ``gc``
    go through the command line's own entry point (``xprun.cli.main``) instead."""
    import xprun as package
    from xprun import cli

    def run(*args: str, expect: int = 0):
        with monkeypatch.context() as patch:
            if args[0] in ("rm", "gc"):
                patch.setattr(package, "main", cli.main)
            result = _inprocess.InProcess(project, patch).run(*args)
        assert result.ret == expect, result.output
        return result

    return run


@pytest.fixture
def grid(project, xprun) -> dict[int, Path]:
    """Four runs, ``i=3`` failed, each with three checkpoints: ``{i: run directory}``."""
    project.write("xp_f.py", GRID)
    xprun("-q", expect=1)
    return {_i(d): d for d in _run_dirs(project)}


_FAILED = "failed, interrupted and unfinished runs"


def _run_dirs(project) -> list[Path]:
    return sorted(p.parent for p in project.log_dir.glob("[!.]*/[!.]*/run.json"))


def _i(run_dir: Path) -> int:
    return int(re.search(r"i=(\d+)", store.read_record(run_dir)["nodeid"]).group(1))


def _listed(output: str) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    current = None
    for line in output.splitlines():
        if line.startswith("  ") and current is not None:
            groups[current].append(line.strip())
        elif re.match(r"^[^ ].*: \d+", line):
            current = line.split(":")[0]
            groups[current] = []
        else:
            current = None
    return groups


def _hold(run_dir: Path, log_dir: Path) -> store.Claim:
    """A live claim on ``run_dir``, as a launcher running it holds."""
    acquired = store.acquire(run_dir, store.FsClock(log_dir), store.Heartbeat(5.0, 60.0))
    assert acquired.claim is not None
    return acquired.claim


def test_i13_mut_cleanup_gc_failed_removes_only_the_runs_that_are_not_complete(
    project, grid, xprun
):
    xprun("gc", "--grace", "0", "--yes")
    assert set(_run_dirs(project)) == set(grid.values())  # without --failed: no run
    failed = xprun("gc", "--failed", "--grace", "0", "--yes")
    assert _run_dirs(project) == sorted(grid[i] for i in (0, 1, 2))
    (line,) = _listed(failed.stdout)["failed, interrupted and unfinished runs"]
    assert line == f"{grid[3].relative_to(project.log_dir).as_posix()}  failed  xp_f.py::xp_f[i=3]"


def test_i13_mut_cleanup_gc_keeps_a_young_run_without_a_record(project, grid, xprun):
    starting = grid[0].parent / ("f" * 32)  # a launch making its run directory right now
    starting.mkdir()
    name = starting.relative_to(project.log_dir).as_posix()
    young = xprun("gc", "--failed", "--grace", "1h")
    assert [line.split()[0] for line in _listed(young.stdout)[_FAILED]] == [
        grid[3].relative_to(project.log_dir).as_posix()
    ]
    old = time.time() - 7200
    os.utime(starting, (old, old))
    dry = xprun("gc", "--failed", "--grace", "1h")
    assert f"{name}  new" in _listed(dry.stdout)[_FAILED]


def test_i13_mut_cleanup_a_live_run_is_never_removed(project, grid, xprun):
    claim = _hold(grid[3], project.log_dir)
    try:
        gc = xprun("gc", "--failed", "--previous", "--grace", "0", "--yes")
        assert grid[3].is_dir()
        assert len(list((grid[3] / "checkpoints").glob("ckpt-*"))) == 3  # not its files either
        assert "failed, interrupted" not in gc.stdout
        rm = xprun("rm", grid[3].name, "--yes", expect=1)  # named, and kept: exit 1
        assert grid[3].is_dir()
        assert f"{grid[3].relative_to(project.log_dir).as_posix()}  running" in rm.stdout
        others = xprun("rm", "config.i >= 2", "--yes", expect=1)
        assert grid[3].is_dir() and not grid[2].exists()
        assert "removed 1," in others.stdout
    finally:
        claim.release()
    xprun("rm", grid[3].name, "--yes")
    assert not grid[3].exists()


def test_i13_mut_cleanup_rm_a_prefix_names_one_run_and_a_query_several(project, grid, xprun):
    xprun("rm", grid[0].name[:6], "--yes")
    assert _run_dirs(project) == sorted(grid[i] for i in (1, 2, 3))
    dry = xprun("rm", "config.i >= 2", grid[2].name)
    assert {line.split()[0] for line in _listed(dry.stdout)["runs"]} == {
        grid[i].relative_to(project.log_dir).as_posix() for i in (2, 3)
    }
    assert "would free" in dry.stdout and len(_run_dirs(project)) == 3


def test_i13_mut_cleanup_checkpoints_beyond_keep_with_their_steps(project, grid, xprun):
    dry = xprun("gc", "--keep-checkpoints", "2", "--grace", "0")
    shown = _listed(dry.stdout)["checkpoints beyond keep=2"]
    assert len(shown) == 4 and all(line.endswith("ckpt-00000001.tree.npz") for line in shown)
    xprun("gc", "--keep-checkpoints", "3", "--grace", "0", "--yes")
    assert len(list(grid[0].glob("checkpoints/*"))) == 6  # 3 kept: nothing beyond
    xprun("gc", "--grace", "0", "--yes")
    assert sorted(p.name for p in (grid[0] / "checkpoints").iterdir()) == [
        "ckpt-00000003.tree.npz",
        "steps-00000003.json",
    ]
    xprun("gc", "--keep-checkpoints", "0", expect=4)


def test_i13_mut_cleanup_previous_attempts_only_with_the_flag(project, grid, xprun):
    xprun("-q", "--force", "i=0")
    xprun("-q", "--force", "i=0")
    previous = sorted(grid[0].glob("previous/*"))
    assert [p.name for p in previous] == ["1", "2"]
    (grid[0] / "previous" / "notes").mkdir()  # not an attempt: never removed
    xprun("gc", "--grace", "0", "--yes")
    assert all(p.is_dir() for p in previous)
    done = xprun("gc", "--previous", "--grace", "0", "--yes")
    assert _listed(done.stdout)["replaced attempts (previous/<N>/ of --force reruns)"] == [
        p.relative_to(project.log_dir).as_posix() for p in previous
    ]
    assert not any(p.exists() for p in previous) and (grid[0] / "previous" / "notes").is_dir()


def test_i13_mut_cleanup_grace_parses_ages(project, grid, xprun):
    from xprun.cleanup import parse_age

    assert [parse_age(t) for t in ("0", "90s", "1.5m", "2h", "1d", " 7 ")] == [
        0.0,
        90.0,
        90.0,
        7200.0,
        86400.0,
        7.0,
    ]
    xprun("gc", "--grace", "soon", expect=4)


def test_i13_mut_trash_move_delete_leftovers_and_size(tmp_path):
    holder = tmp_path / "logs"
    run = holder / "xp" / "abc"
    (run / "sub").mkdir(parents=True)
    (run / "a").write_bytes(b"12345")
    (run / "sub" / "b").write_bytes(b"123")
    os.symlink(tmp_path, run / "link")  # not followed: neither counted nor deleted through
    (tmp_path / "outside").write_bytes(b"x" * 100)
    assert trash.size(run) == 8 and trash.size(run / "a") == 5
    assert trash.size(run / "link") == 0 and trash.size(run / "missing") == 0
    assert trash.leftovers(holder) == []
    moved = trash.move(holder, run)
    assert not run.exists() and moved.parent == holder / ".xprun-trash"
    assert moved.name.endswith("-abc") and trash.leftovers(holder) == [moved]
    second = trash.move(holder, holder / "xp")
    assert trash.leftovers(holder) == sorted([moved, second])
    trash.delete(moved)
    trash.delete(moved)  # gone already (another clean-up): not an error
    assert trash.leftovers(holder) == [second] and (tmp_path / "outside").exists()
    file = holder / "f"
    file.write_text("x")
    trash.delete(file)
    assert not file.exists()


def test_i13_mut_trash_a_folder_on_another_file_system_is_not_moved(tmp_path):
    holder = tmp_path / "logs"
    holder.mkdir()
    with pytest.raises(FileNotFoundError):  # a plain error stays what it is
        trash.move(holder, holder / "missing")
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("no second file system to link an experiment folder to")
    elsewhere = Path(tempfile.mkdtemp(dir=shm))
    try:
        (elsewhere / "run.json").write_text("{}")
        with pytest.raises(trash.CrossDevice, match="on another file system"):
            trash.move(holder, elsewhere)
        assert (elsewhere / "run.json").exists()  # left where it is, whole
    finally:
        shutil.rmtree(elsewhere)


def test_i13_mut_trash_delete_passes_over_what_is_gone_and_raises_the_rest(tmp_path, monkeypatch):
    """A second clean-up emptying the same trash deletes some files first: those are not an
    error, and the rest is deleted; any other error is raised.  The files are removed, or
    the error made, at the moment rmtree reaches them (injected: no real race is that
    precise)."""
    folder = tmp_path / "moved"
    for name in ("a", "b", "c"):
        (folder / "sub").mkdir(parents=True, exist_ok=True)
        (folder / "sub" / name).write_text(name)
    unlink = os.unlink

    def racing(path, *args, **kwargs):
        if os.fspath(path) == "a":
            unlink(path, *args, **kwargs)  # the other clean-up was first
            raise FileNotFoundError(2, "No such file or directory", path)
        if os.fspath(path) == "c" and failing:
            raise OSError(5, "Input/output error", path)
        return unlink(path, *args, **kwargs)

    failing = False
    monkeypatch.setattr(os, "unlink", racing)
    trash.delete(folder)
    assert not folder.exists()
    for name in ("a", "b", "c"):
        (folder / "sub").mkdir(parents=True, exist_ok=True)
        (folder / "sub" / name).write_text(name)
    failing = True
    with pytest.raises(OSError, match="Input/output error"):
        trash.delete(folder)


def test_i13_mut_trash_size_counts_the_files_left_when_one_goes_while_walked(tmp_path, monkeypatch):
    """A file removed between the folder's listing and its ``lstat`` (a run still writing,
    another clean-up: injected, no real race is that precise) counts 0, not the rest."""
    folder = tmp_path / "run"
    folder.mkdir()
    for name in ("a", "b", "c"):
        (folder / name).write_bytes(b"1234")
    lstat = os.lstat
    gone: list[str] = []

    def racing(path, *args, **kwargs):
        if os.fspath(path) != os.fspath(folder) and not gone:
            gone.append(os.fspath(path))  # the first file walked
            raise FileNotFoundError(2, "No such file or directory", path)
        return lstat(path, *args, **kwargs)

    monkeypatch.setattr(os, "lstat", racing)
    assert trash.size(folder) == 8 and len(gone) == 1


def test_i13_mut_cleanup_a_live_or_starting_run_first_in_order_stops_no_other(project, grid, xprun):
    folder = min(grid.values()).parent  # gc walks the runs in the order of their names
    live = folder / ("0" * 31 + "1")  # a launch running it: claimed, no record yet
    live.mkdir()
    starting = folder / ("0" * 31 + "2")  # a launch making it: no claim yet, young
    starting.mkdir()
    claim = _hold(live, project.log_dir)
    try:
        xprun("gc", "--failed", "--grace", "1h", "--yes")
    finally:
        claim.release()
    assert live.is_dir() and starting.is_dir()
    assert not grid[3].exists()  # failed: removed
    for i in (0, 1, 2):
        assert len(list(grid[i].glob("checkpoints/ckpt-*"))) == 1


def test_i13_mut_cleanup_sessions_go_with_the_last_run_that_references_them(project, grid, xprun):
    sessions = project.log_dir / ".xprun-sessions"
    (first,) = {store.read_record(d)["session"] for d in grid.values()}
    xprun("gc", "--grace", "0", "--yes")
    assert (sessions / f"{first}.json").is_file()  # referenced by the runs kept
    xprun("-q", "--force", "i=3", expect=1)  # a second launch: its own session
    second = store.read_record(grid[3])["session"]
    assert second != first and (sessions / f"{second}.json").is_file()
    done = xprun("gc", "--failed", "--previous", "--grace", "0", "--yes")
    assert not grid[3].exists()
    # The only run referencing the second session is removed: the session goes in the same
    # pass; the first stays, referenced by the three runs kept.
    assert _listed(done.stdout)["session files no run references"] == [
        f".xprun-sessions/{second}.json"
    ]
    assert sorted(p.name for p in sessions.iterdir()) == [f"{first}.json"]
