"""Trust in configs and overrides (issue 9 items 6 and 7, issue 8 item 24).

Whatever a config mapping, a grid, a YAML file, a Hydra config directory or the command line
holds, xprun either runs it with the values it was given or stops with a usage error (exit 4)
that names the experiment, the key and the fix, with nothing created: never a traceback,
never a value silently changed.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

import xprun

pytestmark = pytest.mark.inprocess  # xprun launched in the test's process (tests/launch.py)

NODE = "xp_c.py::xp_c"

# name -> (Python source of the value, words the message must hold)
NOT_DATA = {
    "numpy array": ("np.array([1.0, 2.0])", ["'lr'", "ndarray", ".tolist()"]),
    "set": ("{1, 2}", ["'lr'", "set", "sorted list"]),
    "object": ("Thing()", ["'lr'", "Thing"]),
    "lambda": ("lambda: 1", ["'lr'", "function"]),
    "bytes": ("b'\\x00\\x01'", ["'lr'", "bytes", "decode"]),
    "enum": ("Color.RED", ["'lr'", "Color.RED.name"]),
    "path": ("pathlib.Path('/data')", ["'lr'", "str(path)"]),
    "None key": ("{None: 1}", ["'lr'", "key None", "strings"]),
    "undecodable text": ("'\\udcff'", ["'lr'", "not valid Unicode"]),
    "recursive dict": ("loop", ["contains itself"]),
    "400-deep nesting": ("deep", ["nested more than"]),
}

PRELUDE = """
import enum
import pathlib

import numpy as np
import xprun

class Thing:
    pass

class Color(enum.Enum):
    RED = 1

loop = {"x": 1}
loop["again"] = loop
deep = {}
node = deep
for _ in range(400):
    node["a"] = {}
    node = node["a"]
