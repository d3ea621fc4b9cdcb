"""Issue 12, commands and machine-readable output: first-day items 11 (exit codes and help of
the commands), 12 (``xprun plot`` of one point per run, the std band, ``--logy``) and 13
(``xprun show``'s precision); ``--junitxml``, ``--report-log``, ``--durations`` and shell
completion.  Everything runs ``python -m xprun`` (or bash) for real."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import Project, git_commit_all

pytestmark = pytest.mark.inprocess  # xprun launched in the test's process (tests/launch.py)

SWEEP = """
import xprun

@xprun.config({"lr": 0.1, "seed": 0})
@xprun.grid(lr=[0.1, 0.01], seed=[0, 1])
def xp_train(config, logger):
    for step in range(3):
        logger.log_metrics({"loss": 1.0 / (step + 1 + config.seed)}, step=step)
    logger.log_metrics({"test_acc": 0.5 + config.lr}, step=0, name="test")
    return {"acc": 1 / 3 + config.lr}
"""


def _ran(project: Project, *args: str) -> None:
    result = project.run(*args)
    assert result.returncode == 0, result.output


# -- item 11: exit codes, status, help --------------------------------------------------------

CRASHING_PLUGIN = """
import xprun.cli
import xprun.show

def _crash(*args, **kwargs):
    raise RuntimeError("a bug in the table")

xprun.show.table = _crash  # stands in for an unknown bug in show

def _boom(argv):
    raise ZeroDivisionError("a bug in a plugin's command")

def xprun_subcommand():
    return [xprun.cli.Command("boom", _boom, "a plugin's command that crashes")]
"""


def test_i12_11_a_crash_in_any_command_is_an_internal_error_exit_3(project: Project) -> None:
    """``xprun show`` has no crash left that input can trigger (every bad input is a usage
    error), so a plugin breaks it in-process, standing in for an unknown bug; the plugin's
    own command crashes for real.  Both must be exit 3 with ``INTERNAL ERROR``, as
    documented, not Python's exit 1."""
    project.write("crashplug.py", CRASHING_PLUGIN)
    project.write("xp_a.py", SWEEP)
    _ran(project)
    env = {"PYTHONPATH": str(project.root)}
    for command in ("show", "boom"):
        result = project.run("-p", "crashplug", command, env=env)
        assert result.returncode == 3, result.output
        assert "INTERNAL ERROR" in result.stderr and "Traceback" in result.stderr
    # A usage error in a command is still 4, and the run command's internal errors 3.
    assert project.run("show", "--where", "lr <").returncode == 4
    project.write("badconf.py", "def xprun_configure(config):\n    raise KeyError('bug')\n")
    result = project.run("-p", "badconf", env=env)
    assert result.returncode == 3 and "INTERNAL ERROR" in result.stderr, result.output


def test_i12_11_status_after_a_local_pool_says_what_it_covers(project: Project) -> None:
    project.write("xp_a.py", SWEEP)
    _ran(project, "-n", "2", "--no-snapshot")
    result = project.run("status")
    assert result.returncode == 0, result.output
    assert "cluster scheduler (slurm, oar)" in result.stdout
    assert "xprun show" in result.stdout and "--collect-only" in result.stdout


def test_i12_11_help_of_every_command_is_clean_and_lists_the_commands(project: Project) -> None:
    status = project.run("status", "--help")
    assert status.returncode == 0 and "``" not in status.stdout, status.stdout
    assert "slurm" in status.stdout and "LOG_DIR" in status.stdout
    show = project.run("show", "--help")
    fmt = show.stdout[show.stdout.index("--format") :].split("\n  -")[0]
    assert "csv" in fmt and "precision" in fmt.replace("\n", " ")  # --format has its help
    # The main help lists every subcommand with its one-line help, without plugins (the
    # fast path) and with them (a plugin's command appears).
    light = project.run("--help")
    for name in ("show", "plot", "status", "completion"):
        assert f"xprun {name} " in light.stdout, light.stdout
    assert "a table of results" in light.stdout
    project.write("crashplug.py", CRASHING_PLUGIN)
    full = project.run("-p", "crashplug", "--help", env={"PYTHONPATH": str(project.root)})
    assert "xprun boom" in full.stdout and "a plugin's command that crashes" in full.stdout
    assert "xprun status " in full.stdout


# -- item 13: show's precision ----------------------------------------------------------------


