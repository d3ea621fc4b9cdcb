"""What ``xprun rm`` and ``xprun gc`` delete (``xprun.cleanup``'s decisions, ``xprun.trash``):
each rule checked where mutation testing (tools/mutation.py) found it unchecked.

The commands run in-process (tests/inprocess.py) on runs made in-process, so a mutant
loaded in the test's process is the one deciding (tests/test_i13_cleanup.py runs ``python
-m xprun``, which would import the original).  A live run is one whose claim this process
holds, taken with ``store.acquire`` as a launcher takes it.
"""

from __future__ import annotations

import json
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


# -- what gc calls unreferenced: job folders, session files, source-store entries, snapshots
#
# ``plan_gc`` is asked directly (with a queue the test answers for): a scheduler's queue
# cannot be made to hold, forget or fail on a job on demand, and a pool's job folder cannot
# be caught in each of its states by a real launch.

_OLD = 7200.0  # seconds: older than the grace of one hour these tests give


def _age(path: Path, seconds: float = _OLD) -> Path:
    then = time.time() - seconds
    os.utime(path, (then, then), follow_symlinks=False)
    return path


def _job(log_dir: Path, name: str, spec=None, job=None, young: bool = False) -> Path:
    """A job folder ``.xprun-jobs/<name>`` with ``spec.json`` and ``job.json`` as given."""
    folder = log_dir / ".xprun-jobs" / name
    folder.mkdir(parents=True)
    for file, content in (("spec.json", spec), ("job.json", job)):
        if content is not None:
            (folder / file).write_text(content if isinstance(content, str) else json.dumps(content))
    return folder if young else _age(folder)


def _session(log_dir: Path, session_id: str, **fields) -> Path:
    path = log_dir / ".xprun-sessions" / f"{session_id}.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps({"format": 1, "id": session_id, **fields}))
    return _age(path)


def _plan(project, monkeypatch, ask_queue=None, grace: float = 3600.0):
    """``gc``'s plan (no --failed, no --previous, every checkpoint kept): {group: [shown]},
    the kept lines, the items."""
    from xprun import cleanup

    def no_queue(name, ids):
        raise AssertionError(f"the queue asked without a job.json: {name} {ids}")

    monkeypatch.chdir(project.root)
    ctx = cleanup.Context.make(None, grace)
    items, kept = cleanup.plan_gc(ctx, False, False, 3, ask_queue or no_queue)
    groups: dict[str, list[str]] = {}
    for item in items:
        groups.setdefault(item.group, []).append(item.shown)
    return groups, kept, items, ctx


_JOBS = "job folders of finished submissions"
_SESSIONS = "session files no run references"
_BLOBS = "source-store entries no session references"
_SNAPSHOTS = "extracted snapshots no run references"
_REFS = "snapshot refs no run references"