"""


def write_experiment(project, decorators: str, body: str = "return {'ok': 1}") -> None:
    project.write("xp_c.py", f"{PRELUDE}\n{decorators}\ndef xp_c(config):\n    {body}\n")


def assert_usage_error(project, result, *words: str) -> None:
    assert result.returncode == 4, result.output
    assert "Traceback" not in result.output, result.output
    assert NODE in result.stderr, result.stderr
    for word in words:
        assert word in result.stderr, (word, result.stderr)
    assert not project.log_dir.exists()


@pytest.mark.parametrize("case", sorted(NOT_DATA))
@pytest.mark.parametrize("where", ["config", "grid"])
def test_i9_06_values_that_are_not_data_are_usage_errors(project, case, where):
    """The same clean message from ``@xprun.config`` (exit 3 before) as from ``@xprun.grid``."""
    source, words = NOT_DATA[case]
    if where == "config":
        decorators = f"@xprun.config({{'lr': {source}}})"
    else:
        decorators = f"@xprun.config({{'lr': 0.1}})\n@xprun.grid(lr=[{source}])"
    write_experiment(project, decorators)
    result = project.run()
    assert_usage_error(project, result, f"@xprun.{where}", *words)


def test_i9_06_numpy_scalars_are_recorded_as_plain_numbers(project):
    """``np.float64`` in a mapping crashed (exit 3); ``np.logspace`` in a grid made every run
    fail writing config.yaml. NumPy scalars are now the numbers they hold."""
    write_experiment(
        project,
        "@xprun.config({'wd': np.float64(0.5), 'layers': np.int64(3), 'on': np.bool_(True)})\n"
        "@xprun.grid(lr=np.logspace(-2, -1, 2))",
        "return {'lr': config.lr, 'layers': config.layers}",
    )
    result = project.run()
    assert result.returncode == 0, result.output
    configs = sorted(
        (yaml.safe_load((d / "config.yaml").read_text()) for d in project.run_dirs()),
        key=lambda c: c["lr"],
    )
    # The very numbers NumPy made (np.logspace's last value is 0.1 or the float below it,
    # by NumPy version and CPU: 1.24's vectorised power on some CPUs gives the latter).
    low, high = (float(v) for v in np.logspace(-2, -1, 2))
    assert low == pytest.approx(0.01) and high == pytest.approx(0.1)
    assert configs == [
        {"wd": 0.5, "layers": 3, "on": True, "lr": low, "seed": 0},
        {"wd": 0.5, "layers": 3, "on": True, "lr": high, "seed": 0},
    ]
    assert all(type(c[k]) is t for c in configs for k, t in (("wd", float), ("layers", int)))
    assert all(type(c["on"]) is bool and type(c["lr"]) is float for c in configs)
    runs = xprun.Reader(project.log_dir).to_pandas()
    assert sorted(runs["config.lr"]) == [low, high]
    assert list(runs["config.layers"]) == [3, 3]


def test_i9_06_key_collisions_of_int_and_text_keys_are_refused(project):
    write_experiment(project, "@xprun.config({'layers': {1: 64, '1': 128}})")
    result = project.run()
    assert_usage_error(project, result, "'layers.1'")


@pytest.mark.parametrize(
    ("override", "words"),
    [
        ("lr=range(0,5,0)", ["range(0,5,0)", "zero"]),
        ("lr=range(0,1,0.0)", ["range(0,1,0.0)"]),
        ("lr=range(5,0)", ["range(5,0)", "no values"]),
        ("+x=" + "[" * 1000 + "]" * 1000, ["nests too deeply"]),
    ],
)
def test_i9_06_bad_sweeps_and_deep_overrides_are_usage_errors(project, override, words):
    write_experiment(project, "@xprun.config({'lr': 0.1})")
    result = project.run(override)
    assert result.returncode == 4, result.output
    assert "Traceback" not in result.output
    for word in words:
        assert word in result.stderr, result.stderr
    assert not project.log_dir.exists()


def test_i9_06_override_nesting_the_config_too_deep_is_a_usage_error(project):
    write_experiment(project, "@xprun.config({'lr': 0.1})")
    result = project.run("+x=" + "[" * 60 + "]" * 60)
    assert_usage_error(project, result, "nested more than")


def test_i9_06_arguments_over_255_bytes(project):
    """Every word was tried as a file name: ``OSError: File name too long``."""
    write_experiment(project, "@xprun.config({'note': 'short'})", "return {'n': len(config.note)}")
    long_value = "x" * 300
    bad_path = project.run("y" * 300)
    assert bad_path.returncode == 4, bad_path.output
    assert "not found" in bad_path.stderr and "Traceback" not in bad_path.output
    selected = project.run("-k", "z" * 300, "--collect-only")
    assert "Traceback" not in selected.output and selected.returncode in (0, 5), selected.output
    ran = project.run(f"note={long_value}")
    assert ran.returncode == 0, ran.output
    (run_dir,) = project.run_dirs()
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["note"] == long_value


def write_hydra(project, train_yaml: str) -> None:
    project.write("conf/train.yaml", train_yaml)
    project.write(
        "xp_c.py",
        "import xprun\n\n@xprun.config(path='conf', name='train')\n"
        "def xp_c(config):\n    return {'ok': 1}\n",
    )


def test_i9_06_hydra_python_tag_is_a_usage_error_and_never_executed(project, tmp_path):
    marker = tmp_path / "executed"
    write_hydra(project, f'lr: !!python/object/apply:os.system ["touch {marker}"]\n')
    result = project.run()
    assert_usage_error(project, result, "train", "python/object/apply")
    assert not marker.exists()


def test_i9_06_hydra_self_including_defaults_list_is_a_usage_error(project):
    write_hydra(project, "defaults:\n  - train\n  - _self_\nlr: 1\n")
    result = project.run()
    assert_usage_error(project, result, "train", "defaults list")


def test_i9_06_hydra_binary_value_is_refused(project):
    """Bytes were written to config.yaml as ``!!binary``, which the Reader cannot read."""
    write_hydra(project, "lr: !!binary AAE=\n")
    result = project.run()
    assert_usage_error(project, result, "'lr'", "bytes")


def test_i9_07_dotted_grid_key_never_replaces_a_value(project):
    write_experiment(project, "@xprun.config({'lr': 0.1})\n@xprun.grid(**{'lr.x': [1]})")
    result = project.run()
    assert_usage_error(project, result, "'lr.x'", "'lr' is 0.1")


@pytest.mark.parametrize("override", ["+lr.x=1", "++lr.x=1"])
def test_i9_07_dotted_override_never_replaces_a_value(project, override):
    write_experiment(project, "@xprun.config({'lr': 0.1})")
    result = project.run(override)
    assert_usage_error(project, result, "'lr.x'", "'lr' is 0.1")


def test_i9_07_dotted_keys_may_still_fill_empty_places(project):
    write_experiment(
        project,
        "@xprun.config({'model': None, 'opt': {'name': 'sgd'}})\n"
        "@xprun.grid(**{'model.width': [8], 'opt.lr': [0.5]})",
    )
    result = project.run("+extra.depth=2")
    assert result.returncode == 0, result.output
    (run_dir,) = project.run_dirs()
    assert yaml.safe_load((run_dir / "config.yaml").read_text()) == {
        "model": {"width": 8},
        "opt": {"name": "sgd", "lr": 0.5},
        "extra": {"depth": 2},
        "seed": 0,
    }


@pytest.mark.parametrize(
    ("decorators", "args"),
    [
        ("@xprun.config({'a.b': 1, 'a': {'b': 2}})", ()),
        ("@xprun.config({'a.b': 1})\n@xprun.grid(**{'a.b': [2]})", ()),
        ("@xprun.config({'a.b': 1})", ("+a.b=2",)),
    ],
    ids=["mapping", "grid", "override"],
)
def test_i9_07_one_path_spelled_twice_is_refused(project, decorators, args):
    """The Reader's ``config.a.b`` showed one of the two values."""
    write_experiment(project, decorators)
    result = project.run(*args)
    assert_usage_error(project, result, "['a.b']", "['a']['b']", "keep one")


