"""Issue 12, the run protocol: first-day items 6 (results), 7 (logging), 8 (session fixture
errors); --retries / --retry-on; --timeout.  Through the real CLI, in real processes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
from conftest import git_commit_all
from optional import require

pytestmark = pytest.mark.inprocess  # xprun launched in the test's process (tests/launch.py)


def _records_by_experiment(project):
    return {r["experiment"]: r for r in project.records()}


# -- item 6: results that are dataclasses, NumPy and torch values -------------------------------

DATACLASS_RESULT = """
import dataclasses
import numpy as np
import torch
import xprun

@dataclasses.dataclass
class Scores:
    acc: float
    per_class: object
    loss: object
    weights: object

@dataclasses.dataclass
class Result:
    name: str
    scores: Scores

@xprun.config({"lr": 0.1})
def xp_result(config):
    return Result(
        "run",
        Scores(np.float32(0.5), np.arange(3), torch.tensor(0.25), torch.tensor([1.0, 2.0])),
    )
"""


def test_i12_06_dataclass_numpy_and_tensor_results_are_stored(project):
    require("torch")  # the experiment imports it: skipped where it could not be installed
    require("numpy")
    project.write("xp_result.py", DATACLASS_RESULT)
    result = project.run()
    assert result.returncode == 0, result.output
    (run_dir,) = project.run_dirs()
    outcome = json.loads((run_dir / "outcome.json").read_text())
    assert outcome == {
        "name": "run",
        "scores": {"acc": 0.5, "per_class": [0, 1, 2], "loss": 0.25, "weights": [1.0, 2.0]},
    }
    assert project.records()[0]["status"] == "complete"


UNSTORABLE_RESULT = """
import xprun

class Model:
    def __repr__(self):
        return "Model(width=64)"

@xprun.config({"lr": 0.1})
def xp_model(config):
    return {"acc": 0.93, "model": Model()}
"""


def test_i12_06_a_result_that_cannot_be_stored_is_kept_in_a_fallback_form(project):
    project.write("xp_model.py", UNSTORABLE_RESULT)
    result = project.run()
    assert result.returncode == 1, result.output
    assert "'model'" in result.stdout and "logger.log_artifact" in result.stdout
    assert "outcome.repr.json" in result.stdout
    (record,) = project.records()
    assert record["status"] == "failed" and record["error"]["type"] == "OutcomeError"
    (run_dir,) = project.run_dirs()
    assert not (run_dir / "outcome.json").exists()
    kept = json.loads((run_dir / "outcome.repr.json").read_text())
    assert kept == {"acc": 0.93, "model": "Model(width=64)"}
    again = project.run("--retries", "2")
    assert again.returncode == 1, again.output
    (record,) = project.records()
    assert record["attempt"] == 2  # not retried: the same code returns the same result


# -- item 7: logging goes to the run's stderr.log -------------------------------------------

LOGGING = """
import logging
import xprun

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
log = logging.getLogger("train")

@xprun.config({"lr": 0.1})
@xprun.grid(seed=[0, 1])
def xp_logs(config):
    log.info("step done for seed %s", config.seed)
    logging.getLogger().warning("root warning %s", config.seed)
    return {"ok": 1}
"""


@pytest.mark.parametrize("where", [[], ["-n", "2", "--no-snapshot"]], ids=["inline", "pool"])
def test_i12_07_logging_goes_to_the_runs_stderr_log_not_the_terminal(project, where):
    project.write("xp_logs.py", LOGGING)
    result = project.run(*where)
    assert result.returncode == 0, result.output
    assert "step done" not in result.output and "root warning" not in result.output
    for run_dir in project.run_dirs():
        text = (run_dir / "stderr.log").read_text()
        config_seed = "0" if "seed: 0" in (run_dir / "config.yaml").read_text() else "1"
        assert f"INFO train step done for seed {config_seed}\n" in text, text
        assert f"WARNING root root warning {config_seed}\n" in text
        other = "1" if config_seed == "0" else "0"
        assert f"seed {other}" not in text  # each run's own lines only


def test_i12_07_logging_also_shows_on_the_terminal_with_s(project):
    project.write("xp_logs.py", LOGGING)
    result = project.run("-s")
    assert result.returncode == 0, result.output
    assert "INFO train step done for seed 0" in result.stderr
    assert all("step done" in (d / "stderr.log").read_text() for d in project.run_dirs())


# -- item 8: a session fixture that raises is set up once --------------------------------------

SESSION_FIXTURE = """
import xprun

