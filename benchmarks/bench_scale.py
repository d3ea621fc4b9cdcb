"""Sweeps at scale: ``--collect-only`` and a launch that finds every run complete, against
plain-Python floors measured in the same rounds.

    python benchmarks/bench_scale.py [--quick] [--rounds 3]

A fresh project holds one experiment: an 11-key config (seed, lr, optimizer, batch_size,
epochs, weight_decay, momentum, dataset, model.depth, model.width, n_steps) swept over
``@xprun.grid(seed=range(N))``.  Each figure times whole processes (start-up included):

- ``collect-only N``: ``xprun --collect-only -q`` (every run listed with its hash and state),
  against a floor process that builds the same N dicts and hashes them
  (``json.dumps(sort_keys=True)`` + xxh3-128);
- ``all complete N``: ``xprun -q`` when all N runs are complete (it must run nothing),
  against a floor process that builds and hashes the same dicts and ``stat``s each run dir.
  The complete run directories are written by this script from a real run's ``run.json``.
  Measured twice: the first check after the runs completed (the experiment folder's
  completion summary removed before each round: every record is read once) and the later
  ones (one ``stat`` of each record against the summary);
- ``per config 1M / 10k`` (not in ``--quick``): time per config at 1,000,000 configs over time
  per config at 10,000 (linear collection: at most 1.5);
- ``peak memory 1M`` (not in ``--quick``): the collecting process's peak RSS
  (``wait4``'s rusage), against the issue's budget of 1 GiB.

Times are CPU seconds (user + system) of the whole child process.  Floor and xprun
alternate, round after round; each figure is the median of its rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _paired import figure

BASE = {
    "seed": 0,
    "lr": 0.1,
    "optimizer": "sgd",
    "batch_size": 32,
    "epochs": 10,
    "weight_decay": 0.0001,
    "momentum": 0.9,
    "dataset": "mnist",
    "model": {"depth": 4, "width": 128},
    "n_steps": 100,
}

EXPERIMENT = f"""
import os

import xprun

@xprun.config({BASE!r})
@xprun.grid(seed=range(int(os.environ["BENCH_N"])))
def xp_scale(config):
    return {{"seed": config.seed}}
