"""Issue 11, items 3 and 4: the CPU path per run, and what durability costs.

The work per run was cut (the ``config`` fixture built from a cached template, ``config.yaml``
from cached entries, the session's metadata computed once, fewer file-system calls, no thread
wake-up per run).  These tests pin what must not change while doing so: the ``config`` fixture
is still OmegaConf's read-only ``DictConfig`` with OmegaConf's own errors, ``config.yaml`` is
still exactly what ``yaml.dump`` writes, every ``run.json`` records the same session metadata,
a run slower than the heartbeat interval still gets heartbeats, the outcome and the final
record are still fsynced with their directory; and two counts that the old code exceeded
(file-system calls and background-thread wake-ups per run).  No timing is asserted: the
figures are measured by ``benchmarks/bench_overhead.py``.
"""

from __future__ import annotations

import builtins
import io
import json
import os
import subprocess

import inprocess as _inprocess
import pytest
import yaml
from conftest import git_commit_all
from omegaconf import OmegaConf

from xprun import ticker

pytestmark = pytest.mark.inprocess  # xprun launched in the test's process (tests/launch.py)

inprocess = _inprocess.inprocess  # the fixture

# -- the config fixture ------------------------------------------------------------------------

PROBE = """
import xprun
from omegaconf import DictConfig, OmegaConf


def _error(action):
    try:
        action()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return "no error"


@xprun.config({
    "seed": 0, "lr": 0.1, "flag": True, "nothing": None, "name": "a: b # c",
    "model": {"depth": 4, "layers": [1, 2.5, {"kind": "conv"}], "empty": {}},
})
@xprun.grid(seed=[0, 1], lr=[0.1, 1])
def xp_probe(config):
    def assign():
        config.lr = 3

    def append():
        config.model.layers.append(3)

    return {
        "is_dictconfig": isinstance(config, DictConfig),
        "readonly": [OmegaConf.is_readonly(config), OmegaConf.is_readonly(config.model.layers)],
        "yaml": OmegaConf.to_yaml(config),
        "container": OmegaConf.to_container(config),
        "types": sorted({type(config._get_node(k)).__name__ for k in config}),
        "assign": _error(assign),
        "append": _error(append),
        "missing": _error(lambda: config.missing),
        "seed_type": type(config.seed).__name__,
        "lr_type": type(config.lr).__name__,
    }
"""


def _error(action) -> str:
    try:
        action()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return "no error"


def test_i11_03_the_config_fixture_is_omegaconfs_read_only_dictconfig_with_its_errors(project):
    # Feature kept while made faster: passes on the old code too.
    project.write("xp_probe.py", PROBE)
    result = project.run("-q")
    assert result.returncode == 0, result.output
    runs = project.run_dirs()
    assert len(runs) == 4
    for run_dir in runs:
        plain = yaml.safe_load((run_dir / "config.yaml").read_text())
        expected = OmegaConf.create(plain, flags={"readonly": True})
        seen = json.loads((run_dir / "outcome.json").read_text())

        def assign(cfg=expected):
            cfg.lr = 3

        def append(cfg=expected):
            cfg.model.layers.append(3)

        assert seen == {
            "is_dictconfig": True,
            "readonly": [True, True],
            "yaml": OmegaConf.to_yaml(expected),
            "container": plain,
            "types": sorted({type(expected._get_node(k)).__name__ for k in expected}),
            "assign": _error(assign),
            "append": _error(append),
            "missing": _error(lambda cfg=expected: cfg.missing),
            "seed_type": "int",
            "lr_type": type(plain["lr"]).__name__,
        }
        assert seen["assign"].startswith("ReadonlyConfigError: Cannot change read-only config")
        assert seen["missing"].startswith("ConfigAttributeError: Missing key missing")
    assert {json.loads((d / "outcome.json").read_text())["lr_type"] for d in runs} == {
        "int",
        "float",
    }


# -- config.yaml -------------------------------------------------------------------------------

YAML_CONFIGS = {
    "xp_a": {"seed": 3, "v": 0.0, "b": 1, "s": "yes", "long": "word " * 30, "l": [1, [2, {}]]},
    # Values equal to xp_a's in Python (0.0 == -0.0, 1 == True) that YAML writes otherwise.
    "xp_b": {"seed": 3, "v": -0.0, "b": True, "s": "yes", "long": "word " * 30, "l": [1, [2, {}]]},
    "xp_c": {"seed": -12345678901234567890, "v": 1e300, "b": None, "s": "ünï\ncode", "l": []},
}