@xprun.fixture(scope="session")
def database():
    with open("setups.txt", "a") as f:
        f.write("setup\\n")
    raise ConnectionError("database unreachable")
"""

USES_DATABASE = """
import xprun

@xprun.config({"seed": 0})
@xprun.grid(seed=[0, 1, 2])
def xp_db(database):
    return {"ok": 1}
"""


def test_i12_08_a_failing_session_fixture_is_set_up_once_and_reported_once(project):
    project.write("conftest.py", SESSION_FIXTURE)
    project.write("xp_db.py", USES_DATABASE)
    result = project.run()
    assert result.returncode == 1, result.output
    assert (project.root / "setups.txt").read_text() == "setup\n"  # not once per run
    assert result.stdout.count("Traceback (most recent call last)") == 1
    records = project.records()
    assert len(records) == 3 and all(r["status"] == "failed" for r in records)
    first = [r for r in records if r["error"]["type"] == "ConnectionError"]
    assert len(first) == 1
    dependent = [r for r in records if r["error"]["type"] == "SessionFixtureError"]
    assert len(dependent) == 2
    for record in dependent:
        message = record["error"]["message"]
        assert "'database'" in message and first[0]["nodeid"] in message
        assert "ConnectionError: database unreachable" in message
    again = project.run("--retries", "2")
    assert again.returncode == 1, again.output
    assert (project.root / "setups.txt").read_text() == "setup\n" * 2  # once per session
    assert all(r["attempt"] == 2 for r in project.records())  # its error is not retried


# -- --retries, --retry-on, @xprun.config(retries=...) ----------------------------------------

FLAKY = """
import xprun

@xprun.config({"lr": 0.1})
def xp_flaky(config, run_dir, run):
    tries = run_dir / "tries.txt"
    with open(tries, "a") as f:
        f.write(f"{run.attempt}\\n")
    if run.attempt < 3:
        raise ValueError(f"flaky attempt {run.attempt}")
    return {"attempt": run.attempt}

@xprun.config({"lr": 0.1})
def xp_broken(config):
    raise KeyError("always")
"""


@pytest.mark.parametrize("where", [[], ["-n", "2", "--no-snapshot"]], ids=["inline", "pool"])
def test_i12_retries_a_failed_run_is_retried_in_its_own_directory(project, where):
    project.write("xp_flaky.py", FLAKY)
    result = project.run("--retries", "2", "--retry-on", "^ValueError: flaky", *where)
    assert result.returncode == 1, result.output  # xp_broken: a KeyError, not retried
    records = _records_by_experiment(project)
    flaky = records["xp_flaky.xp_flaky"]
    assert flaky["status"] == "complete" and flaky["attempt"] == 3
    assert [r["message"] for r in flaky["retried"]] == ["flaky attempt 1", "flaky attempt 2"]
    (run_dir,) = project.run_dirs("xp_flaky.xp_flaky")
    assert (run_dir / "tries.txt").read_text() == "1\n2\n3\n"  # one directory, kept
    assert json.loads((run_dir / "outcome.json").read_text()) == {"attempt": 3}
    assert not (run_dir / "error.txt").exists()
    broken = records["xp_flaky.xp_broken"]
    assert broken["status"] == "failed" and broken["attempt"] == 1 and "retried" not in broken
    assert "RETRIED xp_flaky.py::xp_flaky - retried 2\u00d7, then complete" in result.stdout
    assert "1 complete, 1 failed" in result.stdout


def test_i12_retries_declared_on_the_experiment_and_exhausted(project):
    project.write(
        "xp_declared.py",
        "import xprun\n\n@xprun.config({'a': 1}, retries=1)\n"
        "def xp_declared(config):\n    raise ValueError('no luck')\n",
    )
    result = project.run()
    assert result.returncode == 1, result.output
    (record,) = project.records()
    assert record["status"] == "failed" and record["attempt"] == 2
    assert record["retried"] == [{"attempt": 1, "type": "ValueError", "message": "no luck"}]
    assert "retried 1\u00d7, then failed" in result.stdout


def test_i12_retries_bad_values_are_usage_errors(project):
    project.write("xp_flaky.py", FLAKY)
    bad_regex = project.run("--retries", "1", "--retry-on", "(unclosed")
    assert bad_regex.returncode == 4 and "--retry-on '(unclosed'" in bad_regex.stderr
    negative = project.run("--retries", "-1")
    assert negative.returncode == 4 and "--retries" in negative.stderr
    project.write(
        "xp_flaky.py",
        "import xprun\n\n@xprun.config({'a': 1}, retries='2')\ndef xp_x():\n    pass\n",
    )
    declared = project.run()
    assert "retries=..." in declared.output and declared.returncode != 0
    assert not project.run_dirs()


# -- --timeout, @xprun.config(timeout=...) ------------------------------------------------------

SLOW = """
import time
import xprun

