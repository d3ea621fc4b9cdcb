"""Run identity: canonical encoding and xxh3-128 digests."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import xxhash
from hypothesis import given
from hypothesis import strategies as st

from xprun.identity import KeyExcluder, canonical, run_digest

CONFIG = {"lr": 0.1, "model": {"width": 64, "layers": [1, 2, 3]}, "name": "a", "seed": 0}


def test_key_order_is_irrelevant():
    reordered = {"seed": 0, "name": "a", "model": {"layers": [1, 2, 3], "width": 64}, "lr": 0.1}
    assert run_digest("x", CONFIG, {}) == run_digest("x", reordered, {})


def test_integral_floats_hash_as_ints_and_tuples_as_lists():
    assert canonical({"a": 1}) == canonical({"a": 1.0})
    assert canonical([1, (2, 3)]) == canonical((1.0, [2, 3]))
    assert canonical(-0.0) == canonical(0)


@pytest.mark.parametrize(
    "changed",
    [
        {**CONFIG, "lr": 0.10000000000000002},
        {**CONFIG, "name": "b"},
        {**CONFIG, "model": {"width": 64, "layers": [1, 3, 2]}},
        {**CONFIG, "seed": 1},
        {**CONFIG, "extra": None},
        {**CONFIG, "name": "1"},
        {**CONFIG, "seed": True},
        {**CONFIG, "seed": 0.5},
    ],
)
def test_any_changed_value_changes_the_digest(changed):
    assert run_digest("x", changed, {}) != run_digest("x", CONFIG, {})


def test_experiment_and_params_are_part_of_identity():
    base = run_digest("x", CONFIG, {})
    assert run_digest("y", CONFIG, {}) != base
    assert run_digest("x", CONFIG, {"data": "mnist"}) != base
    assert run_digest("x", CONFIG, {"data": "mnist"}) != run_digest("x", CONFIG, {"data": "cifar"})


def test_types_do_not_collide():
    values = [None, True, False, 0, 1, 1.5, "1", "1.5", "null", "true", [], {}, [None], {"": None}]
    assert len({canonical(v) for v in values}) == len(values)
    assert canonical(math.nan) != canonical("nan")
    assert canonical(math.inf) != canonical(-math.inf)


def test_digest_format_names_the_algorithm():
    digest = run_digest("x", CONFIG, {})
    algorithm, _, hexdigest = digest.partition(":")
    assert algorithm == "xxh3_128"
    assert len(hexdigest) == 32 and int(hexdigest, 16) >= 0


def test_digest_is_identical_across_processes_and_hash_seeds():
    code = f"from xprun.identity import run_digest;print(run_digest('x', {CONFIG!r}, {{'p': 'q'}}))"
    digests = set()
    for seed in ("0", "1", "12345"):
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"},
        ).stdout.strip()
        digests.add(out)
    assert digests == {run_digest("x", CONFIG, {"p": "q"})}


def test_canonical_text_is_pinned():
    # If this changes, every user's cache is invalidated: bump the run format instead.
    text = '{s"config":{s"lr":d0.1,s"seed":i0},s"experiment":s"xp.py::xp_a",s"params":{}}'
    assert (
        canonical({"experiment": "xp.py::xp_a", "config": {"seed": 0, "lr": 0.1}, "params": {}})
        == text
    )
    expected = "xxh3_128:" + xxhash.xxh3_128_hexdigest(text.encode())
    assert run_digest("xp.py::xp_a", {"lr": 0.1, "seed": 0}, {}) == expected


def test_excluding_keys_is_exact_or_glob_never_prefix():
    config = {"seed": 1, "seed_data": 2, "trainer": {"device": "cpu", "epochs": 3}, "device": "x"}
    assert KeyExcluder(["seed"]).apply(config) == {
        "seed_data": 2,
        "trainer": {"device": "cpu", "epochs": 3},
        "device": "x",
    }
    assert KeyExcluder(["*.device"]).apply(config)["trainer"] == {"epochs": 3}
    assert KeyExcluder(["*.device"]).apply(config)["device"] == "x"
    assert KeyExcluder(["**device"]).apply(config) == {
        "seed": 1,
        "seed_data": 2,
        "trainer": {"epochs": 3},
    }
    assert KeyExcluder(["trainer"]).apply(config) == {"seed": 1, "seed_data": 2, "device": "x"}
    assert KeyExcluder(["train"]).apply(config) == config


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@given(st.dictionaries(st.text(), json_values))
def test_canonical_ignores_insertion_order(config):
    reversed_config = dict(reversed(list(config.items())))
    assert canonical(config) == canonical(reversed_config)
