"""Trust in run identity (issue 8): pinned encodings, value-based params, seeds.

The golden values below are the identity of every user's existing runs: a change to any of
them silently invalidates (or, worse, merges) caches.  They were computed by the encoding
as released; never update them to make a test pass.
"""

from __future__ import annotations

import ast
import enum
import json
import math
import re
from typing import Any

import numpy as np
import pytest
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

from xprun.identity import canonical, run_digest

pytestmark = pytest.mark.inprocess  # xprun launched in the test's process (tests/launch.py)


class Color(enum.Enum):
    RED = 1


class Level(enum.IntEnum):
    HIGH = 3


# (name, value, canonical text, xxh3-128 of the text)
GOLDEN = [
    ("none", None, "n", "c311d21b3583875acbaa0f6724ae8b0a"),
    ("true", True, "t", "190e8fcdd645bb7c76033e85f0acf92d"),
    ("false", False, "f", "b3b2b50bf19ad7d533c155909ff3ba9a"),
    ("zero", 0, "i0", "9e73b7250688ee175d70e176294ae21c"),
    ("int", 42, "i42", "b785d6d72e1ab646c55f260c193dd5f1"),
    ("negint", -7, "i-7", "9548dd40b60bdde5f0f9a8e709dd4924"),
    ("bigint", 2**70, "i1180591620717411303424", "1f72bac5e435bdbaa5c352424c1c2ec1"),
    ("float", 0.1, "d0.1", "06043290c720e24381b673d3387ef61f"),
    ("float_exp", 1e-05, "d1e-05", "912400eb18779fc3f37f3805d3933760"),
    ("float_neg", -2.5, "d-2.5", "60ddde971e4739a57ca3daff86d8d1fe"),
    ("float_integral", 3.0, "i3", "2a08f0e76080d00ec7632b077dfea88b"),
    ("neg_zero", -0.0, "i0", "9e73b7250688ee175d70e176294ae21c"),
    ("big_float", 1e16, "i10000000000000000", "cf8e62b4ab4c2db952e6c5202603bff8"),
    ("nan", math.nan, "dnan", "43ac3e7f07b9be2681e4e48df742d3c3"),
    ("inf", math.inf, "dinf", "fbc91b4824756ca6338c767c88b2a7f2"),
    ("neginf", -math.inf, "d-inf", "d3539e66ab1f200758856009b6cb1830"),
    ("str", "mnist", 's"mnist"', "1ba1a288357e04433765eeaba6894264"),
    ("str_empty", "", 's""', "099a71b309918d3117481e09e3ef14d1"),
    ("str_unicode", "héllo ✓", 's"héllo ✓"', "9f729208a0ff9a6e4fcf9e15dcb4803b"),
    (
        "str_escapes",
        'a"b\\c\n\t\x00',
        's"a\\"b\\\\c\\n\\t\\u0000"',
        "9b6a99d7ea9d093749d8ae20154520c3",
    ),
    ("str_looks_int", "1", 's"1"', "d2138faeb1806c4b85617384649e48da"),
    ("enum", Color.RED, 's"Color.RED"', "9a96427d8192cb325e452ae77db5ca8b"),
    ("int_enum", Level.HIGH, "i3", "2a08f0e76080d00ec7632b077dfea88b"),
    ("bytes", b"\x00\xffab", "b00ff6162", "fe87312d13aeffefe3086eb9ff44154f"),
    ("bytearray", bytearray(b"xy"), "b7879", "dff6bc7f71d4e6edadad402b7775069a"),
    ("list", [1, "a", None], '[i1,s"a",n]', "db8e8768c89f3452c0e772241c3154c4"),
    ("tuple", (1, 2), "[i1,i2]", "a6f691a9bc7d19e06eca42b8aede2ad2"),
    ("empty_list", [], "[]", "39347ff402b6c53d831154110e30ac6a"),
    ("empty_dict", {}, "{}", "dc7048f8f8747f561349cde127705c16"),
    ("nested_lists", [[1], [2]], "[[i1],[i2]]", "f7d51b617da82210125f4e9f7e710017"),
    ("flat_in_list", [[1, 2]], "[[i1,i2]]", "7bfab6645c9d003b61c45c06491bd597"),
    ("list_true", [True], "[t]", "9d2abc3400aa0ba40070a9d82446cb3c"),
    (
        "dict",
        {"b": 1, "a": [True, False]},
        '{s"a":[t,f],s"b":i1}',
        "d858dd5372de34e838bf411275ecc0b3",
    ),
    (
        "dict_nonstr_keys",
        {2: "x", "1": "y", None: 0},
        '{i2:s"x",n:i0,s"1":s"y"}',
        "eb7faddac5b626097b50302da943f933",
    ),
    (
        "nested",
        {"model": {"width": 64, "layers": [1, 2]}, "opt": "sgd"},
        '{s"model":{s"layers":[i1,i2],s"width":i64},s"opt":s"sgd"}',
        "e5d0cf234cc9b751fe8ce9639ca63e6f",
    ),
    ("np_int", np.int64(5), "i5", "e349ca5780f625cdbbc3857b8504af66"),
    ("np_float", np.float32(0.5), "d0.5", "c9f8999bcc7f9e551ff0916a3b1a0afe"),
    ("np_bool", np.bool_(True), "t", "190e8fcdd645bb7c76033e85f0acf92d"),
    # A float subclass spells as a float (NumPy 2's repr is "np.float64(0.1)"): the same as
    # 0.1, and the same under every NumPy version.
    ("np_float64", np.float64(0.1), "d0.1", "06043290c720e24381b673d3387ef61f"),
]