"""

# The floor: the same dicts, hashed by the fastest plain-Python means (C json, xxh3); with a
# folder, each run dir is stat'ed too (the least a skip check can do).
FLOOR = """
import json, os, sys, xxhash
n, base, folder = int(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
for i in range(n):
    config = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
    config["seed"] = i
    text = json.dumps({"experiment": "xp_scale.py::xp_scale", "config": config, "params": {}},
                      sort_keys=True, ensure_ascii=False)
    digest = xxhash.xxh3_128_hexdigest(text.encode())
    if folder:
        try:
            os.stat(os.path.join(folder, digest))
        except FileNotFoundError:
            pass
"""

FOLDER = "xp_scale.xp_scale"


# Runs the measured command as the child of a fresh, small process.  Linux carries a
# process's peak RSS across fork and exec: a child forked from this benchmark (which holds
# the 1M-config listing) would report at least this process's size as its own peak.  A
# child forked from a new interpreter starts from that interpreter's ~10 MiB instead, the
# same for xprun and the floor.
_LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.execvp(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_utime + usage.ru_stime, usage.ru_maxrss)
"""


def _child(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Run ``cmd``; the CPU seconds it used (user + system) and its peak RSS in MiB.  CPU
    time, not wall time: on a shared machine the wall clock mostly measures the other
    processes, and these processes do not wait for anything but the CPU."""
    out = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, *cmd],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    ).stdout
    code, cpu, rss_kib = out.split()
    if int(code) != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {code}")
    return float(cpu), int(rss_kib) / 1024


class Project:
    """The benchmark's project folder and how to run xprun and the floor in it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        (root / "pyproject.toml").write_text('[tool.xprun]\nlog_dir = "xprun_logs"\n')
        (root / "xp_scale.py").write_text(textwrap.dedent(EXPERIMENT))
        self.env = {**os.environ, "XPRUN_DISABLE_PLUGIN_AUTOLOAD": "1", "XPRUN_MAX_RUNS": "2000000"}

    def xprun(self, n: int, *args: str, forget_summary: bool = False) -> tuple[float, float]:
        if forget_summary:  # the experiment folder's completion summary: a cache
            (self.root / "xprun_logs" / FOLDER / ".complete.json").unlink(missing_ok=True)
        cmd = [sys.executable, "-m", "xprun", "-q", *args]
        return _child(cmd, self.root, {**self.env, "BENCH_N": str(n)})

    def floor(self, n: int, stat: bool) -> tuple[float, float]:
        folder = str(self.root / "xprun_logs" / FOLDER) if stat else ""
        cmd = [sys.executable, "-c", FLOOR, str(n), json.dumps(BASE), folder]
        return _child(cmd, self.root, self.env)

    def complete_runs(self, n: int) -> None:
        """Make all ``n`` runs complete: one real run gives the record, copied to each hash."""
        log_dir = self.root / "xprun_logs"
        shutil.rmtree(log_dir, ignore_errors=True)
        subprocess.run(
            [sys.executable, "-m", "xprun", "-q"],
            cwd=self.root,
            env={**self.env, "BENCH_N": "1"},
            check=True,
            stdout=subprocess.DEVNULL,
        )
        (template,) = (log_dir / FOLDER).iterdir()
        record = json.loads((template / "run.json").read_text())
        config = (template / "config.yaml").read_text()
        listing = subprocess.run(
            [sys.executable, "-m", "xprun", "--collect-only", "-q"],
            cwd=self.root,
            env={**self.env, "BENCH_N": str(n)},
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        import yaml

        from xprun import journal

        # Each run's results-journal line too, as the run protocol appends it (what a
        # launch that finds the runs complete without a summary reads instead of records).
        writer = journal.Writer(str(log_dir / FOLDER))
        config_json = json.dumps(yaml.safe_load(config))
        for line in listing.splitlines():
            if "::" not in line:
                continue
            _, digest, nodeid = line.split()
            run_dir = log_dir / FOLDER / digest
            run_dir.mkdir(exist_ok=True)
            record.update(hash=digest, digest=f"xxh3_128:{digest}", nodeid=nodeid)
            (run_dir / "run.json").write_text(json.dumps(record))
            (run_dir / "config.yaml").write_text(config)
            signature = journal.record_signature(str(run_dir))
            folder = journal.folder_signature(str(run_dir))
            if signature is not None and folder is not None:
                writer.append(digest, signature + folder, record, config_json, None)
        writer.close()


def _paired(measure, floor, rounds: int) -> tuple[list[tuple[float, float]], list[float]]:
    values, floors = [], []
    for i in range(rounds):
        pair = (floor, measure) if i % 2 == 0 else (measure, floor)
        for fn in pair:
            result = fn()
            (floors if fn is floor else values).append(result)
    return values, [f[0] for f in floors]


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def figures(quick: bool = False, rounds: int = 3) -> list[dict]:
    sizes = [1_000, 10_000] if quick else [1_000, 10_000, 100_000]
    rounds = 1 if quick else rounds
    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="xprun-scale-"))
    try:
        project = Project(tmp / "project")
        per_config: dict[int, float] = {}
        for n in sizes:
            values, floors = _paired(
                lambda n=n: project.xprun(n, "--collect-only"),
                lambda n=n: project.floor(n, stat=False),
                rounds,
            )
            value = _median([v[0] for v in values])
            per_config[n] = value / n
            rows.append(
                figure(
                    f"collect-only {n:,} configs",
                    value,
                    _median(floors),
                    "s",
                    3.0 if n == 100_000 else None,
                    f"peak RSS {max(v[1] for v in values):.0f} MiB",
                )
            )
        for n in sizes:
            project.complete_runs(n)
            # The first launch after the runs completed reads each record once (the
            # completion summary is cold: removed before each such round); later launches
            # stat each record against the summary.
            for first in (True, False):
                values, floors = _paired(
                    lambda n=n, first=first: project.xprun(n, forget_summary=first),
                    lambda n=n: project.floor(n, stat=True),
                    rounds,
                )
                rows.append(
                    figure(
                        f"launch, all {n:,} complete" + (" (first check)" if first else ""),
                        _median([v[0] for v in values]),
                        _median(floors),
                        "s",
                        3.0 if n == 100_000 and not first else None,
                        "runs nothing; floor: hash and stat each run dir; peak RSS "
                        f"{max(v[1] for v in values):.0f} MiB"
                        + (
                            "; summary removed: each run's journal line, or its record"
                            if first
                            else ""
                        ),
                    )
                )
        shutil.rmtree(tmp / "project" / "xprun_logs", ignore_errors=True)
        if not quick:
            elapsed, rss = project.xprun(1_000_000, "--collect-only")
            rows.append(
                figure(
                    "collect-only: time per config at 1M / at 10k",
                    elapsed / 1_000_000 * 1e6,
                    per_config[10_000] * 1e6,
                    "us/config",
                    1.5,
                    f"1M configs in {elapsed:.1f} s",
                )
            )
            rows.append(
                figure(
                    "collect-only 1M configs: peak RSS",
                    rss,
                    1024.0,
                    "MiB",
                    1.0,
                    "floor: the 1 GiB budget",
                )
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1k and 10k only, one round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"{'figure':<48} {'xprun':>10} {'floor':>10} {'ratio':>7} {'target':>7}  note")
    for row in figures(args.quick, args.rounds):
        target = f"{row['target']:.1f}" if row["target"] else "-"
        print(
            f"{row['name']:<48} {row['value']:>10.3f} {row['floor']:>10.3f} "
            f"{row['ratio']:>7.2f} {target:>7}  {row['unit']}; {row['note']}"
        )


if __name__ == "__main__":
    main()
