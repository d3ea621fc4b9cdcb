"""Sweeps at scale (issue 11): command-line sweeps hash as grids and as OmegaConf would, a
sweep too large to be meant is refused with its size, the skip check of a large launch still
reruns exactly what is unfinished, and collection scales linearly.

Everything runs through the CLI in real processes, except the scaling test, which times two
collections inside one child process (in CPU time, against each other: a ratio, not a
stopwatch) so that start-up does not hide the growth.
"""

from __future__ import annotations

import collections
import enum
import json
import re
import resource
import signal
import subprocess
import sys
import textwrap
import time

import inprocess as _inprocess
import pytest
import yaml

pytestmark = pytest.mark.inprocess  # xprun launched in the test's process (tests/launch.py)

inprocess = _inprocess.inprocess  # the fixture


@pytest.fixture(autouse=True)
def _no_inherited_limit(monkeypatch):
    monkeypatch.delenv("XPRUN_MAX_RUNS", raising=False)


# -- identity: command line, grid and the OmegaConf path agree ---------------------------------

BASE = {
    "lr": 0.1,
    "name": "run",
    "flag": False,
    "nothing": None,
    "big": 2**70,
    "model": {"depth": 2, "act": "relu", "inner": {"k": 1}},
    "layers": [1, 2],
    "dropout": 0.5,
    "seed": 3,
}

EXPERIMENT = """
from math import inf, nan

import xprun

@xprun.config({base!r}, exclude=["alias"], experiment="same")
{grid}
def xp_same(config):
    return {{}}
"""

INF, NAN = float("inf"), float("nan")  # written into the experiment as inf and nan

# (command-line overrides, the same runs as a grid or None when a grid cannot say it)
CASES = [
    (["seed=range(0,6)"], {"seed": list(range(6))}),
    (["lr=0.1,0.01,1e-3,2.0,-0.0,inf,nan,7"], {"lr": [0.1, 0.01, 1e-3, 2.0, -0.0, INF, NAN, 7]}),
    (
        ["name=a,'b c',\"x,y\",null,true,1,'1','é'"],
        {"name": ["a", "b c", "x,y", None, True, 1, "1", "é"]},
    ),
    (["model.depth=3,4", "flag=true,false"], {"model.depth": [3, 4], "flag": [True, False]}),
    (["model.inner.k=range(0,3)"], {"model.inner.k": [0, 1, 2]}),
    (["+new=1,x,2.5"], {"new": [1, "x", 2.5]}),
    (["+model.extra=x", "+a.b.c=range(2)"], {"model.extra": ["x"], "a.b.c": [0, 1]}),
    (["++lr=0.5", "++model.depth=7", "++fresh=1"], {"lr": [0.5], "model.depth": [7], "fresh": [1]}),
    (["nothing=1,2"], {"nothing": [1, 2]}),
    (["+nothing=2"], {"nothing": [2]}),
    (["big=range(5,8)", "seed=range(0,2)"], {"big": [5, 6, 7], "seed": [0, 1]}),
    (["lr=range(0,1,0.25)"], {"lr": [0.0, 0.25, 0.5, 0.75]}),
    (["layers=[3,4]", "model={depth:5}"], {"layers": [[3, 4]], "model": [{"depth": 5}]}),
    (["model.act=choice(relu,tanh)", "seed=5"], {"model.act": ["relu", "tanh"], "seed": [5]}),
    (["+tag=${lr}"], None),  # an interpolation: resolved
    (["~dropout", "seed=range(0,3)"], None),
    (["~dropout=0.5"], None),
    (["~model"], None),
    (["~model.inner", "lr=0.2,0.3"], None),
    (["~seed"], None),
]


