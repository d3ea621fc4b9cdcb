"""Per-run cost of xprun, MLXP's launcher and Hydra ``--multirun``, on the same experiments.

    pip install -e '.[bench]'      # MLXP; hydra-core already comes with xprun
    python benchmarks/bench_mlxp_hydra.py [--rounds 3] [--quick]

Two experiments, each written once per tool in that tool's own idiom:

- trivial: a 1-key config (``seed``), a function that does nothing;
- realistic: an 11-key config (seed, lr, optimizer, batch_size, epochs, weight_decay,
  momentum, dataset, model.depth, model.width, n_steps) and one metric logged per run, with
  the tool's logger (xprun's ``logger`` fixture, ``ctx.logger`` in MLXP; Hydra has none: a
  JSON line appended in the run's output folder).

Each tool sweeps ``seed=range(0,N)`` from the command line, as a whole process in a fresh
folder on /dev/shm (a RAM disk): ``xprun FILE seed=range(0,N)``, ``python main.py
seed=range(0,N)`` under ``@mlxp.launch``, ``python app.py --multirun seed=range(0,N)`` under
``@hydra.main``.  The per-run cost is the marginal one, ``(T(big) - T(small)) / (big -
small)``, start-up and imports cancelling out; each T is the median of the rounds, tools
alternating.  Figures: MLXP's and Hydra's cost per run, with xprun's as the floor, so the
ratio says how many times xprun is faster.  Without MLXP installed, its rows are skipped with
a note.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from _paired import figure

REALISTIC = {
    "seed": 0,
    "lr": 0.001,
    "optimizer": "adam",
    "batch_size": 128,
    "epochs": 10,
    "weight_decay": 0.0001,
    "momentum": 0.9,
    "dataset": "cifar10",
    "model": {"depth": 4, "width": 256},
    "n_steps": 1000,
}
TRIVIAL = {"seed": 0}

XPRUN = """
import xprun

@xprun.config({config!r})
def xp_bench(config{logger_arg}):
    {body}
"""
MLXP = """
import mlxp

@mlxp.launch(config_path="./configs")
def main(ctx: mlxp.Context) -> None:
    {body}

if __name__ == "__main__":
    main()
"""
HYDRA = """
import json, os
import hydra
from hydra.core.hydra_config import HydraConfig

@hydra.main(version_base=None, config_path="conf", config_name="config")
def main(cfg) -> None:
    {body}

if __name__ == "__main__":
    main()
"""
BODIES = {
    "xprun": 'logger.log_metrics({"loss": 1.0 / (config.seed + 1)})',
    "mlxp": 'ctx.logger.log_metrics({"loss": 1.0 / (ctx.config.seed + 1)}, log_name="train")',
    "hydra": 'with open(os.path.join(HydraConfig.get().runtime.output_dir, "metrics.jsonl"), "a") as f:\n'
    '        f.write(json.dumps({"loss": 1.0 / (cfg.seed + 1)}) + "\\n")',
}


def _yaml(config: dict) -> str:
    import yaml

    return yaml.safe_dump(config, sort_keys=False)


def write_project(root: Path, tool: str, realistic: bool) -> tuple[list[str], Path]:
    """The tool's experiment in ``root``; returns the command (without the sweep) and cwd."""
    root.mkdir(parents=True)
    config = REALISTIC if realistic else TRIVIAL
    if tool == "xprun":
        body = BODIES["xprun"] if realistic else "pass"
        (root / "pyproject.toml").write_text('[tool.xprun]\nlog_dir = "xprun_logs"\n')
        source = XPRUN.format(config=config, logger_arg=", logger" if realistic else "", body=body)
        (root / "xp_bench.py").write_text(textwrap.dedent(source))
        return [sys.executable, "-m", "xprun", "xp_bench.py", "-q"], root
    if tool == "mlxp":
        (root / "configs").mkdir()
        (root / "configs" / "config.yaml").write_text(_yaml(config))
        (root / "main.py").write_text(MLXP.format(body=BODIES["mlxp"] if realistic else "pass"))
        return [sys.executable, "main.py"], root
    (root / "conf").mkdir()
    (root / "conf" / "config.yaml").write_text(_yaml(config))
    (root / "app.py").write_text(HYDRA.format(body=BODIES["hydra"] if realistic else "pass"))
    return [sys.executable, "app.py", "--multirun"], root


