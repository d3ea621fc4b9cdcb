"""``xprun -n 2`` against a plain 2-process pool, on runs that each sleep 50 ms.

    python benchmarks/bench_pool.py [--runs 200] [--rounds 5] [--dir /dev/shm]

Both sides are whole processes started afresh, timed alternately round after round, after
one unmeasured round each (bytecode, caches and the snapshot then are as on any later launch):

- floor: ``multiprocessing.Pool(2)`` in a script that maps the same function (sleep 50 ms,
  return ``{"i": i}``) over N inputs and writes each result to ``<i>/outcome.json``, the
  least a pool of experiment runs must do;
- xprun: ``xprun -n 2 -q`` in a Git project whose experiment is the same function under
  ``@xprun.grid(i=range(N))`` (collection, Git snapshot, spec, two workers that import the
  snapshot, claims and full run records), each round into a fresh log folder.

With 2 workers the sleeps alone take N x 50 ms / 2; what is left is start-up and dispatch.
Besides the wall times, ``main`` prints each side's CPU time (user + system of the whole
process tree: the machine's load inflates it far less than wall time), when xprun's first
run started after the launch and how long it took to exit after its last run ended (from the
runs' records).
Runs are written to /dev/shm (a RAM disk) by default, so that this figure measures the pool,
not the price of durable records on a disk (stated separately in docs/performance.md).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

from _paired import figure, paired

SLEEP = 0.05
TARGET = 1.1

EXPERIMENT = """
import time
import xprun

@xprun.grid(i=list(range({n})))
def xp_sleep(config):
    time.sleep({sleep})
    return {{"i": config.i}}
"""

FLOOR = """
import json, os, sys, time
from multiprocessing import Pool

OUT = sys.argv[1]

def work(i):
    time.sleep({sleep})
    run_dir = os.path.join(OUT, str(i))
    os.mkdir(run_dir)
    with open(os.path.join(run_dir, "outcome.json"), "w") as f:
        json.dump({{"i": i}}, f)
    return i

if __name__ == "__main__":
    os.makedirs(OUT)
    with Pool(2) as pool:
        done = sum(1 for _ in pool.imap_unordered(work, range({n})))
    assert done == {n}, done
"""

_GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@localhost",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@localhost",
}


def make_project(root: Path, n: int) -> Path:
    """A Git project with the experiment, and the floor's script next to it."""
    project = root / "project"
    project.mkdir(parents=True)
    (project / "pyproject.toml").write_text('[tool.xprun]\nlog_dir = "xprun_logs"\n')
    (project / ".gitignore").write_text("xprun_logs/\n.xprun/\n__pycache__/\n")
    (project / "xp_pool.py").write_text(textwrap.dedent(EXPERIMENT.format(n=n, sleep=SLEEP)))
    (root / "floor.py").write_text(textwrap.dedent(FLOOR.format(n=n, sleep=SLEEP)))
    env = {**os.environ, **_GIT_ENV}
    for cmd in (
        ["git", "init", "-q", "-b", "main"],
        ["git", "add", "-A"],
        ["git", "commit", "-qm", "b"],
    ):
        subprocess.run(cmd, cwd=project, check=True, env=env)
    return project


