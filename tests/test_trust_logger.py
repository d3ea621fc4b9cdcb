"""Issue 8 items 1 and 3, issue 9 item 7: what the logger saves can be loaded back, resumed
metrics hold one line per step, and bad checkpoint arguments write nothing.

Checkpoints and resumes go through the real CLI with real crashes (the experiment raises, or
SIGKILLs its own process); argument checks use the public ``Logger`` API.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from optional import require

import xprun
from xprun.logger import Logger

pytestmark = pytest.mark.inprocess  # xprun launched in the test's process (tests/launch.py)


def checkpoints(run_dir):
    """The checkpoint files of a run, and any temporary file left behind."""
    folder = run_dir / "checkpoints"
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("steps-"))


def lines(run_dir, name):
    path = run_dir / "metrics" / f"{name}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


# -- issue 8 item 1: what saves can be loaded ----------------------------------------------------

MODULE_CHECKPOINT = """
import torch
import xprun

@xprun.config({"epochs": 3})
def xp_train(config, logger):
    model = torch.nn.Linear(2, 1)
    for epoch in range(config.epochs):
        logger.save_checkpoint({"model": model, "epoch": epoch})   # MLXP's documented pattern
    return {"done": True}
"""


def test_i8_01_checkpoint_holding_a_module_is_refused_at_save_with_the_fix(project):
    require("torch")
    project.write("xp_train.py", MODULE_CHECKPOINT)
    result = project.run()
    assert result.returncode == 1, result.output  # refused at once, not on every retry later
    (run_dir,) = project.run_dirs()
    error = (run_dir / "error.txt").read_text()
    assert "TypeError" in error and "torch.nn.Module" in error and "'model'" in error
    assert "state_dict()" in error and "kind='pickle'" in error
    assert not list(run_dir.glob("checkpoints/*"))  # nothing that would fail the retry


RESUMED_MODEL = """
import torch
import xprun

@xprun.config({{"epochs": 4}})
def xp_{route}(config, logger, run):
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    state = logger.load_checkpoint({load_args})
    start = 0
    if state is not None:
        {restore}
        start = state["epoch"] + 1
    for epoch in range(start, config.epochs):
        opt.zero_grad()
        model(torch.ones(2)).sum().backward()
        opt.step()
        logger.save_checkpoint({save_state}{save_args})
        if run.attempt == 1 and epoch == 1:
            raise RuntimeError("the node died")
    return {{"resumed_from": start, "bias": float(model.bias)}}