@xprun.config({"steps": 1000})
def xp_slow(config, logger, run):
    state = {"step": 0}
    logger.on_interrupt(lambda: dict(state))
    for step in range(config.steps):
        state["step"] = step
        logger.log_metrics({"loss": 1.0 / (step + 1)}, step=step)
        if step == 2:
            logger.flush()
        time.sleep(0.05)
    return {"steps": config.steps}

@xprun.config({"a": 1})
def xp_zfast(config):
    return {"fast": True}
"""


def _check_timed_out(project, result):
    records = _records_by_experiment(project)
    slow = records["xp_slow.xp_slow"]
    assert slow["status"] == "timeout", result.output
    assert slow["error"]["type"] == "RunTimeout" and "time limit of 1 s" in slow["error"]["message"]
    assert slow["attempt"] == 1  # a timeout is not retried
    (run_dir,) = project.run_dirs("xp_slow.xp_slow")
    assert list((run_dir / "checkpoints").iterdir()), "no checkpoint saved at the time limit"
    assert not (run_dir / "outcome.json").exists()
    return records


@pytest.mark.parametrize("where", [[], ["-n", "2", "--no-snapshot"]], ids=["inline", "pool"])
def test_i12_timeout_stops_the_run_keeps_its_checkpoint_and_goes_on(project, where):
    project.write("xp_slow.py", SLOW)
    result = project.run("--timeout", "1", "--retries", "1", *where)
    assert result.returncode == 1, result.output
    records = _check_timed_out(project, result)
    assert records["xp_slow.xp_zfast"]["status"] == "complete"  # the session went on
    assert "1 timeout" in result.stdout and "1 complete" in result.stdout
    assert "interrupted" not in result.stdout


def test_i12_timeout_declared_on_the_experiment_overrides_the_command_line(project):
    project.write(
        "xp_slow.py",
        SLOW.replace('@xprun.config({"steps": 1000})', '@xprun.config({"steps": 1000}, timeout=1)'),
    )
    result = project.run("--timeout", "0")
    assert result.returncode == 1, result.output
    _check_timed_out(project, result)


def test_i12_timeout_bad_values_are_usage_errors(project):
    project.write("xp_slow.py", SLOW)
    result = project.run("--timeout", "soon")
    assert result.returncode == 4 and "--timeout" in result.stderr
    declared = SLOW.replace('@xprun.config({"steps": 1000})', '@xprun.config({"a": 1}, timeout=-5)')
    project.write("xp_slow.py", declared)
    result = project.run()
    assert result.returncode != 0 and "timeout=..." in result.output
    assert not project.run_dirs()


def _slurm_up() -> bool:
    if not shutil.which("sbatch"):
        return False
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=30)
    return "UP" in ping.stdout


def test_i12_timeout_on_slurm(project):
    if not _slurm_up():
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but no SLURM cluster answers")
        pytest.skip("no SLURM cluster here")
    project.write(
        "pyproject.toml",
        '[tool.xprun]\nlog_dir = "xprun_logs"\n[tool.xprun.slurm]\npoll_seconds = 0.5\n',
    )
    project.write("xp_slow.py", SLOW)
    git_commit_all(project.root)
    result = project.run("--scheduler", "slurm", "--wait", "--timeout", "1", timeout=300)
    assert result.returncode == 1, result.output
    records = _check_timed_out(project, result)
    assert records["xp_slow.xp_zfast"]["status"] == "complete"
    assert "1 timeout" in result.stdout


DEEP_RESULTS = """
import xprun