# -- issue 8 item 24: overrides on public API ------------------------------------------------

SEMANTICS = [
    (["lr=0.5"], {"lr": 0.5, "drop": 1, "sub": {"x": 1}, "seed": 0}),
    (["+new=2"], {"lr": 0.1, "drop": 1, "sub": {"x": 1}, "new": 2, "seed": 0}),
    (["++lr=3", "++sub.y=4"], {"lr": 3, "drop": 1, "sub": {"x": 1, "y": 4}, "seed": 0}),
    (["~drop"], {"lr": 0.1, "sub": {"x": 1}, "seed": 0}),
    (["~drop=1", "~sub.x"], {"lr": 0.1, "sub": {}, "seed": 0}),
    (["+sub={y:2}"], {"lr": 0.1, "drop": 1, "sub": {"x": 1, "y": 2}, "seed": 0}),
]

MESSAGES = [
    ("lrr=1", ["Could not override 'lrr'", "+lrr=1", "not in struct"]),
    ("+lr=1", ["An item is already at 'lr'", "'lr=1'", "'++lr=1'"]),
    ("~nope", ["Could not delete from config. 'nope' does not exist."]),
    ("~lr=0.2", ["The value of 'lr' is 0.1 and not 0.2."]),
    ("sub=[1]", ["Error merging override sub=[1]", "Cannot merge DictConfig with ListConfig"]),
]

BASE = "@xprun.config({'lr': 0.1, 'drop': 1, 'sub': {'x': 1}})"

# Stands for a hydra-core release without the private function xprun used to call (a real
# one cannot be installed next to the current release): the project's conftest.py removes it.
WITHOUT_PRIVATE = """
from hydra._internal.config_loader_impl import ConfigLoaderImpl

del ConfigLoaderImpl._apply_overrides_to_config
"""


@pytest.mark.inprocess(False)  # its conftest.py deletes a function of hydra-core
@pytest.mark.parametrize(("args", "expected"), SEMANTICS, ids=[" ".join(a) for a, _ in SEMANTICS])
def test_i8_24_overrides_keep_hydra_semantics_without_its_private_api(project, args, expected):
    project.write("conftest.py", WITHOUT_PRIVATE)
    write_experiment(project, BASE)
    result = project.run(*args)
    assert result.returncode == 0, result.output
    (run_dir,) = project.run_dirs()
    assert yaml.safe_load((run_dir / "config.yaml").read_text()) == expected
    assert json.loads((run_dir / "run.json").read_text())["status"] == "complete"


@pytest.mark.inprocess(False)  # its conftest.py deletes a function of hydra-core
@pytest.mark.parametrize(("override", "words"), MESSAGES, ids=[m for m, _ in MESSAGES])
def test_i8_24_override_errors_keep_hydra_messages(project, override, words):
    project.write("conftest.py", WITHOUT_PRIVATE)
    write_experiment(project, BASE)
    result = project.run(override)
    assert_usage_error(project, result, f"override {override!r}", *words)


@pytest.mark.parametrize("axis", ["a..b", ".a", "a."])
def test_i9_07_grid_axis_with_an_empty_part_is_refused(project, axis):
    """OmegaConf silently made a key named '' (``a: {'': {b: 1}}``)."""
    write_experiment(
        project, f"@xprun.config({{'a': {{'b': 1}}}})\n@xprun.grid(**{{{axis!r}: [1]}})"
    )
    result = project.run()
    assert result.returncode == 1, result.output
    assert f"grid axis {axis!r} has an empty part" in result.output
    assert not project.log_dir.exists()
