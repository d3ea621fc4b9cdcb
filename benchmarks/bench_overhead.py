"""Marginal cost of one run (the CPU path, and the price of durability) against a plain loop.

    python benchmarks/bench_overhead.py [--small 50] [--big 550] [--rounds 5]
                                        [--tmpfs /dev/shm] [--disk DIR] [--only tmpfs|disk]
                                        [--clock wall|cpu] [--floor plain|durable|atomic]

The realistic case of issue 11: an 11-key config (seed, lr, optimizer, batch_size, epochs,
weight_decay, momentum, dataset, model.depth, model.width, n_steps), an experiment that takes
``config`` and ``logger``, logs one metric and returns a small dict, swept from the command
line (``xprun -q seed=range(0,N)``).  Each side is timed as a whole process, at N = small and
N = big runs, and the marginal cost per run is ``(T(big) - T(small)) / (big - small)``: start-up,
imports and collection cancel out, what is left is what each additional run costs.

The floor is a plain Python loop, also a whole process, that writes the same files per run
(``config.yaml`` with the same YAML dumper, ``run.json`` twice, ``metrics/metrics.jsonl``,
``outcome.json``), plainly (no temporary file, no claim, no hash).  On disk the floor also does
the durable writes xprun promises, as issue 11's target 4 asks ("a plain loop that does the
same durable write per run"): ``outcome.json`` and the final ``run.json`` are each written
to a temporary file, fsynced, renamed into place and their folder fsynced, the one way to
make a file both whole and durable (``--floor durable``, the disk row's floor).  The ratio
there is the price of xprun's protocol (claim, the ``running`` record's and ``config.yaml``'s
temporary files, the CPU path), not of durability itself.  ``--floor plain`` (the disk row's
floor until 1 Dec) fsyncs the same two files and folder but writes them in place, which no
durable writer can do (a crash mid-write leaves a torn file); ``--floor atomic`` writes every
file to a temporary name renamed into place, as xprun does.  The tmpfs row's floor is always
plain.

Rounds alternate floor and xprun (floor first in even rounds), and each figure is the median of
the rounds' marginal costs: on a shared machine absolute times drift, the ratio much less.
``--clock cpu`` measures each process's user + system time instead of the wall clock: steadier
on a loaded machine, blind to waiting for a disk (so meant for tmpfs).  The disk directory is
``$XPRUN_BENCH_DISK``, else ``/var/tmp``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _paired import figure

TMPFS_TARGET = 3.0  # issue 11, item 3: the CPU path per run
DISK_TARGET = 1.5  # issue 11, item 4: the durable path per run on disk

EXPERIMENT = """\
import xprun

@xprun.config({
    "seed": 0, "lr": 0.1, "optimizer": "sgd", "batch_size": 32, "epochs": 1,
    "weight_decay": 0.0001, "momentum": 0.9, "dataset": "mnist",
    "model": {"depth": 4, "width": 128}, "n_steps": 1,
})
def xp_train(config, logger):
    logger.log_metrics({"loss": 1.0 / (1 + config.seed)})
    return {"loss": 0.5, "seed": config.seed}
"""

# The plain loop: the same files, the same contents in kind, nothing else.
FLOOR = """\
import json, os, platform, socket, sys, time
import yaml

DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
n, root, durable = int(sys.argv[1]), sys.argv[2], sys.argv[3] == "durable"
# plain: each file written in place; durable: the durable writes (the outcome, the final record)
# made as xprun makes them, to a temporary name fsynced and renamed; atomic: every file so.
floor_kind = sys.argv[4] if len(sys.argv) > 4 else "plain"
atomic = floor_kind == "atomic"
BASE = {
    "seed": 0, "lr": 0.1, "optimizer": "sgd", "batch_size": 32, "epochs": 1,
    "weight_decay": 0.0001, "momentum": 0.9, "dataset": "mnist",
    "model": {"depth": 4, "width": 128}, "n_steps": 1,
}
HOST = {"host": socket.gethostname(), "pid": os.getpid(), "python": platform.python_version(),
        "platform": platform.platform(), "argv": sys.argv, "cwd": os.getcwd()}