def _run(command: list[str], **kwargs: object) -> tuple[float, str]:
    """Run ``command`` to its end: (CPU seconds of its process tree, user + system, as
    ``/usr/bin/time`` counts them: the process and every child it waited for; its stdout)."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kwargs)
    assert proc.stdout is not None
    out = proc.stdout.read().decode(errors="replace")
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{out}")
    return usage.ru_utime + usage.ru_stime, out


def _run_times(log_dir: Path, field: str) -> list[float]:
    """The ``start`` or ``end`` of every run in ``log_dir`` (from the runs' records)."""
    from datetime import datetime

    return [
        datetime.fromisoformat(json.loads(p.read_text())[field].replace("Z", "+00:00")).timestamp()
        for p in log_dir.glob("*/*/run.json")
    ]


def _first_start(log_dir: Path, launched: float) -> float:
    """Seconds from the launch to the start of its first run (from the runs' records)."""
    return min(_run_times(log_dir, "start")) - launched


def measure(
    n: int, rounds: int, where: str | None, spread: dict[str, list[float]] | None = None
) -> tuple[float, float]:
    """Median seconds of (xprun -n 2, multiprocessing.Pool(2)) over ``rounds`` pairs; each
    measured round's seconds are appended to ``spread["xprun"]`` and ``spread["floor"]``, the
    CPU seconds of its process tree to ``spread["xprun cpu"]`` and ``spread["floor cpu"]``,
    when xprun's first run started to ``spread["first run"]``, and how long xprun took to
    exit after its last run ended (workers' and launcher's exits) to ``spread["exit"]``."""
    with tempfile.TemporaryDirectory(dir=where, prefix="xprun-pool-") as tmp:
        root = Path(tmp)
        project = make_project(root, n)
        # Bytecode is written as it is for users: with PYTHONDONTWRITEBYTECODE (set on some
        # machines), every process would compile each module whose .pyc is stale again.
        env = {**os.environ, "XPRUN_DISABLE_PLUGIN_AUTOLOAD": "1"}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        counter = iter(range(10**6))

        times: dict[str, list[float]] = spread if spread is not None else {}

        def floor() -> None:
            out = root / f"floor{next(counter)}"
            cpu, _ = _run([sys.executable, str(root / "floor.py"), str(out)], env=env)
            times.setdefault("floor cpu", []).append(cpu)
            shutil.rmtree(out)

        def xprun() -> None:
            launched = time.time()
            command = [sys.executable, "-m", "xprun", "-n", "2", "-q"]
            cpu, out = _run(command, cwd=project, env=env)
            exited = time.time()
            if f"{n} complete" not in out:
                raise SystemExit(f"xprun -n 2 did not complete its runs:\n{out}")
            times.setdefault("xprun cpu", []).append(cpu)
            times.setdefault("first run", []).append(_first_start(project / "xprun_logs", launched))
            last = max(_run_times(project / "xprun_logs", "end"))
            times.setdefault("exit", []).append(exited - last)
            shutil.rmtree(project / "xprun_logs")

        floor()  # one unmeasured round each: .pyc files, the package-version cache and the
        xprun()  # snapshot's extraction are then as on every later launch
        times.clear()

        def recorded(name: str, fn: Callable[[], None]) -> Callable[[], float]:
            def call() -> float:
                start = time.perf_counter()
                fn()
                times.setdefault(name, []).append(time.perf_counter() - start)
                return times[name][-1]

            return call

        return paired(recorded("floor", floor), recorded("xprun", xprun), rounds)


def figures(quick: bool = False) -> list[dict]:
    n, rounds = (40, 1) if quick else (200, 5)
    where = "/dev/shm" if os.path.isdir("/dev/shm") else None
    value, floor = measure(n, rounds, where)
    return [
        figure(
            f"pool: xprun -n 2, {n} runs x 50 ms",
            value,
            floor,
            "s",
            TARGET,
            f"floor multiprocessing.Pool(2), same function and result file; median of {rounds}",
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dir", default="/dev/shm" if os.path.isdir("/dev/shm") else None)
    args = parser.parse_args()
    spread: dict[str, list[float]] = {}
    value, floor = measure(args.runs, args.rounds, args.dir, spread)
    ideal = args.runs * SLEEP / 2

    def span(name: str) -> str:
        return f"(rounds {min(spread[name]):.2f}-{max(spread[name]):.2f} s)"

    print(f"runs: {args.runs} x {SLEEP * 1000:.0f} ms, 2 workers, median of {args.rounds} rounds")
    print(f"sleeps alone:                 {ideal:.2f} s")
    print(f"multiprocessing.Pool(2):      {floor:.2f} s {span('floor')}")
    print(f"xprun -n 2:                   {value:.2f} s {span('xprun')}")
    ratios = sorted(x / f for x, f in zip(spread["xprun"], spread["floor"], strict=True))
    print(
        f"ratio xprun / Pool(2):        {value / floor:.2f}x   (target <= {TARGET}x; "
        f"per round {ratios[0]:.2f}-{ratios[-1]:.2f}x)"
    )
    for name in ("floor cpu", "xprun cpu", "first run", "exit"):
        found = spread[name]
        print(
            f"{name + ':':<29} {statistics.median(found):.2f} s "
            f"(rounds {min(found):.2f}-{max(found):.2f} s)"
        )
    print(f"load average: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
