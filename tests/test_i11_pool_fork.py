"""Pool workers forked by the launcher (issue 11, target 5): what must not change with it.

The launcher of ``xprun -n N`` forks its early workers once it has imported what a worker
needs, instead of starting fresh interpreters; a forked worker must be, for its runs, what a
spawned ``python -m xprun worker --serve`` is (docs/schedulers.md, "local").  These tests
launch real sweeps (``python -m xprun``), kill real workers and send real signals; each run
says which process it ran in (``/proc/self/cmdline``: a forked worker's is the launcher's, a
spawned one's names ``worker --serve``), so that every test knows which kind it checked.
No timing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import git_commit_all
from foreground import FOREGROUND

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forks on Linux")

#: What a run reports about its process (``from who import who``, a module of the project):
#: the fields a test reads to tell a forked worker from a spawned one.
WHO = """
import os


def who():
    with open("/proc/self/cmdline", "rb") as f:
        words = f.read().decode().split("\\0")
    return {"pid": os.getpid(), "ppid": os.getppid(), "spawned": "worker" in words}
"""


def forked(outcome: dict) -> bool:
    return not outcome["spawned"]


def outcomes(project) -> dict[str, dict]:
    return {
        json.loads((d / "run.json").read_text())["nodeid"]: json.loads(
            (d / "outcome.json").read_text()
        )
        for d in project.run_dirs()
        if (d / "outcome.json").exists()
    }


def wait_for(path: Path, count: int = 1, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while len(list(path.parent.glob(path.name))) < count and time.time() < deadline:
        time.sleep(0.05)
    assert len(list(path.parent.glob(path.name))) >= count, f"{path} never appeared"


KILLED = """
import os, pathlib, time
import xprun
from who import who

@xprun.grid(i=list(range(8)))
def xp_kill(config):
    if config.i == 1:
        pathlib.Path({pidfile!r}).write_text(json_who())
        time.sleep({slow})
    # Long enough that the worker started in a killed one's place gets runs too, however
    # fast the surviving one goes (with 0.05 s it once took every run before the new one
    # was up: CI, after the CPU path got faster).
    time.sleep(0.05 if {slow} == 0 else 0.8)
    return who()

def json_who():
    import json
    return json.dumps(who())
"""


def test_i11_pool_fork_a_sigkilled_forked_worker_is_seen_and_its_run_recovered(project):
    pidfile = project.root / "victim.json"
    project.write("who.py", WHO)
    project.write("xp_kill.py", KILLED.format(pidfile=str(pidfile), slow=60))
    git_commit_all(project.root)
    proc = project.popen("-n", "2")
    wait_for(pidfile)
    time.sleep(0.2)
    victim = json.loads(pidfile.read_text())
    assert forked(victim) and victim["ppid"] == proc.pid, victim  # the launcher's own child
    os.kill(victim["pid"], signal.SIGKILL)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, out + err
    assert "7 complete, 1 interrupted" in out, out
    assert f"worker pid {victim['pid']} died (signal SIGKILL)" in out
    # Its run.json still says running; its claim's process is gone, which every reader sees.
    listing = project.run("--collect-only", "-q").stdout.splitlines()
    states = {line.split()[-1]: line.split()[0] for line in listing if "::" in line}
    assert states.pop("xp_kill.py::xp_kill[i=1]") == "interrupted", listing
    assert set(states.values()) == {"complete"}, listing
    done = outcomes(project).values()
    # The other forked worker went on, and the worker started in the killed one's place is a
    # fresh interpreter (the launcher has imported the experiments by then).
    assert any(forked(o) and o["pid"] != victim["pid"] for o in done)
    assert any(not forked(o) for o in done), done

    project.write("xp_kill.py", KILLED.format(pidfile=str(pidfile), slow=0))
    git_commit_all(project.root, "fast now")
    again = project.run("-n", "2")
    assert again.returncode == 0, again.output
    assert "1 complete, 7 cached" in again.stdout
    assert {r["status"] for r in project.records()} == {"complete"}


def test_i11_pool_fork_ctrl_c_stops_forked_workers_cleanly(project):
    started = project.root / "started"
    project.write("who.py", WHO)
    project.write(
        "xp_wait.py",
        f"""
        import json, os, pathlib, time
        import xprun
        from who import who

        @xprun.fixture
        def marker():
            yield
            with open({str(project.root / "teardowns")!r}, "a") as f:
                f.write("x")

        @xprun.grid(i=[1, 2, 3, 4])
        def xp_wait(config, marker):
            pathlib.Path({str(started)!r} + str(config.i)).write_text(json.dumps(who()))
            time.sleep(60)
        """,
    )
    git_commit_all(project.root)
    proc = project.popen("-n", "2", start_new_session=True, **FOREGROUND)
    wait_for(project.root / "started*", count=2)
    workers = [json.loads(p.read_text()) for p in project.root.glob("started*")]
    assert all(forked(w) and w["ppid"] == proc.pid for w in workers), workers
    os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, out + err
    assert sorted(r["status"] for r in project.records()) == ["interrupted", "interrupted"]
    assert (project.root / "teardowns").read_text() == "xx"  # each worker tore its run down
    for worker in workers:  # reaped by the launcher, none left behind
        assert not Path(f"/proc/{worker['pid']}").exists()


SNAPSHOT_XP = """
import os, time
import helper
import xprun
from pathlib import Path
from who import who