def write(path, text, sync=False, rename=atomic):
    target, path = path, (path + ".tmp" if rename else path)
    with open(path, "w") as f:
        f.write(text)
        if sync:
            f.flush()
            os.fsync(f.fileno())
    if rename:
        os.replace(path, target)
    if sync:
        fd = os.open(os.path.dirname(path), os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def experiment(config, log):
    log({"loss": 1.0 / (1 + config["seed"])})
    return {"loss": 0.5, "seed": config["seed"]}


os.makedirs(root)
for seed in range(n):
    config = {**BASE, "model": dict(BASE["model"]), "seed": seed}
    run_dir = os.path.join(root, f"run{seed}")
    os.mkdir(run_dir)
    write(os.path.join(run_dir, "config.yaml"), yaml.dump(config, Dumper=DUMPER, sort_keys=False))
    start = time.time()
    record = {"status": "running", "attempt": 1, "start": start, **HOST}
    write(os.path.join(run_dir, "run.json"), json.dumps(record))
    os.mkdir(os.path.join(run_dir, "metrics"))
    lines = []
    outcome = experiment(config, lambda values: lines.append(
        json.dumps({"step": len(lines), "time": time.time(), "attempt": 1, **values})))
    text = "\\n".join(lines) + "\\n"
    write(os.path.join(run_dir, "metrics", "metrics.jsonl"), text, rename=False)
    same = atomic or (durable and floor_kind == "durable")  # a durable write as xprun's
    write(os.path.join(run_dir, "outcome.json"), json.dumps(outcome), durable, same)
    end = time.time()
    record.update(status="complete", end=end, duration=end - start)
    write(os.path.join(run_dir, "run.json"), json.dumps(record), durable, same)
"""


def _fs_type(path: str) -> str:
    """The file system type holding ``path`` (from /proc/mounts), for the figure's note."""
    try:
        mounts = [line.split() for line in Path("/proc/mounts").read_text().splitlines()]
    except OSError:
        return "?"
    real = os.path.realpath(path)
    best = ("", "?")
    for fields in mounts:
        point = fields[1]
        if (real == point or real.startswith(point.rstrip("/") + "/")) and len(point) > len(
            best[0]
        ):
            best = (point, fields[2])
    return best[1]


def _run(args: list[str], cwd: Path) -> tuple[float, float]:
    """Wall-clock and CPU seconds (user + system, its threads included) of one process."""
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(args, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            out.seek(0)
            text = out.read().decode(errors="replace")
            raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}):\n{text}")
    return elapsed, usage.ru_utime + usage.ru_stime


