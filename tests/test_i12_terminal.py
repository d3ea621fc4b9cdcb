"""Issue 12, terminal reporting: first-day items 2 (deselected counts), 3 (the progress
percentage), 4 (tracebacks without xprun's frames, interrupts reported as such, ``--full-trace``)
and 5 (summary lines with the exception); ``--color``, ``NO_COLOR``, ``-q``/``-v`` levels.
Everything runs ``python -m xprun`` for real (real signals, a real local pool, a real pty)."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys

import pytest

from tests.conftest import Project

pytestmark = pytest.mark.inprocess  # xprun launched in the test's process (tests/launch.py)

ESC = "\x1b["
GREEN_DOT = "\x1b[32m.\x1b[0m"
RED_F = "\x1b[31mF\x1b[0m"


@pytest.fixture(autouse=True)
def _plain_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The variables these tests set themselves are not inherited (a CI may force colors)."""
    for name in ("NO_COLOR", "FORCE_COLOR", "XPRUN_FULL_TRACE"):
        monkeypatch.delenv(name, raising=False)


def _percentages(stdout: str) -> list[int]:
    return [int(p) for p in re.findall(r"\[\s*(\d+)%\]$", stdout, re.MULTILINE)]


def _section(stdout: str, title: str) -> str:
    """The text under the rule ``=== title ===`` up to the next ``===`` rule."""
    match = re.search(rf"^=+ {title} =+$\n(.*?)(?=^=+ )", stdout, re.MULTILINE | re.DOTALL)
    assert match, stdout
    return match.group(1)


def _config(run_dir) -> str:
    return (run_dir / "config.yaml").read_text()


def _frame_files(text: str) -> list[str]:
    return re.findall(r'^\s*File "([^"]+)", line', text, re.MULTILINE)


# -- item 2: how many runs -k (or any filter) deselected -------------------------------------

GRID = """
import xprun

@xprun.grid(opt=["sgd", "adam", "rmsprop"], lr=[0.1, 0.01])
def xp_train(config):
    return {"ok": 1}
"""


def test_i12_02_k_says_how_many_runs_it_deselected(project: Project):
    project.write("xp_train.py", GRID)
    result = project.run("-k", "adam")
    assert result.returncode == 0, result.output
    assert "collected 6 runs from 1 experiment / 4 deselected / 2 selected\n" in result.stdout
    assert re.search(r"=+ 2 complete, 4 deselected in [\d.]+s =+$", result.stdout, re.M)
    listing = project.run("-k", "adam or sgd", "--collect-only")
    assert listing.returncode == 0, listing.output
    assert "collected 6 runs from 1 experiment / 2 deselected / 4 selected" in listing.stdout
    assert "4/6 runs collected (2 deselected)" in listing.stdout
    cached = project.run("-k", "adam")
    assert re.search(r"=+ 2 cached, 4 deselected in", cached.stdout), cached.stdout
    plain = project.run()
    assert "collected 6 runs from 1 experiment\n" in plain.stdout
    assert "deselected" not in plain.stdout


def test_i12_02_every_deselection_through_the_hook_is_counted(project: Project):
    """A plugin's own filter (node ids, ``--lf``... do the same) reports through
    ``xprun_deselected``, and the counts add up with ``-k``'s."""
    project.write("xp_train.py", GRID)
    project.write(
        "conftest.py",
        """
        def xprun_collection_modifyitems(session, runs):
            gone = [r for r in runs if r.config["lr"] == 0.01]
            session.config.hook.xprun_deselected(runs=gone)
            runs[:] = [r for r in runs if r.config["lr"] != 0.01]
        """,
    )
    result = project.run("-k", "not rmsprop")
    assert result.returncode == 0, result.output
    assert "collected 6 runs from 1 experiment / 4 deselected / 2 selected" in result.stdout
    assert len(project.records()) == 2


# -- item 3: the percentage after the k-th of n runs ------------------------------------------

FOUR = """
import xprun

@xprun.grid(i=[0])
def xp_one(config):
    return {"i": config.i}

@xprun.grid(i=[1, 2, 3])
def xp_three(config):
    return {"i": config.i}
"""


