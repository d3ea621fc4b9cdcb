"""The ``config`` fixture's DictConfig: made from templates, recycled once nothing holds it.

Whatever a run did with its config (kept it, kept a child or a node, a weak reference, made
it writable and changed it), the next run's config is exactly ``OmegaConf.create`` of that
run's values, and a config someone kept keeps its own values.  Recycling itself is checked
to happen (the same object comes back when nothing held it): it is what makes a trivial run
a fifth cheaper (issue 11, docs/performance.md).
"""

from __future__ import annotations

import gc
import json
import sys
import sysconfig
import weakref

import inprocess as _inprocess
import pytest
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import ReadonlyConfigError

from xprun import readonlyconfig
from xprun.readonlyconfig import readonly_config

inprocess = _inprocess.inprocess  # the fixture

needs_exact_counts = pytest.mark.skipif(
    not readonlyconfig.RECYCLES, reason="recycling needs exact reference counts (CPython)"
)


def _config(seed: int) -> dict:
    """A fresh plain config of one shape, different leaves per seed (nested, lists, empties)."""
    return {
        "seed": seed,
        "lr": 0.1 * (seed + 1),
        "name": f"run-{seed}",
        "flag": seed % 2 == 0,
        "nothing": None,
        "model": {"depth": seed + 2, "layers": [seed, 2.5, {"kind": f"conv{seed}"}], "empty": {}},
        "none_list": [],
    }


def _same(made: DictConfig, plain: dict) -> None:
    """``made`` is what OmegaConf.create gives for ``plain``: values, types, node types,
    read-only everywhere."""
    expected = OmegaConf.create(plain, flags={"readonly": True})
    assert isinstance(made, DictConfig)
    assert OmegaConf.to_container(made) == plain
    assert OmegaConf.to_yaml(made) == OmegaConf.to_yaml(expected)
    assert [type(made._get_node(k)).__name__ for k in made] == [
        type(expected._get_node(k)).__name__ for k in expected
    ]
    assert OmegaConf.is_readonly(made) and OmegaConf.is_readonly(made.model.layers)
    assert isinstance(made.model.layers, ListConfig)
    assert type(made.seed) is int and type(made.flag) is bool and made.nothing is None
    with pytest.raises(ReadonlyConfigError):
        made.lr = 3
    with pytest.raises(ReadonlyConfigError):
        made.model.layers.append(3)


@pytest.fixture
def refills(monkeypatch):
    """How many configs were handed out again (the spare's ``refill`` calls)."""
    calls = []
    refill = readonlyconfig._Spare.refill

    def counted(spare, leaves):
        calls.append(len(leaves))
        return refill(spare, leaves)

    monkeypatch.setattr(readonlyconfig._Spare, "refill", counted)
    return calls


@pytest.fixture(autouse=True)
def _fresh_caches():
    """Each test starts with no template and no spare (and leaves none behind)."""
    readonlyconfig._templates.clear()
    readonlyconfig._spares.clear()
    yield
    readonlyconfig._templates.clear()
    readonlyconfig._spares.clear()


def test_each_config_is_omegaconfs_for_its_values_run_after_run(refills):
    for seed in range(5):
        made = readonly_config(_config(seed))
        _same(made, _config(seed))
        del made
        gc.collect()  # the read-only errors _same provoked hold nodes in reference cycles
    assert len(refills) == (4 if readonlyconfig.RECYCLES else 0)


@needs_exact_counts
def test_a_config_nothing_holds_is_recycled_with_the_next_values():
    first = readonly_config(_config(0))
    address = id(first)  # the spare keeps it alive: an id can only repeat by recycling
    del first
    second = readonly_config(_config(1))
    assert id(second) == address
    _same(second, _config(1))


@needs_exact_counts
def test_a_kept_config_keeps_its_values_and_the_next_is_a_new_one():
    kept = [readonly_config(_config(seed)) for seed in range(4)]
    assert len({id(c) for c in kept}) == 4
    for seed, config in enumerate(kept):
        _same(config, _config(seed))


@pytest.mark.parametrize(
    "keep",
    [
        pytest.param(lambda c: c.model, id="a child container"),
        pytest.param(lambda c: c.model.layers, id="a nested list"),
        pytest.param(lambda c: c.model.layers[2], id="a dict inside a list"),
        pytest.param(lambda c: c._get_node("lr"), id="a leaf node"),
        pytest.param(lambda c: c._metadata, id="the root's metadata"),
        pytest.param(lambda c: c._get_node("seed")._metadata.flags, id="a node's flags"),
        pytest.param(lambda c: vars(c), id="the root's attributes"),
        pytest.param(lambda c: vars(c.model)["_content"], id="a container's content"),
        pytest.param(lambda c: c.model._metadata.resolver_cache, id="a resolver cache"),
        pytest.param(lambda c: weakref.ref(c), id="a weak reference to the root"),
        pytest.param(lambda c: weakref.ref(c.model), id="a weak reference to a child"),
        pytest.param(lambda c: weakref.ref(c._metadata), id="a weak reference to metadata"),
    ],
)
def test_a_config_of_which_anything_is_kept_is_never_refilled(keep, refills):
    first = readonly_config(_config(0))
    part = keep(first)
    del first
    second = readonly_config(_config(1))
    assert refills == []
    _same(second, _config(1))
    # What was kept still belongs to the first config, with the first values.
    target = part() if isinstance(part, weakref.ref) else part
    if isinstance(target, DictConfig | ListConfig):
        root = target
        while root._get_parent() is not None:
            root = root._get_parent()
        _same(root, _config(0))
    elif hasattr(target, "_value"):
        assert target._value() == 0.1  # the leaf node of lr, as the first config had it
    del part, target