class _Case:
    """One place to write runs: a project with the experiment, and the floor script."""

    def __init__(self, where: str | None, durable: bool, floor: str = "plain") -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="xprun-bench-overhead-", dir=where))
        self.project = self.tmp / "project"
        self.project.mkdir()
        (self.project / "pyproject.toml").write_text("[tool.xprun]\n")
        (self.project / "xp_bench.py").write_text(EXPERIMENT)
        (self.tmp / "floor.py").write_text(FLOOR)
        self.durable = durable
        self.floor_kind = floor
        self._count = 0

    def _fresh(self, what: str) -> Path:
        self._count += 1
        return self.tmp / f"{what}{self._count}"

    def floor(self, n: int) -> tuple[float, float]:
        out = self._fresh("floor")
        mode = "durable" if self.durable else "plain"
        extra = [self.floor_kind]
        try:
            return _run(
                [sys.executable, str(self.tmp / "floor.py"), str(n), str(out), mode, *extra],
                self.tmp,
            )
        finally:
            shutil.rmtree(out, ignore_errors=True)

    def xprun(self, n: int) -> tuple[float, float]:
        logs = self._fresh("logs")
        args = [sys.executable, "-m", "xprun", "-q", "--log-dir", str(logs), f"seed=range(0,{n})"]
        try:
            return _run(args, self.project)
        finally:
            shutil.rmtree(logs, ignore_errors=True)

    def close(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def measure(
    where: str | None,
    durable: bool,
    small: int,
    big: int,
    rounds: int,
    clock: str = "wall",
    warm: bool = True,
    floor: str = "plain",
) -> tuple[float, float]:
    """Median marginal milliseconds per run of xprun and of the floor, paired rounds.

    ``clock``: ``wall`` (elapsed time, what a user waits) or ``cpu`` (user + system time of
    the process: steadier on a loaded machine, but blind to waiting for the disk).
    ``floor``: ``plain`` (each file written in place; the durable ones fsynced with their
    folder when ``durable``), ``durable`` (the durable ones as xprun writes them: temporary
    file, fsync, rename, folder fsync) or ``atomic`` (every file to a temporary name renamed
    into place, as xprun does).
    """
    case = _Case(where, durable, floor)
    which = 0 if clock == "wall" else 1
    try:
        if warm:  # the caches (page cache, the file system's metadata) once, on both sides
            case.xprun(5)
            case.floor(5)
        values: list[float] = []
        floors: list[float] = []

        def marginal(side: str) -> float:
            timer = case.floor if side == "floor" else case.xprun
            return 1000 * (timer(big)[which] - timer(small)[which]) / (big - small)

        for i in range(rounds):
            order = ("floor", "xprun") if i % 2 == 0 else ("xprun", "floor")
            for side in order:
                (floors if side == "floor" else values).append(marginal(side))
        return statistics.median(values), statistics.median(floors)
    finally:
        case.close()


def _disk_dir() -> str:
    """A directory on a disk (not a RAM disk): $XPRUN_BENCH_DISK, else /var/tmp, else $TMPDIR."""
    return os.environ.get("XPRUN_BENCH_DISK") or (
        "/var/tmp" if os.path.isdir("/var/tmp") else tempfile.gettempdir()
    )


def figures(quick: bool = False) -> list[dict]:
    """The tmpfs row (the CPU path) and the disk row (durable records).

    ``quick`` (a smoke test): fewer runs and one round, and the tmpfs row by CPU time, which
    a loaded machine disturbs less than the wall clock at so few runs.
    """
    tmpfs = "/dev/shm" if os.path.isdir("/dev/shm") else None
    disk = _disk_dir()
    results = []
    for name, where, durable, target, sizes, clock in (
        ("per run, CPU path (tmpfs)", tmpfs, False, TMPFS_TARGET, (50, 550), "wall"),
        ("per run, durable (disk)", disk, True, DISK_TARGET, (20, 220), "wall"),
    ):
        small, big = sizes
        rounds = 5
        if quick:
            small, big, rounds = small // 5, big // 5, 1
            clock = "cpu" if not durable else clock
        kind = "durable" if durable else "plain"
        value, floor = measure(where, durable, small, big, rounds, clock, not quick, kind)
        fs = _fs_type(where or tempfile.gettempdir())
        what = "plain loop, same files" + (
            ", same durable writes (temporary file, fsync, rename, folder fsync)" if durable else ""
        )
        results.append(
            figure(
                name,
                value,
                floor,
                "ms/run",
                target,
                f"{fs}; floor: {what}; (T({big})-T({small}))/{big - small}, {clock} clock, "
                f"median of {rounds}",
            )
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=50)
    parser.add_argument("--big", type=int, default=550)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tmpfs", default="/dev/shm" if os.path.isdir("/dev/shm") else None)
    parser.add_argument("--disk", default=_disk_dir())
    parser.add_argument("--only", choices=("tmpfs", "disk"), default=None)
    parser.add_argument(
        "--floor",
        choices=("plain", "durable", "atomic"),
        default=None,
        help="plain: the floor writes each file in place (the tmpfs figure); durable: the "
        "durable files as xprun writes them, temporary file, fsync, rename, folder fsync (the "
        "disk figure); atomic: every file to a temporary name renamed into place, as xprun "
        "does.  Default: each row's own",
    )
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall: elapsed time (the figures); cpu: the process's user + system time, steadier "
        "on a loaded machine but blind to fsync waits",
    )
    args = parser.parse_args()
    print(
        f"marginal ms per run, (T({args.big}) - T({args.small})) / {args.big - args.small}, "
        f"median of {args.rounds} paired rounds, {args.clock} clock, Python {sys.version.split()[0]}"
    )
    cases = [("tmpfs", args.tmpfs, False, TMPFS_TARGET), ("disk", args.disk, True, DISK_TARGET)]
    for label, where, durable, target in cases:
        if args.only not in (None, label):
            continue
        kind = args.floor or ("durable" if durable else "plain")
        value, floor = measure(
            where,
            durable,
            args.small,
            args.big,
            args.rounds,
            args.clock,
            floor=kind,
        )
        fs = _fs_type(where or tempfile.gettempdir())
        print(
            f"{label:5} {where} ({fs}): {kind} loop {floor:.3f}, xprun {value:.3f} ms/run, "
            f"ratio {value / floor:.2f}x (target <= {target}x)"
        )


if __name__ == "__main__":
    main()