def sweep_seconds(base: Path, tool: str, realistic: bool, runs: int) -> float:
    """One whole process sweeping ``seed=range(0,runs)``, in a fresh folder."""
    root = Path(tempfile.mkdtemp(dir=base, prefix=f"{tool}-"))
    shutil.rmtree(root)
    command, cwd = write_project(root, tool, realistic)
    env = {**os.environ, "XPRUN_DISABLE_PLUGIN_AUTOLOAD": "1", "HYDRA_FULL_ERROR": "1"}
    start = time.perf_counter()
    proc = subprocess.run(
        [*command, f"seed=range(0,{runs})"],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,  # MLXP asks questions on a terminal
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{tool} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    shutil.rmtree(root)
    return elapsed


def mlxp_installed() -> bool:
    return importlib.util.find_spec("mlxp") is not None


def measure(
    quick: bool, rounds: int, where: str | None
) -> tuple[dict[tuple[str, bool], float], list[str]]:
    """Marginal seconds per run of each (tool, realistic); the tools left out, and why."""
    tools = ["xprun", "hydra"] + (["mlxp"] if mlxp_installed() else [])
    sizes = {  # (small, big): xprun needs many more runs for the difference to stand out
        "xprun": (10, 60) if quick else (50, 550),
        "hydra": (1, 4) if quick else (2, 22),
        "mlxp": (1, 4) if quick else (2, 22),
    }
    times: dict[tuple[str, bool, int], list[float]] = {}
    with tempfile.TemporaryDirectory(dir=where, prefix="xprun-h2h-") as tmp:
        for i in range(rounds):
            order = tools if i % 2 == 0 else tools[::-1]
            for realistic in (False, True):
                for tool in order:
                    for n in sizes[tool]:
                        seconds = sweep_seconds(Path(tmp), tool, realistic, n)
                        times.setdefault((tool, realistic, n), []).append(seconds)
    marginal = {}
    for tool in tools:
        small, big = sizes[tool]
        for realistic in (False, True):
            t_small = statistics.median(times[tool, realistic, small])
            t_big = statistics.median(times[tool, realistic, big])
            marginal[tool, realistic] = max(t_big - t_small, 1e-9) / (big - small)
    skipped = [] if mlxp_installed() else ["mlxp"]
    return marginal, skipped


def figures(quick: bool = False) -> list[dict]:
    rounds = 1 if quick else 3
    where = "/dev/shm" if os.path.isdir("/dev/shm") else None
    marginal, skipped = measure(quick, rounds, where)
    rows = []
    names = {"mlxp": "MLXP launcher", "hydra": "Hydra --multirun"}
    for tool in ("mlxp", "hydra"):
        for realistic in (False, True):
            what = "realistic (11 keys, 1 metric)" if realistic else "trivial"
            name = f"head-to-head: {names[tool]} per run, {what}"
            if tool in skipped:
                rows.append(figure(name, float("nan"), float("nan"), "ms/run", None, _SKIP_NOTE))
                continue
            rows.append(
                figure(
                    name,
                    1000 * marginal[tool, realistic],
                    1000 * marginal["xprun", realistic],
                    "ms/run",
                    None,
                    f"floor: xprun's marginal cost per run, same experiment (ratio = times "
                    f"faster); whole processes, median of {rounds}",
                )
            )
    return rows


_SKIP_NOTE = "skipped: MLXP is not installed (pip install -e '.[bench]')"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--dir", default="/dev/shm" if os.path.isdir("/dev/shm") else None)
    args = parser.parse_args()
    marginal, skipped = measure(args.quick, args.rounds, args.dir)
    for (tool, realistic), seconds in sorted(marginal.items()):
        what = "realistic" if realistic else "trivial"
        print(f"{tool:6} {what:10} {1000 * seconds:8.2f} ms/run")
    for tool in skipped:
        print(f"{tool}: {_SKIP_NOTE}")


if __name__ == "__main__":
    main()