def test_i12_13_show_markdown_rounds_floats_csv_and_json_keep_them(project: Project) -> None:
    project.write("xp_a.py", SWEEP)
    _ran(project)
    markdown = project.run("show", "-f", "markdown")
    assert markdown.returncode == 0, markdown.output
    assert "0.4333 |" in markdown.stdout and "0.43333333" not in markdown.stdout
    assert "0.3433 |" in markdown.stdout
    table = project.run("show", "--precision", "2")
    assert " 0.43 " in table.stdout and "0.4333" not in table.stdout, table.stdout
    csv = project.run("show", "-f", "csv").stdout
    assert "0.43333333333333335" in csv
    rows = json.loads(project.run("show", "-f", "json").stdout)
    assert 0.43333333333333335 in [r["outcome.acc"] for r in rows]
    bad = project.run("show", "--precision", "0")
    assert bad.returncode == 4 and "--precision" in bad.stderr


# -- item 12: plot ----------------------------------------------------------------------------

C0 = (0.122, 0.467, 0.706)  # matplotlib's first line colour (#1f77b4)


def _plot_area(png: Path):
    """The pixels inside the axes' frame of a PNG written by ``xprun plot`` (RGB floats):
    the frame is the black rectangle whose rows and columns are mostly dark."""
    import matplotlib.image
    import numpy as np

    pixels = matplotlib.image.imread(png)[:, :, :3]
    dark = pixels.max(axis=2) < 0.25
    rows = np.flatnonzero(dark.mean(axis=1) > 0.5)
    cols = np.flatnonzero(dark.mean(axis=0) > 0.5)
    assert len(rows) >= 2 and len(cols) >= 2, "no axes frame found in the image"
    return pixels[rows.min() + 3 : rows.max() - 2, cols.min() + 3 : cols.max() - 2]


def _near(area, colour, tolerance: float = 0.08):
    import numpy as np

    return np.abs(area - np.array(colour)).max(axis=2) < tolerance


def _rows(mask, at: float):
    """Rows of ``mask`` set in the columns around the fraction ``at`` of the width."""
    import numpy as np

    col = int(at * (mask.shape[1] - 1))
    return np.flatnonzero(mask[:, max(col - 1, 0) : col + 2].any(axis=1))


