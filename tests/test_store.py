"""Claims and heartbeats: who owns a run, when a silent owner counts as dead."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time

from xprun import store
from xprun.store import FsClock, Heartbeat, acquire, list_claims, read_state

HEARTBEAT = Heartbeat(interval=0.5, timeout=3.0)


def foreign_claim(run_dir, attempt, age):
    """A claim written by a process on another host, last heartbeat ``age`` seconds ago."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / f"claim.{attempt}"
    path.write_text(
        json.dumps({"host": "node-17", "machine": "other-boot:1", "pid": 1, "attempt": attempt})
    )
    then = time.time() - age
    os.utime(path, (then, then))
    return path


def test_a_fresh_foreign_claim_is_running_and_cannot_be_taken(tmp_path):
    run_dir = tmp_path / "xp" / "abc"
    foreign_claim(run_dir, 1, age=0.5)
    clock = FsClock(tmp_path)
    state = read_state(run_dir, clock, HEARTBEAT)
    assert state.status == "running" and state.owner.owner["host"] == "node-17"
    acquired = acquire(run_dir, clock, HEARTBEAT)
    assert acquired.claim is None and acquired.owner.attempt == 1
    assert "node-17" in acquired.owner.describe(clock)


def test_a_stale_foreign_claim_reads_interrupted_and_is_taken_over(tmp_path):
    run_dir = tmp_path / "xp" / "abc"
    old = foreign_claim(run_dir, 2, age=10)
    clock = FsClock(tmp_path)
    assert read_state(run_dir, clock, HEARTBEAT).status == "interrupted"
    acquired = acquire(run_dir, clock, HEARTBEAT)
    claim = acquired.claim
    assert acquired.owner is None and claim.attempt == 3
    assert not old.exists() and [c.attempt for c in list_claims(run_dir)] == [3]
    assert read_state(run_dir, clock, HEARTBEAT).status == "running"
    claim.release()
    assert read_state(run_dir, clock, HEARTBEAT).status == "new"  # no record was ever written


def test_same_machine_dead_process_is_stale_at_once(tmp_path):
    run_dir = tmp_path / "xp" / "abc"
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    run_dir.mkdir(parents=True)
    claim = store.Claim.try_create(run_dir, 1)
    record = json.loads(claim.path.read_text())
    record["pid"] = child.pid
    claim.path.write_text(json.dumps(record))
    state = read_state(run_dir, FsClock(tmp_path), Heartbeat(interval=60, timeout=3600))
    assert state.status == "interrupted"


def test_heartbeat_keeps_a_claim_fresh(tmp_path):
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    claim = store.Claim.try_create(run_dir, 1)
    then = time.time() - 100
    os.utime(claim.path, (then, then))
    claim.touch()
    assert time.time() - claim.path.stat().st_mtime < 5
    claim.release()
    claim.touch()
    assert claim.lost


def test_fs_clock_follows_the_file_system(tmp_path):
    clock = FsClock(tmp_path)
    assert abs(clock.now() - time.time()) < 2
    assert (tmp_path / store.CLOCK_FILE).exists()


def _take(run_dir, start, results, done):
    start.wait()  # all contenders go at once
    claim = acquire(run_dir, FsClock(run_dir.parent), HEARTBEAT).claim
    results.put(None if claim is None else claim.attempt)
    done.wait(60)  # a winner stays alive (and its claim live) until everyone has tried


def test_only_one_of_many_processes_takes_over_a_stale_claim(tmp_path):
    run_dir = tmp_path / "xp" / "abc"
    foreign_claim(run_dir, 4, age=60)
    ctx = multiprocessing.get_context("spawn")
    start, done, results = ctx.Barrier(6), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_take, args=(run_dir, start, results, done)) for _ in range(6)]
    for p in procs:
        p.start()
    try:
        got = [results.get(timeout=60) for _ in procs]
    finally:
        done.set()
        for p in procs:
            p.join(60)
    assert sorted(g for g in got if g is not None) == [5]
    assert got.count(None) == 5


def test_a_listing_that_missed_a_newer_claim_does_not_make_a_second_owner(tmp_path, monkeypatch):
    # CI (lowest suite, test_only_one_of_many_processes_takes_over_a_stale_claim): a racer
    # listed claim.4 just before a takeover linked claim.5 and removed claim.4; reading
    # claim.4 then failed ("released meanwhile"), so it saw no claim at all and took claim.1,
    # a second owner beside claim.5. Simulated here: the first listing finds nothing.
    run_dir = tmp_path / "xp" / "abc"
    foreign_claim(run_dir, 5, age=0)  # the takeover's claim, live
    real = store.list_claims
    listings: list[int] = []

    def torn_first(folder):
        listings.append(1)
        return [] if len(listings) == 1 else real(folder)

    monkeypatch.setattr(store, "list_claims", torn_first)
    acquired = acquire(run_dir, FsClock(tmp_path), HEARTBEAT)
    assert acquired.claim is None and acquired.owner is not None
    assert acquired.owner.attempt == 5 and acquired.owner.owner["host"] == "node-17"
    assert sorted(p.name for p in run_dir.iterdir()) == ["claim.5"]  # ours released
    claim = store.Claim.try_create(run_dir, 1)  # and a claim below the newest never holds
    assert claim is not None and not claim.holds()


def test_a_listing_that_missed_a_stale_newer_claim_looks_again_and_takes_it_over(
    tmp_path, monkeypatch
):
    # The same torn listing, the newer claim being stale: the next look takes it over.
    run_dir = tmp_path / "xp" / "abc"
    foreign_claim(run_dir, 5, age=3600)
    real = store.list_claims
    listings: list[int] = []

    def torn_first(folder):
        listings.append(1)
        return [] if len(listings) == 1 else real(folder)

    monkeypatch.setattr(store, "list_claims", torn_first)
    acquired = acquire(run_dir, FsClock(tmp_path), HEARTBEAT)
    assert acquired.claim is not None and acquired.claim.attempt == 6
    assert sorted(p.name for p in run_dir.iterdir()) == ["claim.6"]
    acquired.claim.release()
