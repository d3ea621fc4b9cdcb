"""Submitting a 1,000-config sweep to SLURM: one sbatch call, and xprun's own time.

    bash .ci/start-slurm.sh && python benchmarks/bench_submit.py [--runs 1000]
    python benchmarks/run.py --only submit

In a fresh Git project with ``@xprun.grid(i=range(N))``, times the whole command
``xprun --scheduler slurm`` (a new process: start-up, collection, expansion, state checks,
Git snapshot, spec, sbatch) with the jobs held (``--hold``) and cancelled afterwards.  An
``sbatch`` wrapper on PATH counts the calls and times them, so xprun's own time is the total
minus sbatch's.  The baseline, in the same run, is the least any tool pays: one
``sbatch --array=0-(N-1) --hold --wrap=true`` call.  MLXP submits one sbatch per config after
~100 ms of Hydra work each.
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
import time
from pathlib import Path

from _paired import figure

WRAPPER = """#!/bin/sh
start=$(date +%s.%N)
{sbatch} "$@"
code=$?
end=$(date +%s.%N)
echo "$start $end" >> {log}
exit $code
"""


def measure(runs: int) -> dict[str, float]:
    """xprun's submission of ``runs`` configs and the bare sbatch array, once each."""
    sbatch = shutil.which("sbatch")
    if not sbatch:
        raise RuntimeError("no sbatch here: start a cluster with bash .ci/start-slurm.sh")
    tmp = Path(tempfile.mkdtemp(prefix="xprun-submit-"))
    jobs: list[str] = []
    try:
        project = tmp / "project"
        project.mkdir()
        (project / "pyproject.toml").write_text(
            '[tool.xprun]\n[tool.xprun.slurm]\nsbatch_args = ["--hold"]\n'
        )
        (project / ".gitignore").write_text("xprun_logs/\n.xprun/\n")
        (project / "xp_many.py").write_text(
            textwrap.dedent(
                f"""
                import xprun

                @xprun.config({{"lr": 0.1, "model": {{"width": 64}}}})
                @xprun.grid(i=list(range({runs})))
                def xp_many(config):
                    return {{"i": config.i}}
                """
            )
        )
        env = {
            **os.environ,
            "GIT_AUTHOR_NAME": "b",
            "GIT_AUTHOR_EMAIL": "b@x",
            "GIT_COMMITTER_NAME": "b",
            "GIT_COMMITTER_EMAIL": "b@x",
        }
        for cmd in (
            ["git", "init", "-q", "-b", "main"],
            ["git", "add", "-A"],
            ["git", "commit", "-qm", "bench"],
        ):
            subprocess.run(cmd, cwd=project, check=True, env=env)
        bindir = tmp / "bin"
        bindir.mkdir()
        log = tmp / "sbatch-times.log"
        (bindir / "sbatch").write_text(WRAPPER.format(sbatch=sbatch, log=log))
        (bindir / "sbatch").chmod(0o755)

        start = time.perf_counter()
        baseline = subprocess.run(
            [
                sbatch,
                "--parsable",
                f"--array=0-{runs - 1}",
                "--hold",
                "--wrap=true",
                "--output=/dev/null",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        t_baseline = time.perf_counter() - start
        jobs.append(baseline.stdout.strip().split(";")[0])

        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "xprun", "--scheduler", "slurm", "-q"],
            cwd=project,
            env={**env, "PATH": f"{bindir}:{env['PATH']}"},
            capture_output=True,
            text=True,
        )
        t_total = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(proc.stdout + proc.stderr)
        calls = [tuple(map(float, line.split())) for line in log.read_text().splitlines()]
        for record in (project / "xprun_logs" / ".xprun-jobs").glob("*/job.json"):
            jobs += json.loads(record.read_text())["job_ids"]
        return {
            "calls": len(calls),
            "total": t_total,
            "sbatch": sum(end - begin for begin, end in calls),
            "baseline": t_baseline,
        }
    finally:
        if jobs:
            subprocess.run(["scancel", *jobs], check=False)
        shutil.rmtree(tmp, ignore_errors=True)


def _cluster_up() -> bool:
    if not shutil.which("sinfo"):
        return False
    try:
        return subprocess.run(["sinfo", "-h"], capture_output=True, timeout=20).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def figures(quick: bool = False) -> list[dict]:
    runs = 100 if quick else 1000
    name = f"submit {runs:,} configs to SLURM"
    if not _cluster_up():
        note = "skipped: no SLURM cluster answers here (bash .ci/start-slurm.sh, SLURM_CONF)"
        return [figure(name, float("nan"), float("nan"), "s", None, note)]
    m = measure(runs)
    return [
        figure(
            name,
            m["total"],
            m["baseline"],
            "s",
            None,
            f"{m['calls']:.0f} sbatch call(s); xprun's own time {m['total'] - m['sbatch']:.2f} s "
            "(start-up, collection, snapshot, spec; target <= 2 s); "
            "floor: one bare sbatch --array call",
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    args = parser.parse_args()
    try:
        m = measure(args.runs)
    except RuntimeError as exc:
        sys.exit(str(exc))
    print(f"runs: {args.runs:,}")
    print(f"sbatch calls made by xprun:        {m['calls']:.0f}")
    print(
        f"xprun --scheduler slurm, total:    {m['total']:.2f} s (a new process, start-up included)"
    )
    print(f"  of which sbatch itself:          {m['sbatch']:.2f} s")
    print(f"  xprun's own time:                {m['total'] - m['sbatch']:.2f} s   (target ≤ 2 s)")
    print(f"baseline, one bare sbatch array:   {m['baseline']:.2f} s")
    print(f"ratio xprun total / bare sbatch:   {m['total'] / m['baseline']:.1f}x")


if __name__ == "__main__":
    main()
