"""The logger: metric lines, artifacts by type, checkpoints, and what loading refuses."""

from __future__ import annotations

import json
import math
import os
import pickle
import time

import numpy as np
import pytest
from optional import require

from xprun.logger import Logger, load_artifact, load_checkpoint
from xprun.serialize import UnsafeLoadError


def lines(run_dir, name="metrics"):
    return [
        json.loads(line)
        for line in (run_dir / "metrics" / f"{name}.jsonl").read_text().splitlines()
    ]


def test_metric_lines_hold_step_time_attempt_and_converted_numbers(tmp_path):
    logger = Logger(tmp_path, attempt=3)
    before = time.time()
    logger.log_metrics({"a": 1.5, "b": np.float32(0.25), "c": np.array(2.0), "d": np.int64(7)})
    logger.log_metrics({"nan": math.nan, "inf": -math.inf, "flag": True, "i": 3})
    logger.log_metrics({"a": 2.0}, step=10, name="eval")
    logger.log_metrics({"a": 3.0}, name="eval")
    logger.close()
    first, second = lines(tmp_path)
    assert first["step"] == 0 and second["step"] == 1
    assert first["attempt"] == 3 and before - 1 <= first["time"] <= time.time() + 1
    assert (first["a"], first["b"], first["c"], first["d"]) == (1.5, 0.25, 2.0, 7)
    assert math.isnan(second["nan"]) and second["inf"] == -math.inf and second["flag"] is True
    assert [(r["step"], r["a"]) for r in lines(tmp_path, "eval")] == [(10, 2.0), (11, 3.0)]


@pytest.mark.parametrize("bad", ["text", [1.0], np.array([1.0, 2.0]), None, {"x": 1}, object()])
def test_a_non_number_is_a_type_error_naming_the_key_and_writes_nothing(tmp_path, bad):
    logger = Logger(tmp_path)
    logger.log_metrics({"ok": 1.0})
    with pytest.raises(TypeError, match="'broken'"):
        logger.log_metrics({"fine": 2.0, "broken": bad})
    logger.log_metrics({"ok": 3.0})
    logger.close()
    assert [(r["step"], r.get("ok"), r.get("fine")) for r in lines(tmp_path)] == [
        (0, 1.0, None),
        (1, 3.0, None),
    ]


def test_metrics_reach_disk_within_a_second_without_further_calls(tmp_path):
    logger = Logger(tmp_path)
    logger.log_metrics({"x": 1.0})
    path = tmp_path / "metrics" / "metrics.jsonl"
    deadline = time.time() + 3
    while not (path.exists() and path.read_text()) and time.time() < deadline:
        time.sleep(0.05)
    assert json.loads(path.read_text())["x"] == 1.0
    logger.close()


def test_steps_continue_after_the_last_step_on_disk_and_torn_tail_is_skipped(tmp_path):
    logger = Logger(tmp_path, attempt=1)
    for i in range(5):
        logger.log_metrics({"x": float(i)})
    logger.close()
    with open(tmp_path / "metrics" / "metrics.jsonl", "a") as f:
        f.write('{"step": 99, "x"')  # a torn line from a killed process
    resumed = Logger(tmp_path, attempt=2)
    resumed.log_metrics({"x": 5.0})
    resumed.close()
    text = (tmp_path / "metrics" / "metrics.jsonl").read_text().splitlines()
    assert json.loads(text[-1])["step"] == 5 and json.loads(text[-1])["attempt"] == 2


def test_bad_metric_names_are_rejected(tmp_path):
    logger = Logger(tmp_path)
    for name in ("../escape", "a/b", ".hidden", ""):
        with pytest.raises(ValueError):
            logger.log_metrics({"x": 1.0}, name=name)
    logger.close()


# -- artifacts ---------------------------------------------------------------------------------


def test_artifact_round_trips_by_type(tmp_path):
    logger = Logger(tmp_path)
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    cases = {
        "summary": ({"a": [1, 2, {"b": None}], "c": 1.5}, "summary.json"),
        "numbers": ([1, 2, 3], "numbers.json"),
        "weights": (array, "weights.npy"),
        "bundle": ({"w": array, "b": np.ones(2)}, "bundle.npz"),
        "notes/readme": ("héllo\nworld", "notes/readme.txt"),
        "blob": (b"\x00\x01\xff", "blob.bin"),
    }
    for name, (obj, filename) in cases.items():
        path = logger.log_artifact(name, obj)
        assert path == tmp_path / "artifacts" / filename
    for name, (obj, _) in cases.items():
        loaded = logger.load_artifact(name)
        if isinstance(obj, np.ndarray):
            np.testing.assert_array_equal(loaded, obj)
            assert loaded.dtype == obj.dtype
        elif name == "bundle":
            assert set(loaded) == {"w", "b"}
            np.testing.assert_array_equal(loaded["w"], array)
        else:
            assert loaded == obj
    logger.close()