@pytest.mark.parametrize(
    ("value", "text", "digest"), [g[1:] for g in GOLDEN], ids=[g[0] for g in GOLDEN]
)
def test_i8_14_golden_encoding_of_every_supported_type(value, text, digest):
    assert canonical(value) == text
    assert xxhash.xxh3_128_hexdigest(canonical(value).encode("utf-8")) == digest


# (experiment id, config, params, digest): the digests of real runs as released.
GOLDEN_RUNS = [
    ("xp_a.py::xp_train", {"lr": 0.1, "seed": 0}, {}, "afd53447c661369c1ef86ce082f6607f"),
    (
        "xp_a.py::xp_train",
        {"seed": 0, "lr": 0.1},
        {"data": "mnist"},
        "605abd51f34d0ed924ca46beb3bc3c0c",
    ),
    (
        "mnist",
        {"lr": 0.1, "seed": 0},
        {"size": "16", "data": "mnist"},
        "1f711de1bcf614260a9687fda0386b52",
    ),
]


@pytest.mark.parametrize(("experiment", "config", "params", "digest"), GOLDEN_RUNS)
def test_i8_14_golden_run_digests(experiment, config, params, digest):
    assert run_digest(experiment, config, params) == f"xxh3_128:{digest}"


@pytest.mark.parametrize("value", [{1, 2}, object(), 1j, frozenset()])
def test_i8_14_unsupported_types_are_refused_not_guessed(value):
    with pytest.raises(TypeError, match="cannot hash"):
        canonical(value)


# -- a decoder for the canonical text: if it maps every encoding back to the value's
#    normal form, no two distinct values can share an encoding. ------------------------------

_NUMBER = re.compile(r"[^,:\]}]*")


def _decode(text: str, pos: int = 0) -> tuple[Any, int]:
    tag = text[pos]
    if tag in "ntf":
        return (tag,), pos + 1
    if tag in "idb":
        end = _NUMBER.match(text, pos + 1).end()
        body = text[pos + 1 : end]
        if tag == "i":
            assert re.fullmatch(r"-?(0|[1-9][0-9]*)", body), body
            return ("i", int(body)), end
        if tag == "b":
            assert re.fullmatch(r"([0-9a-f]{2})*", body), body
            return ("b", bytes.fromhex(body)), end
        if body in ("nan", "inf", "-inf"):
            return ("d", body), end
        number = float(body)
        assert repr(number) == body and not number.is_integer(), body
        return ("d", number), end
    if tag == "s":
        value, end = json.JSONDecoder().raw_decode(text, pos + 1)
        assert isinstance(value, str)
        return ("s", value), end
    if tag == "[":
        items, pos = [], pos + 1
        while text[pos] != "]":
            if items:
                assert text[pos] == ",", text[pos:]
                pos += 1
            item, pos = _decode(text, pos)
            items.append(item)
        return ("l", tuple(items)), pos + 1
    if tag == "{":
        entries, keys, pos = [], [], pos + 1
        while text[pos] != "}":
            if entries:
                assert text[pos] == ",", text[pos:]
                pos += 1
            start = pos
            key, pos = _decode(text, pos)
            keys.append(text[start:pos])
            assert text[pos] == ":", text[pos:]
            item, pos = _decode(text, pos + 1)
            entries.append((key, item))
        assert keys == sorted(keys) and len(set(keys)) == len(keys)
        return ("m", frozenset(entries)), pos + 1
    raise AssertionError(f"unexpected {text[pos:]!r}")