def test_i13_mut_cleanup_gc_job_folders_over_and_in_use(project, grid, monkeypatch):
    """Each reason a job folder is still needed, and each way a submission is over; the
    session a kept folder's spec names stays, the one a removed folder's spec names goes."""
    log = project.log_dir
    done, failed = grid[0], grid[3]
    live = done.parent / ("0" * 31 + "1")  # a launch running it: claimed, no record yet
    live.mkdir()
    start = store.read_record(failed)["start"]
    before, after = "2000-01-01T00:00:00Z", "2999-01-01T00:00:00Z"

    def spec(*runs: Path, created: str = before, session: str | None = None) -> dict:
        found = {"format": 1, "created": created, "runs": [{"run_dir": str(r)} for r in runs]}
        return {**found, "session": session} if session else found

    _job(log, "a-no-spec-young", young=True)
    _job(log, "b-no-spec-old")
    _job(log, "c-spec-not-an-object", spec="[1, 2]")
    _job(log, "d-spec-unreadable", spec="{torn")
    _job(log, "e-running", spec(done, live), job={"scheduler": "fake", "job_ids": []})
    _job(log, "f-no-job-ids", spec(done), job={"scheduler": "fake", "job_ids": []})
    _job(
        log, "g-queued", spec(done, session="S-kept"), job={"scheduler": "fake", "job_ids": [7, 70]}
    )
    _job(
        log,
        "h-left-the-queue",
        spec(done, session="S-gone"),
        job={"scheduler": "fake", "job_ids": [8]},
    )
    _job(log, "i-queue-fails", spec(done), job={"scheduler": "fake", "job_ids": [9]})
    _job(log, "j-job-json-not-an-object", spec(done), job="[7]")
    missing = done.parent / ("e" * 32)
    _job(log, "k-not-started-young", spec(done, missing), young=True)
    _job(log, "l-not-started-old", spec(missing, done))
    _job(log, "l2-not-started-then-not-run", spec(missing, failed, created=after))
    _job(log, "m-complete", spec(done, grid[2]))
    _job(log, "n-failed-before-submitted", spec(done, failed, created=after))
    elsewhere = project.root / "other_logs" / failed.parent.name / failed.name
    shutil.copytree(failed, elsewhere)  # a run of another log directory: gc read none
    _job(log, "n2-elsewhere-before-submitted", spec(elsewhere, created=after))
    _job(log, "o-failed-after-submitted", spec(failed, done, created=start))
    _job(log, "p-failed-without-start", spec(failed))
    entries = ["x", {"run_dir": 3}, {}, {"run_dir": str(done)}]  # only the last is a run
    _job(log, "p2-runs-not-entries", {"format": 1, "created": before, "runs": entries})
    _job(log, "p3-runs-not-a-list", {"format": 1, "created": before, "runs": "x"})
    (log / ".xprun-jobs" / "q-a-file").write_text("{}")
    (log / ".xprun-jobs" / "r-a-link").symlink_to(log / ".xprun-jobs" / "e-running")
    for session_id in ("S-kept", "S-gone"):
        _session(log, session_id)
    asked: list[tuple[str, list[str]]] = []

    def queue(name: str, ids: list[str]) -> dict[str, str]:
        asked.append((name, ids))
        if ids == ["9"]:
            raise RuntimeError("squeue: connection refused")
        return {i: "PENDING" for i in ids if i == "7"}

    record = store.read_record(failed)
    record.pop("start")
    claim = _hold(live, log)
    try:
        groups, kept, _, _ = _plan(project, monkeypatch, queue)
        store.write_json_atomic(failed / "run.json", record)
        without_start, _, _, _ = _plan(project, monkeypatch, queue)
    finally:
        claim.release()
    assert groups[_JOBS] == [
        ".xprun-jobs/b-no-spec-old",
        ".xprun-jobs/c-spec-not-an-object",
        ".xprun-jobs/d-spec-unreadable",
        ".xprun-jobs/f-no-job-ids",
        ".xprun-jobs/h-left-the-queue",
        ".xprun-jobs/j-job-json-not-an-object",
        ".xprun-jobs/l-not-started-old",
        ".xprun-jobs/m-complete",
        ".xprun-jobs/o-failed-after-submitted",
        ".xprun-jobs/p-failed-without-start",
        ".xprun-jobs/p2-runs-not-entries",
        ".xprun-jobs/p3-runs-not-a-list",
    ]
    assert without_start[_JOBS] == [
        j for j in groups[_JOBS] if not j.startswith((".xprun-jobs/o-", ".xprun-jobs/p-"))
    ]
    shown = live.relative_to(log).as_posix()
    assert kept == [
        ".xprun-jobs/a-no-spec-young: being written (younger than --grace)",
        f".xprun-jobs/e-running: its run {shown} is running",
        ".xprun-jobs/g-queued: 1 of its tasks are queued or running",
        ".xprun-jobs/i-queue-fails: the fake queue could not be asked (squeue: connection refused)",
        f".xprun-jobs/k-not-started-young: its run {missing.relative_to(log).as_posix()} "
        "has not started (younger than --grace)",
        f".xprun-jobs/l2-not-started-then-not-run: its run {failed.relative_to(log).as_posix()} "
        "has not run since it was submitted",
        f".xprun-jobs/n-failed-before-submitted: its run "
        f"{failed.relative_to(log).as_posix()} has not run since it was submitted",
        f".xprun-jobs/n2-elsewhere-before-submitted: its run {elsewhere} has not run since it "
        "was submitted",
    ]
    assert asked[:3] == [("fake", ["7", "70"]), ("fake", ["8"]), ("fake", ["9"])]
    assert groups[_SESSIONS] == [".xprun-sessions/S-gone.json"]


