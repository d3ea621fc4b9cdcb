"""Issue 11, targets 3 and 4: the per-run path, made cheaper, still writes the same run
directory with the same guarantees.

The CPU path per run lost Python objects and system calls (``read_state`` of a run directory
that does not exist is one ``stat``; the claim's token is compared with the bytes written
before it is parsed; the metrics file's size comes from the ``fstat`` that opened it;
``write_bytes_atomic`` takes text paths and writes in one call when it can).  These tests pin
behaviour, never time: the files of a run and their contents, nothing left behind, a killed
launcher's run taken over and run again, and each shortcut against the case it must not
cover (a broken link, a file in place of a run directory, a claim rewritten by another owner,
a short write, a torn metrics line).  The figures are measured by
``benchmarks/bench_overhead.py`` (docs/performance.md).
"""

from __future__ import annotations

import json
import os
import signal
import stat
import time
from pathlib import Path

import pytest
import yaml
from conftest import Project

from xprun import logger as xlogger
from xprun import store
from xprun.states import Status

pytestmark = pytest.mark.inprocess  # xprun launched in the test's process (tests/launch.py)

FOLDER = "xp_path.xp_path"

XP = """\
import os
import time

import xprun


@xprun.config({
    "seed": 0, "lr": 0.1, "optimizer": "sgd",
    "model": {"depth": 4, "width": 128},
})
def xp_path(config, logger):
    logger.log_metrics({"loss": 1.0 / (1 + config.seed)})
    started = os.environ.get("STARTED")
    if started:
        with open(started, "w") as f:
            f.write(str(os.getpid()))
        time.sleep(60)
    return {"loss": 0.5, "seed": config.seed}
"""

CLOCK = store.FsClock(Path("/nonexistent-xprun-clock-dir"))  # local clock: probe fails
HEARTBEAT = store.Heartbeat(interval=1.0, timeout=30.0)


def _leftovers(run_dir: Path) -> list[str]:
    """Temporary files and claims anywhere under a run directory."""
    return sorted(
        str(path.relative_to(run_dir))
        for path in run_dir.rglob("*")
        if path.name.startswith(store.CLAIM_PREFIX) or path.name.endswith(".tmp")
    )


def test_i11_run_path_a_sweep_writes_whole_records_and_leaves_nothing_behind(project: Project):
    project.write("xp_path.py", XP)
    result = project.run("-q", "seed=range(0,3)")
    assert result.returncode == 0, result.output
    run_dirs = project.run_dirs(FOLDER)
    assert len(run_dirs) == 3
    seeds = set()
    for run_dir in run_dirs:
        assert sorted(p.name for p in run_dir.iterdir()) == [
            "config.yaml",
            "metrics",
            "outcome.json",
            "run.json",
        ]
        assert _leftovers(run_dir) == []
        record = json.loads((run_dir / "run.json").read_text())
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
        seed = config["seed"]
        seeds.add(seed)
        assert config == {
            "seed": seed,
            "lr": 0.1,
            "optimizer": "sgd",
            "model": {"depth": 4, "width": 128},
        }
        assert (run_dir / "config.yaml").read_text() == yaml.dump(config, sort_keys=False)
        assert record["status"] == Status.COMPLETE and record["attempt"] == 1
        assert record["format"] == store.FORMAT_VERSION and record["hash"] == run_dir.name
        assert record["end"] is not None and record["duration"] >= 0
        assert "packages" in record and record["git"] and record["host"]
        assert json.loads((run_dir / "outcome.json").read_text()) == {"loss": 0.5, "seed": seed}
        (line,) = (run_dir / "metrics" / "metrics.jsonl").read_text().splitlines()
        metric = json.loads(line)
        assert (metric["step"], metric["attempt"], metric["loss"]) == (0, 1, 1.0 / (1 + seed))
    assert seeds == {0, 1, 2}


