"""Which config keys are volatile (``${now:}``, ``${oc.env:}``, ``${hydra:}``, directly or
through other keys), each rule checked where mutation testing found it unchecked
(tools/mutation.py, xprun/hydracompat.py).  A wrong answer changes a run's identity: a
volatile key must be hashed as its text, any other key as its value.

Unit tests of ``xprun.hydracompat`` (the CLI tests of tests/test_i12_hydra.py run xprun in a
subprocess, which a mutant loaded in this process does not reach).
"""

from __future__ import annotations

import pytest

from xprun.errors import UsageError
from xprun.hydracompat import (
    Deferred,
    dotted,
    hydra_sources,
    mentions_volatile,
    sweeper_lines,
    sweeper_params,
)

VALUES = {"runtime.output_dir": "/runs/ab", "runtime.cwd": "/here", "job.name": "xp_a"}


@pytest.mark.parametrize(
    "text", ["${now:%Y}", "${ oc.env:HOME}", "${hydra:job.name}", "a ${now : %H} b"]
)
def test_i12_mut_volatile_texts(text: str) -> None:
    assert mentions_volatile(text)
    assert mentions_volatile({"a": [1, {"b": text}]})


@pytest.mark.parametrize("text", ["${lr}", "${oc.select:a}", "now:", "${nowhere}", "$now:"])
def test_i12_mut_other_texts_are_not_volatile(text: str) -> None:
    assert not mentions_volatile(text)
    assert not mentions_volatile({"a": [text]})


def test_i12_mut_a_tree_json_cannot_write_is_left_to_the_careful_walk() -> None:
    deep: list = []
    node = deep
    for _ in range(100_000):
        node.append([])
        node = node[0]
    assert mentions_volatile({"a": deep})


def test_i12_mut_no_volatile_key_no_deferred_config() -> None:
    assert Deferred.make({"lr": 0.1, "b": "${lr}", "c": [1, "x"]}) is None


def test_i12_mut_a_key_through_another_is_volatile_the_others_keep_their_values() -> None:
    raw = {
        "day": "${now:%Y-%m-%d}",
        "out": "/x/${day}",
        "lr": 0.1,
        "lr2": "${lr}",
        "nested": {"home": "${oc.env:HOME}", "plain": "p", "via": ["${nested.home}", 3]},
        "listed": ["${now:%H}", "a", "${lr}"],
    }
    deferred = Deferred.make(raw)
    assert deferred is not None
    assert deferred.hashed == {
        "day": "${now:%Y-%m-%d}",
        "out": "/x/${day}",
        "lr": 0.1,
        "lr2": 0.1,
        "nested": {"home": "${oc.env:HOME}", "plain": "p", "via": ["${nested.home}", 3]},
        "listed": ["${now:%H}", "a", 0.1],
    }
    assert sorted(map(dotted, deferred.keys)) == [
        "day",
        "listed.0",
        "nested.home",
        "nested.via.0",
        "out",
    ]
    assert deferred.raw is raw


def test_i12_mut_a_node_that_takes_a_volatile_subtree_is_hashed_as_its_text() -> None:
    raw = {"paths": {"out": "${hydra:runtime.output_dir}", "n": 1}, "copy": "${paths}"}
    deferred = Deferred.make(raw)
    assert deferred is not None
    assert deferred.hashed["copy"] == "${paths}"
    assert deferred.hashed["paths"] == {"out": "${hydra:runtime.output_dir}", "n": 1}
    assert sorted(map(dotted, deferred.keys)) == ["copy", "paths.out"]


def test_i12_mut_a_list_of_another_length_is_not_matched_by_position() -> None:
    raw = {"a": ["${now:%Y}"], "b": "${a}", "c": [1, 2]}
    deferred = Deferred.make(raw)
    assert deferred is not None
    assert deferred.hashed == {"a": ["${now:%Y}"], "b": "${a}", "c": [1, 2]}


def test_i12_mut_resolve_gives_the_run_values_and_records_the_volatile_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("XPRUN_MUT_HOME", "/home/u")
    raw = {
        "out": "${hydra:runtime.output_dir}/ckpt",
        "cwd": "${hydra:runtime.cwd}",
        "name": "${ hydra : job.name }",
        "home": "${oc.env:XPRUN_MUT_HOME}",
        "via": "${home}/x",
        "lr": 0.5,
        "hydra_word": "hydra",
    }
    deferred = Deferred.make(raw)
    assert deferred is not None
    resolved, record = deferred.resolve(VALUES, "xp_a.py::xp_a")
    assert resolved == {
        "out": "/runs/ab/ckpt",
        "cwd": "/here",
        "name": "xp_a",
        "home": "/home/u",
        "via": "/home/u/x",
        "lr": 0.5,
        "hydra_word": "hydra",
    }
    assert record == {
        "out": "/runs/ab/ckpt",
        "cwd": "/here",
        "name": "xp_a",
        "home": "/home/u",
        "via": "/home/u/x",
    }