def test_i13_mut_cleanup_gc_a_kept_job_keeps_its_snapshot(project, grid, monkeypatch):
    """The snapshot a kept job folder's spec names stays, in each place a spec names it
    (format 2's ``provenance.snapshot``, format 1's ``git.snapshot``); a removed folder's
    does not."""
    log = project.log_dir
    extracted = (project.root / ".xprun" / "snapshots").resolve()
    names = {key: key * 40 for key in "abcd"}
    for name in names.values():
        (extracted / name).mkdir(parents=True)
        _age(extracted / name)
    job = {"scheduler": "fake", "job_ids": [1]}
    _job(log, "1", {"runs": [], "provenance": {"snapshot": {"commit": names["a"]}}}, job)
    _job(log, "2", {"runs": [], "git": {"snapshot": names["b"]}}, job)
    _job(log, "3", {"runs": [], "snapshot": names["c"]}, job)
    _job(
        log, "4", {"runs": [], "git": {"snapshot": names["d"]}}, {"scheduler": "x", "job_ids": [2]}
    )
    groups, kept, _, _ = _plan(
        project, monkeypatch, lambda name, ids: {"1": "R"} if ids == ["1"] else {}
    )
    assert groups[_JOBS] == [".xprun-jobs/4"] and len(kept) == 3
    assert groups[_SNAPSHOTS] == [str(extracted / names["d"])]