def test_i12_12_a_metric_logged_once_per_run_is_a_visible_point(project: Project) -> None:
    pytest.importorskip("matplotlib")
    project.write("xp_a.py", SWEEP)
    _ran(project)
    out = project.root / "acc.png"
    result = project.run("plot", "--y", "test_acc", "--name", "test", "-o", str(out))
    assert result.returncode == 0, result.output
    area = _plot_area(out)
    # The one step is in the middle of the x axis: the point (and its error bar) is there,
    # in the line's colour; the legend, which has the colour too, is in a corner.
    assert _near(area, C0)[:, area.shape[1] // 2 - 6 : area.shape[1] // 2 + 6].sum() > 20


BLOWUP = """
import xprun

@xprun.grid(seed=[0, 1, 2, 3], scale=[1, 10, 100])
def xp_loss(config, logger):
    for step in range(5):
        logger.log_metrics({"loss": 100.0 if config.seed == 3 else 1.0}, step=step)
    for step in range(3):
        logger.log_metrics({"decade": float(config.scale) ** step}, step=step, name="decades")
"""


def test_i12_12_the_std_band_stays_within_the_data(project: Project) -> None:
    """Losses of 1, 1, 1 and 100: mean 25.75, std 49.5, so mean - std is -23.75, below any
    loss.  The band must stop at the smallest loss (1): the line then sits at 2/3 of the
    band's height from its top (49.5 / 74.25), not halfway (49.5 / 99)."""
    pytest.importorskip("matplotlib")
    import statistics

    project.write("xp_b.py", BLOWUP)
    _ran(project, "-k", "scale=1")
    out = project.root / "loss.png"
    result = project.run("plot", "--y", "loss", "-o", str(out))
    assert result.returncode == 0, result.output
    values = [1.0, 1.0, 1.0, 100.0]
    mean, std = statistics.mean(values), statistics.stdev(values)
    high, low = min(mean + std, max(values)), max(mean - std, min(values))
    area = _plot_area(out)
    band = _rows(_near(area, (0.824, 0.894, 0.941)) | _near(area, C0), 0.3)  # alpha 0.2 of C0
    line = _rows(_near(area, C0), 0.3)
    top, bottom = band.min(), band.max()
    assert abs((line.mean() - top) / (bottom - top) - (high - mean) / (high - low)) < 0.04


def test_i12_12_logy_draws_a_log_axis_and_refuses_non_positive_values(project: Project) -> None:
    """1, 10, 100 at steps 0, 1, 2: on a log axis the line is straight, so at steps 0.6,
    1.0 and 1.4 it is at evenly spaced heights (on a linear one it bends at step 1)."""
    pytest.importorskip("matplotlib")
    project.write("xp_b.py", BLOWUP)
    _ran(project, "-k", "scale=10 and seed=0")
    out = project.root / "log.png"
    result = project.run("plot", "--y", "decade", "--name", "decades", "--logy", "-o", str(out))
    assert result.returncode == 0, result.output
    line = _near(_plot_area(out), C0)
    # x runs from -0.1 to 2.1 (matplotlib's margins); the legend is in a corner.
    first, middle, last = (_rows(line, (x + 0.1) / 2.2).mean() for x in (0.6, 1.0, 1.4))
    assert abs((first - middle) / (first - last) - 0.5) < 0.05
    project.write("xp_c.py", SWEEP.replace("1.0 /", "-1.0 /").replace("xp_train", "xp_neg"))
    _ran(project, "xp_c.py")
    refused = project.run("plot", "--y", "loss", "-e", "xp_c.xp_neg", "--logy", "-o", str(out))
    assert refused.returncode == 4 and "--logy" in refused.stderr, refused.output


# -- --junitxml and --report-log --------------------------------------------------------------

STATUSES = """
import xprun

@xprun.fixture
def resource(config):
    yield 1
    if config.x == 4:
        raise RuntimeError("teardown broke")

@xprun.config({"x": 0})
@xprun.grid(x=[0, 1, 2, 3, 4])
def xp_mixed(config, resource):
    print("output of", config.x)
    if config.x == 1:
        raise ValueError("bad x=1")
    if config.x == 2:
        raise KeyError("known bug")
    return {"x": config.x}
"""
XFAIL_CONFTEST = """
import xprun

def xprun_run_status(run, context, status, error):
    # the seam through which the xfail mark works: x=2 is an expected failure
    if run.config["x"] == 2 and status == xprun.Status.FAILED:
        return xprun.Status.XFAIL
"""


def _events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_i12_output_junitxml_and_report_log_from_a_pool(project: Project) -> None:
    """Every status of a session in both files, from ``-n 2`` (the reports come from the
    workers), counted as the session counts them."""
    project.write("xp_m.py", STATUSES)
    project.write("conftest.py", XFAIL_CONFTEST)
    _ran(project, "-k", "x=3")  # cached in the next session
    result = project.run(
        "-n", "2", "--no-snapshot", "--junitxml", "out/junit.xml", "--report-log", "out/log.jsonl"
    )
    assert result.returncode == 1, result.output
    events = _events(project.root / "out" / "log.jsonl")
    kinds = [e["$report_type"] for e in events]
    assert kinds[:2] == ["SessionStart", "CollectionFinish"] and kinds[-1] == "SessionFinish"
    assert kinds.count("RunReport") == 5 and events[1]["runs"] == 5
    finish = events[-1]
    assert finish["exitstatus"] == result.returncode
    runs = {e["nodeid"]: e for e in events if e["$report_type"] == "RunReport"}
    by_x = {int(n.split("x=")[1].rstrip("]")): e for n, e in runs.items()}
    assert {x: e["status"] for x, e in by_x.items()} == {
        0: "complete",
        1: "failed",
        2: "xfail",
        3: "cached",
        4: "complete",
    }
    assert "ValueError: bad x=1" in by_x[1]["longrepr"]
    assert "teardown broke" in by_x[4]["teardown_error"]
    assert set(by_x[0]["phases"]) == {"setup", "call", "teardown"}  # measured in the worker
    for event in runs.values():
        assert (Path(event["run_dir"]) / "run.json").is_file()
        assert Path(event["run_dir"]).name == event["hash"]
    counts = finish["counts"]
    summary = result.stdout.strip().splitlines()[-1]
    for status in ("complete", "cached", "failed"):
        assert f"{counts[status]} {status}" in summary

    suite = ET.parse(project.root / "out" / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    assert (
        int(suite.get("tests"))
        == len(cases)
        == sum(n for s, n in counts.items() if s != "teardown error")
    )
    assert int(suite.get("failures")) == counts["failed"] == 1
    assert int(suite.get("skipped")) == counts["cached"] + counts["xfail"] == 2
    assert int(suite.get("errors")) == counts["teardown error"] == 1
    by_name = {c.get("name"): c for c in cases}
    failed = by_name["xp_mixed[x=1]"]
    assert failed.get("classname") == "xp_m.xp_mixed" and float(failed.get("time")) > 0
    failure = failed.find("failure")
    assert failure is not None and failure.get("message") == "ValueError: bad x=1"
    assert "Traceback" in failure.text and "output of 1" in failed.find("system-out").text
    xfailed = by_name["xp_mixed[x=2]"].find("skipped")
    assert xfailed is not None and xfailed.get("type") == "xprun.xfail"
    assert "known bug" in xfailed.get("message")
    assert by_name["xp_mixed[x=3]"].find("skipped").get("type") == "xprun.cached"
    assert "teardown broke" in by_name["xp_mixed[x=4]"].find("error").get("message")
    assert list(by_name["xp_mixed[x=0]"]) == [by_name["xp_mixed[x=0]"].find("properties")]


def test_i12_output_a_bad_output_path_is_a_usage_error(project: Project) -> None:
    project.write("xp_m.py", STATUSES)
    (project.root / "taken").mkdir()
    for flag in ("--junitxml", "--report-log"):
        result = project.run(flag, "taken", "-k", "x=0")
        assert result.returncode == 4 and f"{flag} taken" in result.stderr, result.output
    assert not project.log_dir.exists()  # nothing ran


def _slurm_up() -> bool:
    if not shutil.which("sbatch"):
        return False
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=30)
    return "UP" in ping.stdout


def test_i12_output_junitxml_and_report_log_with_slurm_wait(project: Project) -> None:
    """``--wait`` reports each run twice (submitted, then how it ended): the JUnit file has
    one testcase per run, the last word; the report log has both events."""
    if not _slurm_up():
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but no SLURM cluster answers: .ci/run must start it")
        pytest.skip("no SLURM cluster here (run .ci/start-slurm.sh)")
    project.write("xp_m.py", STATUSES)
    git_commit_all(project.root)
    args = ("--scheduler", "slurm", "--wait", "-k", "x=0 or x=1")
    result = project.run(*args, "--junitxml", "j.xml", "--report-log", "r.jsonl", timeout=300)
    assert result.returncode == 1, result.output
    suite = ET.parse(project.root / "j.xml").getroot().find("testsuite")
    assert suite is not None
    assert [suite.get(k) for k in ("tests", "failures", "skipped")] == ["2", "1", "0"]
    statuses = [e["status"] for e in _events(project.root / "r.jsonl") if "status" in e]
    assert sorted(statuses) == ["complete", "failed", "submitted", "submitted"]


# -- --durations ------------------------------------------------------------------------------

SLOW_SETUP = """
import time
import xprun

@xprun.fixture
def slow(config):
    if config.x == 0:
        time.sleep(1.0)  # a setup of at least a second
    yield

@xprun.grid(x=[0, 1, 2, 3])
def xp_d(config, slow):
    return {"x": config.x}
"""


def _durations_section(stdout: str) -> list[str]:
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if " slowest " in line)
    return lines[
        start + 1 : start
        + 1
        + next(
            (j for j, line in enumerate(lines[start + 1 :]) if line.startswith(("=", "("))),
            len(lines),
        )
    ]


