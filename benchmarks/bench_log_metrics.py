"""``logger.log_metrics`` calls per second, against a hand-written JSON-lines baseline.

    python benchmarks/bench_log_metrics.py [--calls 1000000] [--repeat 3]
    python benchmarks/run.py --only log_metrics

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

from _paired import figure, paired

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


def measure(calls: int, rounds: int) -> tuple[float, float]:
    """Median seconds of (xprun's logger, the baseline) for ``calls`` calls, alternating."""
    where = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory(dir=where) as tmp:
        counter = iter(range(10**6))
        return paired(
            lambda: baseline(Path(tmp) / f"base{next(counter)}.jsonl", calls),
            lambda: with_logger(Path(tmp) / f"run{next(counter)}", calls),
            rounds,
        )


def figures(quick: bool = False) -> list[dict]:
    calls, rounds = (50_000, 1) if quick else (1_000_000, 3)
    value, floor = measure(calls, rounds)
    return [
        figure(
            "log_metrics, a dict of 3 floats per call",
            1e6 * value / calls,
            1e6 * floor / calls,
            "us/call",
            None,
            f"xprun {calls / value:,.0f} calls/s; floor: json.dumps per line, written at the "
            f"end ({calls / floor:,.0f} calls/s); {calls:,} calls, median of {rounds}",
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    value, floor = measure(args.calls, args.repeat)
    print(f"calls: {args.calls:,} (median of {args.repeat}), a dict of 3 floats per call")
    print(f"json.dumps baseline: {args.calls / floor:,.0f} calls/s")
    print(f"xprun log_metrics:   {args.calls / value:,.0f} calls/s")
    print(f"ratio xprun / baseline speed: {floor / value:.2f}x")


if __name__ == "__main__":
    main()