def _collect(run, project, grid: dict | None, args: list[str], log_dir: str, alias: bool) -> str:
    """The ``--collect-only`` listing (state, hash, node id) of experiment ``same``; ``run`` is
    ``project.run`` (a ``python -m xprun`` process) or an ``inprocess`` runner's ``run``."""
    base = dict(BASE, alias="${lr}") if alias else BASE  # excluded: a hash-neutral interpolation
    decorator = f"@xprun.grid(**{grid!r})" if grid else ""
    project.write("xp_same.py", EXPERIMENT.format(base=base, grid=decorator))
    result = run("--collect-only", "--log-dir", log_dir, *args)
    assert getattr(result, "returncode", getattr(result, "ret", None)) == 0, (args, result.output)
    return sorted(line.split()[1] for line in result.stdout.splitlines() if "::" in line)


def test_i11_01_command_line_sweeps_hash_as_grids_and_as_the_omegaconf_path(
    project, inprocess, monkeypatch
):
    """Each case's hashes by the fast path, the OmegaConf path and as a grid.  The 50-odd
    collections run in this process (``xprun.main``, the CLI's own entry point: the hashing
    is pure, and a process per collection cost ~50 s of CPU); one case runs as a user runs it,
    in a ``python -m xprun`` process, and must list the same hashes."""
    # The experiment file is rewritten within the same second at the same size: never let
    # Python take its stale bytecode (a pyc is checked by mtime and size).
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    for args, grid in CASES:
        # The base holds no interpolation: plain-key overrides take the plain-dict path.
        fast = _collect(inprocess.run, project, None, args, "logs-fast", alias=False)
        # An interpolation (of a key excluded from the hash) sends every config through
        # OmegaConf and Hydra's override application: the old code's path for overrides.
        slow = _collect(inprocess.run, project, None, args, "logs-slow", alias=True)
        assert fast == slow, args
        assert len(fast) == len(set(fast)) > 0
        if grid is not None:
            as_grid = _collect(inprocess.run, project, grid, [], "logs-grid", alias=False)
            assert as_grid == fast, args
    args, grid = CASES[1]  # floats, -0.0, inf and nan: the values most easily told apart
    for alias in (False, True):
        by_cli = _collect(project.run, project, None, args, "logs-cli", alias=alias)
        assert by_cli == _collect(inprocess.run, project, grid, [], "logs-grid", alias=False)


def test_i11_01_command_line_sweeps_resolve_the_same_configs_as_the_omegaconf_path(project):
    args = ["seed=range(0,2)", "+model.extra=x,y", "++lr=0.5", "~dropout", "name=null"]
    written = {}
    for alias in (False, True):
        log_dir = f"logs-{alias}"
        _collect(project.run, project, None, args, log_dir, alias)
        result = project.run("-q", "--log-dir", log_dir, *args)
        assert result.returncode == 0, result.output
        configs = {}
        for run_json in (project.root / log_dir).glob("same/*/run.json"):
            config = yaml.safe_load((run_json.parent / "config.yaml").read_text())
            config.pop("alias", None)
            configs[run_json.parent.name] = list(config.items())  # key order included
        written[alias] = configs
    assert len(written[False]) == 4
    assert written[False] == written[True]


def test_i11_01_group_options_on_the_command_line_hash_as_in_a_grid(project):
    project.write("conf/train.yaml", "defaults:\n  - model: small\nlr: 0.1\nseed: 0\n")
    project.write("conf/model/small.yaml", "width: 8\n")
    project.write("conf/model/large.yaml", "width: 64\n")
    source = """
    import xprun

    @xprun.config(path="conf", name="train", experiment="groups")
    {grid}
    def xp_groups(config):
        return {{}}
    """
    listings = []
    for grid, args in (
        ("", ["model=small,large", "lr=0.1,0.2", "+extra=1"]),
        ('@xprun.grid(model=["small", "large"], lr=[0.1, 0.2], extra=[1])', []),
    ):
        project.write("xp_groups.py", textwrap.dedent(source).format(grid=grid))
        result = project.run("--collect-only", *args)
        assert result.returncode == 0, result.output
        listings.append(
            sorted(line.split()[1] for line in result.stdout.splitlines() if "::" in line)
        )
    assert len(listings[0]) == 4 and listings[0] == listings[1]


# -- a sweep too large to be meant ---------------------------------------------------------------

SMALL = """
import xprun

@xprun.config({"lr": 0.1})
def xp_small(config):
    return {}
"""


