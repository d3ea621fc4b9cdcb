"""The Reader at scale: cold and warm index, metric aggregation, refresh, and MLXP's Reader.

    python benchmarks/bench_reader.py [--runs 10000] [--steps 100] [--mlxp-runs 1000]

Writes N runs in xprun's run-directory format (each with 100 steps x 3 metrics) and times:

1. cold index: ``Reader(log_dir)`` and ``len()`` with no index yet;
2. warm: a new ``Reader(log_dir)`` + ``filter`` + ``groupby(...).agg`` over outcomes;
3. metric aggregation over all runs (last/min/max/mean of 3 metrics), against a hand-written
   loop that reads the same files with ``json`` and aggregates with pandas (the ratio);
4. incremental refresh after adding 10 runs;
5. MLXP's Reader (``pip install 'xprun[bench]'``) on 1,000 runs written by MLXP's own logger
   in its own format, against xprun's cold index of the same 1,000 runs written by xprun's
   format (the ratio).  MLXP runs in a child process: importing it changes the process
   (signal handlers, files).

Runs are written to /dev/shm (a RAM disk) when there is one, so the shared disk's noise does
not drown the figures; ``--dir`` picks another place.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
from pathlib import Path

import pandas as pd
import yaml

import xprun
from xprun.identity import run_digest

OPTIMIZERS = ("sgd", "adam", "rmsprop", "adamw")


def run_config(i: int) -> dict:
    return {
        "lr": [0.1, 0.01, 0.001, 0.0001][i % 4],
        "optimizer": OPTIMIZERS[(i // 4) % 4],
        "model": {"width": [64, 128, 256][(i // 16) % 3], "depth": 4},
        "seed": i // 48,
    }


def metric_lines(i: int, steps: int) -> list[dict]:
    rng = random.Random(i)
    return [
        {
            "step": s,
            "time": 1.7e9 + s,
            "attempt": 1,
            "loss": 1 / (s + 1) + rng.random() * 0.01,
            "acc": s / steps,
            "lr": 0.1,
        }
        for s in range(steps)
    ]


def write_xprun_run(log_dir: Path, i: int, steps: int) -> None:
    config = run_config(i)
    digest = run_digest("xp_bench.py::xp_train", config, {})
    run_dir = log_dir / "xp_bench.xp_train" / digest.partition(":")[2]
    (run_dir / "metrics").mkdir(parents=True)
    lines = metric_lines(i, steps)
    record = {
        "format": 1,
        "digest": digest,
        "hash": digest.partition(":")[2],
        "experiment": "xp_bench.xp_train",
        "experiment_id": "xp_bench.py::xp_train",
        "nodeid": f"xp_bench.py::xp_train[{i}]",
        "params": {},
        "status": "complete",
        "attempt": 1,
        "start": "2026-11-29T10:00:00.000+00:00",
        "end": "2026-11-29T10:01:00.000+00:00",
        "duration": 60.0,
        "host": "node-1",
        "user": "bench",
        "pid": 1,
    }
    (run_dir / "run.json").write_text(json.dumps(record))
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    (run_dir / "outcome.json").write_text(
        json.dumps({"loss": lines[-1]["loss"], "acc": lines[-1]["acc"]})
    )
    with open(run_dir / "metrics" / "metrics.jsonl", "w") as f:
        f.write("".join(json.dumps(line) + "\n" for line in lines))


def timed(func):
    start = time.perf_counter()
    result = func()
    return time.perf_counter() - start, result


def hand_written_aggregation(log_dir: Path) -> pd.DataFrame:
    """What a researcher would write: read every metrics file with json, aggregate in pandas."""
    rows = []
    for run_dir in (log_dir / "xp_bench.xp_train").iterdir():
        with open(run_dir / "metrics" / "metrics.jsonl") as f:
            for line in f:
                record = json.loads(line)
                record["hash"] = run_dir.name
                rows.append(record)
    frame = pd.DataFrame(rows).sort_values(["hash", "step"])
    return frame.groupby("hash")[["loss", "acc", "lr"]].agg(["last", "min", "max", "mean"])


def xprun_aggregation(log_dir: Path) -> pd.DataFrame:
    keys = [
        f"metrics.{m}.{a}" for m in ("loss", "acc", "lr") for a in ("last", "min", "max", "mean")
    ]
    return xprun.Reader(log_dir).to_pandas(columns=["hash", *keys])


MLXP_SCRIPT = textwrap.dedent(
    """
    import json, random, sys, time
    from omegaconf import OmegaConf
    from mlxp.logger import DefaultLogger
    from mlxp import Reader

    root, runs, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    with open(sys.argv[4]) as f:
        configs = json.load(f)
    for i in range(runs):
        logger = DefaultLogger(root, -1)
        logger._log_configs(OmegaConf.create(configs[i]), "config")
        info = {"logger": logger.get_info(), "status": "COMPLETE"}
        logger._log_configs(OmegaConf.create(info), "info")
        rng = random.Random(i)
        for s in range(steps):
            logger.log_metrics({"loss": 1 / (s + 1) + rng.random() * 0.01, "acc": s / steps, "lr": 0.1}, "train")
    start = time.perf_counter()
    reader = Reader(root)
    n = len(reader)
    print(json.dumps({"seconds": time.perf_counter() - start, "runs": n}))
    """
)


def mlxp_cold(root: Path, runs: int, steps: int) -> float | None:
    try:
        import mlxp  # noqa: F401  - only to know it is installed; it runs in a child process
    except ImportError:
        return None
    configs = root.parent / "mlxp-configs.json"
    configs.write_text(json.dumps([run_config(i) for i in range(runs)]))
    proc = subprocess.run(
        [sys.executable, "-c", MLXP_SCRIPT, str(root), str(runs), str(steps), str(configs)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"the MLXP child process failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["runs"] == runs, result
    return result["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--mlxp-runs", type=int, default=1000)
    parser.add_argument("--dir", default="/dev/shm" if os.path.isdir("/dev/shm") else None)
    args = parser.parse_args()
    warnings.simplefilter("error")  # a damaged run in the benchmark data would be a bug
    tmp = Path(tempfile.mkdtemp(dir=args.dir, prefix="xprun-bench-"))
    try:
        log_dir = tmp / "logs"
        t_write, _ = timed(
            lambda: [write_xprun_run(log_dir, i, args.steps) for i in range(args.runs)]
        )
        print(
            f"wrote {args.runs:,} runs x {args.steps} steps x 3 metrics in {t_write:.1f}s ({tmp})"
        )

        t_cold, n = timed(lambda: len(xprun.Reader(log_dir)))
        assert n == args.runs
        print(f"1. cold index:                      {t_cold:6.2f} s   (target ≤ 10 s)")
        # Runs changed within 2 s before a scan are re-read once on the next refresh (the
        # "racy" rule: a same-tick change would be invisible to the modification time).
        # Measure the warm path once the runs just written have left that window.
        time.sleep(2.1)
        len(xprun.Reader(log_dir))

        def warm():
            reader = xprun.Reader(log_dir)
            selection = reader.filter("config.lr <= 1e-2 and config.model.width >= 128")
            return selection.groupby("config.optimizer", "config.lr").agg(
                loss=("outcome.loss", "mean"), spread=("outcome.loss", "std"), n=("hash", "count")
            )

        t_warm, grouped = timed(warm)
        assert grouped["n"].sum() > 0
        print(f"2. warm Reader + filter + groupby:  {t_warm:6.3f} s   (target ≤ 0.5 s)")

        t_hand, hand = timed(lambda: hand_written_aggregation(log_dir))
        t_ours, ours = timed(lambda: xprun_aggregation(log_dir))
        ours = ours.set_index("hash").sort_index()
        assert abs(ours["metrics.loss.mean"] - hand[("loss", "mean")].sort_index()).max() < 1e-12
        print(
            f"3. metric aggregation, all runs:    {t_ours:6.2f} s   hand-written loop {t_hand:.2f} s"
            f"   ratio {t_ours / t_hand:.2f}x (target ≤ 2x)"
        )

        for i in range(args.runs, args.runs + 10):
            write_xprun_run(log_dir, i, args.steps)
        t_incr, n = timed(lambda: len(xprun.Reader(log_dir)))
        assert n == args.runs + 10
        print(f"4. refresh after adding 10 runs:    {t_incr:6.3f} s   (target ≤ 1 s)")

        small = tmp / "small"
        for i in range(args.mlxp_runs):
            write_xprun_run(small, i, args.steps)
        t_small, n = timed(lambda: len(xprun.Reader(small)))
        assert n == args.mlxp_runs
        t_mlxp = mlxp_cold(tmp / "mlxp", args.mlxp_runs, args.steps)
        if t_mlxp is None:
            print("5. MLXP: not installed (pip install 'xprun[bench]')")
        else:
            print(
                f"5. cold, {args.mlxp_runs:,} runs: MLXP Reader {t_mlxp:.2f} s, xprun {t_small:.3f} s"
                f"   xprun is {t_mlxp / t_small:.0f}x faster (target ≥ 20x)"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
