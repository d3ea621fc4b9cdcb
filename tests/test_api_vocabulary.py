"""Issue 10, "Public API and vocabulary", and issue 11 item 7 (start-up), through the public
API and the real CLI: the exported types are the classes xprun hands out, one status
vocabulary from run.json to the terminal, one timestamp format, and ``import xprun``,
``xprun --version`` and ``xprun --help`` without any third-party import."""

from __future__ import annotations

import json
import pydoc
import re
import subprocess
import sys
from pathlib import Path

import pytest

import xprun

pytestmark = pytest.mark.inprocess  # xprun launched in the test's process (tests/launch.py)

THIRD_PARTY = ("pluggy", "omegaconf", "hydra", "pandas", "yaml", "git", "xxhash", "pyarrow")

# The exported types and where each is defined.
TYPES = {
    "Config": "xprun.config",
    "ExitCode": "xprun.errors",
    "FixtureRequest": "xprun.fixtures",
    "Logger": "xprun.logger",
    "Reader": "xprun.reader.runs",
    "RunInfo": "xprun.runspec",
    "RunRecord": "xprun.reader.runs",
    "RunReport": "xprun.reports",
    "RunSpec": "xprun.runspec",
    "Runs": "xprun.reader.runs",
    "Session": "xprun.session",
    "Status": "xprun.states",
}

# One format for every timestamp xprun writes into a record (docs/run-directory.md).
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00")