def test_a_config_kept_in_a_traceback_keeps_its_values(refills):
    def fail(config):
        raise ValueError(config.seed)

    try:
        fail(readonly_config(_config(0)))
    except ValueError as exc:
        error = exc
    second = readonly_config(_config(1))
    frame_config = error.__traceback__.tb_next.tb_frame.f_locals["config"]
    assert frame_config is not second and refills == []
    _same(frame_config, _config(0))
    _same(second, _config(1))


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda c: OmegaConf.set_readonly(c, False), id="made writable"),
        pytest.param(lambda c: OmegaConf.set_struct(c, True), id="made struct"),
        pytest.param(lambda c: OmegaConf.set_readonly(c.model, False), id="a child writable"),
        pytest.param(lambda c: setattr(c._metadata, "optional", False), id="metadata changed"),
        pytest.param(lambda c: c._metadata.resolver_cache["x"].update(y=1), id="cache filled"),
        pytest.param(lambda c: object.__setattr__(c.model, "extra", 1), id="attribute added"),
        pytest.param(
            lambda c: vars(c.model)["_content"].update(x=OmegaConf.create({"a": 1})._get_node("a")),
            id="a node put in by hand",
        ),
    ],
)
def test_a_config_changed_in_place_is_not_recycled(change, refills):
    first = readonly_config(_config(0))
    change(first)
    del first
    gc.collect()
    second = readonly_config(_config(1))
    assert refills == []
    _same(second, _config(1))


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda c: setattr(c, "lr", 5.0), id="a value set"),
        pytest.param(lambda c: setattr(c, "added", 1), id="a key added"),
        pytest.param(lambda c: c.__delattr__("name"), id="a key deleted"),
        pytest.param(lambda c: c.model.layers.append(7), id="a list grown"),
        pytest.param(lambda c: c.model.layers.pop(0), id="a list shrunk"),
        pytest.param(lambda c: setattr(c.model, "depth", {"a": 1}), id="a leaf made a dict"),
        pytest.param(lambda c: c.model.empty.update(k=1), id="an empty dict filled"),
    ],
)
def test_whatever_a_run_did_to_its_config_the_next_is_omegaconfs(edit):
    # Made writable, edited, made read-only again: the flags are as made, the content not.
    first = readonly_config(_config(0))
    OmegaConf.set_readonly(first, False)
    edit(first)
    OmegaConf.set_readonly(first, True)
    del first
    gc.collect()
    _same(readonly_config(_config(1)), _config(1))
    _same(readonly_config(_config(2)), _config(2))


def test_configs_of_other_shapes_and_values_are_omegaconfs():
    cases = [
        {},
        {"a": []},
        {"a": [[], [[]], {}]},
        {"x": "${y}", "y": 1},  # an interpolation resolves as OmegaConf.create's does
        {"k": "a: b # c", "u": "ünï\ncode", "big": 10**30, "neg": -0.0},
    ]
    for plain in cases * 2:
        made = readonly_config(plain)
        expected = OmegaConf.create(plain, flags={"readonly": True})
        assert OmegaConf.to_container(made, resolve=True) == OmegaConf.to_container(
            expected, resolve=True
        )
        assert OmegaConf.to_yaml(made) == OmegaConf.to_yaml(expected)
        del made
    # Not plain data (a tuple, a non-string key): OmegaConf.create itself.
    made = readonly_config({"t": (1, 2), 3: "x"})
    assert OmegaConf.to_container(made) == {"t": [1, 2], 3: "x"}
    assert OmegaConf.is_readonly(made)


def test_recycling_is_on_in_cpython_with_its_lock():
    # The CPU path's figure depends on it (docs/performance.md): on the interpreter users run.
    if sys.implementation.name == "cpython" and not sysconfig.get_config_var("Py_GIL_DISABLED"):
        assert readonlyconfig.RECYCLES is True
    else:
        assert readonlyconfig.RECYCLES is False