def test_figure_artifact_is_a_png_of_the_figure(tmp_path):
    matplotlib = require("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 1), dpi=50)
    ax.plot([0, 1], [0, 1])
    logger = Logger(tmp_path)
    path = logger.log_artifact("plots/curve", fig)
    assert path.name == "curve.png" and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = logger.load_artifact("plots/curve")
    assert image.shape[:2] == (50, 100)
    assert image.std() > 0  # not blank
    logger.close()


def test_torch_artifacts_round_trip_and_load_without_pickle(tmp_path):
    torch = require("torch")
    logger = Logger(tmp_path)
    tensor = torch.arange(6.0).reshape(2, 3)
    model = torch.nn.Linear(3, 2)
    assert logger.log_artifact("tensor", tensor).suffix == ".pt"
    logger.log_artifact("model", model.state_dict())  # a module itself is refused
    assert torch.equal(logger.load_artifact("tensor"), tensor)
    state = logger.load_artifact("model")
    assert set(state) == {"weight", "bias"} and torch.equal(state["weight"], model.weight)
    logger.save_checkpoint({"model": model.state_dict(), "step": 4})
    restored = logger.load_checkpoint()
    assert restored["step"] == 4 and torch.equal(restored["model"]["bias"], model.bias)
    logger.close()


def test_pickle_only_when_asked(tmp_path):
    logger = Logger(tmp_path)
    with pytest.raises(TypeError, match="kind='pickle'"):
        logger.log_artifact("obj", {1, 2, 3})
    logger.log_artifact("obj", {1, 2, 3}, kind="pickle")
    with pytest.raises(UnsafeLoadError):
        logger.load_artifact("obj")
    assert logger.load_artifact("obj", kind="pickle") == {1, 2, 3}
    logger.close()


@pytest.mark.parametrize("name", ["../escape", "/etc/passwd", "a/../../b", "a//b", "./x", ""])
def test_traversal_names_are_rejected(tmp_path, name):
    logger = Logger(tmp_path / "run")
    with pytest.raises(ValueError):
        logger.log_artifact(name, "x")
    with pytest.raises(ValueError):
        logger.load_artifact(name)
    logger.close()
    assert not (tmp_path / "escape").exists()


class _Boom:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_a_malicious_pickle_in_a_log_directory_is_never_unpickled(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    (run_dir / "artifacts").mkdir(parents=True)
    (run_dir / "checkpoints").mkdir()
    payload = pickle.dumps(_Boom())
    for name in ("evil.pkl", "evil2.npy"):
        (run_dir / "artifacts" / name).write_bytes(payload)
    (run_dir / "checkpoints" / "ckpt-00000001.pkl").write_bytes(payload)
    np.save(
        run_dir / "artifacts" / "objects.npy", np.array([_Boom()], dtype=object), allow_pickle=True
    )
    for name in ("evil", "evil2", "objects"):
        with pytest.raises((UnsafeLoadError, ValueError)):
            load_artifact(run_dir, name)
    with pytest.raises(UnsafeLoadError):
        load_checkpoint(run_dir)
    assert not (tmp_path / "PWNED").exists()


# -- checkpoints -------------------------------------------------------------------------------


def test_checkpoints_are_atomic_keep_the_last_k_and_none_when_fresh(tmp_path):
    logger = Logger(tmp_path)
    assert logger.load_checkpoint() is None
    for step in range(5):
        logger.save_checkpoint(
            {
                "step": step,
                "w": np.full(3, step, dtype=np.float64),
                "hist": [1.5, math.inf],
                "t": (1, "a"),
            },
            keep=2,
        )
    files = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert files == [  # no temporaries left; each checkpoint has its metric steps beside it
        "ckpt-00000004.tree.npz",
        "ckpt-00000005.tree.npz",
        "steps-00000004.json",
        "steps-00000005.json",
    ]
    state = logger.load_checkpoint()
    assert state["step"] == 4 and state["hist"] == [1.5, math.inf] and state["t"] == (1, "a")
    np.testing.assert_array_equal(state["w"], np.full(3, 4.0))
    with pytest.raises(TypeError, match="kind='pickle'"):
        logger.save_checkpoint({"bad": object()})
    logger.close()


def test_save_checkpoint_flushes_metrics_first(tmp_path):
    logger = Logger(tmp_path)
    logger.log_metrics({"x": 1.0})
    logger.save_checkpoint({"step": 1})
    assert lines(tmp_path)[0]["x"] == 1.0  # on disk before the checkpoint exists
    logger.close()