@xprun.grid(i=[0, 1, 2, 3])
def xp_snap(config):
    if config.i == 0:
        Path({started!r}).write_text("")
        while not Path({go!r}).exists():
            time.sleep(0.02)
    import late  # first imported here, after the work tree changed
    return {{
        **who(),
        "helper": helper.VALUE,
        "helper_file": helper.__file__,
        "module_file": __file__,
        "late": late.VALUE,
        "late_file": late.__file__,
    }}
"""


def test_i11_pool_fork_runs_import_the_snapshot_even_when_the_work_tree_changes(project):
    # The launcher imports the experiment module (and its helper) from the work tree when
    # it collects: a worker forked after that would hold those modules, not the snapshot's.
    # The work tree then changes while the runs execute: every run still sees the snapshot.
    started, go = project.root / "started", project.root / "go"
    project.write("helper.py", "VALUE = 'snapshot'\n")
    project.write("late.py", "VALUE = 'snapshot'\n")
    project.write("who.py", WHO)
    project.write("xp_snap.py", SNAPSHOT_XP.format(started=str(started), go=str(go)))
    git_commit_all(project.root)
    proc = project.popen("-n", "2")
    wait_for(started)
    project.write("helper.py", "VALUE = 'work tree'\n")
    project.write("late.py", "VALUE = 'work tree'\n")
    go.write_text("")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, out + err
    (record, *_) = project.records()
    snapshot = Path(record["git"]["snapshot_dir"]).resolve()
    found = outcomes(project)
    assert len(found) == 4 and all(forked(o) for o in found.values()), found
    for outcome in found.values():
        assert outcome["helper"] == outcome["late"] == "snapshot", outcome
        for key in ("helper_file", "module_file", "late_file"):
            assert Path(outcome[key]).resolve().is_relative_to(snapshot), (key, outcome)


STATE_XP = """
import os, random, signal, sys, threading
import xprun
from who import who

def stream(s):
    return [s.fileno(), type(s.buffer).__name__, s.encoding, s.errors, s.line_buffering,
            s.write_through, s.mode]

@xprun.grid(i=[0, 1, 2, 3])
def xp_state(config):
    return {
        **who(),
        "draw": random.random(),
        "modules": sorted(
            m for m in sys.modules
            if m.split(".")[0] in ("omegaconf", "pluggy", "yaml", "xprun", "argparse")
        ),
        "handlers": {
            s.name: getattr(signal.getsignal(s), "__qualname__", repr(signal.getsignal(s)))
            for s in signal.Signals
        },
        "blocked": sorted(s.name for s in signal.pthread_sigmask(signal.SIG_BLOCK, [])),
        "stdio": [stream(s) for s in (sys.stdin, sys.__stdout__, sys.__stderr__)],
        "path": sys.path,
        "meta_path": [type(f).__name__ for f in sys.meta_path],
        "threads": threading.active_count(),
        "open": open_descriptors(),
    }