def decode(text: str) -> Any:
    value, end = _decode(text)
    assert end == len(text), text[end:]
    return value


def normal(value: Any) -> Any:
    """The value as identity sees it: 1 == 1.0, tuples are lists, True is not 1."""
    if value is None:
        return ("n",)
    if isinstance(value, bool | np.bool_):
        return ("t",) if value else ("f",)
    if isinstance(value, int | np.integer):
        return ("i", int(value))
    if isinstance(value, float | np.floating):
        value = float(value)
        if math.isnan(value):
            return ("d", "nan")
        if math.isinf(value):
            return ("d", "inf" if value > 0 else "-inf")
        return ("i", int(value)) if value.is_integer() else ("d", value)
    if isinstance(value, str):
        return ("s", value)
    if isinstance(value, enum.Enum):
        return ("s", f"{type(value).__name__}.{value.name}")
    if isinstance(value, bytes | bytearray):
        return ("b", bytes(value))
    if isinstance(value, list | tuple):
        return ("l", tuple(normal(v) for v in value))
    if isinstance(value, dict):
        return ("m", frozenset((normal(k), normal(v)) for k, v in value.items()))
    raise AssertionError(type(value))


scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | st.binary(max_size=8)
    | st.sampled_from([Color.RED, Level.HIGH, np.int64(-3), np.float64(2.5), np.bool_(False)])
)
keys = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.lists(children, max_size=4).map(tuple)
        | st.dictionaries(keys, children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=400)
@given(values)
def test_i8_14_encoding_decodes_to_the_value(value):
    assert decode(canonical(value)) == normal(value)


@settings(max_examples=400)
@given(values, values)
def test_i8_14_distinct_values_never_share_an_encoding(a, b):
    assert (canonical(a) == canonical(b)) == (normal(a) == normal(b))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ([True], []),
        ([False], []),
        ([None], []),
        ([[1], [2]], [[1, 2]]),
        ([[1], 2], [[1, 2]]),
        ({"a": [1, 2]}, {"a": [1], "2": None}),
        ({"a": {"b": 1}}, {"a": "b", "1": None}),
        ("é", "\\u00e9"),
        (b"", ""),
        ("ab", ["a", "b"]),
        (1, "1"),
        (True, 1),
        (0.5, "0.5"),
    ],
)
def test_i8_14_known_near_collisions_stay_apart(a, b):
    assert canonical(a) != canonical(b)
    assert run_digest("x", {"v": a}, {}) != run_digest("x", {"v": b}, {})


# -- issue 8 item 13: fixture params are identified by value, not by their display id ----------

PARAM_EXPERIMENT = """
import xprun

@xprun.fixture(params=[{params}]{ids})
def data(request):
    return request.param

def xp_a(data):
    return {{"seen": repr(data)}}
"""


def _param_project(project, params: str, ids: str = "") -> None:
    project.write("xp_a.py", PARAM_EXPERIMENT.format(params=params, ids=ids))


def _outcomes(project) -> list[str]:
    outcomes = []
    for run_dir in project.run_dirs("xp_a.xp_a"):
        outcomes.append(json.loads((run_dir / "outcome.json").read_text())["seen"])
    return sorted(outcomes)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ('{"layers": 2}', '{"layers": 3}'),  # not a simple value: id "data0"
        ('"' + "x" * 40 + '"', '"' + "y" * 40 + '"'),  # text longer than 32: id "data0"
        ("[1, 2]", "[1, 3]"),
    ],
    ids=["mapping", "long-text", "list"],
)
def test_i8_13_a_changed_param_value_is_a_new_run(project, before, after):
    _param_project(project, before)
    assert project.run().returncode == 0
    _param_project(project, after)
    second = project.run()
    assert second.returncode == 0, second.output
    assert len(project.run_dirs("xp_a.xp_a")) == 2  # not reported cached
    assert _outcomes(project) == sorted([repr(ast.literal_eval(v)) for v in (before, after)])


def test_i8_13_explicit_ids_do_not_stand_for_the_value(project):
    _param_project(project, '{"layers": 2}', ', ids=["small"]')
    assert project.run().returncode == 0
    _param_project(project, '{"layers": 3}', ', ids=["small"]')
    assert project.run().returncode == 0
    assert _outcomes(project) == ["{'layers': 2}", "{'layers': 3}"]