def test_i11_run_path_a_run_whose_launcher_was_killed_is_run_again_as_attempt_2(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # A real SIGKILL while the experiment runs: the run directory holds the claim of a dead
    # process and a `running` record.  The next launch must see it (the directory exists:
    # read_state's one-stat answer for a missing directory must not apply), take it over
    # and run it again, leaving no claim and no temporary file.
    project.write("xp_path.py", XP)
    started = tmp_path / "started"
    monkeypatch.setenv("STARTED", str(started))  # the project's environment is the test's
    proc = project.popen("-q", "seed=7")
    try:
        deadline = time.monotonic() + 60
        while not started.exists() or not started.read_text():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the experiment never started"
            time.sleep(0.05)
        (run_dir,) = project.log_dir.glob(f"{FOLDER}/*")
        assert json.loads((run_dir / "run.json").read_text())["status"] == Status.RUNNING
        assert (run_dir / "claim.1").exists()
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.communicate()

    state = store.read_state(run_dir, CLOCK, HEARTBEAT)
    assert state.status == Status.INTERRUPTED and state.attempt == 1  # dead pid, same machine

    result = project.run("-q", "seed=7", env={"STARTED": ""})
    assert result.returncode == 0, result.output
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == Status.COMPLETE and record["attempt"] == 2
    assert json.loads((run_dir / "outcome.json").read_text()) == {"loss": 0.5, "seed": 7}
    assert _leftovers(run_dir) == []
    lines = [json.loads(x) for x in (run_dir / "metrics" / "metrics.jsonl").read_text().split()]
    assert lines[-1]["attempt"] == 2  # the killed attempt's line, if flushed, stays before


def test_i11_run_path_state_of_a_missing_run_directory_and_of_what_stands_in_its_place(
    tmp_path: Path,
):
    folder = tmp_path / "xp"
    folder.mkdir()
    missing = store.read_state(folder / "absent", CLOCK, HEARTBEAT)
    assert (missing.status, missing.attempt, missing.record, missing.owner) == (
        Status.NEW,
        0,
        None,
        None,
    )
    assert store.read_state(str(folder / "absent"), CLOCK, HEARTBEAT).status == Status.NEW

    (folder / "broken").symlink_to(tmp_path / "nowhere")  # a broken link: nothing there
    assert store.read_state(folder / "broken", CLOCK, HEARTBEAT).status == Status.NEW

    (folder / "afile").write_text("not a directory")  # neither a record nor claims in it
    assert store.read_state(folder / "afile", CLOCK, HEARTBEAT).status == Status.NEW

    # A directory that exists is read as before: its live claim says running, its record
    # says complete.
    run_dir = folder / "run"
    run_dir.mkdir()
    assert store.read_state(run_dir, CLOCK, HEARTBEAT).status == Status.NEW
    claim = store.Claim.try_create(run_dir, 1)
    assert claim is not None
    running = store.read_state(run_dir, CLOCK, HEARTBEAT)
    assert running.status == Status.RUNNING and running.owner is not None
    assert running.owner.owner["token"] == claim.token
    claim.release()
    store.write_json_atomic(run_dir / "run.json", {"status": "complete", "attempt": 1})
    done = store.read_state(str(run_dir), CLOCK, HEARTBEAT)
    assert done.complete and done.attempt == 1


def test_i11_run_path_a_claim_is_held_by_the_bytes_it_wrote_or_by_its_token(tmp_path: Path):
    claim = store.Claim.try_create(tmp_path, 1)
    assert claim is not None and claim.path == tmp_path / "claim.1"
    written = claim.path.read_bytes()
    assert json.loads(written)["token"] == claim.token and claim.holds()
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(claim.path.stat().st_mode) == 0o666 & ~umask  # as open(path, "w")

    # The same owner, written another way (other spacing, fewer fields): still ours.
    claim.path.write_text(json.dumps({"token": claim.token}, indent=2))
    assert claim.holds()
    # Another owner's claim of the same size as ours: not ours.
    other = json.loads(written)
    other["token"] = "f" * len(claim.token)
    claim.path.write_bytes(json.dumps(other).encode())
    assert len(claim.path.read_bytes()) == len(written)
    assert not claim.holds() and claim.lost
    # Our very bytes again: ours (the comparison that spares the parse).
    claim.lost = False
    claim.path.write_bytes(written)
    assert claim.holds()
    for damaged in (b"", b"{", b"[1, 2]", b"null"):
        claim.lost = False
        claim.path.write_bytes(damaged)
        assert not claim.holds(), damaged

    # A claim made by hand (not by try_create) has no bytes to compare: its token decides.
    manual = store.Claim(tmp_path, 1)
    claim.path.write_text(json.dumps({"token": manual.token}))
    assert manual.holds()
    manual.release()
    assert not claim.path.exists()


def test_i11_run_path_atomic_writes_take_text_or_path_and_finish_short_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    data = bytes(range(256)) * 40
    store.write_bytes_atomic(tmp_path / "a.bin", data)
    store.write_bytes_atomic(str(tmp_path / "b.bin"), data)
    store.write_json_atomic(str(tmp_path / "c.json"), {"ü": 1})
    assert (tmp_path / "a.bin").read_bytes() == (tmp_path / "b.bin").read_bytes() == data
    umask = os.umask(0)
    os.umask(umask)
    for name in ("a.bin", "b.bin", "c.json"):  # as open(path, "w") would make it
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask, name
    assert (tmp_path / "c.json").read_text(encoding="utf-8") == '{"ü": 1}'

    monkeypatch.chdir(tmp_path)  # a bare name: written beside, in the current folder
    store.write_text_atomic("d.txt", "bare")
    assert (tmp_path / "d.txt").read_text() == "bare"

    synced: list[str] = []
    real_fsync, real_write = os.fsync, os.write
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(os.readlink(f"/proc/self/fd/{fd}")))
    monkeypatch.setattr(os, "write", lambda fd, chunk: real_write(fd, bytes(chunk[:7])))
    store.write_bytes_atomic(str(tmp_path / "e.bin"), data, durable=True)
    store.write_text_atomic("f.txt", "short writes", durable=True)
    monkeypatch.setattr(os, "write", real_write)
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert (tmp_path / "e.bin").read_bytes() == data
    assert (tmp_path / "f.txt").read_text() == "short writes"
    # Each file's data before its rename, then its folder after it.
    pid = os.getpid()
    assert synced == [
        str(tmp_path / f".e.bin.{pid}.tmp"),
        str(tmp_path),
        str(tmp_path / f".f.txt.{pid}.tmp"),
        str(tmp_path),
    ]
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_i11_run_path_metrics_after_a_torn_line_start_on_a_line_of_their_own(tmp_path: Path):
    run_dir = tmp_path / "run"
    (run_dir / "metrics").mkdir(parents=True)
    (run_dir / "metrics" / "metrics.jsonl").write_text('{"step":0,"loss":1.0}\n{"step":1,"lo')
    log = xlogger.Logger(run_dir, attempt=2)
    log.log_metrics({"loss": 0.25})
    log.close()
    lines = (run_dir / "metrics" / "metrics.jsonl").read_text().split("\n")
    assert lines[:2] == ['{"step":0,"loss":1.0}', '{"step":1,"lo']
    assert json.loads(lines[2])["step"] == 1 and json.loads(lines[2])["loss"] == 0.25
    assert lines[3:] == [""]

    # A whole last line: appended right after it; a new run's folder made on the first flush.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    for folder in (run_dir, fresh):
        log = xlogger.Logger(folder, attempt=3, new_run_dir=folder is fresh)
        log.log_metrics({"loss": 0.5}, name="other")
        log.close()
        assert json.loads((folder / "metrics" / "other.jsonl").read_text())["loss"] == 0.5

    # The run directory removed while the run logs: made again, as before.
    gone = tmp_path / "gone"
    log = xlogger.Logger(gone, attempt=1, new_run_dir=True)
    log.log_metrics({"loss": 0.75})
    log.close()
    assert json.loads((gone / "metrics" / "metrics.jsonl").read_text())["loss"] == 0.75