def _python(project, code: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=project.root,
        env={**project.env(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


# A wrapper that runs ``python -m xprun ARGS`` in this process, then prints which of the
# third-party packages it imported (as JSON, on the last line of stderr).
_MODULES_AFTER = """
import json, runpy, sys
sys.argv = ["xprun", *sys.argv[1:]]
try:
    runpy.run_module("xprun", run_name="__main__", alter_sys=True)
except SystemExit as exc:
    code = exc.code
names = {names!r}
sys.stderr.write("\\n" + json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in names)))
"""


def _third_party_after(project, *args: str, env: dict | None = None) -> tuple[str, list[str]]:
    proc = _python(project, _MODULES_AFTER.format(names=THIRD_PARTY), *args, env=env)
    return proc.stdout, json.loads(proc.stderr.strip().splitlines()[-1])


def test_i10_api_names_are_the_classes_xprun_uses() -> None:
    assert xprun.__all__ == sorted(xprun.__all__)
    for name, module in TYPES.items():
        assert name in xprun.__all__, name
        value = getattr(xprun, name)
        assert isinstance(value, type), name
        assert value.__module__ == module, (name, value.__module__)
        assert getattr(sys.modules[module], name) is value
    for name in xprun.__all__:
        assert getattr(xprun, name) is not None
    # The decorator and the marker are not the modules of the same name, whatever was imported.
    from xprun.config import Config  # the module, through sys.modules
    from xprun.hookimpl import hookimpl

    assert Config is xprun.Config
    assert callable(xprun.config) and xprun.config.__module__ == "xprun.declare"
    assert xprun.hookimpl is hookimpl
    assert xprun.Status.COMPLETE == "complete" and isinstance(xprun.Status.COMPLETE, str)
    text = pydoc.render_doc(xprun, renderer=pydoc.plaintext)
    for name in TYPES:
        assert re.search(rf"^\s+class {name}\b", text, re.MULTILINE), name


def test_i10_api_import_xprun_imports_no_third_party_package(project) -> None:
    code = (
        "import sys, xprun\n"
        "names = sys.argv[1:]\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in names))\n"
        # the names are there, each imported on first use
        "xprun.config, xprun.grid, xprun.Status, xprun.ExitCode\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in names))\n"
        "xprun.hookimpl, xprun.fixture\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in names))\n"
    )
    proc = _python(project, code, *THIRD_PARTY)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "[]" and lines[1] == "[]"
    assert "pluggy" in lines[2] and "pandas" not in lines[2]


def test_i10_api_version_and_help_import_no_third_party_package(project) -> None:
    out, loaded = _third_party_after(project, "--version")
    assert out.strip() == f"xprun {xprun.__version__}" and loaded == []
    out, loaded = _third_party_after(project, "--help")
    assert "--collect-only" in out and "--numprocesses" in out and loaded == []
    # With a -p option the plugin manager is needed, and used.
    out, loaded = _third_party_after(project, "-p", "terminal", "--help")
    assert "--collect-only" in out and "pluggy" in loaded


def test_i10_api_help_without_plugins_is_the_plugin_managers_help(project) -> None:
    light = project.run("--help")
    full = project.run("-p", "terminal", "--help")  # built by every plugin's xprun_addoption
    assert light.returncode == full.returncode == 0
    assert light.stdout == full.stdout
    for option in ("-k EXPR", "--force", "--log-dir DIR", "--scheduler", "--wait", "-p NAME"):
        assert option in light.stdout


def test_i10_api_help_lists_an_installed_plugins_options(project, tmp_path: Path) -> None:
    """An installed plugin (an ``xprun`` entry point) may add options: --help shows them."""
    site = tmp_path / "site"
    (site / "myplug-1.0.dist-info").mkdir(parents=True)
    (site / "myplug-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: myplug\nVersion: 1.0\n"
    )
    (site / "myplug-1.0.dist-info" / "entry_points.txt").write_text("[xprun]\nmyplug = myplug\n")
    (site / "myplug.py").write_text(
        "def xprun_addoption(parser, settings):\n"
        "    parser.add_argument('--my-plugin-flag', help='added by myplug')\n"
    )
    env = {"PYTHONPATH": str(site)}
    result = project.run("--help", env={**env, "XPRUN_DISABLE_PLUGIN_AUTOLOAD": ""})
    assert result.returncode == 0, result.stderr
    assert "--my-plugin-flag" in result.stdout and "added by myplug" in result.stdout


def test_i10_api_fixture_and_hook_values_are_the_exported_types(project) -> None:
    project.write(
        "conftest.py",
        """
        import xprun

        def xprun_sessionstart(session):
            assert isinstance(session, xprun.Session), type(session)
            assert isinstance(session.config, xprun.Config), type(session.config)

        def xprun_run_logreport(report):
            assert isinstance(report, xprun.RunReport), type(report)
            assert isinstance(report.run, xprun.RunSpec), type(report.run)
            assert isinstance(report.status, xprun.Status), type(report.status)
            print("REPORT", report.status.name, report.status)
        """,
    )
    project.write(
        "xp_types.py",
        """
        import xprun

        def xp_types(logger, request, run):
            assert isinstance(logger, xprun.Logger), type(logger)
            assert isinstance(request, xprun.FixtureRequest), type(request)
            assert isinstance(run, xprun.RunInfo), type(run)
            return {"ok": True}
        """,
    )
    result = project.run("-s")
    assert result.returncode == 0, result.output
    assert "REPORT COMPLETE complete" in result.stdout
    runs = list(xprun.Reader(project.log_dir))
    assert len(runs) == 1 and isinstance(runs[0], xprun.RunRecord)
    assert isinstance(xprun.Reader(project.log_dir).filter("status == complete"), xprun.Runs)


def test_i10_api_one_status_vocabulary_from_record_to_terminal(project) -> None:
    project.write(
        "conftest.py",
        """
        import warnings

        def xprun_run_logreport(report):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                old = report.outcome  # xprun 0.1's name: still answers, and warns
            assert old == report.status
            assert caught and caught[0].category is DeprecationWarning
        """,
    )
    project.write(
        "xp_two.py",
        """
        import xprun

        @xprun.grid(fail=[False, True])
        def xp_two(config):
            if config.fail:
                raise ValueError("as asked")
            return {"score": 1}
        """,
    )
    first = project.run("-v")
    assert first.returncode == 1, first.output
    assert {r["status"] for r in project.records()} == {xprun.Status.COMPLETE, xprun.Status.FAILED}
    for record in project.records():
        assert xprun.Status(record["status"]) in (xprun.Status.COMPLETE, xprun.Status.FAILED)
    statuses = xprun.Reader(project.log_dir).to_pandas()["status"].tolist()
    assert sorted(statuses) == ["complete", "failed"]
    assert all(xprun.Status(s) in xprun.Status for s in statuses)
    # The terminal says the statuses' own words.
    assert re.search(r"xp_two\[fail=false\] COMPLETE ", first.stdout)
    assert re.search(r"xp_two\[fail=true\] FAILED ", first.stdout)
    assert f"1 {xprun.Status.COMPLETE}, 1 {xprun.Status.FAILED} in " in first.stdout
    second = project.run()
    assert f"1 {xprun.Status.CACHED}, 1 {xprun.Status.FAILED} in " in second.stdout
    listed = project.run("--collect-only")
    states = sorted(line.split()[0] for line in listed.stdout.splitlines() if "xp_two" in line)
    assert states == [xprun.Status.COMPLETE, xprun.Status.FAILED]


def test_i10_api_one_timestamp_format_and_old_ones_still_read(project) -> None:
    from xprun.timestamps import parse_timestamp

    project.write(
        "xp_clock.py",
        """
        import json

        def xp_clock(run):
            claims = sorted(run.run_dir.glob("claim.*"))
            return {"since": json.loads(claims[-1].read_text())["since"]}
        """,
    )
    result = project.run()
    assert result.returncode == 0, result.output
    (record,) = project.records()
    outcome = json.loads((project.run_dirs()[0] / "outcome.json").read_text())
    stamps = [record["start"], record["end"], outcome["since"]]
    for text in stamps:
        assert TIMESTAMP.fullmatch(text), text
    start, end, since = (parse_timestamp(t) for t in stamps)
    assert since <= start <= end and start.utcoffset().total_seconds() == 0  # claimed, started
    # What older versions wrote reads to the same instant.
    assert parse_timestamp("2026-11-30T09:22:33Z") == parse_timestamp(
        "2026-11-30T09:22:33.000+00:00"
    )
    assert parse_timestamp("2026-11-30T09:22:33") == parse_timestamp("2026-11-30T09:22:33Z")


def test_i10_api_a_folder_named_like_an_override_is_a_path_everywhere(project, tmp_path) -> None:
    """One classifier decides whether a word is a path or an override: the rootdir (and so
    the log directory) is found from a folder called ``lr=0.1`` as from any other path."""
    project.write("lr=0.1/xp_folder.py", "def xp_folder():\n    return {'ok': 1}\n")
    result = project.run("proj/lr=0.1", cwd=tmp_path)
    assert result.returncode == 0, result.output
    assert len(project.records()) == 1  # in the project's log dir, not one under tmp_path
    assert not (tmp_path / "xprun_logs").exists()


def test_i10_api_one_json_conversion_for_outcomes_artifacts_and_specs(project) -> None:
    """Outcomes and ``json`` artifacts go through one conversion: NumPy values become plain
    numbers in both, and two keys that JSON would merge (1 and "1") are refused in both
    (a json artifact used to be written with the key twice, so it read back with one value
    lost)."""
    project.write(
        "xp_json.py",
        """
        import numpy as np
        import xprun

        @xprun.grid(case=["numpy", "artifact_keys", "outcome_keys"])
        def xp_json(config, logger):
            if config.case == "numpy":
                logger.log_artifact("arr", {"a": np.arange(3), "t": (1, np.float64(0.5))}, kind="json")
                return {"mean": np.float64(0.25), "counts": np.array([1, 2])}
            if config.case == "artifact_keys":
                logger.log_artifact("dup", {1: "one", "1": "uno"}, kind="json")
                return {"saved": True}
            return {1: "one", "1": "uno"}
        """,
    )
    result = project.run("-v")
    assert result.returncode == 1, result.output
    statuses = {r["nodeid"].split("case=")[1].rstrip("]"): r["status"] for r in project.records()}
    assert statuses == {
        "numpy": xprun.Status.COMPLETE,
        "artifact_keys": xprun.Status.FAILED,
        "outcome_keys": xprun.Status.FAILED,
    }
    assert result.output.count("same in JSON") >= 2
    (numpy_run,) = [r for r in xprun.Reader(project.log_dir) if r.status == "complete"]
    assert numpy_run.outcome == {"mean": 0.25, "counts": [1, 2]}
    assert numpy_run.load_artifact("arr") == {"a": [0, 1, 2], "t": [1, 0.5]}
    assert not list(project.log_dir.glob("*/*/artifacts/dup*"))