def test_i11_03_config_yaml_is_exactly_what_yaml_dump_writes(project):
    # Feature kept while made faster (entries cached across runs and experiments): passes on
    # the old code too.  xp_b's values equal xp_a's for Python, not for YAML.
    body = "".join(
        f"@xprun.config({config!r})\ndef {name}(config):\n    return None\n\n\n"
        for name, config in YAML_CONFIGS.items()
    )
    project.write("xp_yaml.py", "import xprun\n\n\n" + body)
    result = project.run("-q")
    assert result.returncode == 0, result.output
    for name, config in YAML_CONFIGS.items():
        (run_dir,) = project.run_dirs(f"xp_yaml.{name}")
        expected = yaml.dump(config, Dumper=yaml.SafeDumper, sort_keys=False, allow_unicode=True)
        assert (run_dir / "config.yaml").read_text(encoding="utf-8") == expected


# -- the session's metadata --------------------------------------------------------------------

SWEEP = """
import xprun

@xprun.config({"seed": 0, "lr": 0.1})
def xp_sweep(config, logger):
    logger.log_metrics({"loss": config.lr})
    return {"seed": config.seed}
"""

SESSION_FIELDS = (
    "scheduler", "job", "git", "host", "user", "pid", "python", "python_executable",
    "platform", "xprun", "argv", "cwd",
)  # fmt: skip


def test_i11_03_every_run_json_records_the_same_session_metadata(project):
    # Computed once per session now: passes on the old code too (which computed it per run).
    project.write("xp_sweep.py", SWEEP)
    subprocess.run(["git", "init", "-q", str(project.root)], check=True)
    git_commit_all(project.root)
    result = project.run("-q", "seed=range(0,3)", env={"SLURM_JOB_ID": "4242"})
    assert result.returncode == 0, result.output
    records = project.records()
    assert len(records) == 3
    first = {key: records[0][key] for key in SESSION_FIELDS}
    for record in records[1:]:
        assert {key: record[key] for key in SESSION_FIELDS} == first
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=project.root, capture_output=True, text=True
    ).stdout.strip()
    assert first["job"] == {"scheduler": "slurm", "SLURM_JOB_ID": "4242"}
    assert first["git"]["commit"] == head and first["scheduler"] == "inline"
    assert "seed=range(0,3)" in first["argv"]
    assert sorted(r["status"] for r in records) == ["complete"] * 3
    assert len({r["start"] for r in records} | {r["hash"] for r in records}) >= 3  # per run


RUNNING_TEXT = """
import os
import xprun


@xprun.config({"seed": 0, "name": "ünï"})
def xp_text(config, run_dir):
    text = (run_dir / "run.json").read_text(encoding="utf-8")  # the running record
    marker = run_dir / "failed-once"
    if config.seed == 1 and not marker.exists():
        marker.write_text("x")
        raise ValueError("first attempt")
    return {"text": text}
"""

RECORD_PLUGIN = """
def xprun_run_record(run, context):
    return {"zz_plugin": {"hash": run.hash, "chars": ["ü", 1.5, None]}}
"""


@pytest.mark.parametrize("plugin", [False, True], ids=["core fields", "with a plugin's"])
def test_i11_03_the_running_record_is_the_text_json_dumps_writes(project, plugin):
    # Its session part is encoded once per session and spliced in: the text must be exactly
    # what json.dumps(record, ensure_ascii=False) writes, key order included, retries too.
    project.write("xp_text.py", RUNNING_TEXT)
    if plugin:
        project.write("conftest.py", RECORD_PLUGIN)
    result = project.run("-q", "seed=range(0,3)", "--retries", "1")
    assert result.returncode == 0, result.output
    outcomes = [json.loads((d / "outcome.json").read_text()) for d in project.run_dirs()]
    assert len(outcomes) == 3
    for outcome in outcomes:
        text = outcome["text"]
        record = json.loads(text)
        assert text == json.dumps(record, ensure_ascii=False)
        assert record["status"] == "running"
        assert list(record)[:3] == ["format", "digest", "hash"]
        assert ("zz_plugin" in record) is plugin
        if plugin:
            assert record["zz_plugin"] == {"hash": record["hash"], "chars": ["ü", 1.5, None]}
    retried = [json.loads(o["text"]) for o in outcomes if "retried" in json.loads(o["text"])]
    assert len(retried) == 1 and retried[0]["attempt"] == 2
    assert retried[0]["retried"][0]["message"] == "first attempt"
    keys = list(retried[0])
    assert keys.index("retried") > keys.index("cwd")  # after the session's fields, as before