def test_a_config_whose_nodes_are_not_in_the_leaves_order_is_never_a_spare():
    leaves: list = []
    shape = readonlyconfig._shape(_config(0), leaves)
    data = readonlyconfig._template(shape)
    made = readonlyconfig._LeafUnpickler(data, leaves).load()
    assert readonlyconfig._Spare.of(made, leaves) is not None
    assert readonlyconfig._Spare.of(made, leaves[::-1]) is None
    assert readonlyconfig._Spare.of(made, [*leaves[:-1], object()]) is None


def test_a_config_the_recycler_cannot_walk_is_still_handed_out(monkeypatch, refills):
    def refuse(node, into):
        raise readonlyconfig._NotPlain

    monkeypatch.setattr(readonlyconfig, "_walk", refuse)
    for seed in range(3):
        _same(readonly_config(_config(seed)), _config(seed))
        gc.collect()
    assert refills == [] and not readonlyconfig._spares


@needs_exact_counts
def test_each_shape_has_its_own_spare():
    a = readonly_config({"a": 1})
    b = readonly_config({"b": 1})
    ids = id(a), id(b)
    del a, b
    assert (id(readonly_config({"a": 2})), id(readonly_config({"b": 2}))) == ids


def test_without_exact_counts_every_config_is_new(monkeypatch):
    monkeypatch.setattr(readonlyconfig, "RECYCLES", False)
    first = readonly_config(_config(0))
    address = id(first)
    keep = first  # alive, so that its address cannot be reused by the next
    del first
    second = readonly_config(_config(1))
    assert id(second) != address and keep is not second
    _same(second, _config(1))
    assert not readonlyconfig._spares


# -- in a sweep, as users write experiments -------------------------------------------------------

KEEPER = """
import json
import xprun

KEPT = []  # a user's habit: keep each run's config (or a part of it) for later


@xprun.config({"seed": 0, "lr": 0.5, "model": {"depth": 3, "tags": ["a", "b"]}})
def xp_keep(config, logger):
    if config.seed % 3 == 0:
        KEPT.append(config)  # every third run's config is kept whole
    elif config.seed % 3 == 1:
        KEPT.append(config.model)  # the next one's child only
    seen = [OmegaConf_container(c) for c in KEPT]
    return {"seed": config.seed, "depth": config.model.depth, "kept": seen}


def OmegaConf_container(part):
    from omegaconf import OmegaConf
    return OmegaConf.to_container(part)
"""


def test_configs_kept_across_a_sweep_keep_their_own_values(project):
    project.write("xp_keep.py", KEEPER)
    result = project.run("-q", "seed=range(0,9)", "model.depth=range(10,12)")
    assert result.returncode == 0, result.output
    outcomes = [json.loads((d / "outcome.json").read_text()) for d in project.run_dirs()]
    assert len(outcomes) == 18
    for outcome in outcomes:
        assert outcome["depth"] in (10, 11)
        # Each kept config or child still reads as the run that kept it: its seed's config.
        for kept in outcome["kept"]:
            if "seed" in kept:
                assert kept["lr"] == 0.5 and kept["seed"] % 3 == 0
                assert kept["model"]["tags"] == ["a", "b"]
            else:
                assert set(kept) == {"depth", "tags"} and kept["depth"] in (10, 11)
    # The run that saw the most saw all twelve kept: each still with its own run's values
    # (a kept config refilled by a later run would read as that run, pairs would repeat).
    last = max(outcomes, key=lambda o: len(o["kept"]))
    assert len(last["kept"]) == 12
    whole = sorted((k["seed"], k["model"]["depth"]) for k in last["kept"] if "seed" in k)
    assert whole == [(s, d) for s in (0, 3, 6) for d in (10, 11)]
    children = sorted(k["depth"] for k in last["kept"] if "seed" not in k)
    assert children == [10, 10, 10, 11, 11, 11]


PLAIN = """
import xprun


@xprun.config({"seed": 0, "lr": 0.1, "model": {"depth": 4, "width": 128}, "tags": ["a"]})
def xp_plain(config, logger):
    logger.log_metrics({"loss": 1.0 / (1 + config.seed)})
    return {"seed": config.seed, "lr": config.lr, "depth": config.model.depth}
"""


@needs_exact_counts
def test_a_sweep_of_plain_experiments_recycles_its_configs(inprocess, project, refills):
    # The optimisation engages in a real sweep (a run's objects are released when it ends):
    # without it each run's config is made anew (fails with recycling removed).
    project.write("xp_plain.py", PLAIN)
    result = inprocess.run("-q", "seed=range(0,30)", "lr=0.5,0.25")
    assert result.ret == 0, result.output
    outcomes = [json.loads((d / "outcome.json").read_text()) for d in result.run_dirs()]
    seen = sorted((o["seed"], o["lr"], o["depth"]) for o in outcomes)
    assert seen == sorted((s, lr, 4) for s in range(30) for lr in (0.5, 0.25))
    assert len(refills) >= 50, f"{len(refills)} of 59 possible"
