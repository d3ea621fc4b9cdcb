"""Issue 12, commands and machine-readable output: first-day items 11 (exit codes and help of
the commands), 12 (``xprun plot`` of one point per run, the std band, ``--logy``) and 13
(``xprun show``'s precision); ``--junitxml``, ``--report-log``, ``--durations`` and shell
completion.  Everything runs ``python -m xprun`` (or bash) for real."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Project

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
