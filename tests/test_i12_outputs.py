"""Issue 12, commands and machine-readable output: first-day items 11 (exit codes and help of
the commands), 12 (``xprun plot`` of one point per run, the std band, ``--logy``) and 13
(``xprun show``'s precision); ``--junitxml``, ``--report-log``, ``--durations`` and shell
completion.  Everything runs ``python -m xprun`` (or bash) for real."""

from __future__ import annotations

import json

from tests.conftest import Project

SWEEP = """
import xprun

@xprun.config({"lr": 0.1, "seed": 0})
@xprun.grid(lr=[0.1, 0.01], seed=[0, 1])
def xp_train(config, logger):
    for step in range(3):
        logger.log_metrics({"loss": 1.0 / (step + 1 + config.seed)}, step=step)
    logger.log_metrics({"test_acc": 0.5 + config.lr}, step=0)
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