def _limited_memory() -> None:
    """At most 3 GiB of address space: without the refusal, listing 10^9 values would fill
    the machine's memory; with this limit it ends in MemoryError instead."""
    limit = 3 * 1024**3
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _run_limited(project, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*project.command(), *args],
        cwd=project.root,
        env={**project.env(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_limited_memory,
    )


def test_i11_01_a_command_line_sweep_too_large_is_refused_with_its_size(project):
    project.write("xp_small.py", SMALL)
    result = _run_limited(project, "lr=range(1e9)")
    assert result.returncode == 4, result.stdout + result.stderr
    assert "1,000,000,000 runs" in result.stderr and "XPRUN_MAX_RUNS" in result.stderr
    assert "lr=range(1e9)" in result.stderr
    assert not project.log_dir.exists()  # nothing written
    endless = _run_limited(project, "seed=range(0,inf)")
    assert endless.returncode == 4 and "endless" in endless.stderr, endless.stderr
    assert not project.log_dir.exists()


def test_i11_01_a_grid_too_large_is_refused_with_its_size(project):
    project.write(
        "xp_huge.py",
        """
        import xprun

        @xprun.grid(i=range(10**9), j=[0, 1])
        def xp_huge(config):
            return {}
        """,
    )
    result = _run_limited(project, "--collect-only")
    assert result.returncode == 4, result.stdout + result.stderr
    assert "2,000,000,000 runs" in result.stderr and "xp_huge.py::xp_huge" in result.stderr
    assert not project.log_dir.exists()


def test_i11_01_the_limit_is_set_by_xprun_max_runs(project):
    project.write("xp_small.py", SMALL)
    limit = {"XPRUN_MAX_RUNS": "100"}
    refused = project.run("--collect-only", "lr=range(0,101)", env=limit)
    assert refused.returncode == 4 and "101 runs" in refused.stderr, refused.output
    assert "more than the limit of 100" in refused.stderr
    # The product of the axes counts, before any config is built.
    product = project.run("--collect-only", "lr=range(0,11)", "+b=range(0,10)", env=limit)
    assert product.returncode == 4 and "110 runs" in product.stderr, product.output
    allowed = project.run("--collect-only", "lr=range(0,100)", env=limit)
    assert allowed.returncode == 0 and "100 runs collected" in allowed.stdout, allowed.output
    bad = project.run("--collect-only", env={"XPRUN_MAX_RUNS": "lots"})
    assert bad.returncode == 4 and "XPRUN_MAX_RUNS='lots'" in bad.stderr, bad.output
    assert not project.log_dir.exists()


# -- the skip check keeps its guarantees ---------------------------------------------------------

COUNTED = """
import os
import time
import xprun

@xprun.config({{"i": 0}})
@xprun.grid(i=list(range({n})))
def xp_counted(config):
    time.sleep({sleep})
    # O_APPEND writes of one short line are atomic: a side effect we can count.
    fd = os.open({path!r}, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, f"{{config.i}}\\n".encode())
    os.close(fd)
    return {{"i": config.i}}
"""


def _counted(project, n: int, sleep: float):
    executions = project.root / "executions"
    project.write("xp_counted.py", COUNTED.format(n=n, sleep=sleep, path=str(executions)))
    return executions


def _executed(executions) -> collections.Counter:
    return collections.Counter(int(i) for i in executions.read_text().split())


def _statuses(project) -> dict[int, str]:
    found = {}
    for run_dir in project.log_dir.glob("xp_counted.xp_counted/*"):
        if not ((run_dir / "run.json").exists() and (run_dir / "config.yaml").exists()):
            continue  # killed between making its directory and its first record: not started
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
        record = json.loads((run_dir / "run.json").read_text())
        found[config["i"]] = record["status"]
    return found


def test_i11_02_after_a_kill_mid_sweep_exactly_the_unfinished_runs_run_again(project):
    executions = _counted(project, 40, 0.05)
    # Half the sweep first, from the command line (the same configs and hashes as the grid).
    first = project.run("-q", "i=range(0,20)")
    assert first.returncode == 0, first.output
    proc = project.popen("-q")
    deadline = time.monotonic() + 120
    while len(executions.read_text().split()) < 26:  # 20, and 6 of the second launch
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the second launch did not get going"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    before = _statuses(project)
    complete = {i for i, status in before.items() if status == "complete"}
    assert set(range(20)) <= complete and len(complete) < 40
    done_before = _executed(executions)
    final = project.run("-q")
    assert final.returncode == 0, final.output
    again = _executed(executions) - done_before
    assert not set(again) & complete  # nothing complete ran again
    # Everything unfinished did, unless its function had returned before the kill (then its
    # saved outcome is recorded without running it again).
    assert set(range(40)) - complete - set(done_before) <= set(again)
    assert set(again) | complete | set(done_before) == set(range(40))
    assert _statuses(project) == dict.fromkeys(range(40), "complete")
    assert f"{len(complete)} cached" in final.stdout, final.stdout


def test_i11_02_concurrent_launchers_on_a_partly_complete_sweep_run_each_config_once(project):
    executions = _counted(project, 40, 0.02)
    first = project.run("-q", "i=range(0,15)")
    assert first.returncode == 0, first.output
    procs = [project.popen("-q") for _ in range(3)]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], results
    counts = _executed(executions)
    assert set(counts) == set(range(40)) and set(counts.values()) == {1}, counts
    assert _statuses(project) == dict.fromkeys(range(40), "complete")
    for out, _ in results:  # each launcher found at least the first launch's runs complete
        cached = re.search(r"(\d+) cached", out)
        assert cached and 15 <= int(cached.group(1)) <= 40, out