FINAL_TEXT = """
import xprun

@xprun.fixture
def resource(config):
    yield
    if config.seed == 3:
        raise RuntimeError("teardown ü")

@xprun.config({"seed": 0, "name": "ünï"})
def xp_final(config, resource):
    if config.seed == 2:
        raise ValueError("failed ü")
    return {"seed": config.seed, "ü": [1.5, None]}
"""


@pytest.mark.parametrize("plugin", [False, True], ids=["core fields", "with a plugin's"])
def test_i11_03_the_final_record_is_the_text_json_dumps_writes(project, plugin):
    # Its session part is spliced in from the running record's (record.record_json): the
    # text must be exactly json.dumps(record, ensure_ascii=False), whatever was added at the
    # end (packages, error, teardown_error), retries, recoveries and plugins' fields too.
    project.write("xp_final.py", FINAL_TEXT)
    if plugin:
        project.write("conftest.py", RECORD_PLUGIN)
    result = project.run("-q", "seed=range(0,4)", "--retries", "1")
    assert result.returncode == 1, result.output  # seed 2 fails, twice
    texts = [(d / "run.json").read_text(encoding="utf-8") for d in project.run_dirs()]
    records = [json.loads(text) for text in texts]
    for text, record in zip(texts, records, strict=True):
        assert text == json.dumps(record, ensure_ascii=False)
        assert ("zz_plugin" in record) is plugin
    by_seed = {r["nodeid"]: r for r in records}
    assert sorted(r["status"] for r in records) == ["complete"] * 3 + ["failed"]
    failed = next(r for r in records if r["status"] == "failed")
    assert failed["error"] == {"type": "ValueError", "message": "failed ü"}
    assert failed["retried"][0]["message"] == "failed ü" and failed["attempt"] == 2
    torn = next(r for r in by_seed.values() if "teardown_error" in r)
    assert torn["status"] == "complete" and list(torn)[-1] == "teardown_error"
    assert all(list(r)[:3] == ["format", "digest", "hash"] for r in records)


# -- heartbeats --------------------------------------------------------------------------------

HEARTBEATS = """
import os
import time
import xprun

@xprun.config({"seed": 0})
@xprun.grid(seed=[0, 1])
def xp_slow(config, logger, run_dir):
    logger.log_metrics({"x": 1.0})  # the logger's background flush is scheduled first
    if config.seed == 0:
        return {"seed": 0, "beats": 0}
    (claim,) = [p for p in run_dir.iterdir() if p.name.startswith("claim.")]
    seen = {claim.stat().st_mtime_ns}
    deadline = time.monotonic() + 60  # a bound for a broken heartbeat, not a measurement
    while len(seen) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
        seen.add(claim.stat().st_mtime_ns)
    return {"seed": 1, "beats": len(seen) - 1}
"""


def test_i11_03_a_run_slower_than_the_heartbeat_interval_gets_heartbeats(project):
    # The ticker's thread is no longer woken for every new job, only for one due before it
    # wakes anyway: a run that outlasts a short interval must still be touched.  Passes on the
    # old code too.
    project.write(
        "pyproject.toml",
        '[tool.xprun]\nlog_dir = "xprun_logs"\nheartbeat_interval = 0.05\nheartbeat_timeout = 60\n',
    )
    project.write("xp_slow.py", HEARTBEATS)
    result = project.run("-q", timeout=300)
    assert result.returncode == 0, result.output
    outcomes = [json.loads((d / "outcome.json").read_text()) for d in project.run_dirs()]
    beats = {o["seed"]: o["beats"] for o in outcomes}
    assert beats == {0: 0, 1: 3}, beats  # the slow run saw its claim touched 3 times


