"""Issue 13, section 5: ``xprun rm`` and ``xprun gc``, clean-up that cannot hurt.

Everything goes through the command line with real runs, real processes and real Git
repositories.  What is listed is parsed from the commands' output and checked against the
disk, computed here independently (sizes by walking the folders), so a listing that lies, a
dry run that deletes, or a ``--yes`` that deletes something else fails.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import git_commit_all

pytestmark = pytest.mark.inprocess  # xprun launched in the test's process (tests/launch.py)

GRID = """
import xprun

@xprun.config({"i": 0})
@xprun.grid(i=[0, 1, 2, 3])
def xp_f(config, logger):
    for k in range(3):
        logger.save_checkpoint({"k": k}, keep=3)
    if config.i >= 3 and FAIL:
        raise RuntimeError("boom")
    return {"v": config.i}
"""


def run_dirs(project) -> list[Path]:
    """The run directories on disk (not ``run_dirs(project)``, whose glob also matches
    the trash: ``*`` matches dot folders in pathlib)."""
    return sorted(p.parent for p in project.log_dir.glob("[!.]*/[!.]*/run.json"))


def grid(project, fail: bool = False) -> None:
    project.write("xp_a.py", f"FAIL = {fail}\n" + GRID)


def listed(output: str) -> dict[str, list[str]]:
    """The groups of a listing: ``{group title: [item lines]}`` (the ``kept`` group too)."""
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


def freed(output: str) -> int:
    """The bytes the last line says are (or would be) freed."""
    match = re.search(r"(?:would free|freed) (?:[\d.]+ \w+ \()?([\d,]+) B", output)
    assert match, output
    return int(match.group(1).replace(",", ""))


def tree_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def show_hashes(project) -> set[str]:
    """The hashes the Reader shows (through ``xprun show --format json``)."""
    result = project.run("show", "--format", "json", "--columns", "hash", "status")
    assert result.returncode == 0, result.output
    return {row["hash"] for row in json.loads(result.stdout)}


def hashes_of(project) -> dict[int, str]:
    return {r["config"]["i"]: r["hash"] for r in map(_record, run_dirs(project))}


def _record(run_dir: Path) -> dict:
    record = json.loads((run_dir / "run.json").read_text())
    record["config"] = _config(run_dir)
    return record


def _config(run_dir: Path) -> dict:
    import yaml

    return yaml.safe_load((run_dir / "config.yaml").read_text())


def test_i13_cleanup_rm_dry_run_lists_what_yes_removes(project):
    grid(project)
    assert project.run("-q").returncode == 0
    by_i = hashes_of(project)
    dirs = {p.name: p for p in run_dirs(project)}
    chosen = {by_i[2], by_i[3]}
    expected_bytes = sum(tree_size(dirs[h]) for h in chosen)

    dry = project.run("rm", "config.i >= 2")
    assert dry.returncode == 0, dry.output
    items = listed(dry.stdout)["runs"]
    assert {line.split()[0].rsplit("/", 1)[1] for line in items} == chosen
    assert freed(dry.stdout) == expected_bytes
    assert "nothing deleted" in dry.stdout
    assert {p.name for p in run_dirs(project)} == set(dirs)  # nothing deleted
    assert show_hashes(project) == set(by_i.values())

    done = project.run("rm", "config.i >= 2", "--yes")
    assert done.returncode == 0, done.output
    assert listed(done.stdout)["runs"] == items  # the same set, the same lines
    assert freed(done.stdout) == expected_bytes
    assert {p.name for p in run_dirs(project)} == set(by_i.values()) - chosen
    # The Reader, read twice (the second from its index), shows the remaining runs only.
    assert show_hashes(project) == set(by_i.values()) - chosen
    assert show_hashes(project) == set(by_i.values()) - chosen
    assert not list((project.log_dir / ".xprun-trash").iterdir())  # deleted, not just moved

    # By full hash, and by a unique prefix.
    assert project.run("rm", by_i[0], "--yes").returncode == 0
    assert project.run("rm", by_i[1][:6], "--yes").returncode == 0
    assert run_dirs(project) == []
    # A relaunch runs exactly the removed runs again.
    again = project.run("-q")
    assert again.returncode == 0
    assert "4 complete" in again.stdout and "cached" not in again.stdout


def test_i13_cleanup_rm_by_node_id(project):
    grid(project)
    assert project.run("-q").returncode == 0
    by_i = hashes_of(project)
    one = project.run("rm", "xp_a.py::xp_f[i=1]", "--yes")
    assert one.returncode == 0, one.output
    assert {p.name for p in run_dirs(project)} == set(by_i.values()) - {by_i[1]}
    every = project.run("rm", "xp_a.py::xp_f")  # the experiment's node id: all its runs
    assert len(listed(every.stdout)["runs"]) == 3
    assert len(run_dirs(project)) == 3


def test_i13_cleanup_unknown_names_exit_4_and_delete_nothing(project):
    grid(project)
    assert project.run("-q").returncode == 0
    before = sorted(p.name for p in run_dirs(project))
    for args in (
        ["rm", "0000dead", "--yes"],  # a hash no run has
        ["rm", "config.i ==", "--yes"],  # not a query
        ["rm", "nosuch.py::xp_f", "--yes"],  # a node id no run has
        ["rm", "config.i == 0", "0000dead", "--yes"],  # one good word does not suffice
        ["rm", "config.i == 0", "--yes", "--log-dir", "nowhere"],
        ["gc", "--keep-checkpoints", "0", "--yes"],
        ["gc", "--grace", "soon", "--yes"],
    ):
        result = project.run(*args)
        assert result.returncode == 4, (args, result.output)
        assert result.stderr.startswith("ERROR: "), result.stderr
    assert sorted(p.name for p in run_dirs(project)) == before


def _sleeper(project, release: Path, started: Path) -> None:
    project.write(
        "xp_wait.py",
        f"""
        import os, time
        from pathlib import Path
        import xprun

        @xprun.config({{"j": 0}})
        def xp_wait(config):
            Path({str(started)!r}).write_text(str(os.getpid()))
            while not Path({str(release)!r}).exists():
                time.sleep(0.05)
            return {{"done": 1}}
        """,
    )


def _wait_for(path: Path, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 60
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"{what}: the process ended first: {proc.communicate()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within 60 s")
        time.sleep(0.05)


def test_i13_cleanup_live_run_is_never_removed(project, tmp_path):
    release, started = tmp_path / "release", tmp_path / "started"
    _sleeper(project, release, started)
    proc = project.popen("-q", "-n", "1")  # a pool: its job folder is in use too
    try:
        _wait_for(started, proc, "the run to start")
        (run_dir,) = run_dirs(project)
        for args in (
            ["rm", run_dir.name, "--yes"],
            ["rm", "status == running", "--yes"],
            ["gc", "--failed", "--previous", "--grace", "0", "--yes"],
        ):
            result = project.run(*args)
            assert run_dir.is_dir() and (run_dir / "run.json").exists(), args
            assert not (project.log_dir / ".xprun-trash").exists() or not list(
                (project.log_dir / ".xprun-trash").iterdir()
            )
            if args[0] == "rm":
                assert result.returncode == 1, result.output  # asked for, and kept
                assert "running" in "\n".join(listed(result.stdout)["kept"])
                assert "runs" not in listed(result.stdout)
        jobs = list((project.log_dir / ".xprun-jobs").iterdir())
        assert len(jobs) == 1 and (jobs[0] / "spec.json").exists()
        gc = project.run("gc", "--grace", "0")
        assert "job folders of finished submissions" not in listed(gc.stdout)
        assert any("is running" in k for k in listed(gc.stdout)["kept"])
    finally:
        release.write_text("")
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, out + err
    assert json.loads((run_dir / "run.json").read_text())["status"] == "complete"
    # Finished now: its job folder goes, and rm removes the run.
    gc = project.run("gc", "--grace", "0", "--yes")
    assert listed(gc.stdout)["job folders of finished submissions"] == [
        f".xprun-jobs/{jobs[0].name}"
    ]
    assert not jobs[0].exists()
    assert project.run("rm", run_dir.name, "--yes").returncode == 0
    assert not run_dir.exists()


def test_i13_cleanup_stale_claim_is_not_live(project, tmp_path):
    """A run whose process was killed (its claim stale: same machine, pid gone) is an
    interrupted run: ``gc --failed`` removes it, plain ``gc`` keeps it."""
    release, started = tmp_path / "release", tmp_path / "started"
    _sleeper(project, release, started)
    proc = project.popen("-q")
    _wait_for(started, proc, "the run to start")
    os.kill(int(started.read_text()), signal.SIGKILL)  # inline: the run's process is xprun
    proc.communicate(timeout=60)
    (run_dir,) = run_dirs(project)
    assert list(run_dir.glob("claim.*"))  # a claim is left behind, stale
    assert project.run("gc", "--grace", "0", "--yes").returncode == 0
    assert run_dir.is_dir()
    result = project.run("gc", "--failed", "--grace", "0", "--yes")
    assert listed(result.stdout)["failed, interrupted and unfinished runs"] == [
        f"xp_wait.xp_wait/{run_dir.name}  interrupted  xp_wait.py::xp_wait"
    ]
    assert not run_dir.exists()


def test_i13_cleanup_checkpoints_beyond_keep(project):
    grid(project)
    assert project.run("-q").returncode == 0
    dirs = run_dirs(project)
    for run_dir in dirs:
        assert len(list((run_dir / "checkpoints").glob("ckpt-*"))) == 3

    two = project.run("gc", "--keep-checkpoints", "2", "--grace", "0", "--yes")
    assert two.returncode == 0, two.output
    assert len(listed(two.stdout)["checkpoints beyond keep=2"]) == len(dirs)
    for run_dir in dirs:
        names = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
        assert names == [
            "ckpt-00000002.tree.npz",
            "ckpt-00000003.tree.npz",
            "steps-00000002.json",
            "steps-00000003.json",
        ]
    one = project.run("gc", "--grace", "0", "--yes")
    assert len(listed(one.stdout)["checkpoints beyond keep=1"]) == len(dirs)
    for run_dir in dirs:
        names = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
        assert names == ["ckpt-00000003.tree.npz", "steps-00000003.json"]
    assert "checkpoints" not in project.run("gc", "--grace", "0").stdout
    # The run still resumes from its last checkpoint: the one kept is the newest.
    script = (
        "from xprun.logger import load_checkpoint; import sys; "
        "print(load_checkpoint(sys.argv[1])['k'])"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script, str(dirs[0])], capture_output=True, text=True
    )
    assert loaded.stdout.strip() == "2", loaded.stderr


def test_i13_cleanup_previous_attempts_only_with_the_flag(project):
    grid(project)
    assert project.run("-q").returncode == 0
    assert project.run("-q", "--force", "i=0").returncode == 0
    (previous,) = project.log_dir.glob("*/*/previous/1")
    assert project.run("gc", "--grace", "0", "--yes").returncode == 0
    assert previous.is_dir()
    result = project.run("gc", "--previous", "--grace", "0", "--yes")
    assert listed(result.stdout)["replaced attempts (previous/<N>/ of --force reruns)"] == [
        previous.relative_to(project.log_dir).as_posix()
    ]
    assert not previous.parent.exists()
    assert len(show_hashes(project)) == 4


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=True
    ).stdout


def test_i13_cleanup_gc_unreferenced_snapshots_sessions_and_sources(project):
    project.write("helper.py", "SCALE = 1\n")
    project.write(
        "xp_s.py",
        """
        import xprun
        import helper

        @xprun.config({"i": 0})
        def xp_s(config):
            return {"v": config.i * helper.SCALE}
        """,
    )
    git_commit_all(project.root, "first")
    assert project.run("-q", "-n", "1", "i=0").returncode == 0
    project.write("helper.py", "SCALE = 2\n")  # launch 2 runs other code
    git_commit_all(project.root, "second")
    assert project.run("-q", "-n", "1", "i=1").returncode == 0
    records = {r["config"]["i"]: r for r in map(_record, run_dirs(project))}
    first, second = records[0], records[1]
    commit1, commit2 = first["git"]["snapshot"], second["git"]["snapshot"]
    assert commit1 != commit2
    session1, session2 = first.get("session"), second.get("session")
    sessions = project.log_dir / ".xprun-sessions"
    sources = project.log_dir / ".xprun-sources"

    def blobs(session_id: str) -> set[str]:
        data = json.loads((sessions / f"{session_id}.json").read_text())
        return set(data["sources"].values())

    only1 = blobs(session1) - blobs(session2)
    assert only1  # helper.py as launch 1 ran it
    # Planted: a session file no run names, and a blob no session names.
    orphan_session = sessions / "20200101T000000Z-0badcafe.json"
    orphan_session.write_text(json.dumps({"format": 1, "id": orphan_session.stem, "sources": {}}))
    orphan_blob = sources / ("f" * 32)
    orphan_blob.write_text("x")

    def refs():
        return set(
            git(project.root, "for-each-ref", "--format=%(objectname)", "refs/xprun").split()
        )

    assert refs() == {commit1, commit2}

    # Young files are kept (a launch under way may still need them): the default grace.
    young = project.run("gc")
    assert "session files no run references" not in listed(young.stdout)
    assert "source-store entries no session references" not in listed(young.stdout)

    rm = project.run("rm", "config.i == 0", "--yes")
    assert rm.returncode == 0, rm.output
    dry = project.run("gc", "--grace", "0")
    groups = listed(dry.stdout)
    done = project.run("gc", "--grace", "0", "--yes")
    assert done.returncode == 0, done.output
    assert listed(done.stdout) == groups  # the dry run listed exactly what was removed
    assert set(groups["session files no run references"]) == {
        f".xprun-sessions/{session1}.json",
        f".xprun-sessions/{orphan_session.name}",
    }
    assert set(groups["source-store entries no session references"]) == {
        f".xprun-sources/{b}" for b in only1 | {orphan_blob.name}
    }
    assert groups["snapshot refs no run references"] == [f"refs/xprun/snapshots/{commit1}"]
    snapshot_dir = project.root / ".xprun" / "snapshots"
    assert groups["extracted snapshots no run references"] == [str(snapshot_dir / commit1)]
    assert len(groups["job folders of finished submissions"]) == 2
    # Removed, and what the remaining run references kept.
    assert refs() == {commit2}
    assert not (snapshot_dir / commit1).exists() and (snapshot_dir / commit2).is_dir()
    assert sorted(p.name for p in sessions.iterdir()) == [f"{session2}.json"]
    assert {p.name for p in sources.iterdir()} == blobs(session2)
    assert freed(done.stdout) == freed(dry.stdout) > 0
    assert project.run("gc", "--grace", "0").stdout == "nothing to remove\n"
    assert project.run("gc", "--grace", "0", "--yes").stdout == "nothing to remove\n"
    # The remaining run still reads, and its code is still there.
    assert show_hashes(project) == {second["hash"]}
    assert git(project.root, "show", f"{commit2}:helper.py") == "SCALE = 2\n"


def test_i13_cleanup_kill_9_in_the_middle_of_gc(project, tmp_path):
    """A gc killed between moving a run into the trash and deleting it.

    A real kill cannot be timed to land between a rename and the next call, so the clean-up
    is stopped there deterministically: the test-only variable ``_XPRUN_TEST_CLEANUP_PAUSE``
    makes it create a file after its first move into the trash and wait; the test then kills
    it with SIGKILL, as a lost node or an OOM killer would.
    """
    grid(project, fail=True)
    assert project.run("-q", "i=3,4").returncode == 1  # two failed runs
    assert project.run("-q", "i=0,1").returncode == 0
    by_i = hashes_of(project)
    failed = {by_i[3], by_i[4]}
    paused = tmp_path / "paused"
    env = {**project.env(), "_XPRUN_TEST_CLEANUP_PAUSE": str(paused)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "xprun", "gc", "--failed", "--grace", "0", "--yes"],
        cwd=project.root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for(paused, proc, "gc to move its first run into the trash")
    finally:
        proc.kill()  # SIGKILL
        proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    trash = project.log_dir / ".xprun-trash"
    (trashed,) = list(trash.iterdir())  # one run moved whole, not deleted
    assert (trashed / "run.json").exists() and (trashed / "config.yaml").exists()
    gone = {h for h in failed if not (run_dirs(project)[0].parent / h).exists()}
    assert len(gone) == 1
    # The Reader reads exactly the remaining runs (twice: fresh, then from its index).
    remaining = set(by_i.values()) - gone
    assert show_hashes(project) == remaining
    assert show_hashes(project) == remaining
    # A relaunch runs the removed run as new (attempt 1) and the failed one kept as its
    # next attempt; the complete ones are cached.
    again = project.run("-q", "i=0,1,3,4")
    records = {r["hash"]: r for r in map(_record, run_dirs(project))}
    assert records[next(iter(gone))]["attempt"] == 1
    assert records[next(iter(failed - gone))]["attempt"] == 2
    assert "2 cached" in again.stdout, again.output
    # A second gc finishes the trash.
    second = project.run("gc", "--grace", "0")
    assert listed(second.stdout)["trash left by an interrupted clean-up"] == [
        f".xprun-trash/{trashed.name}"
    ]
    assert project.run("gc", "--grace", "0", "--yes").returncode == 0
    assert list(trash.iterdir()) == []
    assert show_hashes(project) == set(by_i.values())


def _slurm_up() -> bool:
    import shutil

    if not shutil.which("sbatch"):
        return False
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=30)
    return "UP" in ping.stdout


def _poll(predicate, what: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.5)


def test_i13_cleanup_gc_keeps_a_queued_submission_and_its_snapshot(project):
    """A SLURM job held in the queue has no run directory yet: only the queue says its job
    folder (and the snapshot its spec names) is still needed."""
    import pytest

    if not _slurm_up():
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but no SLURM cluster answers")
        pytest.skip("no SLURM cluster here")
    project.write(
        "pyproject.toml",
        '[tool.xprun]\nlog_dir = "xprun_logs"\n[tool.xprun.slurm]\nsbatch_args = ["--hold"]\n',
    )
    project.write("xp_q.py", "def xp_q():\n    return {'v': 1}\n")
    git_commit_all(project.root)
    assert project.run("--scheduler", "slurm").returncode == 0
    (job_dir,) = (project.log_dir / ".xprun-jobs").iterdir()
    job_id = json.loads((job_dir / "job.json").read_text())["job_ids"][0]
    try:
        _held_then_released(project, job_dir, job_id)
    finally:
        subprocess.run(["scancel", job_id], capture_output=True)  # never left held


def _held_then_released(project, job_dir: Path, job_id: str) -> None:
    commit = json.loads((job_dir / "spec.json").read_text())["git"]["snapshot"]
    held = project.run("gc", "--grace", "0", "--yes")
    assert held.returncode == 0, held.output
    assert job_dir.is_dir() and "queued or running" in "\n".join(listed(held.stdout)["kept"])
    assert commit in git(project.root, "for-each-ref", "refs/xprun")
    assert (project.root / ".xprun" / "snapshots" / commit).is_dir()

    subprocess.run(["scontrol", "release", job_id], check=True)
    _poll(lambda: [r["status"] for r in map(_record, run_dirs(project))] == ["complete"], "run")
    _poll(
        lambda: (
            not subprocess.run(
                ["squeue", "-h", "-j", job_id], capture_output=True, text=True
            ).stdout.strip()
        ),
        "the job to leave the queue",
    )
    done = project.run("gc", "--grace", "0", "--yes")
    assert listed(done.stdout)["job folders of finished submissions"] == [
        f".xprun-jobs/{job_dir.name}"
    ]
    assert not job_dir.exists()
    assert commit in git(project.root, "for-each-ref", "refs/xprun")  # the run names it


def test_i13_cleanup_a_run_started_after_the_listing_is_kept(project, tmp_path, monkeypatch):
    """``rm --yes`` lists, then removes: a launcher that claims a run in between must win.

    In process, because a real launch cannot be timed to claim the run between the listing
    and the removal: the plan is made first (the run is complete then), a real ``xprun
    --force`` process then claims the run and holds it, and only then is the plan carried
    out.  The claim taken before moving (``store.acquire``) is what keeps the run.
    """
    from xprun import cleanup

    release, started = tmp_path / "release", tmp_path / "started"
    _sleeper(project, release, started)
    release.write_text("")
    assert project.run("-q").returncode == 0
    (run_dir,) = run_dirs(project)
    monkeypatch.chdir(project.root)
    ctx = cleanup.Context.make(None, 0.0)
    items, kept = cleanup.plan_rm(ctx, [run_dir.name])
    assert [item.run for item in items] == [run_dir] and kept == []
    release.unlink()
    started.unlink()
    proc = project.popen("-q", "--force")
    try:
        _wait_for(started, proc, "the forced rerun to start")
        outcome = cleanup.carry_out(ctx, items)
        assert outcome.removed == [] and "started running meanwhile" in outcome.kept[0]
        assert (run_dir / "run.json").exists()
    finally:
        release.write_text("")
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, out + err
    assert json.loads((run_dir / "run.json").read_text())["attempt"] == 2