def test_i12_03_the_percentage_counts_the_runs_reported_so_far(project: Project):
    project.write("xp_four.py", FOUR)
    result = project.run()
    assert result.returncode == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.startswith("xp_four.py::")]
    assert [line.split()[:2] for line in lines] == [
        ["xp_four.py::xp_one", "."],
        ["xp_four.py::xp_three", "..."],
    ], result.stdout
    assert _percentages(result.stdout) == [25, 100]  # was [ 50%] after the first of 4
    verbose = project.run("-v", "--force")
    assert verbose.returncode == 0, verbose.output
    assert _percentages(verbose.stdout) == [25, 50, 75, 100]
    again = project.run()  # all cached: the same counts
    assert _percentages(again.stdout) == [25, 100], again.stdout


def test_i12_03_the_percentage_is_right_with_the_pool_too(project: Project):
    """Reports arrive from two workers in any order; each line's percentage counts the runs
    reported before its end, so they go up by one run each: 25, 50, 75, 100."""
    project.write(
        "xp_pool.py",
        "".join(f"def xp_{n}():\n    return {{'n': {i}}}\n\n" for i, n in enumerate("abcd")),
    )
    result = project.run("-n", "2")
    assert result.returncode == 0, result.output
    assert _percentages(result.stdout) == [25, 50, 75, 100], result.stdout


# -- item 4: tracebacks without xprun's frames; interrupts; --full-trace ----------------------

FRAMES = """
import xprun

class Lazy:
    ndim = 0

    def item(self):
        raise RuntimeError("device lost")

def check(value):
    __tracebackhide__ = True
    if value:
        raise AssertionError("checked: value must be falsy")

def xp_metric(logger):
    logger.log_metrics({"loss": Lazy()})

def xp_checked():
    check(1)
"""


def _failure(stdout: str, nodeid: str) -> str:
    """One run's entry of the FAILURES section."""
    failures = _section(stdout, "FAILURES")
    match = re.search(rf"^_+ {re.escape(nodeid)} _+$\n(.*?)(?=^_+ |\Z)", failures, re.M | re.S)
    assert match, stdout
    return match.group(1)


def test_i12_04_tracebacks_hide_xpruns_and_pluggys_frames_anywhere(project: Project):
    """The experiment calls xprun's logger, which calls the user's ``item()``: the frames of
    logger.py between the two user frames are left out (and so are the runner's and pluggy's
    above), in the terminal, in error.txt, inline and in the pool."""
    project.write("xp_frames.py", FRAMES)
    for args in ((), ("-n", "2", "--force")):
        result = project.run("-k", "metric", *args)
        assert result.returncode == 1, result.output
        text = _failure(result.stdout, "xp_frames.py::xp_metric")
        files = _frame_files(text)
        assert files == [str(project.root / "xp_frames.py")] * 2, text
        assert "in xp_metric" in text and "in item" in text
        assert text.count("RuntimeError: device lost") == 1
        assert "pluggy" not in text and "runner.py" not in text and "logger.py" not in text
    (run_dir,) = project.run_dirs("xp_frames.xp_metric")
    error = (run_dir / "error.txt").read_text()
    assert _frame_files(error) == [str(project.root / "xp_frames.py")] * 2, error


def test_i12_04_a_frame_that_sets_tracebackhide_is_hidden(project: Project):
    project.write("xp_frames.py", FRAMES)
    result = project.run("-k", "checked")
    assert result.returncode == 1, result.output
    text = _failure(result.stdout, "xp_frames.py::xp_checked")
    assert "in xp_checked" in text and "check(1)" in text
    assert "in check" not in text and "__tracebackhide__" not in text
    assert "AssertionError: checked: value must be falsy" in text