def open_descriptors():
    # Where this process's descriptors lead, /dev/null left out (a forked worker holds
    # copies of it in place of the launcher's other descriptors); pipes by kind only.  The
    # worker's own results journal (xprun/journal.py: open from its first finished run on,
    # close-on-exec) is the worker's, not the launcher's: which run comes first differs.
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # the listing's own
        if target != os.devnull and "/.xprun-journal/" not in target:
            found.append("pipe" if target.startswith("pipe:") else target)
    return sorted(found)
"""

#: Fields of run.json that differ between any two launches (times, process ids, the session).
VOLATILE = {"start", "end", "duration", "pid", "session"}


def _launch(project, *python_options: str) -> tuple[int, subprocess.CompletedProcess]:
    proc = subprocess.Popen(
        [sys.executable, *python_options, "-m", "xprun", "-n", "2"],
        cwd=project.root,
        env=project.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = proc.communicate(timeout=120)
    return proc.pid, subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_i11_pool_fork_no_launcher_state_in_a_runs_record(project, tmp_path):
    # The same sweep run by forked workers and by spawned ones (the launcher started with an
    # interpreter option, which spawned workers would not get: they are spawned then) must
    # leave the same records, configs and outcomes, but for each process's own fields.
    project.write("who.py", WHO)
    project.write("xp_state.py", STATE_XP)
    git_commit_all(project.root)
    seen = {}
    for how, options in (("forked", ()), ("spawned", ("-X", "faulthandler"))):
        launcher, result = _launch(project, *options)
        assert result.returncode == 0, result.stdout + result.stderr
        found = outcomes(project)
        assert {forked(o) for o in found.values()} == {how == "forked"}, found
        records = {}
        for run_dir in project.run_dirs():
            record = json.loads((run_dir / "run.json").read_text())
            outcome = found[record["nodeid"]]
            assert record["pid"] == outcome["pid"] != launcher  # the worker's own
            assert record["argv"][1:] == ["worker", "--serve"], record["argv"]
            records[record["nodeid"]] = (
                {k: v for k, v in record.items() if k not in VOLATILE},
                (run_dir / "config.yaml").read_text(),
                {k: v for k, v in outcome.items() if k not in ("pid", "ppid", "spawned")},
            )
        seen[how] = records
        os.rename(project.log_dir, tmp_path / how)
    assert seen["forked"] == seen["spawned"]


SITE = """
import atexit, logging, os, weakref

def _note(what):
    with open(os.path.join(os.environ["NOTES"], what + "." + str(os.getpid())), "w"):
        pass

atexit.register(_note, "atexit")

class _Kept:
    pass

KEPT = _Kept()
weakref.finalize(KEPT, _note, "finalize")
"""

EXIT_XP = """
import atexit, logging, logging.handlers, os, threading, time, weakref
import xprun
from who import who

NOTES = os.environ["NOTES"]
KEPT = []

class Kept:
    pass

def touch(name):
    open(os.path.join(NOTES, name), "w").close()

@xprun.grid(i=[0, 1])
def xp_exit(config):
    pid = os.getpid()
    atexit.register(touch, f"run-atexit.{pid}.{config.i}")

    def late():
        time.sleep(0.5)
        touch(f"run-thread.{pid}.{config.i}")

    threading.Thread(target=late).start()  # not a daemon: the exit waits for it
    kept = Kept()
    KEPT.append(kept)  # alive at the exit, which calls its finalizer (atexit=True)
    weakref.finalize(kept, touch, f"run-finalize.{pid}.{config.i}")
    target = logging.FileHandler(os.path.join(NOTES, f"run-log.{pid}.{config.i}"))
    buffered = logging.handlers.MemoryHandler(capacity=100, target=target)
    logger = logging.getLogger(f"xp_exit.{config.i}")
    logger.addHandler(buffered)
    logger.warning("kept in memory until logging shuts down")
    return {**who(), "i": config.i}