def test_i8_13_a_param_that_cannot_be_hashed_needs_an_explicit_id(project):
    project.write(
        "xp_a.py",
        """
        import xprun

        class Net:
            pass

        @xprun.fixture(params=[Net])
        def net(request):
            return request.param

        def xp_a(net):
            return {"seen": net.__name__}
        """,
    )
    refused = project.run()
    assert refused.returncode == 4, refused.output
    assert "fixture 'net'" in refused.stderr and "ids=" in refused.stderr
    assert project.run_dirs() == []
    text = (project.root / "xp_a.py").read_text()
    (project.root / "xp_a.py").write_text(text.replace("params=[Net]", 'params=[Net], ids=["net"]'))
    accepted = project.run()
    assert accepted.returncode == 0, accepted.output
    assert len(project.run_dirs("xp_a.xp_a")) == 1


def test_i8_13_simple_params_keep_their_released_digests(project):
    # Digests computed by the release before params were hashed by value: these runs must
    # still be found as cached after upgrading.
    _param_project(project, '"mnist", 16, 0.5, True, None')
    assert project.run().returncode == 0
    assert sorted(d.name for d in project.run_dirs("xp_a.xp_a")) == sorted(RELEASED_PARAM_HASHES)


RELEASED_PARAM_HASHES = [
    "0ada44298312f098760000c25369ace1",
    "74774850936bec7478d5632bdeacd1f4",
    "919fb27076d37907cdf5fe839d994cd4",
    "a2ed4d5ea6cd48594e805f08d14058a9",
    "e8c5c82a94b27a166da8afe78cd8e2c4",
]


# -- issue 8 item 15: the seed a run uses is the one in its hash --------------------------------

SEED_EXPERIMENT = """
import xprun

@xprun.config({"lr": 0.1})
def xp_a(seed, config):
    return {"seed": seed, "config_seed": config.seed}
"""


def test_i8_15_an_integral_float_seed_is_that_seed(project):
    project.write("xp_a.py", SEED_EXPERIMENT)
    first = project.run("seed=1.0")
    assert first.returncode == 0, first.output
    (run_dir,) = project.run_dirs("xp_a.xp_a")
    outcome = json.loads((run_dir / "outcome.json").read_text())
    assert outcome == {"seed": 1, "config_seed": 1}
    second = project.run("seed=1", "-v")  # the same hash: cached, and rightly so
    assert second.returncode == 0 and "cached" in second.output.lower(), second.output
    assert project.run_dirs("xp_a.xp_a") == [run_dir]


@pytest.mark.parametrize("seed", ["1.5", "abc", "true", "null", "[1]"])
def test_i8_15_a_non_integer_seed_is_a_usage_error(project, seed):
    project.write("xp_a.py", SEED_EXPERIMENT)
    result = project.run(f"seed={seed}")
    assert result.returncode == 4, result.output
    assert "seed must be an integer" in result.stderr
    assert project.run_dirs() == []


def test_i8_15_a_non_integer_seed_in_the_config_is_a_usage_error(project):
    project.write("xp_a.py", SEED_EXPERIMENT.replace('{"lr": 0.1}', '{"lr": 0.1, "seed": 0.5}'))
    result = project.run()
    assert result.returncode == 4, result.output
    assert "xp_a.py::xp_a" in result.stderr and "seed must be an integer" in result.stderr
    assert project.run_dirs() == []


# -- what mutation testing of identity.py showed untested ---------------------------------------


class Größe(enum.Enum):
    KLEIN = 1


def test_i8_14_enum_names_are_encoded_as_text_not_ascii_escapes():
    assert canonical(Größe.KLEIN) == 's"Größe.KLEIN"'
    assert canonical(Größe.KLEIN) == canonical("Größe.KLEIN")


def test_i8_14_unsupported_values_are_named_in_the_error():
    with pytest.raises(TypeError) as info:
        canonical({"a": [{1, 2}]})
    assert str(info.value) == (
        "cannot hash a config value of type set ({1, 2}); "
        "use numbers, strings, booleans, None, lists and mappings"
    )


@pytest.mark.parametrize(
    "mapping",
    [{Color.RED: {"a": 1}, "Color.RED": {}}, {"Color.RED": 1, Color.RED: 2}],
    ids=["values-not-comparable", "insertion-order"],
)
def test_i8_14_keys_that_encode_alike_are_refused(mapping):
    # Their order, not their content, would decide the digest.
    with pytest.raises(TypeError, match="two keys that both encode as"):
        canonical(mapping)