def _git(root: Path, *args: str) -> str:
    import subprocess

    return subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_i13_mut_cleanup_gc_sessions_sources_and_snapshots_no_run_references(
    project, grid, monkeypatch
):
    """Which session files, source-store entries, extracted snapshots and snapshot refs are
    unreferenced, and what ``--yes`` then removes: a young session is kept, and so are the
    sources and the snapshot it names; an old one goes, with the sources only it names."""
    from conftest import git_commit_all

    from xprun import cleanup

    log = project.log_dir
    git_commit_all(project.root, "one")
    commits = [_git(project.root, "rev-parse", "HEAD")]
    for message in ("two", "three", "four"):
        _git(
            project.root,
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@x",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            message,
        )
        commits.append(_git(project.root, "rev-parse", "HEAD"))
    gone_ref, young_ref, kept_ref, session_ref = commits
    named = (("a", gone_ref), ("b", young_ref), ("c", kept_ref), ("d", session_ref))
    for name, commit in (*named, ("e", gone_ref)):  # e: after those kept
        _git(project.root, "update-ref", f"refs/xprun/snapshots/{name}", commit)
    _git(project.root, "update-ref", "refs/xprun/other", gone_ref)  # not a snapshot ref
    sources = log / ".xprun-sources"
    blob = {}
    for key in "kgy":
        (sources / (key * 32)).write_text(key)
        blob[key] = _age(sources / (key * 32))
    young_blob = sources / ("n" * 32)
    young_blob.write_text("n")  # unreferenced, but young
    (sources / ".tmp-write").write_text("x")
    _age(sources / ".tmp-write")
    (sources / ("l" * 32)).symlink_to(blob["g"])  # not a file of the store
    kept_id, gone_id = "20000101T000000Z-0000000a", "20000101T000000Z-0000000b"
    young = _session(
        log, kept_id, sources={"k.py": "k" * 32, "n": 3}, snapshot={"commit": kept_ref}
    )
    os.utime(young)  # modified now: a launch under way may still need it
    _session(log, gone_id, sources={"g.py": "g" * 32}, snapshot=gone_ref)
    for name in ("00-readme.txt", "notes.txt"):  # not sessions, before and after them
        (log / ".xprun-sessions" / name).write_text("not a session")
        _age(log / ".xprun-sessions" / name)
    extracted = (project.root / ".xprun" / "snapshots").resolve()
    folders = {
        "gone": extracted / gone_ref,
        "young": extracted / young_ref,
        "kept": extracted / kept_ref,
        "long": extracted / ("c" * 64),
        "short": extracted / ("c" * 39),
        "word": extracted / ("g" * 40),
    }
    for key, folder in folders.items():
        folder.mkdir(parents=True)
        if key != "young":
            _age(folder)
    (extracted / ("d" * 40)).write_text("a file")
    _age(extracted / ("d" * 40))
    # The session the runs reference names a snapshot too: referenced through the runs.
    real = log / ".xprun-sessions" / f"{store.read_record(grid[0])['session']}.json"
    data = json.loads(real.read_text())
    real.write_text(json.dumps({**data, "snapshot": session_ref}))
    _age(real)

    groups, kept, items, ctx = _plan(project, monkeypatch)
    assert groups[_SESSIONS] == [f".xprun-sessions/{gone_id}.json"]
    assert groups[_BLOBS] == [f".xprun-sources/{'g' * 32}", f".xprun-sources/{'y' * 32}"]
    assert groups[_SNAPSHOTS] == sorted([str(folders["gone"]), str(folders["long"])])
    assert groups[_REFS] == ["refs/xprun/snapshots/a", "refs/xprun/snapshots/e"]
    assert f"{_REFS}: 2, 0 B\n" in cleanup.listing(items, kept)  # a ref frees no bytes
    assert kept == []
    outcome = cleanup.carry_out(ctx, items)
    assert outcome.kept == [] and len(outcome.removed) == len(items)
    assert _git(project.root, "for-each-ref", "--format=%(refname)", "refs/xprun").split() == [
        "refs/xprun/other",
        "refs/xprun/snapshots/b",
        "refs/xprun/snapshots/c",
        "refs/xprun/snapshots/d",
    ]
    assert sorted(p.name for p in extracted.iterdir() if p.name[0] != ".") == sorted(
        [young_ref, kept_ref, "c" * 39, "g" * 40, "d" * 40]
    )
    assert not (log / ".xprun-sessions" / f"{gone_id}.json").exists() and young.exists()
    assert not blob["g"].exists() and not blob["y"].exists()
    assert blob["k"].exists() and young_blob.exists() and (sources / ".tmp-write").exists()
    assert not (extracted / ".xprun-trash").exists() or not any(
        (extracted / ".xprun-trash").iterdir()
    )