"""


def test_i11_pool_fork_a_forked_workers_exit_does_what_an_interpreter_exit_does(project, tmp_path):
    # The runs' own atexit functions and finalizers run, their non-daemon threads are waited
    # for, and their log handlers are flushed (logging.shutdown, registered again in the
    # child: the launcher imported logging through sitecustomize before forking); the
    # launcher's own atexit functions and weakref finalizers (from sitecustomize) never run
    # in a worker, although the runs' finalizers make the exit call the registered ones.
    site, notes = tmp_path / "site", tmp_path / "notes"
    site.mkdir()
    notes.mkdir()
    (site / "sitecustomize.py").write_text(SITE)
    project.write("who.py", WHO)
    project.write("xp_exit.py", EXIT_XP)
    git_commit_all(project.root)
    env = {"PYTHONPATH": str(site), "NOTES": str(notes)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "xprun", "-n", "2"],
        cwd=project.root,
        env={**project.env(), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, out + err
    found = outcomes(project)
    assert len(found) == 2 and all(forked(o) for o in found.values()), found
    for outcome in found.values():
        pid, i = outcome["pid"], outcome["i"]
        for what in ("run-atexit", "run-thread", "run-finalize"):
            assert (notes / f"{what}.{pid}.{i}").exists(), (what, sorted(os.listdir(notes)))
        log = (notes / f"run-log.{pid}.{i}").read_text()
        assert "kept in memory until logging shuts down" in log
    launcher_only = {n for n in os.listdir(notes) if n.startswith(("atexit.", "finalize."))}
    assert launcher_only == {f"atexit.{proc.pid}", f"finalize.{proc.pid}"}


PLUGIN_XP = """
import os, sys
import xprun
from who import who

@xprun.grid(i=[0, 1])
def xp_plugin(config):
    return {**who(), "plugin": getattr(sys.modules.get("myplugin"), "__file__", None)}
"""


@pytest.mark.parametrize("why", ["plugin", "interpreter-option", "program"])
def test_i11_pool_fork_falls_back_to_spawned_workers_where_a_fork_is_not_safe(project, why):
    # A -p plugin of the project was imported (from the work tree) and configured by the
    # launcher; an interpreter option (-X ...) would not reach a spawned worker either; a
    # program that calls xprun.main() has state of its own: in each case the workers are
    # fresh interpreters, and the plugin comes from the snapshot.
    project.write("myplugin.py", "def xprun_configure(config):\n    pass\n")
    project.write("who.py", WHO)
    project.write("xp_plugin.py", PLUGIN_XP)
    git_commit_all(project.root)
    if why == "plugin":
        result = project.run("-n", "2", "-p", "myplugin", env={"PYTHONPATH": str(project.root)})
        returncode, output = result.returncode, result.output
    elif why == "interpreter-option":
        _, completed = _launch(project, "-X", "faulthandler")
        returncode, output = completed.returncode, completed.stdout + completed.stderr
    else:
        project.write("launch_me.py", "import sys, xprun\nsys.exit(xprun.main(['-n', '2']))\n")
        completed = subprocess.run(
            [sys.executable, "launch_me.py"],
            cwd=project.root,
            env=project.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        returncode, output = completed.returncode, completed.stdout + completed.stderr
    assert returncode == 0, output
    (record, *_) = project.records()
    snapshot = Path(record["git"]["snapshot_dir"]).resolve()
    found = outcomes(project)
    assert len(found) == 2 and not any(forked(o) for o in found.values()), found
    if why == "plugin":
        for outcome in found.values():
            assert Path(outcome["plugin"]).resolve().is_relative_to(snapshot), outcome