# -- counts per run (in process: what a subprocess does cannot be counted) ---------------------

COUNTED = """
import xprun

@xprun.config({"seed": 0, "lr": 0.1, "model": {"depth": 4}})
def xp_counted(config, logger):
    logger.log_metrics({"loss": config.lr})
    return {"seed": config.seed}
"""


def _count(monkeypatch, module, name: str, counts: dict[str, int]) -> None:
    real = getattr(module, name)

    def counted(*args, **kwargs):
        counts[name] = counts.get(name, 0) + 1
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)


def test_i11_03_a_run_opens_and_lists_fewer_files(inprocess, project, monkeypatch):
    # Fails on the old code: 23 opens and directory listings per run there (16 now).
    project.write("xp_counted.py", COUNTED)
    assert inprocess.run("-q", "seed=0").ret == 0  # imports and first-use work done
    counts: dict[str, int] = {}
    with monkeypatch.context() as patch:
        for module, name in ((os, "open"), (os, "scandir"), (os, "listdir")):
            _count(patch, module, name, counts)
        _count(patch, builtins, "open", counts)
        _count(patch, io, "open", counts)
        result = inprocess.run("-q", "seed=range(1,21)")
    assert result.ret == 0, result.output
    assert len(result.run_dirs()) == 21
    per_run = sum(counts.values()) / 20
    assert per_run <= 17, counts


def test_i11_03_short_runs_do_not_wake_the_background_thread(inprocess, project, monkeypatch):
    # Fails on the old code: each run's heartbeat and logger flush woke the ticker's thread
    # (2 wake-ups per run, 40 here).  A heartbeat due after the thread's next wake-up anyway
    # needs none.
    project.write("xp_counted.py", COUNTED)
    assert inprocess.run("-q", "seed=0").ret == 0
    wakes: list[int] = []
    event = ticker._TICKER._wake
    real_set = event.set
    monkeypatch.setattr(event, "set", lambda: wakes.append(1) or real_set())
    result = inprocess.run("-q", "seed=range(1,21)")
    assert result.ret == 0, result.output
    assert len(wakes) <= 2, len(wakes)


def test_i11_04_the_outcome_and_final_record_are_fsynced_with_their_directory(
    inprocess, project, monkeypatch
):
    # The price of durability, per run: four fsyncs (outcome.json and the final run.json,
    # each before its rename, and the run directory after each), no more and no fewer.
    # Passes on the old code too.
    project.write("xp_counted.py", COUNTED)
    synced: list[str] = []
    real = os.fsync

    def fsync(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    result = inprocess.run("-q", "seed=range(0,5)")
    assert result.ret == 0, result.output
    run_dirs = result.run_dirs()
    assert len(synced) == 4 * len(run_dirs) == 20
    for run_dir in run_dirs:
        mine = [os.path.relpath(p, run_dir) for p in synced if p.startswith(str(run_dir))]
        assert [os.path.basename(p).split(".")[1] if p != "." else p for p in mine] == [
            "outcome",
            ".",
            "run",
            ".",
        ], mine


def test_i11_signal_handlers_are_put_back_when_the_session_ends(project):
    # An armed SignalHold routes SIGINT/SIGTERM/SIGUSR2 through one handler that stays
    # installed between runs (errors._dispatch); the session's end puts back what was there.
    import signal as signal_module

    from xprun import errors

    project.write(
        "xp_sig.py",
        "import xprun\n\n@xprun.grid(i=[0, 1, 2])\ndef xp_sig(config):\n"
        "    import signal\n    return {'armed': signal.getsignal(signal.SIGINT).__name__}\n",
    )
    before = {sig: signal_module.getsignal(sig) for sig in errors.HELD_SIGNALS}
    result = project.run("-q", inprocess=True)
    assert result.returncode == 0, result.output
    after = {sig: signal_module.getsignal(sig) for sig in errors.HELD_SIGNALS}
    assert after == before
    assert errors._armed_holds == [] and errors._behind == {}
    outcomes = [json.loads((d / "outcome.json").read_text()) for d in project.run_dirs()]
    assert outcomes == [{"armed": "_dispatch"}] * 3  # during each run: xprun's (guide.md)