"""

ROUTES = {
    # The recommended route: state_dicts, which load without unpickling.
    "state_dict": dict(
        load_args="",
        restore='model.load_state_dict(state["model"]); opt.load_state_dict(state["opt"])',
        save_state='{"model": model.state_dict(), "opt": opt.state_dict(), "epoch": epoch}',
        save_args="",
    ),
    # The explicit opt-in: the same kind= when saving and when loading.
    "pickle": dict(
        load_args='kind="pickle"',
        restore='model = state["model"]; opt = torch.optim.SGD(model.parameters(), lr=0.1)',
        save_state='{"model": model, "epoch": epoch}',
        save_args=', kind="pickle"',
    ),
}


def test_i8_01_a_saved_checkpoint_resumes_after_a_failure(project):
    """Each route, one experiment each in one file: two launches for both (each launch with
    torch costs seconds of CPU, most of it torch's optimizer importing torch._dynamo)."""
    require("torch")
    project.write(
        "xp_train.py", "\n".join(RESUMED_MODEL.format(route=r, **ROUTES[r]) for r in ROUTES)
    )
    first = project.run()
    assert first.returncode == 1, first.output
    assert "RuntimeError: the node died" in first.output, first.output
    for route in ROUTES:
        assert f"FAILED xp_train.py::xp_{route} - RuntimeError: the node died" in first.output
    second = project.run()
    assert second.returncode == 0, second.output
    for route in ROUTES:
        (run_dir,) = project.run_dirs(f"xp_train.xp_{route}")
        outcome = json.loads((run_dir / "outcome.json").read_text())
        assert outcome["resumed_from"] == 2, route


def test_i8_01_artifacts_follow_the_same_rule_as_checkpoints(tmp_path):
    torch = require("torch")
    model = torch.nn.Linear(3, 2)
    logger = Logger(tmp_path)
    for what in (model, {"model": model, "epoch": 1}):
        with pytest.raises(TypeError, match=r"torch\.nn\.Module.*state_dict\(\).*kind='pickle'"):
            logger.log_artifact("m", what)
    assert not (tmp_path / "artifacts").exists()  # nothing half-written
    logger.log_artifact("weights", model.state_dict())
    assert torch.equal(logger.load_artifact("weights")["bias"], model.bias)
    logger.log_artifact("whole", model, kind="pickle")
    assert isinstance(logger.load_artifact("whole", kind="pickle"), torch.nn.Linear)
    logger.close()


def _unloadable_states(torch):
    """States that torch.save writes but torch.load(weights_only=True) refuses."""
    model = torch.nn.Linear(2, 2)
    return {
        "module": {"model": model},
        "optimizer": {"opt": torch.optim.SGD(model.parameters(), lr=0.1)},
        "numpy array": {"w": torch.ones(2), "rng": np.random.get_state()},
        "object": {"w": torch.ones(2), "thing": object()},
    }


@pytest.mark.parametrize("case", ["module", "optimizer", "numpy array", "object"])
def test_i8_01_what_cannot_load_safely_is_refused_before_anything_is_written(tmp_path, case):
    torch = require("torch")
    logger = Logger(tmp_path)
    logger.save_checkpoint({"w": torch.zeros(1), "epoch": 0})
    fix = r"state_dict\(\).*" if case in ("module", "optimizer") else ""
    with pytest.raises(TypeError, match=fix + "kind='pickle'"):
        logger.save_checkpoint(_unloadable_states(torch)[case])
    with pytest.raises(TypeError, match=fix + "kind='pickle'"):
        logger.log_artifact("state", _unloadable_states(torch)[case])
    assert checkpoints(tmp_path) == ["ckpt-00000001.pt"]
    assert logger.load_checkpoint()["epoch"] == 0  # the last good checkpoint still loads
    assert not (tmp_path / "artifacts").exists()
    logger.close()


# -- issue 8 item 3: resumed metrics hold one line per step ------------------------------------

RESUMED_METRICS = """
import os
import signal
import xprun

@xprun.config({{"epochs": 8}})
def xp_train(config, logger, run):
    state = logger.load_checkpoint()
    start = 0 if state is None else state["epoch"] + 1
    for epoch in range(start, config.epochs):
        logger.log_metrics({{"loss": 1.0 / (epoch + 1), "epoch": epoch}}, step={step})
        if run.attempt == 1 and epoch == {die_at}:
            # Dies after log_metrics, before save_checkpoint.  flush() stands for the
            # background flush that reaches the disk within a second, without a timed wait.
            logger.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        logger.save_checkpoint({{"epoch": epoch}})
    return {{"resumed_from": start}}
"""


@pytest.mark.parametrize("die_at", [0, 5], ids=["before-first-checkpoint", "mid-run"])
@pytest.mark.parametrize("steps", ["automatic", "explicit"])
def test_i8_03_a_resumed_run_has_one_metric_line_per_epoch(project, steps, die_at):
    step = "None" if steps == "automatic" else "epoch"
    project.write("xp_train.py", RESUMED_METRICS.format(step=step, die_at=die_at))
    killed = project.run(inprocess=False)  # it SIGKILLs its own launcher: a process of its own
    assert killed.returncode == -9, killed.output  # really died mid-run
    resumed = project.run()
    assert resumed.returncode == 0, resumed.output
    (run_dir,) = project.run_dirs()
    assert json.loads((run_dir / "outcome.json").read_text())["resumed_from"] == die_at
    reader = xprun.Reader(project.log_dir)
    metrics = reader.metrics()
    assert list(metrics["step"]) == list(range(8))
    assert list(metrics["epoch"]) == list(range(8))  # each step holds its own epoch
    assert list(metrics["attempt"]) == [1] * die_at + [2] * (8 - die_at)
    (count,) = reader.to_pandas(columns=["metrics.loss.count"])["metrics.loss.count"]
    assert count == 8
    # The superseded line stays in the file as evidence, readable with all_attempts=True.
    assert len(reader.metrics(all_attempts=True)) == 9


def test_i8_03_a_metric_first_logged_after_the_checkpoint_restarts_its_steps(tmp_path):
    first = Logger(tmp_path, attempt=1)
    for epoch in range(3):
        first.log_metrics({"loss": float(epoch)})
        first.save_checkpoint({"epoch": epoch})
    first.log_metrics({"loss": 3.0})  # after the last checkpoint: superseded on resume
    first.log_metrics({"acc": 0.5}, name="eval")  # likewise, and unknown to the checkpoint
    first.close()
    second = Logger(tmp_path, attempt=2)
    assert second.load_checkpoint() == {"epoch": 2}
    second.log_metrics({"loss": 3.5})
    second.log_metrics({"acc": 0.6}, name="eval")
    second.close()
    # Attempt 2 logs the steps of the lines it supersedes; the Reader keeps the last per step.
    assert [(r["attempt"], r["step"]) for r in lines(tmp_path, "metrics")] == [
        (1, 0),
        (1, 1),
        (1, 2),
        (1, 3),
        (2, 3),
    ]
    assert [(r["attempt"], r["step"]) for r in lines(tmp_path, "eval")] == [(1, 0), (2, 0)]


# -- issue 9 item 7: bad checkpoint arguments write nothing ------------------------------------


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"keep": 0}, ValueError),
        ({"keep": -1}, ValueError),
        ({"keep": "2"}, TypeError),
        ({"kind": "nope"}, ValueError),
    ],
)
def test_i9_07_save_checkpoint_with_bad_arguments_writes_nothing(tmp_path, kwargs, error):
    logger = Logger(tmp_path)
    logger.save_checkpoint({"epoch": 0})
    with pytest.raises(error, match=next(iter(kwargs))):
        logger.save_checkpoint({"epoch": 1}, **kwargs)
    assert checkpoints(tmp_path) == ["ckpt-00000001.tree.npz"]
    assert logger.load_checkpoint() == {"epoch": 0}
    logger.close()