def test_i12_durations_lists_the_slowest_runs_with_setup_times(project: Project) -> None:
    project.write("xp_d.py", SLOW_SETUP)
    result = project.run("-n", "2", "--no-snapshot", "--durations", "2")
    assert result.returncode == 0, result.output
    assert "slowest 2 runs" in result.stdout
    header, *rows = _durations_section(result.stdout)
    assert header.split() == ["duration", "setup", "call", "teardown", "run"]
    assert len(rows) == 2
    totals = [float(r.split()[0].rstrip("s")) for r in rows]
    assert totals == sorted(totals, reverse=True)
    slow = next(r for r in rows if r.endswith("xp_d[x=0]"))  # its setup slept a second
    assert float(slow.split()[1].rstrip("s")) >= 1.0
    assert float(slow.split()[0].rstrip("s")) >= 1.0
    # --durations 0: every run above --durations-min; the others counted.
    again = project.run("--force", "--durations", "0", "--durations-min", "0.5")
    assert again.returncode == 0, again.output
    header, *rows = _durations_section(again.stdout)
    assert any(r.endswith("xp_d[x=0]") for r in rows)
    assert all(float(r.split()[0].rstrip("s")) >= 0.5 for r in rows)
    hidden = 4 - len(rows)
    if hidden:
        assert f"({hidden} run{'s' * (hidden != 1)} under 0.5s hidden" in again.stdout
    # Cached runs ran nowhere: nothing to list.
    cached = project.run("--durations", "0", "--durations-min", "0")
    assert _durations_section(cached.stdout) == []
    assert project.run("--durations", "-1").returncode == 4


# -- shell completion -------------------------------------------------------------------------

NESTED = """
import xprun

@xprun.config({"lr": 0.1, "model": {"width": 64, "depth": 2}})
@xprun.grid(lr=[0.1, 0.01])
def xp_train(config):
    return {}
"""