def nest(levels, leaf):
    value = leaf
    for i in range(levels):
        value = {"k": value} if i % 2 else [value]
    return value

@xprun.grid(levels=[99, 100, 3000])
def xp_deep(config):
    return {"deep": nest(config.levels, 1.5)}
"""


def test_i12_06_a_result_nested_deeper_than_the_reader_reads_fails_the_run(project):
    """The Reader reads values at most 100 keys and indices deep (configvalues.READABLE_DEPTH):
    a result deeper completed, cached and hidden as damaged.  It is refused when the run
    ends, as a result that cannot be stored is, even 3,000 levels deep (Python's stack)."""
    project.write("xp_deep.py", DEEP_RESULTS)
    result = project.run()
    assert result.returncode == 1, result.output
    assert "1 complete, 2 failed" in result.stdout, result.output
    by_levels = {r["nodeid"].split("=")[-1].rstrip("]"): r for r in project.records()}
    assert by_levels["99"]["status"] == "complete"  # "deep" + 99 levels: 100 deep
    for levels in ("100", "3000"):
        record = by_levels[levels]
        assert record["status"] == "failed", record
        assert record["error"]["type"] == "OutcomeError", record
        assert "nested deeper than 100 levels" in record["error"]["message"]
        assert "at 'deep.k[0].k[0].k[0]" in record["error"]["message"]  # where, cut short
        assert "...' holds" in record["error"]["message"]
    import xprun

    runs = xprun.Reader(project.log_dir)
    assert not runs.skipped, runs.skipped  # nothing written that the Reader cannot read
    frame = runs.frame()
    complete = frame[frame["status"] == "complete"]
    assert len(complete) == 1 and list(complete["config.levels"]) == [99]


def test_i12_06_jsonable_limit_counts_keys_and_indices_and_converts_before_it_counts():
    from dataclasses import dataclass

    from xprun.serialize import jsonable

    np = require("numpy")

    @dataclass
    class Pair:
        a: int

    def at(depth, leaf):
        value = leaf
        for _ in range(depth):
            value = [value]
        return value

    # at the limit: scalars, empty containers, a NumPy scalar (converted: a number)
    for leaf in (1, "x", None, [], {}, (), np.float64(0.5)):
        assert jsonable(at(3, leaf), limit=3) is not None
    # one level below it: a container with something in it, a dataclass's fields, an array
    for leaf in ([1], {"a": 1}, (1,), Pair(1), np.array([1.0])):
        with pytest.raises(TypeError, match=r"at '\[0\]\[0\]\[0\]' holds values nested deeper"):
            jsonable(at(3, leaf), "", limit=3)
    assert jsonable(at(3, Pair(1)), limit=4) == at(3, {"a": 1})
    assert jsonable(at(2, [1]), limit=3, depth=0) == at(3, 1)
    with pytest.raises(TypeError):
        jsonable(at(2, [1]), limit=3, depth=1)  # depth: where the value itself lies


CONFIG_PARTS_RESULT = """
import xprun

@xprun.config({"layers": [64, 32], "opt": {"name": "adam", "betas": [0.9, 0.99],
                                           "lr_copy": "${lr}"}, "lr": 0.1})
def xp_parts(config):
    return {"layers": config.layers, "opt": config.opt, "first": config.layers[0]}
"""


def test_i12_06_parts_of_the_config_returned_are_stored_as_plain_data(project):
    # config.layers is OmegaConf's ListConfig, config.opt a DictConfig: returning them is
    # natural, and failed the run ("is a omegaconf.listconfig.ListConfig").
    project.write("xp_parts.py", CONFIG_PARTS_RESULT)
    result = project.run()
    assert result.returncode == 0, result.output
    (run_dir,) = project.run_dirs()
    outcome = json.loads((run_dir / "outcome.json").read_text())
    assert outcome == {
        "layers": [64, 32],
        "opt": {"name": "adam", "betas": [0.9, 0.99], "lr_copy": 0.1},  # resolved
        "first": 64,
    }


def test_i12_06_the_refusal_names_the_type_with_its_article():
    from xprun.record import jsonable_outcome

    with pytest.raises(TypeError, match=r"at key 'o' is an object, which cannot be saved"):
        jsonable_outcome({"o": object()})
    with pytest.raises(TypeError, match=r"at key 's' is a set, which cannot be saved"):
        jsonable_outcome({"s": {1}})
