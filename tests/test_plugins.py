"""Plugins: conftest.py hook implementations and entry-point plugins use one mechanism."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pluggy
import pytest

import xprun
from xprun import hookspec
from xprun.config import BUILTIN_PLUGINS, make_pluginmanager

pytestmark = pytest.mark.inprocess  # xprun launched in the test's process (tests/launch.py)


def install_plugin(site: Path, module: str, code: str) -> dict[str, str]:
    """A real installed distribution with an ``xprun`` entry point, on a PYTHONPATH folder;
    returns the environment that lets xprun load it."""
    dist = site / f"{module}-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[xprun]\n{module} = {module}\n")
    (site / f"{module}.py").write_text(textwrap.dedent(code))
    return {"PYTHONPATH": str(site), "XPRUN_DISABLE_PLUGIN_AUTOLOAD": ""}


def test_every_hook_is_documented_and_builtins_are_plugins():
    pm = make_pluginmanager()
    names = [n for n in dir(pm.hook) if n.startswith("xprun_")]
    assert len(names) >= 15
    for name in names:
        assert getattr(hookspec, name).__doc__, f"{name} has no docstring"
    for plugin in BUILTIN_PLUGINS:
        assert pm.get_plugin(plugin) is not None
    assert isinstance(xprun.hookimpl, pluggy.HookimplMarker)


def test_conftest_hooks_see_and_change_the_session(project):
    log = project.root / "hooklog.json"
    project.write(
        "conftest.py",
        f"""
        import json
        import xprun

        seen = []

        @xprun.hookimpl
        def xprun_collection_modifyitems(session, runs):
            runs.sort(key=lambda r: -r.config["i"])  # run the biggest first
            runs[:] = [r for r in runs if r.config["i"] != 2]

        @xprun.hookimpl
        def xprun_run_logreport(report):
            seen.append([report.run.config["i"], report.status])

        @xprun.hookimpl
        def xprun_sessionfinish(session, exitstatus):
            with open({str(log)!r}, "w") as f:
                json.dump({{"seen": seen, "exit": exitstatus}}, f)
        """,
    )
    project.write(
        "xp_h.py", "import xprun\n\n@xprun.grid(i=[1, 2, 3])\ndef xp_h(config):\n    pass\n"
    )
    result = project.run()
    assert result.returncode == 0, result.output
    assert json.loads(log.read_text()) == {"seen": [[3, "complete"], [1, "complete"]], "exit": 0}


def test_entry_point_plugin_adds_an_option_and_a_scheduler(project, tmp_path):
    env = install_plugin(
        tmp_path / "site",
        "xprun_reverse",
        """
            import xprun

            class ReverseScheduler:
                name = "reverse"

                def run(self, session, runs):
                    for run in reversed(runs):
                        session.config.hook.xprun_run_protocol(
                            run=run, context=session.run_context()
                        )

            @xprun.hookimpl
            def xprun_addoption(parser, settings):
                parser.add_argument("--shout", action="store_true")

            @xprun.hookimpl
            def xprun_choose_scheduler(name):
                if name == "reverse":
                    return ReverseScheduler()

            @xprun.hookimpl
            def xprun_terminal_summary(session, exitstatus):
                if session.config.option.shout:
                    print("REVERSED", [r.config["i"] for r in session.runs])
            """,
    )
    order = project.root / "order.txt"
    project.write(
        "xp_r.py",
        f"""
        import xprun

        @xprun.grid(i=[1, 2, 3])
        def xp_r(config):
            with open({str(order)!r}, "a") as f:
                f.write(str(config.i))
        """,
    )
    proc = project.run("--scheduler", "reverse", "--shout", env=env)
    assert proc.returncode == 0, proc.output
    assert order.read_text() == "321"
    assert "REVERSED [1, 2, 3]" in proc.stdout
    assert {r["scheduler"] for r in project.records()} == {"reverse"}


def test_unknown_scheduler_is_a_usage_error(project):
    project.write("xp_a.py", "def xp_a():\n    pass\n")
    result = project.run("--scheduler", "nope")
    assert result.returncode == 4
    assert "unknown scheduler 'nope'" in result.stderr
    assert not project.log_dir.exists()


def test_a_broken_plugin_is_a_clear_usage_error(project, tmp_path):
    env = install_plugin(
        tmp_path / "site",
        "xprun_broken",
        "import xprun\n\n@xprun.hookimpl\ndef xprun_choose_scheduler(session, nonsense):\n    pass\n",
    )
    project.write("xp_a.py", "def xp_a():\n    pass\n")
    proc = project.run(env=env)
    assert proc.returncode == 4
    assert "xprun_broken" in proc.stderr and "nonsense" in proc.stderr
    assert "Traceback" not in proc.stderr
