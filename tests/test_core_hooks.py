"""Issue 10, core and hook contract: the session's phases are hooks with built-in defaults,
plugins can replace or wrap them, and the hook contract is as strict as pytest's.

Every test drives the real CLI (``python -m xprun``) on a throwaway project; plugins are
conftest.py files, modules named with ``-p``, or real installed distributions with an
``xprun`` entry point (``install_plugin``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from test_plugins import install_plugin

pytestmark = pytest.mark.inprocess  # xprun launched in the test's process (tests/launch.py)

EXPERIMENT = """
import xprun

@xprun.grid(i=[1, 2, 3])
def xp_{name}(config):
    return {{"i": config.i}}
"""

# A plugin that does collection, the run loop and reporting itself, through hooks alone:
# it collects only the files listed in manifest.txt (no walk), runs the runs in reverse order
# and reports with its own lines (the terminal plugin is blocked).
REPLACING_PLUGIN = """
import sys
from pathlib import Path

import xprun


@xprun.hookimpl
def xprun_collection(session):
    hook = session.config.hook
    root = session.config.rootdir
    for name in (root / "manifest.txt").read_text().split():
        found = hook.xprun_collect_file(file_path=root / name, session=session)
        session.experiments.extend(e for result in found for e in (result or []))
    for experiment in session.experiments:
        session.runs.extend(hook.xprun_generate_runs(experiment=experiment, session=session))
    print("MANIFEST", len(session.runs), "runs")
    return True


@xprun.hookimpl
def xprun_runloop(session):
    context = session.run_context()
    for run in reversed(session.runs):
        session.config.hook.xprun_run_protocol(run=run, context=context)
    return True


def xprun_run_logreport(report):
    print("REPORT", report.run.nodeid, report.status)


def xprun_sessionfinish(session, exitstatus):
    print("FINISH", exitstatus, dict(session.counts))
