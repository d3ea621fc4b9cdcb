"""``logger.log_metrics`` calls per second, against a hand-written JSON-lines baseline.

    python benchmarks/bench_log_metrics.py [--calls 1000000] [--repeat 3]

Each call logs a dict of 3 floats.  The baseline is the least a logger must do: format the
line with ``json.dumps`` and append it to a list that is written at the end.  xprun's logger
also validates every value (NumPy scalars converted, a non-number raises), counts steps,
stamps time and attempt, and flushes to disk at least every second from a background thread.
MLXP's logger manages ~31,000 calls/s on this machine; the target is ≥ 300,000.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from xprun.logger import Logger


def baseline(path: Path, calls: int) -> float:
    lines = []
    start = time.perf_counter()
    for step in range(calls):
        values = {"loss": 0.5 / (step + 1), "acc": 0.25 + step * 1e-7, "lr": 0.001}
        lines.append(json.dumps({"step": step, "time": time.time(), **values}) + "\n")
    with open(path, "w") as f:
        f.write("".join(lines))
    return time.perf_counter() - start


def with_logger(run_dir: Path, calls: int) -> float:
    logger = Logger(run_dir)
    log = logger.log_metrics
    start = time.perf_counter()
    for step in range(calls):
        log({"loss": 0.5 / (step + 1), "acc": 0.25 + step * 1e-7, "lr": 0.001})
    logger.close()
    elapsed = time.perf_counter() - start
    with open(run_dir / "metrics" / "metrics.jsonl") as f:
        written = sum(1 for _ in f)
    assert written == calls, (written, calls)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    base_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
    best_base = best_logger = float("inf")
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(dir=base_dir) as tmp:
            best_base = min(best_base, baseline(Path(tmp) / "base.jsonl", args.calls))
            best_logger = min(best_logger, with_logger(Path(tmp) / "run", args.calls))
    print(f"calls: {args.calls:,} (best of {args.repeat}), a dict of 3 floats per call")
    print(f"json.dumps baseline: {args.calls / best_base:,.0f} calls/s")
    print(f"xprun log_metrics:   {args.calls / best_logger:,.0f} calls/s")
    print(f"ratio xprun / baseline speed: {best_base / best_logger:.2f}x")


if __name__ == "__main__":
    main()