# -- collection scales linearly ------------------------------------------------------------------

SCALING = """
import json
import os
import sys
import time

import xprun

times = {}
for name, args in [
    ("warm-up", ["xp_10.py"]),
    ("warm-up cli", ["xp_10.py", "i=range(0,10)"]),
    ("grid 2k", ["xp_2000.py"]),
    ("grid 40k", ["xp_40000.py"]),
    ("cli 2k", ["xp_10.py", "i=range(0,2000)"]),
    ("cli 40k", ["xp_10.py", "i=range(0,40000)"]),
]:
    start = time.process_time()
    code = xprun.main(["--collect-only", "-q", "-p", "no:terminal", *args])
    times[name] = time.process_time() - start
    assert code == 0, (name, code)
print(json.dumps(times))
"""


def test_i11_03_collecting_20x_the_configs_costs_at_most_3x_per_config(project):
    """Quadratic behaviour (the old ``labels.count`` per run) makes 40k configs cost about
    130x 2k; linear code about 20x.  The bound, 60x, leaves 3x slack per config for a loaded
    machine and memory effects: the ratio, not a time, is checked."""
    for n in (10, 2000, 40000):
        project.write(
            f"xp_{n}.py",
            f"""
            import xprun

            @xprun.config({{"lr": 0.1, "model": {{"depth": 2}}, "i": 0}})
            @xprun.grid(i=range({n}))
            def xp_{n}(config):
                return {{}}
            """,
        )
    project.write("scaling.py", SCALING)
    proc = subprocess.run(
        [sys.executable, "scaling.py"],
        cwd=project.root,
        env={**project.env(), "PYTHONPATH": ""},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    times = json.loads(proc.stdout.splitlines()[-1])
    for kind in ("grid", "cli"):
        ratio = times[f"{kind} 40k"] / times[f"{kind} 2k"]
        assert ratio <= 60, (kind, times)


# -- the fast encoder writes the careful encoder's text ----------------------------------------


_COLOR = enum.Enum("Color", "RED")  # made once: making an Enum class costs ~0.2 ms
_KEYS = ["a", "b", "a b", "a!", 'a"', "a\\", "é", "\x00", "", "ab", "a.b", "~", "😀", "seed"]
_SCALARS = [None, True, False, 0, 1, -1, 2**70, -0.0, 0.0, 1.0, 1.5, INF, -INF, NAN, 1e300]
_SCALARS += [5e-324, _COLOR.RED, b"xy", "\u2028", "x\ny"]


def _random_value(rnd, depth: int = 0):
    """Config-like data with the edge values of the canonical encoding: keys that sort
    differently once quoted (a space, ``!``, a quote, a backslash, control characters,
    non-ASCII), ints vs bools vs integral floats, -0.0, NaN, the infinities, huge ints."""
    keys, scalars = _KEYS, _SCALARS
    roll = rnd.random()
    if depth > 3 or roll < 0.5:
        if rnd.random() < 0.3:
            return "".join(chr(rnd.randint(0, 0x2FFF)) for _ in range(rnd.randint(0, 4)))
        return rnd.choice([*scalars, rnd.random(), float(rnd.randint(-50, 50)), *keys])
    if roll < 0.85:
        mapping = {}
        for _ in range(rnd.randint(0, 6)):
            key = rnd.choice(keys) if rnd.random() < 0.9 else rnd.choice([1, 2.5, True, None])
            mapping[key] = _random_value(rnd, depth + 1)
        return mapping
    return [_random_value(rnd, depth + 1) for _ in range(rnd.randint(0, 4))]


def _careful(value):
    """The same data with every dict behind a read-only proxy: not exactly a dict, so the
    encoder takes its careful path for each mapping (any Mapping is encoded by it)."""
    from types import MappingProxyType

    if isinstance(value, dict):
        return MappingProxyType({k: _careful(v) for k, v in value.items()})
    if isinstance(value, list):
        return [_careful(v) for v in value]
    return value


def _encoded(value) -> str:
    from xprun.identity import canonical

    try:
        return canonical(value)
    except (TypeError, ValueError) as exc:
        return f"refused: {type(exc).__name__}"


def test_i11_01_the_fast_mapping_encoder_writes_the_careful_encoders_text():
    """Dicts of text keys are encoded with their order looked up by key set and scalars
    written in place; the text must be the careful path's, byte for byte (the hashes of
    every recorded run depend on it).  Passes on the old code too (one path there)."""
    import random

    from xprun.identity import run_digest

    rnd = random.Random(11)
    for _ in range(20_000):
        value = {"config": _random_value(rnd), "params": {}}
        assert _encoded(value) == _encoded(_careful(value)), value
    # More key sets than the encoder remembers: the ones after still encode alike.
    for i in range(6_000):
        config = {f"k{i}": i, "z": 0.5, "a": {"b": [1, {"c": None}]}}
        assert _encoded(config) == _encoded(_careful(config))
        if i % 1000 == 0:
            assert run_digest("x", config, {}) == run_digest("x", _careful(config), {})


def test_i11_01_a_text_subclass_key_equal_to_a_remembered_key_set_encodes_carefully():
    class Key(str):
        pass

    from xprun.identity import canonical

    plain_first = canonical({"a": 1, "b": 2})
    subclass = {Key("a"): 1, "b": 2}  # equal to the remembered key set ("a", "b")
    assert canonical(subclass) == canonical(_careful(subclass)) == plain_first


# -- a launch that finds runs complete prints what it did before --------------------------------


def test_i11_02_cached_runs_print_every_letter_and_runs_that_run_still_print_theirs(project):
    """Cached runs' letters are written in one batch, not flushed one by one; the line the
    user sees is the same: one letter per run, ``c`` for cached, ``.`` for a run that ran,
    then the percentage.  Passes on the old code too (the output is what it printed)."""
    executions = _counted(project, 30, 0)
    first = project.run("i=range(0,20)")
    assert first.returncode == 0, first.output
    second = project.run()
    assert second.returncode == 0, second.output
    (line,) = [s for s in second.stdout.splitlines() if s.startswith("xp_counted.py::")]
    letters = line.split()[1]
    assert sorted(letters) == sorted("c" * 20 + "." * 10), line
    assert line.endswith("[100%]")
    assert "10 complete, 20 cached" in second.stdout, second.stdout
    third = project.run("-v")
    assert third.returncode == 0 and third.stdout.count(" CACHED ") == 30, third.stdout
    assert _executed(executions) == collections.Counter(range(30))