def test_i12_04_full_trace_shows_every_frame(project: Project):
    """``--full-trace`` (and ``XPRUN_FULL_TRACE=1``, as Hydra's ``HYDRA_FULL_ERROR``) keeps
    the runner's, pluggy's and the logger's frames: inline and in pool workers."""
    project.write("xp_frames.py", FRAMES)
    for args, env in (
        (("--full-trace",), {}),
        ((), {"XPRUN_FULL_TRACE": "1"}),
        (("--full-trace", "-n", "2"), {}),
    ):
        result = project.run("-k", "metric", "--force", *args, env=env)
        assert result.returncode == 1, result.output
        text = _failure(result.stdout, "xp_frames.py::xp_metric")
        files = _frame_files(text)
        assert any(f.endswith(os.path.join("xprun", "runner.py")) for f in files), (args, text)
        assert any(f.endswith(os.path.join("xprun", "logger.py")) for f in files), (args, text)
        assert any(os.sep + "pluggy" + os.sep in f for f in files), (args, text)
        (run_dir,) = project.run_dirs("xp_frames.xp_metric")
        assert "logger.py" in (run_dir / "error.txt").read_text()
    quiet = project.run("-k", "metric", "--force", env={"XPRUN_FULL_TRACE": "0"})
    assert "pluggy" not in quiet.stdout


SIGNALS = """
import os, signal, time
import xprun

@xprun.grid(sig=["INT", "TERM"])
def xp_signal(config):
    os.kill(os.getpid(), getattr(signal, "SIG" + config.sig))
    time.sleep(60)
"""


def test_i12_04_an_interrupt_is_reported_as_interrupted_not_as_a_failure(project: Project):
    """Ctrl-C (a real SIGINT) and SIGTERM end the run as interrupted: one ``!!! Interrupted``
    line saying what and where, no FAILURES section, no traceback on the terminal (error.txt
    keeps it); ``--full-trace`` adds the traceback."""
    project.write("xp_signal.py", SIGNALS)
    # Where the run was: the line of os.kill (or of the sleep, if the signal came after it).
    where = re.compile(
        rf"\(at {re.escape(str(project.root / 'xp_signal.py'))}:[78] in xp_signal\)$"
    )
    for sig, crash in (("INT", "KeyboardInterrupt"), ("TERM", "Terminated: received signal")):
        returncode, out = _foreground(project, "-k", f"sig={sig}")
        assert returncode == 2, out
        line = f"!!! Interrupted: xp_signal.py::xp_signal[sig={sig}] - "
        (found,) = [s for s in out.splitlines() if s.startswith(line)]
        assert crash in found and where.search(found), found
        assert "FAILURES" not in out and "Traceback" not in out and "FAILED" not in out, out
        assert re.search(r"=+ 1 interrupted, 1 deselected in", out), out
        (run_dir,) = [d for d in project.run_dirs() if f"sig: {sig}" in _config(d)]
        assert "Traceback" in (run_dir / "error.txt").read_text()
    returncode, out = _foreground(project, "-k", "sig=INT", "--full-trace")
    assert returncode == 2
    assert "!!! Interrupted: xp_signal.py::xp_signal[sig=INT] - KeyboardInterrupt" in out
    assert "Traceback (most recent call last)" in out and "FAILURES" not in out


def _foreground(project: Project, *args: str) -> tuple[int, str]:
    """xprun with SIGINT's default action, as from a terminal: a suite started in the
    background (CI, ``nohup``) passes SIGINT ignored to its children (tests/foreground.py)."""
    from foreground import FOREGROUND

    proc = project.popen(*args, **FOREGROUND)
    out, _ = proc.communicate(timeout=120)
    return proc.returncode, out


# -- item 5: summary lines carry the exception type and its first meaningful line ------------

MESSAGES = """
import sys
import xprun

@xprun.config({"lr": 0.1})
@xprun.grid(lr=[0.1, 0.2])
def xp_readonly(config):
    config.lr = 3

def xp_multiline():
    raise ValueError("the first line\\nthe second line")

def xp_leading_newline():
    raise ValueError("\\nthe real message")

def xp_empty():
    raise RuntimeError()

def xp_chained():
    try:
        {}["key"]
    except KeyError as exc:
        raise RuntimeError("loading failed") from exc

def xp_exit_code():
    sys.exit(3)

def xp_exit_text():
    sys.exit("bye now")
"""