"""


def _replaced_session_output(result) -> None:
    assert result.returncode == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "MANIFEST 3 runs"
    reports = [line for line in lines if line.startswith("REPORT")]
    assert reports == [
        "REPORT xp_listed.py::xp_listed[i=3] complete",
        "REPORT xp_listed.py::xp_listed[i=2] complete",
        "REPORT xp_listed.py::xp_listed[i=1] complete",
    ]
    assert lines[-1] == "FINISH 0 {'complete': 3}"
    assert "session starts" not in result.output  # the terminal plugin is blocked


@pytest.mark.parametrize("where", ["conftest", "entry point"])
def test_i10_01_a_plugin_replaces_collection_run_loop_and_reporting(project, tmp_path, where):
    project.write("xp_listed.py", EXPERIMENT.format(name="listed"))
    project.write("xp_unlisted.py", EXPERIMENT.format(name="unlisted"))  # the walk would
    project.write("manifest.txt", "xp_listed.py\n")
    env = None
    if where == "conftest":
        project.write("conftest.py", REPLACING_PLUGIN)
    else:
        env = install_plugin(tmp_path / "site", "xprun_manifest", REPLACING_PLUGIN)
    result = project.run("-p", "no:terminal", env=env)
    _replaced_session_output(result)
    assert {r["experiment"] for r in project.records()} == {"xp_listed.xp_listed"}


def test_i10_01_a_plugin_wraps_the_call_and_the_run_loop(project):
    project.write("xp_w.py", EXPERIMENT.format(name="w"))
    project.write(
        "conftest.py",
        """
        import xprun

        @xprun.hookimpl(wrapper=True)
        def xprun_run_call(run, context):
            outcome = yield
            return {**outcome, "wrapped": True}

        @xprun.hookimpl(wrapper=True)
        def xprun_runloop(session):
            print("BEFORE", len(session.runs))
            result = yield
            print("AFTER", dict(session.counts))
            return result
        """,
    )
    result = project.run("-q")
    assert result.returncode == 0, result.output
    assert "BEFORE 3" in result.stdout and "AFTER {'complete': 3}" in result.stdout
    outcomes = [json.loads((d / "outcome.json").read_text()) for d in project.run_dirs()]
    assert sorted(o["i"] for o in outcomes) == [1, 2, 3]
    assert all(o["wrapped"] is True for o in outcomes)


def test_i10_02_run_hooks_get_a_frozen_run_context_not_the_session(project):
    log = project.root / "context.json"
    project.write("xp_c.py", EXPERIMENT.format(name="c"))
    project.write(
        "conftest.py",
        f"""
        import dataclasses
        import json
        from xprun.runcontext import RunContext

        def xprun_run_setup(run, context):
            try:
                context.force = True
            except dataclasses.FrozenInstanceError:
                frozen = True
            else:
                frozen = False
            with open({str(log)!r}, "w") as f:
                json.dump({{
                    "type": type(context).__name__,
                    "is_run_context": isinstance(context, RunContext),
                    "frozen": frozen,
                    "force": context.force,
                    "scheduler": context.metadata.scheduler,
                    "fields": sorted(f.name for f in dataclasses.fields(context)),
                }}, f)
        """,
    )
    result = project.run("-q", "--force")
    assert result.returncode == 0, result.output
    seen = json.loads(log.read_text())
    assert seen["is_run_context"] and seen["frozen"]
    assert seen["force"] is True and seen["scheduler"] == "inline"
    assert "session" not in seen["fields"] and "config" not in seen["fields"]
    assert {"clock", "heartbeat", "metadata", "recorders"} <= set(seen["fields"])


def test_i10_02_a_run_hook_asking_for_the_session_is_refused_by_name(project):
    project.write("xp_s.py", EXPERIMENT.format(name="s"))
    project.write("conftest.py", "def xprun_run_setup(run, session):\n    pass\n")
    result = project.run("-q")
    assert result.returncode == 1, result.output
    assert "xprun_run_setup" in result.output and "session" in result.output
    assert project.records() == []


def test_i10_03_a_plugin_adds_a_subcommand(project, tmp_path):
    env = install_plugin(
        tmp_path / "site",
        "xprun_hello",
        """
        from xprun.cli import Command

        def hello(argv):
            print("HELLO", argv)
            return 7

        def xprun_subcommand():
            return [Command("hello", hello, "say hello")]
        """,
    )
    result = project.run("hello", "a", "--b", env=env)
    assert result.returncode == 7, result.output
    assert result.stdout == "HELLO ['a', '--b']\n"
    # Without the plugin, "hello" is a path for the run command, which does not exist.
    result = project.run("-p", "no:xprun_hello", "hello", env=env)
    assert result.returncode == 4, result.output
    assert "file or directory not found: hello" in result.stderr
    # Built-in commands are registered the same way and still work.
    assert project.run("show", str(project.log_dir), env=env).returncode == 4  # no log dir yet


def test_i10_03_a_module_named_with_p_adds_a_subcommand(project, tmp_path):
    site = tmp_path / "mods"
    site.mkdir()
    (site / "hellomod.py").write_text(
        textwrap.dedent(
            """
            from xprun.cli import Command

            def xprun_subcommand():
                return [Command("hello", lambda argv: print("MOD", argv) or 0)]
            """
        )
    )
    result = project.run("-p", "hellomod", "hello", "x", env={"PYTHONPATH": str(site)})
    assert result.returncode == 0, result.output
    assert result.stdout == "MOD ['x']\n"


def test_i10_04_p_no_terminal_blocks_output_and_reporting_goes_on_through_hooks(project):
    log = project.root / "reports.json"
    project.write("xp_t.py", EXPERIMENT.format(name="t"))
    project.write(
        "conftest.py",
        f"""
        import json

        seen = []

        def xprun_run_logreport(report):
            seen.append(report.status)

        def xprun_sessionfinish(session, exitstatus):
            with open({str(log)!r}, "w") as f:
                json.dump({{"seen": seen, "exit": exitstatus}}, f)
        """,
    )
    result = project.run("-p", "no:terminal")
    assert result.returncode == 0, result.output
    assert result.stdout == ""
    assert json.loads(log.read_text()) == {"seen": ["complete"] * 3, "exit": 0}
    result = project.run()  # the terminal is back without -p no:terminal
    assert "3 cached" in result.stdout


def test_i10_04_p_loads_a_module_and_no_blocks_an_installed_plugin(project, tmp_path):
    project.write("xp_p.py", EXPERIMENT.format(name="p"))
    mods = tmp_path / "mods"
    mods.mkdir()
    (mods / "shoutmod.py").write_text(
        "def xprun_terminal_summary(session, exitstatus):\n    print('SHOUT', exitstatus)\n"
    )
    result = project.run("-p", "shoutmod", env={"PYTHONPATH": str(mods)})
    assert result.returncode == 0, result.output
    assert "SHOUT 0" in result.stdout
    assert "SHOUT" not in project.run(env={"PYTHONPATH": str(mods)}).stdout  # not without -p

    env = install_plugin(
        tmp_path / "site",
        "xprun_loud",
        "def xprun_terminal_summary(session, exitstatus):\n    print('LOUD')\n",
    )
    assert "LOUD" in project.run(env=env).stdout
    assert "LOUD" not in project.run("-p", "no:xprun_loud", env=env).stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-p", "no:session"], "plugin session cannot be blocked"),
        (["-p", "no_such_plugin_module"], "plugin 'no_such_plugin_module' (-p no_such"),
    ],
)
def test_i10_04_p_refuses_what_it_cannot_do_as_a_usage_error(project, args, message):
    project.write("xp_r.py", EXPERIMENT.format(name="r"))
    result = project.run(*args)
    assert result.returncode == 4, result.output
    assert message in result.stderr
    assert not project.log_dir.exists()


@pytest.mark.parametrize("marked", [True, False], ids=["marked", "unmarked"])
def test_i10_05_a_misspelled_hook_implementation_is_an_error_naming_it(project, marked):
    project.write("xp_m.py", EXPERIMENT.format(name="m"))
    marker = "@xprun.hookimpl\n" if marked else ""
    project.write(
        "conftest.py", f"import xprun\n\n{marker}def xprun_run_logrepor(report):\n    pass\n"
    )
    result = project.run()
    assert result.returncode == 4, result.output
    conftest = project.root / "conftest.py"
    assert (
        f"ERROR: {conftest}: xprun_run_logrepor is not an xprun hook "
        "(did you mean xprun_run_logreport?)" in result.stderr
    )
    assert project.records() == []  # refused before any run started


def test_i10_05_a_misspelled_hook_in_an_installed_plugin_is_an_error_naming_it(project, tmp_path):
    project.write("xp_m.py", EXPERIMENT.format(name="m"))
    env = install_plugin(
        tmp_path / "site", "xprun_typo", "def xprun_sesionstart(session):\n    pass\n"
    )
    result = project.run(env=env)
    assert result.returncode == 4, result.output
    assert "xprun_typo: xprun_sesionstart is not an xprun hook" in result.stderr
    assert "did you mean xprun_sessionstart?" in result.stderr
    # An implementation of another plugin's hook says so, and is accepted.
    project.write(
        "conftest.py",
        "import xprun\n\n@xprun.hookimpl(optionalhook=True)\n"
        "def xprun_other_plugins_hook():\n    pass\n",
    )
    assert project.run().returncode == 0


def test_i10_06_an_unmarked_xprun_function_in_conftest_is_a_hook_implementation(project):
    project.write("xp_u.py", EXPERIMENT.format(name="u"))
    project.write(
        "conftest.py",
        """
        def xprun_collection_modifyitems(session, runs):
            runs[:] = [r for r in runs if r.config["i"] != 2]

        def helper_not_a_hook(x):  # not xprun_*: an ordinary function
            return x
        """,
    )
    result = project.run("-q")
    assert result.returncode == 0, result.output
    outcomes = [json.loads((d / "outcome.json").read_text()) for d in project.run_dirs()]
    assert sorted(o["i"] for o in outcomes) == [1, 3]


def _collected(result) -> set[str]:
    """The experiments ``--collect-only`` lists (``state hash nodeid[label]`` lines)."""
    words = [w for line in result.stdout.splitlines() for w in line.split() if "::" in w]
    return {w.split("[")[0] for w in words}


def test_i10_07_a_conftests_ignore_collect_applies_to_the_folders_under_it(project):
    project.write(
        "sub/conftest.py",
        """
        def xprun_ignore_collect(collection_path, config):
            if collection_path.name in ("skipme", "xp_draft.py"):
                return True
        """,
    )
    project.write("sub/skipme/xp_a.py", EXPERIMENT.format(name="a"))
    project.write("sub/keep/xp_b.py", EXPERIMENT.format(name="b"))
    project.write("sub/xp_draft.py", EXPERIMENT.format(name="draft"))
    project.write("other/skipme/xp_c.py", EXPERIMENT.format(name="c"))  # not under sub/
    result = project.run("--collect-only")
    assert result.returncode == 0, result.output
    assert _collected(result) == {"sub/keep/xp_b.py::xp_b", "other/skipme/xp_c.py::xp_c"}


def test_i10_07_ignore_collect_is_firstresult_and_false_means_collect(project):
    # build/ is in the default norecursedirs; the conftest nearest to it answers first.
    project.write(
        "conftest.py",
        """
        def xprun_ignore_collect(collection_path, config):
            if collection_path.name == "vendor":
                return True
        """,
    )
    project.write(
        "pkg/conftest.py",
        """
        def xprun_ignore_collect(collection_path, config):
            if collection_path.name in ("build", "vendor"):
                return False  # collect it, whatever the others would say
        """,
    )
    project.write("pkg/build/xp_b.py", EXPERIMENT.format(name="b"))
    project.write("pkg/vendor/xp_v.py", EXPERIMENT.format(name="v"))
    project.write("build/xp_top.py", EXPERIMENT.format(name="top"))  # default: ignored
    project.write("vendor/xp_w.py", EXPERIMENT.format(name="w"))  # root conftest: ignored
    result = project.run("--collect-only")
    assert result.returncode == 0, result.output
    assert _collected(result) == {"pkg/build/xp_b.py::xp_b", "pkg/vendor/xp_v.py::xp_v"}


def test_i10_07_a_conftests_collect_file_applies_to_the_folders_under_it(project):
    project.write(
        "a/conftest.py",
        """
        def xprun_collect_file(file_path, session):
            print("ASKED", file_path.name)
        """,
    )
    project.write("a/xp_in.py", EXPERIMENT.format(name="in"))
    project.write("b/xp_out.py", EXPERIMENT.format(name="out"))
    result = project.run("--collect-only", "b", "a")
    assert result.returncode == 0, result.output
    assert "ASKED xp_in.py" in result.stdout
    assert "ASKED xp_out.py" not in result.stdout


def test_i10_07_skip_check_is_a_firstresult_hook(project):
    log = project.root / "ran.txt"
    project.write(
        "xp_k.py",
        f"""
        import xprun

        @xprun.grid(i=[1, 2, 3])
        def xp_k(config):
            with open({str(log)!r}, "a") as f:
                f.write(f"{{config.i}}\\n")
        """,
    )
    project.write(
        "conftest.py",
        """
        from xprun.reports import RunReport

        def xprun_run_skip(run, context):
            if run.config["i"] == 2:
                return RunReport(run, "cached", longrepr="skipped by the conftest")
        """,
    )
    result = project.run("-v")
    assert result.returncode == 0, result.output
    assert log.read_text().split() == ["1", "3"]
    assert "1 cached" in result.stdout and "2 complete" in result.stdout
    result = project.run("-v")  # None from the conftest: the built-in check says cached
    assert "3 cached" in result.stdout
    assert log.read_text().split() == ["1", "3"]


def test_i10_08_every_hook_documents_each_parameter():
    from xprun import hookspec

    names = [n for n in vars(hookspec) if n.startswith("xprun_")]
    assert len(names) >= 20
    for name in names:
        func = getattr(hookspec, name)
        doc = func.__doc__ or ""
        for param in func.__code__.co_varnames[: func.__code__.co_argcount]:
            assert f":param {param}:" in doc, f"{name} does not document {param}"
        assert "Called" in doc or "called" in doc or ":returns:" in doc, name


def test_i10_xprun_config_stays_the_decorator_and_main_the_function():
    code = (
        "import xprun, xprun.config, xprun.session\n"
        "from xprun.config import Config\n"
        "print(callable(xprun.config), xprun.config.__module__, xprun.main.__module__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "xprun.declare", "xprun.config"]
    assert not Path(__import__("xprun").__file__).with_name("main.py").exists()


def test_i10_04_p_plugins_reach_the_local_pool_workers(project, tmp_path):
    project.write("xp_n.py", EXPERIMENT.format(name="n"))
    mods = tmp_path / "mods"
    mods.mkdir()
    (mods / "callmod.py").write_text(
        "import os\n\ndef xprun_run_call(run, context):\n"
        "    return {'by': 'plugin', 'pid': os.getpid()}\n"
    )
    result = project.run("-n", "2", "--no-snapshot", "-p", "callmod", env={"PYTHONPATH": str(mods)})
    assert result.returncode == 0, result.output
    outcomes = [json.loads((d / "outcome.json").read_text()) for d in project.run_dirs()]
    assert len(outcomes) == 3
    assert all(o["by"] == "plugin" for o in outcomes)
    assert all(r["scheduler"] == "local" for r in project.records())


def test_i13_seam_a_plugin_adds_fields_to_run_json_kept_by_the_final_record(project):
    project.write("xp_r.py", EXPERIMENT.format(name="r"))
    project.write(
        "conftest.py",
        """
        def xprun_run_record(run, context):
            return {"provenance_test": {"hash": run.hash, "scheduler": context.metadata.scheduler}}
        """,
    )
    result = project.run("-q", "-n", "2")
    assert result.returncode == 0, result.output
    records = project.records()
    assert len(records) == 3
    for record in records:
        assert record["status"] == "complete"
        assert record["provenance_test"] == {"hash": record["hash"], "scheduler": "local"}


def test_i13_seam_a_plugin_overwriting_a_core_field_is_refused_by_name(project):
    project.write("xp_r.py", EXPERIMENT.format(name="r"))
    project.write(
        "conftest.py", "def xprun_run_record(run, context):\n    return {'status': 'x'}\n"
    )
    result = project.run("-q")
    assert result.returncode != 0, result.output
    assert "xprun_run_record" in result.output and "'status'" in result.output
    assert all(r["status"] != "x" for r in project.records())
