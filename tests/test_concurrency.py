"""Several xprun processes on one sweep: each run executes exactly once."""

from __future__ import annotations

import collections


def count_executions(path):
    return collections.Counter(path.read_text().split())


def test_two_processes_on_one_sweep_execute_each_run_once(project):
    executions = project.root / "executions.log"
    project.write(
        "xp_race.py",
        f"""
        import os
        import time
        import xprun

        @xprun.grid(i=list(range(20)))
        def xp_race(config, run):
            time.sleep(0.05)
            # O_APPEND writes of one short line are atomic: a side effect we can count.
            fd = os.open({str(executions)!r}, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            os.write(fd, f"{{run.hash}}\\n".encode())
            os.close(fd)
            return {{"i": config.i, "pid": os.getpid()}}
        """,
    )
    procs = [project.popen("-q") for _ in range(2)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    counts = count_executions(executions)
    assert len(counts) == 20
    assert set(counts.values()) == {1}
    records = project.records()
    assert len(records) == 20 and {r["status"] for r in records} == {"complete"}
    # Each run was counted by one process as complete and by the other as cached/elsewhere.
    summaries = " ".join(out for out, _ in results)
    completes = sum(
        int(w)
        for w, nxt in zip(summaries.split(), summaries.split()[1:], strict=False)
        if nxt.startswith("complete")
    )
    assert completes == 20