def test_i12_05_summary_lines_carry_the_exception_type_and_first_meaningful_line(
    project: Project,
):
    project.write("xp_messages.py", MESSAGES)
    result = project.run()
    assert result.returncode == 1, result.output
    summary = _section(result.stdout, "short summary").splitlines()
    readonly = "omegaconf.errors.ReadonlyConfigError: Cannot change read-only config container"
    assert summary == [
        f"FAILED xp_messages.py::xp_readonly[lr=0.1] - {readonly}",
        f"FAILED xp_messages.py::xp_readonly[lr=0.2] - {readonly}",
        "FAILED xp_messages.py::xp_multiline - ValueError: the first line",
        "FAILED xp_messages.py::xp_leading_newline - ValueError: the real message",
        "FAILED xp_messages.py::xp_empty - RuntimeError",
        "FAILED xp_messages.py::xp_chained - RuntimeError: loading failed",
        "FAILED xp_messages.py::xp_exit_code - SystemExit: 3",
        "FAILED xp_messages.py::xp_exit_text - SystemExit: bye now",
    ], result.stdout


def test_i12_05_a_teardown_error_and_a_pool_run_have_the_same_summary_lines(project: Project):
    project.write(
        "xp_teardown.py",
        """
        import xprun

        @xprun.fixture
        def resource():
            yield 1
            raise OSError("could not release\\nthe device")

        def xp_kept(resource):
            return {"ok": 1}

        def xp_raises():
            raise KeyError("missing")
        """,
    )
    result = project.run("-n", "2")
    assert result.returncode == 1, result.output
    summary = sorted(_section(result.stdout, "short summary").splitlines())
    assert summary == [
        "ERROR xp_teardown.py::xp_kept - in fixture teardown: OSError: could not release",
        "FAILED xp_teardown.py::xp_raises - KeyError: 'missing'",
    ], result.stdout


# -- every status: letters, -v words, summary words -------------------------------------------

STATUSES = """
import xprun

@xprun.grid(end=["complete", "failed", "timeout", "xfail", "skipped"])
def xp_end(config):
    if config.end != "complete":
        raise ValueError(f"ends {config.end}")
"""

STATUS_PLUGIN = """
from xprun.reports import RunReport

def xprun_run_skip(run, context):
    if run.config["end"] == "skipped":
        return RunReport(run, "skipped", longrepr="skipped: not on this machine")

def xprun_run_status(run, context, status, error):
    if run.config["end"] in ("timeout", "xfail"):
        return run.config["end"]
"""


def test_i12_every_status_has_its_letter_word_and_summary(project: Project):
    """The statuses the xfail, timeout and skip plugins record (here through their hooks):
    ``T``, ``x``, ``s`` as pytest's; a timeout is a failure with its traceback, an xfail and
    a skip are not."""
    project.write("xp_end.py", STATUSES)
    project.write("conftest.py", STATUS_PLUGIN)
    result = project.run()
    assert result.returncode == 1, result.output
    (line,) = [s for s in result.stdout.splitlines() if s.startswith("xp_end.py::xp_end ")]
    assert line.split()[1] == ".FTxs", line
    assert re.search(r"=+ 1 complete, 1 failed, 1 timeout, 1 xfail, 1 skipped in", result.stdout)
    assert _section(result.stdout, "short summary").splitlines() == [
        "FAILED xp_end.py::xp_end[end=failed] - ValueError: ends failed",
        "TIMEOUT xp_end.py::xp_end[end=timeout] - ValueError: ends timeout",
    ]
    verbose = project.run("-v", "--force")
    words = re.findall(r"^xp_end\.py::xp_end\[end=(\w+)\] ([A-Z ]+?) ", verbose.stdout, re.M)
    assert words == [
        ("complete", "COMPLETE"),
        ("failed", "FAILED"),
        ("timeout", "TIMEOUT"),
        ("xfail", "XFAIL"),
        ("skipped", "SKIPPED"),
    ], verbose.stdout


# -- --color, NO_COLOR, FORCE_COLOR -----------------------------------------------------------

TWO = """
import xprun

@xprun.grid(fail=[False, True])
def xp_two(config):
    if config.fail:
        raise ValueError("as asked")
"""