def _complete(project: Project, words: list[str], line: str | None = None) -> list[str]:
    """``_xprun`` run by bash for real, with the script ``xprun completion bash`` prints, and
    the completion variables bash would set for ``words`` (the last is the current one)."""
    bin_dir = project.root.parent / "bin"
    bin_dir.mkdir(exist_ok=True)
    wrapper = bin_dir / "xprun"
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} -m xprun "$@"\n')
    wrapper.chmod(0o755)
    # `xprun completion bash`, as a user's shell sources it, printed once per test (not once
    # per completion: a process each) and sourced from the file it is kept in.
    completion = bin_dir / "xprun-completion.bash"
    if not completion.exists():
        printed = subprocess.run(
            [str(wrapper), "completion", "bash"],
            env=project.env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        completion.write_text(printed.stdout)
    quoted = " ".join(shlex.quote(w) for w in words)
    setup = f"COMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}; "
    if line is not None:
        setup += f"COMP_LINE={shlex.quote(line)}; COMP_POINT={len(line)}; "
    # nullglob, as many users set it: node ids hold [...], which must not be taken as globs
    script = (
        f"shopt -s nullglob; source {shlex.quote(str(completion))}; {setup}_xprun; "
        'printf "%s\\n" "${COMPREPLY[@]}"'
    )
    proc = subprocess.run(
        ["bash", "-c", script],
        cwd=project.root,
        env={**project.env(), **project.with_path(bin_dir)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return [w for w in proc.stdout.splitlines() if w]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_i12_completion_bash_completes_commands_files_nodeids_and_overrides(
    project: Project,
) -> None:
    project.write("xp_a.py", NESTED)
    project.write("sub/xp_b.py", NESTED.replace("xp_train", "xp_other"))
    project.write("notes.txt", "not an experiment")
    first = _complete(project, ["xprun", ""])
    assert {"show", "plot", "status", "completion", "xp_a.py", "sub/"} <= set(first)
    assert "notes.txt" not in first and "worker" not in first
    assert _complete(project, ["xprun", "sub/"]) == ["sub/xp_b.py"]
    assert set(_complete(project, ["xprun", "xp_a.py::"])) == {
        "xp_a.py::xp_train",
        "xp_a.py::xp_train[lr=0.01]",
        "xp_a.py::xp_train[lr=0.1]",
    }
    assert _complete(project, ["xprun", "mo"]) == ["model.depth=", "model.width="]
    assert _complete(project, ["xprun", "lr="]) == ["lr=0.01", "lr=0.1"]
    assert "--collect-only" in _complete(project, ["xprun", "--co"])
    assert _complete(project, ["xprun", "--scheduler", ""]) == ["inline", "local", "oar", "slurm"]
    assert _complete(project, ["xprun", "show", "-f", "m"]) == ["markdown"]
    assert "--precision" in _complete(project, ["xprun", "show", "--"])
    # As bash splits a line at = and : (COMP_WORDBREAKS): the candidates replace only the
    # last piece, so that the line reads lr=0.1 and xp_a.py::xp_train once completed.
    assert _complete(project, ["xprun", "lr", "="], line="xprun lr=") == ["=0.01", "=0.1"]
    split = _complete(
        project, ["xprun", "xp_a.py", "::", "xp_train["], line="xprun xp_a.py::xp_train["
    )
    assert split == ["xp_train[lr=0.01]", "xp_train[lr=0.1]"]


def test_i12_completion_scripts_load(project: Project) -> None:
    bash = project.run("completion", "bash")
    assert bash.returncode == 0 and "complete -o default -F _xprun xprun" in bash.stdout
    zsh = project.run("completion", "zsh")
    assert zsh.returncode == 0 and "compdef _xprun xprun" in zsh.stdout
    if shutil.which("zsh"):
        check = subprocess.run(["zsh", "-n"], input=zsh.stdout, text=True, capture_output=True)
        assert check.returncode == 0, check.stderr
    assert project.run("completion", "fish").returncode == 4


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_i13_completion_knows_the_options_of_every_built_in_command(project: Project) -> None:
    """A command added by a built-in plugin (why, reproduce, diff, rm, gc) must complete its
    options too: the completion table is checked against the commands that exist."""
    from xprun.cli import builtin_commands
    from xprun.completion import _PARSERS

    without_options = {"run", "worker", "completion"}
    names = {command.name for command in builtin_commands()} - without_options
    assert names <= set(_PARSERS), names - set(_PARSERS)
    assert "--yes" in _complete(project, ["xprun", "gc", "--"])
    assert "--log-dir" in _complete(project, ["xprun", "why", "--"])
