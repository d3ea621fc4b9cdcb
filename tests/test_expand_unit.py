"""The plain-dict fast path of expansion builds exactly what OmegaConf would."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf, open_dict

from xprun.expand import _configure_plain, _is_plain, _NotPlain

keys = st.sampled_from(["a", "b", "c", "seed", "lr"])
scalars = (
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(-2, 2) | st.text("xyz", max_size=3)
)
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(keys, children, max_size=3),
    max_leaves=8,
)
dotted = st.lists(keys, min_size=1, max_size=3).map(".".join)


def omegaconf_build(base, grid):
    cfg = OmegaConf.create(base)
    OmegaConf.set_struct(cfg, True)
    if "seed" not in cfg:
        with open_dict(cfg):
            cfg.seed = 0
    for key, value in grid.items():
        OmegaConf.update(cfg, key, value, merge=True, force_add=True)
    return OmegaConf.to_container(cfg, resolve=True)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(keys, values, max_size=4), st.dictionaries(dotted, values, max_size=3))
def test_fast_path_equals_omegaconf(base, grid):
    try:
        expected = omegaconf_build(base, grid)
    except Exception:
        expected = None  # OmegaConf refuses (e.g. a dotted key through a scalar)
    try:
        got = _configure_plain(base, grid)
    except _NotPlain:
        return  # the fast path declined: the OmegaConf path decides
    assert got == expected


def test_interpolations_and_missing_values_are_not_plain():
    assert _is_plain({"a": [1, {"b": "text"}], "c": None})
    assert not _is_plain({"a": "${b}"})
    assert not _is_plain({"a": ["???"]})
    assert not _is_plain({"a": object()})