def _in_pty(project: Project, *args: str, env: dict[str, str]) -> tuple[int, str]:
    """``xprun ARGS`` with its output on a pseudo-terminal (``--color auto`` sees a TTY)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "xprun", *args],
        cwd=project.root,
        env={**project.env(), "TERM": "xterm", **env},
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed its side
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    return proc.wait(timeout=120), b"".join(chunks).decode()


def test_i12_color_yes_no_auto_and_the_environment(project: Project):
    project.write("xp_two.py", TWO)
    colored = project.run("--color", "yes", "--force")
    assert colored.returncode == 1
    assert GREEN_DOT + RED_F in colored.stdout, colored.stdout
    assert re.search(r"\x1b\[1;31m=+ 1 complete, 1 failed in [\d.]+s =+\x1b\[0m", colored.stdout)
    assert "\x1b[31mFAILED\x1b[0m xp_two.py::xp_two[fail=true]" in colored.stdout
    for args, env in (
        (("--color", "no"), {"FORCE_COLOR": "1"}),
        ((), {}),  # auto, and not a terminal (a pipe)
        (("--color", "auto"), {"NO_COLOR": "1", "FORCE_COLOR": "1"}),
    ):
        plain = project.run(*args, "--force", env=env)
        assert plain.returncode == 1 and ESC not in plain.output, (args, env, plain.stdout)
    forced = project.run("--force", env={"FORCE_COLOR": "1"})
    assert GREEN_DOT + RED_F in forced.stdout
    code, tty_out = _in_pty(project, "--force", env={})
    assert code == 1 and GREEN_DOT + RED_F in tty_out, tty_out
    code, no_color = _in_pty(project, "--force", "--color", "auto", env={"NO_COLOR": "1"})
    assert code == 1 and ESC not in no_color and "1 complete, 1 failed" in no_color, no_color


# -- -q / -qq / -v / -vv -------------------------------------------------------------------------

NOISY = """
import xprun

@xprun.grid(fail=[False, True])
def xp_noisy(config):
    print("".join(f"line {i:04d}\\n" for i in range(400)), end="")
    if config.fail:
        raise ValueError("as asked")
"""


def test_i12_verbosity_levels_as_pytest(project: Project):
    project.write("xp_noisy.py", NOISY)
    normal = project.run()
    assert "xprun session starts" in normal.stdout
    assert re.search(r"^xp_noisy\.py::xp_noisy \.F +\[100%\]$", normal.stdout, re.M)
    assert "line 0000" not in normal.stdout and "line 0399" in normal.stdout  # the tail
    verbose = project.run("-v", "--force")
    assert re.search(
        r"^xp_noisy\.py::xp_noisy\[fail=false\] COMPLETE [0-9a-f]{12} [\d.]+s +\[ 50%\]$",
        verbose.stdout,
        re.M,
    ), verbose.stdout
    assert re.search(
        r"^xp_noisy\.py::xp_noisy\[fail=true\] FAILED .* \[100%\]$", verbose.stdout, re.M
    )
    assert "line 0000" not in verbose.stdout
    very = project.run("-vv", "--force")
    assert "line 0000" in very.stdout and "line 0399" in very.stdout  # the whole output
    quiet = project.run("-q", "--force")
    assert "xprun session starts" not in quiet.stdout and "collected" not in quiet.stdout
    assert re.search(r"^\.F +\[100%\]$", quiet.stdout, re.M), quiet.stdout
    assert "FAILURES" in quiet.stdout
    assert quiet.stdout.splitlines()[-1].startswith("1 complete, 1 failed in ")
    quieter = project.run("-qq", "--force")
    assert quieter.returncode == 1
    assert "FAILURES" not in quieter.stdout and "Traceback" not in quieter.stdout
    assert ".F" not in quieter.stdout
    *_, failed, last = quieter.stdout.splitlines()
    assert failed == "FAILED xp_noisy.py::xp_noisy[fail=true] - ValueError: as asked"
    assert last.startswith("1 complete, 1 failed in "), quieter.stdout