def test_i8_14_infinities_keep_their_sign():
    assert canonical([math.inf, -math.inf, 1e308 * 10]) == "[dinf,d-inf,dinf]"


def test_i8_13_param_identity_rules():
    from xprun.identity import PARAM_ID, PARAM_TEXT, PARAM_VALUE, ParamIdentity, param_identity

    assert param_identity("mnist", "mnist", False) == ParamIdentity(PARAM_TEXT, "mnist")
    assert param_identity(16, "16", True) == ParamIdentity(PARAM_TEXT, "16")
    assert param_identity(None, "None", False) == ParamIdentity(PARAM_TEXT, "None")
    assert param_identity("a", "a0", False) == ParamIdentity(PARAM_VALUE, "a")  # deduplicated id
    assert param_identity({"n": 2}, "data0", False) == ParamIdentity(PARAM_VALUE, {"n": 2})
    assert param_identity((1, 2), "small", True) == ParamIdentity(PARAM_VALUE, (1, 2))
    assert param_identity(Color.RED, "red", True) == ParamIdentity(PARAM_VALUE, Color.RED)
    assert param_identity(object, "obj", True) == ParamIdentity(PARAM_ID, "obj")
    assert param_identity([object()], "data0", False) is None
    assert param_identity(object, "data0", False) is None


def test_i8_13_param_sections_are_pinned_and_kept_apart():
    from xprun.identity import PARAM_ID, PARAM_TEXT, PARAM_VALUE, ParamIdentity

    config = {"seed": 0}
    text = run_digest("x", config, {"data": "mnist"})
    assert run_digest("x", config, {"data": ParamIdentity(PARAM_TEXT, "mnist")}) == text
    value = run_digest("x", config, {"data": ParamIdentity(PARAM_VALUE, {"n": 2})})
    opaque = run_digest("x", config, {"data": ParamIdentity(PARAM_ID, "mnist")})
    by_value_text = run_digest("x", config, {"data": ParamIdentity(PARAM_VALUE, "mnist")})
    assert len({text, value, opaque, by_value_text}) == 4
    expected = '{s"config":{s"seed":i0},s"experiment":s"x",s"param_values":{s"data":{s"n":i2}},s"params":{}}'
    assert value == "xxh3_128:" + xxhash.xxh3_128_hexdigest(expected.encode())
    expected = (
        '{s"config":{s"seed":i0},s"experiment":s"x",s"param_ids":{s"data":s"mnist"},s"params":{}}'
    )
    assert opaque == "xxh3_128:" + xxhash.xxh3_128_hexdigest(expected.encode())
    mixed = {"a": "1", "b": ParamIdentity(PARAM_VALUE, [1]), "c": ParamIdentity(PARAM_ID, "z")}
    expected = (
        '{s"config":{s"seed":i0},s"experiment":s"x",s"param_ids":{s"c":s"z"},'
        's"param_values":{s"b":[i1]},s"params":{s"a":s"1"}}'
    )
    assert run_digest("x", config, mixed) == "xxh3_128:" + xxhash.xxh3_128_hexdigest(
        expected.encode()
    )


@pytest.mark.parametrize(
    ("pattern", "excluded", "kept"),
    [
        ("l?", ["lr"], ["l", "lrr", "l.r", "l."]),
        ("*.device", ["trainer.device"], ["device", "a.b.device", "trainer.devices"]),
        ("**device", ["device", "a.b.device", "a.bdevice"], ["devices"]),
        ("a+b.(c)", ["a+b.(c)"], ["aab.c", "a+b.c"]),
        ("l[r]", ["lr"], ["ls", "l[r]"]),
        ("l[rs]", ["lr", "ls"], ["lt", "l[rs]"]),
        ("l[!r]", ["ls"], ["lr"]),
        ("lr[]", ["lr[]"], ["lr"]),
    ],
)
def test_i8_14_excluded_key_globs(pattern, excluded, kept):
    from xprun.identity import KeyExcluder

    excluder = KeyExcluder([pattern])
    for key in excluded:
        assert excluder.excluded(key), key
    for key in kept:
        assert not excluder.excluded(key), key


def test_i8_14_an_empty_excluder_is_false():
    from xprun.identity import KeyExcluder

    assert not KeyExcluder([])
    assert KeyExcluder(["lr"])
