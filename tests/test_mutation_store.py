"""The run directory's storage rules, each checked where mutation testing found it unchecked
(tools/mutation.py, xprun/store.py): names and format on disk, default heartbeat timings,
what is fsynced, temporary files, full-disk messages, claim races that never settle.

Unit tests of ``xprun.store`` and in-process sessions (tests/inprocess.py): fast enough to be
run once per mutant.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import inprocess as _inprocess
import pytest

from xprun import store

inprocess = _inprocess.inprocess  # the fixture


def _aged(path: Path, seconds: float) -> None:
    then = path.stat().st_mtime - seconds
    os.utime(path, (then, then))


def _claim_file(run_dir: Path, attempt: int, owner: dict | None, age: float) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / f"claim.{attempt}"
    path.write_text(json.dumps(owner) if owner is not None else "")
    _aged(path, age)
    return path


# -- names and format on disk (docs/run-directory.md) ------------------------------------------


def test_i10_03_a_run_directory_holds_run_json_outcome_json_and_its_format(inprocess, project):
    project.write("xp_one.py", "def xp_one():\n    return {'v': 1}\n")
    result = inprocess.run()
    assert result.ret == 0, result.output
    (run_dir,) = result.run_dirs()
    record = json.loads((run_dir / "run.json").read_text())
    assert record["format"] == 2 and record["status"] == "complete"  # 2: issue 13
    assert json.loads((run_dir / "outcome.json").read_text()) == {"v": 1}


def test_i10_03_the_file_system_clock_is_read_from_xprun_clock_in_the_log_dir(tmp_path):
    store.FsClock(tmp_path).now()
    assert [p.name for p in tmp_path.iterdir()] == [".xprun-clock"]


# -- default heartbeat timings (docs/guide.md: 5 s interval, 60 s timeout) ---------------------


@pytest.mark.parametrize(("age", "stale"), [(55.0, False), (65.0, True)])
def test_i10_03_a_silent_claim_is_stale_after_the_default_60_seconds(tmp_path, age, stale):
    owner = {"host": "elsewhere", "machine": "another-boot", "pid": 1}
    _claim_file(tmp_path, 1, owner, age)
    (claim,) = store.list_claims(tmp_path)
    assert claim.is_stale(store.FsClock(tmp_path), store.Heartbeat()) is stale


@pytest.mark.parametrize(("age", "stale"), [(4.0, False), (5.5, True)])
def test_i10_03_a_claim_without_owner_is_stale_after_the_default_5_second_interval(
    tmp_path, age, stale
):
    _claim_file(tmp_path, 1, None, age)
    (claim,) = store.list_claims(tmp_path)
    assert claim.is_stale(store.FsClock(tmp_path), store.Heartbeat()) is stale


# -- what is fsynced ---------------------------------------------------------------------------


@pytest.fixture
def fsyncs(monkeypatch) -> list[str]:
    """What ``os.fsync`` is called on: a file's path, or a directory's."""
    synced: list[str] = []
    real = os.fsync

    def spy(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    return synced


@pytest.mark.parametrize(
    "write",
    [
        lambda path, **kw: store.write_bytes_atomic(path, b"{}", **kw),
        lambda path, **kw: store.write_text_atomic(path, "{}", **kw),
        lambda path, **kw: store.write_json_atomic(path, {}, **kw),
    ],
    ids=["bytes", "text", "json"],
)
def test_i10_03_only_durable_writes_are_fsynced_with_their_directory(tmp_path, fsyncs, write):
    write(tmp_path / "plain.json")
    assert fsyncs == []  # metrics, configs, logs: atomic but not synced (docs/performance.md)
    write(tmp_path / "decisive.json", durable=True)
    assert len(fsyncs) == 2 and fsyncs[-1] == str(tmp_path)
    assert Path(fsyncs[0]).name.startswith(".decisive.json.")  # the file, before its rename
    assert json.loads((tmp_path / "decisive.json").read_text()) == {}


def test_i10_03_a_failed_atomic_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "run.json"
    target.write_text("old")

    def replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError):
        store.write_text_atomic(target, "new", durable=True)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]


# -- temporary files of killed writes ----------------------------------------------------------


def test_i10_03_remove_stale_temporaries_counts_what_it_removed_and_keeps_the_rest(tmp_path):
    (tmp_path / "metrics").mkdir()
    (tmp_path / ".run.json.123.tmp").write_text("")
    (tmp_path / "metrics" / ".loss.jsonl.9.tmp").write_text("")
    kept = ["run.json", ".hidden", "x.tmp", ".run.json.tmp", ".run.json.12a.tmp"]
    for name in kept:
        (tmp_path / name).write_text("")
    assert store.remove_stale_temporaries(tmp_path) == 2
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == sorted(kept)
    assert list((tmp_path / "metrics").iterdir()) == []
    assert store.remove_stale_temporaries(tmp_path) == 0


# -- a full disk is named ----------------------------------------------------------------------


@pytest.mark.skipif(not os.path.ismount("/proc"), reason="needs /proc mounted (Linux)")
def test_i10_03_the_full_disk_is_named_by_its_mount_point_even_for_a_missing_path():
    assert store.disk_of(Path("/proc/no-such-dir/deeper")) == Path("/proc")
    assert store.disk_of(Path("/proc/self")) == Path("/proc")


def test_i10_03_the_full_disk_message_names_the_path_its_mount_and_what_to_do(tmp_path):
    message = store.disk_full_message(tmp_path / "run", OSError(28, "No space left on device"))
    assert str(tmp_path / "run") in message
    assert f"mounted at {store.disk_of(tmp_path)}" in message
    assert "No space left on device" in message and "free some space" in message


# -- claim races that never settle -------------------------------------------------------------


def test_i10_03_acquire_gives_up_after_repeated_lost_races_and_names_the_last_owner(
    tmp_path, monkeypatch
):
    tries: list[int] = []

    def always_taken(run_dir, attempt, fresh=False):
        tries.append(attempt)
        return None

    monkeypatch.setattr(store.Claim, "try_create", staticmethod(always_taken))
    stale = _claim_file(tmp_path, 3, {"host": "h", "machine": "m", "pid": 1}, age=3600)
    acquired = store.acquire(tmp_path, store.FsClock(tmp_path), store.Heartbeat())
    assert acquired.claim is None and acquired.owner is not None
    assert acquired.owner.path == stale and acquired.owner.attempt == 3
    assert tries == [4] * 8  # a bounded number of looks, never an endless loop


def test_i10_03_the_file_system_clock_is_probed_once_a_minute_at_most(tmp_path, monkeypatch):
    now = [1000.0]
    probes: list[float] = []
    monkeypatch.setattr(store.time, "monotonic", lambda: now[0])
    clock = store.FsClock(tmp_path)
    monkeypatch.setattr(clock, "_read_fs_time", lambda: probes.append(now[0]) or 5000.0)
    assert clock.now() == 5000.0
    now[0] = 1060.0
    assert clock.now() == 5060.0  # advanced by the monotonic clock, not probed again
    now[0] = 1060.5
    assert clock.now() == 5000.0  # a minute passed: probed again
    assert probes == [1000.0, 1060.5]


# -- records and claims that cannot be trusted -------------------------------------------------


def test_i10_03_a_record_over_16_mib_is_not_read(tmp_path):
    path = tmp_path / "run.json"
    record = {"status": "complete", "attempt": 1}
    text = json.dumps(record)
    path.write_text(text + " " * (16 * 1024 * 1024 - len(text)))  # exactly 16 MiB: read
    assert store.read_record(tmp_path) == record
    with open(path, "a") as f:
        f.write(" ")  # one byte more: refused, the run is attempted again
    assert store.read_record(tmp_path) is None


@pytest.mark.parametrize(
    ("fields", "trusted"),
    [
        ({"attempt": 0, "status": "new"}, True),
        ({"attempt": 3}, True),
        ({"attempt": -1, "status": "complete"}, False),
        ({"attempt": "1", "status": "complete"}, False),
        ({"attempt": True, "status": "complete"}, False),
        ({"attempt": 1, "status": 5}, False),
    ],
)
def test_i10_03_a_record_with_a_damaged_attempt_or_status_is_not_trusted(tmp_path, fields, trusted):
    (tmp_path / "run.json").write_text(json.dumps(fields))
    assert (store.read_record(tmp_path) == fields) is trusted
    assert (store.read_record(tmp_path) is None) is not trusted


def test_i10_03_a_claim_over_64_kib_has_no_owner(tmp_path):
    owner = {"pid": 1, "host": "h", "token": "t"}
    padded = {"pad": "x" * (64 * 1024 - len(json.dumps({**owner, "pad": ""})) + 1), **owner}
    (tmp_path / "claim.1").write_text(json.dumps(padded))
    assert len((tmp_path / "claim.1").read_bytes()) == 64 * 1024 + 1
    (claim,) = store.list_claims(tmp_path)
    assert claim.owner == {}
    padded["pad"] = padded["pad"][:-1]  # 64 KiB exactly: read whole
    (tmp_path / "claim.1").write_text(json.dumps(padded))
    (claim,) = store.list_claims(tmp_path)
    assert claim.owner == padded


def test_i10_03_without_hard_links_a_claim_is_created_exclusively_and_whole(tmp_path, monkeypatch):
    def no_links(src, dst):
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    umask = os.umask(0o022)
    try:
        claim = store.Claim.try_create(tmp_path, 1)
    finally:
        os.umask(umask)
    assert (tmp_path / "claim.1").stat().st_mode & 0o777 == 0o644
    assert claim is not None and claim.holds()
    assert json.loads((tmp_path / "claim.1").read_text())["token"] == claim.token
    assert store.Claim.try_create(tmp_path, 1) is None
    assert [p.name for p in tmp_path.iterdir()] == ["claim.1"]  # no temporary left


@pytest.mark.parametrize("status", ["complete", "failed", "running"])
def test_i10_03_only_a_complete_record_reads_complete(tmp_path, status):
    (tmp_path / "run.json").write_text(json.dumps({"status": status, "attempt": 1}))
    state = store.read_state(tmp_path, store.FsClock(tmp_path), store.Heartbeat())
    assert state.complete is (status == "complete")


@pytest.mark.parametrize(
    ("record", "status", "attempt"),
    [
        (None, "new", 0),
        ({"status": "running", "attempt": 2}, "interrupted", 2),  # nobody owns it any more
        ({"status": "failed", "attempt": 1}, "failed", 1),
        ({"status": "interrupted", "attempt": 3}, "interrupted", 3),
    ],
)
def test_i10_03_the_state_of_a_run_without_claims_is_its_record(tmp_path, record, status, attempt):
    if record is not None:
        (tmp_path / "run.json").write_text(json.dumps(record))
    state = store.read_state(tmp_path, store.FsClock(tmp_path), store.Heartbeat())
    assert (state.status, state.attempt, state.record, state.owner) == (
        status,
        attempt,
        record,
        None,
    )


def test_i10_03_a_fifo_in_place_of_run_json_is_no_record_and_does_not_block(tmp_path):
    os.mkfifo(tmp_path / "run.json")  # opened for reading, a FIFO would wait for a writer
    assert store.read_record(tmp_path) is None


class _Clock:
    """A clock standing still at ``now``."""

    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


@pytest.mark.parametrize(
    ("owner", "limit"), [({"host": "h", "machine": "m", "pid": 1}, 60.0), ({}, 5.0)]
)
def test_i10_03_a_claim_exactly_as_old_as_the_limit_is_still_live(tmp_path, owner, limit):
    claim = store.ClaimInfo(1, tmp_path / "claim.1", 1000.0, owner)
    assert not claim.is_stale(_Clock(1000.0 + limit), store.Heartbeat())
    assert claim.is_stale(_Clock(1000.0 + limit + 0.001), store.Heartbeat())


def test_i10_03_the_pid_of_a_claim_from_another_machine_is_not_checked_here(tmp_path):
    gone = os.getpid() + 4_000_000  # above any PID this machine hands out
    elsewhere = {"host": "h", "machine": "another-boot", "pid": gone}
    claim = store.ClaimInfo(1, tmp_path / "claim.1", 1000.0, elsewhere)
    assert not claim.is_stale(_Clock(1001.0), store.Heartbeat())
    here = store.ClaimInfo(
        1, tmp_path / "claim.1", 1000.0, {**elsewhere, "machine": store._MACHINE}
    )
    assert here.is_stale(_Clock(1001.0), store.Heartbeat()) is bool(store._MACHINE)


def test_i10_03_only_files_named_claim_dot_ascii_digits_are_claims(tmp_path):
    for name in ["claim.", "claim.x", "claim.1a", "claim.\u0661", "other.1", "claim", "claim.2"]:
        (tmp_path / name).write_text("")
    (tmp_path / "claim.0").write_text("")  # attempt 0 (none is made so) is still a claim name
    assert [c.path.name for c in store.list_claims(tmp_path)] == ["claim.0", "claim.2"]
    assert store.list_claims(tmp_path / "missing") == []


def test_i10_03_a_claim_is_held_only_while_it_is_the_newest_and_carries_our_token(tmp_path):
    claim = store.Claim.try_create(tmp_path, 1)
    assert claim is not None and claim.holds() is True
    (tmp_path / "claim.2").write_text(json.dumps({"token": claim.token}))  # a newer attempt
    assert claim.holds() is False and claim.lost
    (tmp_path / "claim.2").unlink()
    claim.lost = False
    assert claim.holds() is True
    (tmp_path / "claim.1").write_text(json.dumps({"token": "someone else's"}))  # replaced
    assert claim.holds() is False
    claim.lost = False
    (tmp_path / "claim.1").unlink()  # gone
    assert claim.holds() is False
    claim.lost = False
    claim.release()
    (tmp_path / "claim.1").write_text(json.dumps({"token": claim.token}))
    assert claim.holds() is True
    claim.lost = True  # a heartbeat failed
    assert claim.holds() is False


def test_i10_03_an_attempt_recorded_by_a_finisher_while_claiming_is_skipped_not_reported_elsewhere(
    tmp_path, monkeypatch
):
    # In-process: another process records attempt 1 between our claim and our re-read.
    real = store.Claim.try_create

    def finisher_records_meanwhile(run_dir, attempt, fresh=False):
        claim = real(run_dir, attempt, fresh)
        if attempt == 1:
            record = {"status": "complete", "attempt": 1}
            store.write_json_atomic(run_dir / "run.json", record)
        return claim

    monkeypatch.setattr(store.Claim, "try_create", staticmethod(finisher_records_meanwhile))
    acquired = store.acquire(tmp_path, store.FsClock(tmp_path), store.Heartbeat())
    assert acquired.claim is not None and acquired.claim.attempt == 2
    assert acquired.record == {"status": "complete", "attempt": 1}
    assert [p.name for p in tmp_path.glob("claim.*")] == ["claim.2"]


def test_i10_03_the_clock_is_the_file_systems_unless_its_file_is_not_a_regular_one(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(store.time, "time", lambda: 12.0)  # a host clock far off
    assert store.FsClock(tmp_path).now() > 1e9  # the file's mtime, stamped by the file system
    assert store.FsClock(tmp_path / "new" / "logs").now() > 1e9  # the log dir made for it
    other = tmp_path / "other"
    other.mkdir()
    os.mkfifo(other / ".xprun-clock")  # not a file to touch: the local clock, at once
    assert store.FsClock(other).now() == pytest.approx(12.0, abs=5.0)


def test_i10_03_a_clock_file_that_cannot_be_touched_gives_the_local_clock(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(store.time, "time", lambda: 12.0)
    monkeypatch.setattr(os, "utime", refuse)
    assert store.FsClock(tmp_path).now() == pytest.approx(12.0, abs=5.0)


def test_i10_03_a_process_of_another_user_is_alive(monkeypatch):
    def kill(pid, sig):
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "kill", kill)
    assert store._pid_alive(1) is True


def test_i10_03_a_claim_released_while_listing_is_skipped_and_the_rest_still_listed(
    tmp_path, monkeypatch
):
    for n in (1, 2, 3):
        (tmp_path / f"claim.{n}").write_text("{}")
    real_scandir, real_read = os.scandir, store._read_claim
    monkeypatch.setattr(
        os, "scandir", lambda path: sorted(real_scandir(path), key=lambda e: e.name)
    )

    def read(entry):
        if entry.name == "claim.1":
            raise FileNotFoundError(entry.path)  # released between the listing and the read
        return real_read(entry)

    monkeypatch.setattr(store, "_read_claim", read)
    assert [c.attempt for c in store.list_claims(tmp_path)] == [2, 3]


def test_i10_03_the_clock_file_is_a_plain_file_readable_by_all(tmp_path):
    umask = os.umask(0o022)
    try:
        store.FsClock(tmp_path).now()
    finally:
        os.umask(umask)
    assert (tmp_path / ".xprun-clock").stat().st_mode & 0o777 == 0o644


def test_i10_03_a_record_names_this_host(inprocess, project):
    import socket

    project.write("xp_one.py", "def xp_one():\n    return 1\n")
    result = inprocess.run()
    assert result.ret == 0, result.output
    assert result.records()[0]["host"] == socket.gethostname() == store.host()


@pytest.mark.skipif(not Path("/proc/sys/kernel/random/boot_id").exists(), reason="Linux only")
def test_i10_03_the_machine_of_a_claim_is_this_boot_and_pid_namespace(tmp_path):
    boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    machine = f"{boot}:{os.stat('/proc/self/ns/pid').st_ino}"
    assert store._machine_id() == machine
    claim = store.Claim.try_create(tmp_path, 1)
    assert claim is not None
    assert json.loads((tmp_path / "claim.1").read_text())["machine"] == machine


def test_i10_03_a_full_disk_making_a_run_dir_stays_a_full_disk(tmp_path, monkeypatch):
    def full(path, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(Path, "mkdir", full)  # the experiment's folder
    monkeypatch.setattr(store.os, "mkdir", full)  # the run's (made with os.mkdir: no Path)
    with pytest.raises(OSError) as raised:
        store.acquire(tmp_path / "run", store.FsClock(tmp_path), store.Heartbeat())
    assert raised.value.errno == errno.ENOSPC  # not "unusable run dir": the sweep must stop


def test_i10_mut_a_clock_fifo_that_opens_for_writing_gives_the_local_clock(tmp_path, monkeypatch):
    # A FIFO with a reader opens for writing (without one the open itself fails, tested
    # above): only the regular-file check stands between it and touching a FIFO.
    monkeypatch.setattr(store.time, "time", lambda: 12.0)
    os.mkfifo(tmp_path / ".xprun-clock")
    reader = os.open(tmp_path / ".xprun-clock", os.O_RDONLY | os.O_NONBLOCK)
    try:
        assert store.FsClock(tmp_path).now() == pytest.approx(12.0, abs=5.0)
    finally:
        os.close(reader)


def test_i10_mut_a_record_without_an_attempt_reads_attempt_0_as_acquire_counts_it(tmp_path):
    (tmp_path / "run.json").write_text(json.dumps({"status": "failed"}))
    clock, heartbeat = store.FsClock(tmp_path), store.Heartbeat()
    state = store.read_state(tmp_path, clock, heartbeat)
    acquired = store.acquire(tmp_path, clock, heartbeat)
    assert acquired.claim is not None
    assert (state.status, state.attempt, acquired.claim.attempt) == ("failed", 0, 1)


def test_i10_mut_a_claim_replaced_by_a_link_to_a_copy_is_not_held(tmp_path):
    claim = store.Claim.try_create(tmp_path, 1)
    assert claim is not None and claim.holds()
    copy = tmp_path / "elsewhere"
    copy.write_bytes(claim.path.read_bytes())  # the same token, reached through a link
    claim.path.unlink()
    claim.path.symlink_to(copy)
    assert claim.holds() is False


def test_i10_mut_a_claim_replaced_by_a_fifo_is_not_held_and_does_not_block(tmp_path):
    import threading

    claim = store.Claim.try_create(tmp_path, 1)
    assert claim is not None and claim.holds()
    claim.path.unlink()
    os.mkfifo(claim.path)  # opened for reading without O_NONBLOCK, it waits for a writer
    answer: list[bool] = []
    checker = threading.Thread(target=lambda: answer.append(claim.holds()), daemon=True)
    checker.start()
    checker.join(timeout=60)  # a hang guard, not a timing: the answer needs no waiting at all
    if checker.is_alive():  # release the blocked open before failing
        os.close(os.open(claim.path, os.O_WRONLY | os.O_NONBLOCK))
        checker.join()
    assert answer == [False]


# -- the first attempt in a new directory, and the batched skip check (issue 11) ---------------


def test_i11_mut_a_directory_acquire_made_is_new_and_one_it_found_is_not(tmp_path):
    # ``new`` lets the runner skip looking for an earlier attempt's metrics and checkpoints:
    # it must be True only for the directory this very call made.
    clock, heartbeat = store.FsClock(tmp_path), store.Heartbeat()
    fresh = store.acquire(tmp_path / "xp" / "a1", clock, heartbeat)
    assert fresh.claim is not None and fresh.new is True
    fresh.claim.release()
    again = store.acquire(tmp_path / "xp" / "a1", clock, heartbeat)
    assert again.claim is not None and again.new is False
    # Someone else holds the run: nothing was made, nothing is new.
    held = store.acquire(tmp_path / "xp" / "a1", clock, heartbeat)
    assert held.claim is None and held.owner is not None and held.new is False


def test_i11_mut_certainly_complete_says_true_only_for_a_complete_record(tmp_path):
    folder = tmp_path / "xp"
    cases = {
        "done": {"format": 1, "status": "complete", "attempt": 1},
        "failed": {"format": 1, "status": "failed", "attempt": 1},
        "list": [{"status": "complete"}],
        "bad-attempt": {"status": "complete", "attempt": "1"},
        "negative": {"status": "complete", "attempt": -1},
        # As read_state reads them: no attempt is attempt 0, and attempt 0 is complete too.
        "zero": {"status": "complete", "attempt": 0},
        "no-attempt": {"status": "complete"},
    }
    for name, record in cases.items():
        (folder / name).mkdir(parents=True)
        (folder / name / "run.json").write_text(json.dumps(record))
    (folder / "garbage").mkdir()
    (folder / "garbage" / "run.json").write_text("{not json")
    names = [*cases, "garbage", "missing"]
    pairs = [(str(folder), n) for n in names] + [(str(tmp_path / "nowhere"), "done")]
    # Exactly bools, in order: one answer per run directory asked about.
    expected = [True, False, False, False, False, True, True, False, False, False]
    assert store.certainly_complete(pairs) == expected
    for (folder_text, name), complete in zip(pairs, expected, strict=True):
        state = store.read_state(
            Path(folder_text, name), store.FsClock(tmp_path), store.Heartbeat()
        )
        assert (state.status == "complete") == complete, name


def test_i11_mut_run_json_keeps_non_ascii_text_readable(inprocess, project):
    # A record is for people too: 'café' is written as it is, not as \u00e9.
    project.write(
        "xp_text.py",
        "import xprun\n\n@xprun.grid(name=['café', 'tea'])\ndef xp_text(config):\n    return {}\n",
    )
    result = inprocess.run()
    assert result.ret == 0, result.output
    raws = [(d / "run.json").read_bytes().decode("utf-8") for d in result.run_dirs()]
    assert len(raws) == 2 and any("name=café" in raw for raw in raws)  # its node id
    assert not any("\\u00e9" in raw for raw in raws)


def test_i11_mut_stray_files_named_like_claims_do_not_break_holding_one(tmp_path):
    # A claim's holder lists the run directory before each decisive write: names that are
    # not claim.<ASCII digits> are not claims there either, and never crash the check.
    claim = store.Claim.try_create(tmp_path, 1)
    assert claim is not None
    for name in ["claim.x", "claim.\u0662", "claim.", "claim.1a"]:
        (tmp_path / name).write_text("")
    assert claim.holds() is True
    (tmp_path / "claim.2").write_text("")
    assert claim.holds() is False


def test_i11_mut_checking_whether_a_claims_process_lives_does_not_signal_it(tmp_path):
    # Signal 0 asks the kernel whether the process exists; any other number would be sent.
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        owner = {"host": "here", "machine": store._MACHINE, "pid": child.pid}
        claim = store.ClaimInfo(1, tmp_path / "claim.1", 1000.0, owner)
        assert claim.is_stale(_Clock(1001.0), store.Heartbeat()) is False
    finally:
        child.terminate()
        child.wait(timeout=60)
    # Pending signals are delivered lowest number first: had the check sent SIGHUP (1), the
    # child would have died of it, not of our SIGTERM.
    assert child.returncode == -signal.SIGTERM


def test_i11_mut_an_experiment_folder_made_by_a_racer_meanwhile_is_used(tmp_path, monkeypatch):
    # Two launchers making the first runs of a new experiment: the other one makes the
    # experiment's folder between our failed mkdir of the run dir and our mkdir of the folder.
    run_dir = tmp_path / "xp" / "a1"
    real_mkdir = Path.mkdir

    def mkdir(self, *args, **kwargs):
        if self == run_dir and not run_dir.parent.exists():
            real_mkdir(run_dir.parent)  # the racer's
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    acquired = store.acquire(run_dir, store.FsClock(tmp_path), store.Heartbeat())
    assert acquired.claim is not None and acquired.new is True


def test_i11_mut_a_racer_taking_the_first_claim_of_a_new_directory_is_named_owner(
    tmp_path, monkeypatch
):
    # We made the run dir, but another launcher linked claim.1 first: the next look lists the
    # claims and names the racer, instead of trying claim.1 blindly again.
    real = store.Claim.try_create
    calls: list[int] = []

    def racer_first(run_dir, attempt, fresh=False):
        calls.append(attempt)
        if len(calls) == 1:
            racer = {"host": "elsewhere", "machine": "another-boot", "pid": 1, "token": "t"}
            (run_dir / "claim.1").write_text(json.dumps(racer))
            return None
        return real(run_dir, attempt, fresh)

    monkeypatch.setattr(store.Claim, "try_create", staticmethod(racer_first))
    acquired = store.acquire(tmp_path / "xp" / "a1", store.FsClock(tmp_path), store.Heartbeat())
    assert acquired.claim is None and acquired.owner is not None
    assert acquired.owner.attempt == 1 and acquired.owner.owner["host"] == "elsewhere"
    assert calls == [1]


def test_i11_a_claim_is_not_held_once_the_next_attempt_exists_whatever_it_is(tmp_path):
    # holds() looks up claim.<N+1> by name (a takeover's first claim) instead of listing the
    # folder: whatever stands there, even what is not a file, ends the ownership.
    claim = store.Claim.try_create(tmp_path, 1)
    assert claim is not None and claim.holds() is True
    (tmp_path / "claim.1").touch()  # the heartbeat changes nothing of it
    assert claim.holds() is True
    (tmp_path / "claim.2").mkdir()
    assert claim.holds() is False and claim.lost
    (tmp_path / "claim.2").rmdir()
    claim.lost = False
    (tmp_path / "claim.2").symlink_to(tmp_path / "nowhere")  # a dangling link counts too
    assert claim.holds() is False


def test_i11_a_claim_holds_its_owner_as_json_dumps_writes_it(tmp_path):
    # Its text is put together from a head encoded once: it must stay what json.dumps writes.
    claim = store.Claim.try_create(tmp_path, 7)
    assert claim is not None
    raw = (tmp_path / "claim.7").read_bytes()
    owner = json.loads(raw)
    assert raw == json.dumps(owner).encode()
    assert list(owner) == ["host", "machine", "pid", "attempt", "token", "since"]
    assert owner["host"] == store.host() and owner["machine"] == store._MACHINE
    assert owner["pid"] == os.getpid() and owner["attempt"] == 7
    assert owner["token"] == claim.token and len(claim.token) == 32
    assert int(claim.token, 16) >= 0 and claim.token != store.Claim(tmp_path, 7).token
    assert (tmp_path / "claim.7").read_bytes() == claim._owner


def test_i11_mut_a_claim_that_is_a_link_is_aged_by_the_link_itself(tmp_path):
    # A claim is a file; a link standing there (damage) is judged by its own time, never by
    # what it points to (a live file elsewhere must not keep a dead run "running").
    target = tmp_path / "fresh"
    target.write_text(json.dumps({"host": "h", "machine": "m", "pid": 1}))
    (tmp_path / "claim.1").symlink_to(target)
    os.utime(tmp_path / "claim.1", (1000.0, 1000.0), follow_symlinks=False)
    (claim,) = store.list_claims(tmp_path)
    assert claim.mtime == 1000.0


def test_i11_mut_claiming_an_existing_run_removes_its_killed_writes(tmp_path):
    # The next attempt of a run that exists (not a directory just made) removes the temporary
    # files a killed write left; a new directory has none to look for.
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    store.write_json_atomic(run_dir / "run.json", {"status": "interrupted", "attempt": 1})
    (run_dir / ".run.json.4242.tmp").write_text("half")
    acquired = store.acquire(run_dir, store.FsClock(tmp_path), store.Heartbeat())
    assert acquired.claim is not None and acquired.claim.attempt == 2 and not acquired.new
    assert not (run_dir / ".run.json.4242.tmp").exists()
    acquired.claim.release()


def test_i11_a_forked_child_names_its_claims_and_temporaries_with_its_own_pid(tmp_path):
    # The pid is asked of the kernel once per process (a run uses it six times): a child made
    # by os.fork, as the pool's workers are, must not go on with its parent's.
    assert store._pid() == os.getpid()
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover (the child's own process)
        try:
            claim = store.Claim.try_create(tmp_path, 1)
            owner = json.loads((tmp_path / "claim.1").read_text()) if claim else {}
            os.write(write, json.dumps([owner.get("pid"), os.getpid(), store._pid()]).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        recorded, actual, cached = json.loads(pipe.read())
    os.waitpid(child, 0)
    assert recorded == actual == cached != os.getpid()
    assert store._pid() == os.getpid()
    assert store._tmp_name(str(tmp_path / "x")).endswith(f".x.{os.getpid()}.tmp")


def test_i11_claim_tokens_are_unique_in_a_process_and_across_a_fork(tmp_path, monkeypatch):
    # A token is a random prefix drawn once per process and a count of its claims: two
    # claims of one process differ, and a forked child (a pool worker) draws its own prefix.
    monkeypatch.setattr(store, "_TOKENS", [])  # drawn here, whatever ran before
    tokens = [store.Claim(tmp_path, n).token for n in (1, 2, 3)]
    assert len(set(tokens)) == 3 and all(len(t) == 32 for t in tokens)
    assert len({t[:16] for t in tokens}) == 1  # one prefix per process
    int(tokens[0], 16)  # hex digits, as a claim's JSON writes them unescaped
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover (the child's own process)
        try:
            os.write(write, store.Claim(tmp_path, 4).token.encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        theirs = pipe.read()
    os.waitpid(child, 0)
    assert len(theirs) == 32 and theirs[:16] != tokens[0][:16]
    assert store.Claim(tmp_path, 5).token[:16] == tokens[0][:16]  # the parent's own again


def test_i11_the_first_claim_of_a_directory_just_made_is_created_in_one_step(tmp_path, monkeypatch):
    # Nobody can have waited on the name of a directory this launcher has just made: its
    # claim.1 is created exclusively and written at once (no temporary file, no link); the
    # claims of a directory that existed are still linked whole.
    linked: list[tuple] = []
    real_link = os.link

    def link(*args, **kwargs):
        linked.append(args)
        return real_link(*args, **kwargs)

    monkeypatch.setattr(os, "link", link)
    run_dir = tmp_path / "xp" / "r1"
    clock, heartbeat = store.FsClock(tmp_path), store.Heartbeat()
    acquired = store.acquire(run_dir, clock, heartbeat)
    assert acquired.claim is not None and acquired.new and linked == []
    assert (run_dir / "claim.1").read_bytes() == acquired.claim._owner
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((run_dir / "claim.1").stat().st_mode) == 0o666 & ~umask
    assert sorted(p.name for p in run_dir.iterdir()) == ["claim.1"]
    assert store.Claim.try_create(run_dir, 1, fresh=True) is None  # exclusive: taken
    acquired.claim.release()
    store.write_json_atomic(run_dir / "run.json", {"status": "interrupted", "attempt": 1})
    again = store.acquire(run_dir, clock, heartbeat)
    assert again.claim is not None and again.claim.attempt == 2 and len(linked) == 1
    again.claim.release()
    other = tmp_path / "other"
    other.mkdir()
    assert store.Claim.try_create(other, 1) is not None and len(linked) == 2  # by default


def test_i11_mut_a_process_first_asks_its_pid_of_the_kernel_and_names_files_with_it(tmp_path):
    # The pid is cached per process (and forgotten in a forked child): its first call, too,
    # gives the pid, which names the temporary files and the claim's owner.
    store._forget_pid()
    assert store._pid() == os.getpid()
    store._forget_pid()
    assert store._tmp_name(tmp_path / "run.json").endswith(f".run.json.{os.getpid()}.tmp")


def test_i11_mut_a_fresh_process_registers_the_fork_hook_on_its_first_pid(tmp_path, monkeypatch):
    # In a fresh process nothing is cached and no at-fork hook is registered yet: the first
    # _pid() registers it, so that a pool worker (a fork of the launcher) names its files
    # and claims with its own pid, not the one it inherited in the cache.  (The test
    # process has registered it long ago: emptied here, as in a fresh process.)
    monkeypatch.setattr(store, "_FORK_HOOK", [])
    store._forget_pid()
    parent = store._pid()
    assert store._FORK_HOOK == [True]
    out = tmp_path / "child"
    child = os.fork()
    if child == 0:  # pragma: no cover (the child's coverage is not collected)
        try:
            out.write_text(f"{os.getpid()} {store._pid()}")
        finally:
            os._exit(0)
    os.waitpid(child, 0)
    real, cached = out.read_text().split()
    assert real == cached != str(parent)


def test_i11_mut_asking_whether_a_process_is_alive_sends_it_nothing():
    # Signal 0 checks a pid without delivering anything: a live owner asked about stays as
    # it was (any other signal, SIGHUP say, would end a process that does not handle it).
    child = subprocess.Popen(["sleep", "60"])
    try:
        assert store._pid_alive(child.pid) is True
        time.sleep(0.2)  # a signal sent would have been delivered by now
        assert child.poll() is None, "the process asked about was signalled"
    finally:
        child.kill()
        child.wait()
    assert store._pid_alive(child.pid) is False  # reaped: no such process


@pytest.mark.parametrize("when", ["as open returns", "while writing"])
def test_i11_an_interrupt_as_a_fresh_claim_is_made_leaves_no_claim(tmp_path, monkeypatch, when):
    # Ctrl-C to a pool worker just as it claimed a run in the folder it had just made: the
    # interrupt is raised right after os.open returns (Python runs signal handlers after a
    # call), before its descriptor is kept.  An empty claim.1 was left, and a relaunch then
    # reported that run "running elsewhere" though nothing ran it.
    real_open, real_write = os.open, store.write_all

    def open_then_interrupted(path, flags, mode=0o777):
        fd = real_open(path, flags, mode)
        if str(path).endswith("claim.1") and when == "as open returns":
            raise KeyboardInterrupt  # as the handler would, the file made and empty
        return fd

    def write_interrupted(fd, data):
        raise KeyboardInterrupt

    monkeypatch.setattr(store.os, "open", open_then_interrupted)
    if when == "while writing":
        monkeypatch.setattr(store, "write_all", write_interrupted)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with pytest.raises(KeyboardInterrupt):
        store.Claim.try_create(run_dir, 1, fresh=True)
    assert list(run_dir.iterdir()) == []  # no claim, empty or whole
    monkeypatch.setattr(store.os, "open", real_open)
    monkeypatch.setattr(store, "write_all", real_write)
    assert store.Claim.try_create(run_dir, 1, fresh=True) is not None  # claimable at once


def test_i11_a_claim_published_whole_is_not_removed_by_an_interrupted_fresh_claim(
    tmp_path, monkeypatch
):
    # The interrupted claimer removes claim.1 only if it is empty: another launcher's claim,
    # published whole, stays (its open failed: FileExistsError, no interrupt).
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    other = store.Claim.try_create(run_dir, 1)
    assert other is not None
    assert store.Claim.try_create(run_dir, 1, fresh=True) is None
    claim = store.Claim(run_dir, 1)
    claim._abandon(-1)  # as after an interrupt whose open was not this process's
    assert json.loads((run_dir / "claim.1").read_text())["token"] == other.token
