"""Per-run framework overhead of xprun (inline scheduler) against a plain Python loop.

    python benchmarks/bench_overhead.py [--runs 1000] [--repeat 3]

Both sides execute the same trivial function N times in this one process:

- baseline: a plain loop that calls the function and writes one JSON file per run into its
  own directory (the least any experiment runner must do);
- xprun: ``xprun.main([...])`` on an experiment with ``@xprun.grid(i=range(N))`` — discovery,
  expansion, hashing, claiming, config.yaml, run.json (twice), outcome.json, fixtures.

Prints the milliseconds per run of each, the overhead per run and the ratio.  The best of
``--repeat`` trials is kept on each side, to damp noise from the machine.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

EXPERIMENT = """
import xprun

@xprun.grid(i=list(range({n})))
def xp_trivial(config):
    return {{"i": config.i, "square": config.i * config.i}}
"""


def trivial(i: int) -> dict:
    return {"i": i, "square": i * i}


def baseline(root: Path, n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        outcome = trivial(i)
        run_dir = root / f"run{i}"
        run_dir.mkdir(parents=True)
        with open(run_dir / "outcome.json", "w") as f:
            json.dump(outcome, f)
    return time.perf_counter() - start


def with_xprun(root: Path, n: int) -> float:
    import xprun

    project = root / "project"
    project.mkdir(parents=True)
    (project / "pyproject.toml").write_text("[tool.xprun]\n")
    (project / "xp_bench.py").write_text(EXPERIMENT.format(n=n))
    cwd = os.getcwd()
    os.chdir(project)
    try:
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            code = xprun.main(["-q"])
        elapsed = time.perf_counter() - start
    finally:
        os.chdir(cwd)
    assert code == 0, code
    assert len(list((project / "xprun_logs" / "xp_bench.xp_trivial").iterdir())) == n
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--dir",
        default="/dev/shm" if os.path.isdir("/dev/shm") else None,
        help="where the runs are written (default: /dev/shm, a RAM disk, so that the noise "
        "of a shared disk does not drown the framework's own cost; pass a disk path to "
        "include the disk)",
    )
    args = parser.parse_args()
    n = args.runs
    # Warm both paths once (imports of omegaconf/yaml/numpy happen in the first session).
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        with_xprun(Path(tmp) / "warm", 10)
    best_base, best_xprun = float("inf"), float("inf")
    for trial in range(args.repeat):
        with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
            best_base = min(best_base, baseline(Path(tmp) / "base", n))
            best_xprun = min(best_xprun, with_xprun(Path(tmp) / f"xp{trial}", n))
    base_ms = 1000 * best_base / n
    xp_ms = 1000 * best_xprun / n
    print(
        f"runs: {n} (best of {args.repeat}) in {args.dir or tempfile.gettempdir()}, "
        f"Python {sys.version.split()[0]}"
    )
    print(f"plain loop + one JSON file per run: {base_ms:.3f} ms/run")
    print(f"xprun inline (whole session):       {xp_ms:.3f} ms/run")
    print(f"xprun overhead per run:             {xp_ms - base_ms:.3f} ms")
    print(f"ratio xprun / plain loop:           {best_xprun / best_base:.1f}x")


if __name__ == "__main__":
    main()