def test_i13_mut_cleanup_carry_out_claims_a_run_first_and_spares_a_running_runs_files(
    project, grid, monkeypatch
):
    """``--yes`` carries out the listing made before: a run claimed by a launcher since is
    kept (the claim is taken before the move), and so are the files of a run that started
    running since; the rest is removed, whole folders through the trash."""
    from xprun import cleanup

    monkeypatch.chdir(project.root)
    ctx = cleanup.Context.make(None, 0.0)
    items, kept = cleanup.plan_rm(ctx, [grid[3].name, grid[2].name])
    assert [item.run for item in items] == [grid[3], grid[2]] and kept == []
    plan, _ = cleanup.plan_gc(ctx, False, False, 1, lambda name, ids: {})
    checkpoints = [item for item in plan if item.group == "checkpoints beyond keep"]
    assert {item.owner for item in checkpoints} == set(grid.values())
    deleted: list[Path] = []
    delete = trash.delete

    def recording(path: Path) -> None:
        deleted.append(Path(path))
        delete(path)

    monkeypatch.setattr(trash, "delete", recording)
    claim = _hold(grid[3], project.log_dir)  # a launcher reruns it after the listing
    try:
        spared = cleanup.carry_out(ctx, checkpoints)
        outcome = cleanup.carry_out(ctx, items)
    finally:
        claim.release()
    ckpts = {i: len(list(grid[i].glob("checkpoints/ckpt-*"))) for i in grid}
    assert ckpts == {0: 1, 1: 1, 2: 0, 3: 3}  # the running run's files left alone; 2 gone
    assert spared.kept == [
        f"{item.shown}: its run started running meanwhile"
        for item in checkpoints
        if item.owner == grid[3]
    ]
    assert len(spared.removed) == 6 and all(item.owner != grid[3] for item in spared.removed)
    assert outcome.kept == [f"{items[0].shown}: started running meanwhile"]
    assert outcome.removed == [items[1]]
    assert grid[3].is_dir() and not grid[2].exists()
    run_deleted = [p for p in deleted if p.name.endswith(grid[2].name)]
    assert len(run_deleted) == 1 and run_deleted[0].parent.name == ".xprun-trash"
    assert all(p.parent.name == "checkpoints" for p in deleted if p not in run_deleted)


def test_i13_mut_cleanup_carry_out_reports_what_it_could_not_remove_and_goes_on(
    project, grid, monkeypatch, xprun, capfd
):
    """What is gone already counts as removed; what fails is kept, with its error, and the
    next items are still carried out.  A snapshot ref moved since the listing is not
    deleted (``update-ref -d`` checks the commit listed).  A ``previous/`` emptied goes."""
    from conftest import git_commit_all

    from xprun import cleanup

    xprun("-q", "--force", "i=1")
    git_commit_all(project.root, "one")
    first = _git(project.root, "rev-parse", "HEAD")
    git_commit_all(project.root, "two")
    second = _git(project.root, "rev-parse", "HEAD")
    _git(project.root, "update-ref", "refs/xprun/snapshots/x", first)
    failing_path = _session(project.log_dir, "20000101T000000Z-0000000c")
    gone_path = project.log_dir / ".xprun-sources" / ("0" * 32)
    gone_path.write_text("x")
    _age(gone_path)
    monkeypatch.chdir(project.root)
    ctx = cleanup.Context.make(None, 0.0)
    items, _ = cleanup.plan_gc(ctx, False, True, 3, lambda name, ids: {})
    groups = [item.group for item in items]
    assert groups.count("replaced attempts (previous/<N>/ of --force reruns)") == 1
    assert groups.count("snapshot refs no run references") == 1
    _git(project.root, "update-ref", "refs/xprun/snapshots/x", second)  # moved meanwhile
    (failing,) = [item for item in items if item.paths == [failing_path]]
    (gone,) = [item for item in items if item.paths == [gone_path]]
    gone_path.unlink()  # another clean-up was first
    delete = trash.delete

    def broken(path: Path) -> None:
        if Path(path).name.endswith(failing.paths[0].name):
            raise OSError(5, "Input/output error", str(path))
        delete(path)

    monkeypatch.setattr(trash, "delete", broken)
    capfd.readouterr()
    outcome = cleanup.carry_out(ctx, items)
    assert capfd.readouterr().err == ""  # git's own error is not printed over the listing
    ref = next(item for item in items if item.ref is not None)
    assert [line.split(": ")[0] for line in outcome.kept] == [failing.shown, ref.shown]
    assert "Input/output error" in outcome.kept[0]
    assert outcome.removed == [item for item in items if item not in (failing, ref)]
    assert gone in outcome.removed
    assert _git(project.root, "rev-parse", "refs/xprun/snapshots/x") == second
    assert not (grid[1] / "previous").exists()  # emptied: removed too