def test_i12_mut_a_run_value_is_taken_as_text_not_interpolated() -> None:
    deferred = Deferred.make({"out": "${hydra:runtime.output_dir}"})
    assert deferred is not None
    for value in ("/a/${x}", "/a\\${x}"):
        resolved, _ = deferred.resolve({**VALUES, "runtime.output_dir": value}, "here")
        assert resolved == {"out": value}


def test_i12_mut_now_resolves_without_hydra_having_started() -> None:
    from omegaconf import OmegaConf

    if OmegaConf.has_resolver("now"):
        OmegaConf.clear_resolver("now")
    deferred = Deferred.make({"year": "${now:%Y}"})
    assert deferred is not None
    resolved, record = deferred.resolve(VALUES, "here")
    assert str(resolved["year"]).isdigit() and record == {"year": resolved["year"]}


def test_i12_mut_an_unknown_hydra_key_names_the_known_ones() -> None:
    deferred = Deferred.make({"j": "${hydra:job.num}"})
    assert deferred is not None
    with pytest.raises(UsageError) as error:
        deferred.resolve(VALUES, "xp_a.py::xp_a")
    assert str(error.value) == (
        "xp_a.py::xp_a: ${hydra:job.num} is not known to xprun; it resolves "
        "${hydra:runtime.output_dir}, ${hydra:runtime.cwd}, ${hydra:job.name}"
    )


def test_i12_mut_sweeper_params() -> None:
    params = {"lr": "0.1,0.01", "seed": "range(3)"}
    assert sweeper_params({"sweeper": {"params": params}}, "c.yaml") == params
    assert sweeper_params(None, "c.yaml") == {}
    assert sweeper_params({"sweeper": None}, "c.yaml") == {}
    assert sweeper_params({"sweeper": {"params": None}}, "c.yaml") == {}
    assert sweeper_params({"run": {}}, "c.yaml") == {}
    for bad in (["lr=1"], {1: "a"}, {"a": 1, 2: "b"}):
        with pytest.raises(UsageError, match=r"^c\.yaml: hydra\.sweeper\.params must map"):
            sweeper_params({"sweeper": {"params": bad}}, "c.yaml")


def test_i12_mut_sweeper_lines_as_hydra_writes_them() -> None:
    lines = sweeper_lines({"a": True, "b": False, "c": None, "d": 0.1, "e": "x,y", "f": 0})
    assert lines == ["a=true", "b=false", "c=null", "d=0.1", "e=x,y", "f=0"]


def test_i12_mut_hydra_sources_leave_out_hydra_own_settings(tmp_path) -> None:
    (tmp_path / "db").mkdir()
    (tmp_path / "db" / "pg.yaml").write_text("port: 5432\n")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "big.yaml").write_text("defaults:\n  - /db: pg\nw: 1\n")
    # a launcher of the user's, which asks for a config of its own: Hydra's settings too
    (tmp_path / "hydra" / "launcher").mkdir(parents=True)
    (tmp_path / "hydra" / "launcher" / "mine.yaml").write_text(
        "defaults:\n  - basic\n  - /extra@_global_.extra: x\n"
    )
    (tmp_path / "extra").mkdir()
    (tmp_path / "extra" / "x.yaml").write_text("e: 1\n")
    (tmp_path / "train.yaml").write_text(
        "defaults:\n  - model: big\n  - override hydra/launcher: mine\n  - _self_\nlr: 1\n"
    )
    lines, choices = hydra_sources(str(tmp_path), "train")
    assert lines == [
        "db/pg (package model.db, from model/big)",
        "model/big (package model, from train)",
        "train (primary config)",
    ]
    assert choices == {"model": "big", "db@model.db": "pg", "extra": "x"}


def test_i12_mut_a_node_that_takes_a_stable_subtree_is_hashed_as_its_value() -> None:
    raw = {"a": {"x": 1}, "b": "${a}", "c": ["${a.x}"], "v": "${now:%Y}"}
    deferred = Deferred.make(raw)
    assert deferred is not None
    assert deferred.hashed == {"a": {"x": 1}, "b": {"x": 1}, "c": [1], "v": "${now:%Y}"}
    assert deferred.keys == [("v",)]


def test_i12_mut_a_missing_value_is_omegaconfs_error() -> None:
    from omegaconf.errors import MissingMandatoryValue

    with pytest.raises(MissingMandatoryValue):
        Deferred.make({"data": "???", "day": "${now:%Y}"})


@pytest.mark.parametrize("folder", ["/tmp/a\\b", "/tmp/a\\${x}", "/tmp/${y}", "/tmp/a\\\\b\\"])
def test_i12_hydra_runtime_value_is_taken_literally(folder):
    """A launch folder's text comes back as it is: a backslash was doubled, because every
    one was escaped though OmegaConf reads one as an escape only before ``${``."""
    deferred = Deferred.make({"c": "${hydra:runtime.cwd}"})
    assert deferred.resolve({"runtime.cwd": folder}, "w")[0]["c"] == folder
