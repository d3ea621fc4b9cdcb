"""Issue 9 (trust in every input): -k selection, collection from a subfolder, settings types,
the log directory, and -k input that must only ever select runs or be a usage error."""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xprun
from tests.conftest import Project

pytestmark = pytest.mark.inprocess  # xprun launched in the test's process (tests/launch.py)

GRID = {"lr": [0.1, 0.15], "seed": [1, 10, 11], "opt": ["sgd", "adam"]}

XP_GRID = f"""
import xprun

@xprun.config({{"lr": 0.1, "seed": 0, "opt": "sgd"}})
@xprun.grid(lr={GRID["lr"]}, seed={GRID["seed"]}, opt={GRID["opt"]})
def xp_a(config):
    return {{"lr": config.lr}}
"""

_LISTED = re.compile(r"^\S+\s+[0-9a-f]{32}\s+(\S+)$", re.MULTILINE)
_ITEM = re.compile(r"([\w.]+)=([^-\]]+)")


def listed(output: str) -> list[str]:
    """The node ids that ``--collect-only`` listed."""
    return _LISTED.findall(output)


def label_config(nodeid: str) -> dict[str, str]:
    """``xp_a.py::xp_a[lr=0.1-seed=1-opt=sgd]`` → {"lr": "0.1", "seed": "1", "opt": "sgd"}."""
    return dict(_ITEM.findall(nodeid.partition("[")[2]))


def all_configs() -> list[dict[str, str]]:
    keys = list(GRID)
    return [
        {k: str(v) for k, v in zip(keys, values, strict=True)}
        for values in itertools.product(*GRID.values())
    ]


def selected(project: Project, expression: str) -> list[dict[str, str]]:
    result = project.run("--collect-only", "-k", expression)
    assert result.returncode in (0, 5), result.output
    return sorted((label_config(n) for n in listed(result.stdout)), key=str)


def expected(predicate) -> list[dict[str, str]]:
    return sorted((c for c in all_configs() if predicate(c)), key=str)


# -- item 8: key=value matches the whole value ---------------------------------------------------


def test_i9_08_key_value_matches_the_whole_value(project):
    project.write("xp_a.py", XP_GRID)
    assert selected(project, "seed=1") == expected(lambda c: c["seed"] == "1")
    assert selected(project, "lr=0.1") == expected(lambda c: c["lr"] == "0.1")
    # the guide's own example
    assert selected(project, "adam and not lr=0.1") == expected(
        lambda c: c["opt"] == "adam" and c["lr"] != "0.1"
    )
    # a prefix of a value is no value
    assert selected(project, "opt=ada") == []


def test_i9_08_plain_words_keep_substring_matching(project):
    project.write("xp_a.py", XP_GRID)
    assert selected(project, "ada") == expected(lambda c: c["opt"] == "adam")
    assert selected(project, "seed") == expected(lambda c: True)
    assert selected(project, "xp_a and not sg") == expected(lambda c: c["opt"] != "sgd")


def test_i9_08_numbers_match_by_value_and_keys_by_dotted_tail(project):
    project.write(
        "xp_n.py",
        """
        import xprun

        @xprun.config({"model": {"width": 64}, "lr": 0.001})
        @xprun.grid(**{"model.width": [64, 640], "lr": [0.001, 0.0015]})
        def xp_n(config):
            pass
        """,
    )
    result = project.run("--collect-only", "-k", "lr=1e-3 and width=64")
    assert result.returncode == 0, result.output
    assert [label_config(n) for n in listed(result.stdout)] == [
        {"model.width": "64", "lr": "0.001"}
    ]


def test_i9_08_key_value_names_fixture_params_too(project):
    project.write(
        "xp_p.py",
        """
        import xprun

        @xprun.fixture(params=["mnist", "mnist2"])
        def data(request):
            return request.param

        @xprun.grid(seed=[0, 1])
        def xp_p(config, data):
            pass
        """,
    )
    result = project.run("--collect-only", "-k", "data=mnist and seed=0")
    assert result.returncode == 0, result.output
    nodeids = listed(result.stdout)
    assert len(nodeids) == 1 and "mnist2" not in nodeids[0], nodeids


# -- item 9: from a subfolder, collect from the current directory --------------------------------


def test_i9_09_subfolder_runs_only_what_is_below_it(project):
    project.write(
        "pyproject.toml",
        '[tool.xprun]\nlog_dir = "xprun_logs"\nexperiment_functions = ["exp_*", "xp_*"]\n',
    )
    project.write(
        "conftest.py",
        """
        import xprun

        @xprun.fixture
        def shared():
            return 7
        """,
    )
    project.write("xp_top.py", "def xp_top():\n    pass\n")
    project.write("edge/xp_edge.py", "def xp_edge():\n    pass\n")
    project.write("edge/sub/xp_sub.py", "def exp_sub(shared):\n    return {'shared': shared}\n")
    result = project.run(cwd=project.root / "edge" / "sub")
    assert result.returncode == 0, result.output
    # rootdir conftest and settings still apply; runs land in the project's log dir
    (record,) = project.records()
    assert record["experiment"].endswith("xp_sub.exp_sub")
    assert not (project.root / "edge" / "sub" / "xprun_logs").exists()
    result = project.run("--collect-only", cwd=project.root / "edge")
    assert sorted(listed(result.stdout)) == [
        "edge/sub/xp_sub.py::exp_sub",
        "edge/xp_edge.py::xp_edge",
    ]


def test_i9_09_option_values_do_not_move_the_rootdir(project):
    project.write(
        "pyproject.toml", '[tool.xprun]\nlog_dir = "xprun_logs"\nexperiment_files = ["exp_*.py"]\n'
    )
    project.write("sub/exp_a.py", "def xp_a():\n    pass\n")
    elsewhere = project.root.parent / "elsewhere"
    elsewhere.mkdir()
    # "/" is a folder (outside the project) and a word of the node id
    for args in (["-k", "/"], ["--log-dir", "../elsewhere"]):
        result = project.run("--collect-only", *args)
        assert listed(result.stdout) == ["sub/exp_a.py::xp_a"], (args, result.output)
        assert f"rootdir: {project.root}" in result.stdout


# -- item 6: [tool.xprun] types ------------------------------------------------------------------


def _usage_error_naming(result, *names: str) -> None:
    assert result.returncode == 4, result.output
    assert "Traceback" not in result.output
    for name in names:
        assert name in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ("log_dir = 5", "log_dir"),
        ('log_dir = ""', "log_dir"),
        ("exclude = [1]", "exclude"),
        ("experiment_files = 3", "experiment_files"),
        ("experiment_functions = [true]", "experiment_functions"),
        ("norecursedirs = {a = 1}", "norecursedirs"),
        ("snapshot_dir = 1", "snapshot_dir"),
        ("scheduler = []", "scheduler"),
        ("dirty = 0", "dirty"),
        ('heartbeat_interval = "5"', "heartbeat_interval"),
    ],
)
def test_i9_06_wrong_setting_types_are_usage_errors(project, line, key):
    project.write("pyproject.toml", f"[tool.xprun]\n{line}\n")
    project.write("xp_a.py", "def xp_a():\n    pass\n")
    result = project.run()
    _usage_error_naming(result, f"{key} must be", "pyproject.toml")
    assert not project.log_dir.exists()
    assert sorted(p.name for p in project.root.iterdir()) == ["pyproject.toml", "xp_a.py"]


@pytest.mark.parametrize(
    "lines",
    [
        "heartbeat_interval = nan",
        "heartbeat_interval = inf\nheartbeat_timeout = inf",
        "heartbeat_timeout = nan",
        "heartbeat_interval = 1e-300",
    ],
)
def test_i9_06_heartbeats_must_be_finite_and_workable(project, lines):
    project.write("pyproject.toml", f'[tool.xprun]\nlog_dir = "xprun_logs"\n{lines}\n')
    project.write("xp_a.py", "def xp_a():\n    pass\n")
    result = project.run()
    _usage_error_naming(result, lines.partition(" ")[0])
    assert not project.log_dir.exists()


# -- item 6: the log directory, checked before anything is written -------------------------------


def _log_dir_case(project: Project, kind: str) -> tuple[str, Path | None]:
    """Make a bad log directory of this kind; return (its name, a path that must not appear)."""
    if kind == "file":
        project.write("logs", "not a folder\n")
        return "logs", None
    if kind == "devnull":
        return "/dev/null", None
    if kind == "loop":
        (project.root / "logs").symlink_to("logs")
        return "logs", None
    if kind == "loop-parent":
        (project.root / "a").symlink_to("b")
        (project.root / "b").symlink_to("a")
        return "a/logs", None
    if kind == "dangling":
        target = project.root.parent / "nowhere" / "target"
        (project.root / "logs").symlink_to(target)
        return "logs", project.root.parent / "nowhere"
    if kind == "file-parent":
        project.write("notadir", "x\n")
        return "notadir/logs", None
    if kind == "proc":  # a folder that refuses new entries whatever its permissions say
        return "/proc/xprun-logs", None
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind", ["file", "devnull", "loop", "loop-parent", "dangling", "file-parent", "proc"]
)
@pytest.mark.parametrize("where", ["option", "setting"])
def test_i9_06_bad_log_dir_is_a_usage_error_with_nothing_created(project, kind, where):
    project.write("xp_a.py", "def xp_a():\n    pass\n")
    name, must_not_exist = _log_dir_case(project, kind)
    before = sorted(os.listdir(project.root))
    if where == "option":
        result = project.run("--log-dir", name)
    else:
        project.write("pyproject.toml", f'[tool.xprun]\nlog_dir = "{name}"\n')
        before = sorted(os.listdir(project.root))
        result = project.run()
    _usage_error_naming(result, "log directory", name.split("/")[-1])
    assert sorted(os.listdir(project.root)) == before
    if must_not_exist is not None:
        assert not os.path.lexists(must_not_exist)


def test_i9_06_the_log_dir_check_leaves_no_folder_behind(project):
    """The check makes the first missing folder of a new log directory to see that it can,
    and removes it: a launch that stops before any run leaves the project as it was."""
    project.write("xp_a.py", "def xp_a(:\n    pass\n")  # a syntax error: collection fails
    before = sorted(os.listdir(project.root))
    result = project.run("--log-dir", "new/nested/logs")
    assert result.returncode not in (0, 4), result.output
    assert "xp_a.py" in result.output
    assert sorted(os.listdir(project.root)) == before


def _without_root_privileges() -> list[str]:
    """A command prefix under which permission bits apply, even to root."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: a read-only folder is writable to root")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--"]


@pytest.mark.parametrize("layout", ["log dir read-only", "parent read-only"])
def test_i9_06_read_only_log_dir_is_a_usage_error(project, layout):
    project.write("xp_a.py", "def xp_a():\n    pass\n")
    locked = project.root / "locked"
    locked.mkdir()
    log_dir = locked if layout == "log dir read-only" else locked / "logs"
    locked.chmod(0o555)
    try:
        proc = subprocess.run(
            [*_without_root_privileges(), *project.command(), "--log-dir", str(log_dir)],
            cwd=project.root,
            env=project.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 4, proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr
        assert str(log_dir) in proc.stderr and "not writable" in proc.stderr
        assert os.listdir(locked) == []
        # listing runs writes nothing: a read-only log dir is fine for --collect-only
        proc = subprocess.run(
            [*_without_root_privileges(), *project.command(), "--log-dir", str(log_dir), "--co"],
            cwd=project.root,
            env=project.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
    finally:
        locked.chmod(0o755)


# -- item 6: -k nested deeply, long, huge ---------------------------------------------------------


@pytest.mark.parametrize(
    "expression",
    [
        "(" * 1000 + "seed=1" + ")" * 1000,
        "not " * 1000 + "seed=1",
        "(not " * 600 + "adam" + ")" * 600,
    ],
)
def test_i9_06_deeply_nested_keyword_is_a_usage_error(project, expression):
    project.write("xp_a.py", XP_GRID)
    result = project.run("--collect-only", "-k", expression)
    _usage_error_naming(result, "wrong expression passed to '-k'", "nested")
    assert not project.log_dir.exists()


def test_i9_06_long_keyword_chains_and_huge_literals_select(project):
    project.write("xp_a.py", XP_GRID)
    chain = " and ".join(["xp_a"] * 3000) + " and seed=1"
    assert selected(project, chain) == expected(lambda c: c["seed"] == "1")
    assert selected(project, " or ".join(["seed=99"] * 3000) + " or opt=adam") == expected(
        lambda c: c["opt"] == "adam"
    )
    assert selected(project, "seed=" + "1" * 5000) == []
    # 1 followed by 400 zeros, times 1e-401, is 0.1
    assert selected(project, "lr=1" + "0" * 400 + "e-401") == expected(lambda c: c["lr"] == "0.1")
    assert selected(project, "not seed=1e99999") == expected(lambda c: True)


# -- item 6 (done-when): a fuzz test of -k --------------------------------------------------------

WORDS = ["xp_a", "xp_a.py", "sgd", "adam", "ada", "seed", "lr", "nothing", "1", "0.1", "=", "xp_"]
VALUES = {
    "lr": ["0.1", "0.15", "0.10", "1e-1", "0.1e0", "0.2", "0", "1"],
    "seed": ["1", "10", "11", "1.0", "01", "0", "2", "1e1", "100"],
    "opt": ["sgd", "adam", "ada", "SGD", "adamw", "", "s"],
}


def _item_matches(key: str, value: str, config: dict[str, str]) -> bool:
    """The test's own reading of a key=value word against one run (numbers by value)."""
    actual = config[key]
    if key == "opt":
        return value.lower() == actual
    try:
        return float(value) == float(actual)
    except ValueError:
        return False


@st.composite
def _atoms(draw):
    if draw(st.booleans()):
        key = draw(st.sampled_from(sorted(VALUES)))
        value = draw(st.sampled_from(VALUES[key]))
        return f"{key}={value}", lambda c: _item_matches(key, value, c)
    word = draw(st.sampled_from(WORDS))
    return word, lambda c: any(
        word.lower() in w
        for w in [
            "xp_a.py::xp_a[lr={lr}-seed={seed}-opt={opt}]".format(**c),
            "xp_a.py",
            "xp_a[lr={lr}-seed={seed}-opt={opt}]".format(**c),
            *(f"{k}={v}" for k, v in c.items()),
        ]
    )


def _operand(text: str, *looser: str) -> str:
    """``text`` as an operand, in parentheses if it may hold an operator binding looser than
    the one applied (so 'a and b or c' is still produced, and precedence is exercised)."""
    return f"({text})" if any(f" {op} " in text for op in looser) else text


def _combine(children):
    def negate(pair):
        text, fn = pair
        return f"not {_operand(text, 'and', 'or')}", lambda c: not fn(c)

    def group(pair):
        text, fn = pair
        return f"({text})", fn

    def both(pairs, op):
        (a, fa), (b, fb) = pairs
        if op == "and":
            a, b = _operand(a, "or"), _operand(b, "or")
            return f"{a} and {b}", lambda c: fa(c) and fb(c)
        return f"{a} or {b}", lambda c: fa(c) or fb(c)

    return st.one_of(
        children.map(negate),
        children.map(group),
        st.tuples(st.tuples(children, children), st.sampled_from(["and", "or"])).map(
            lambda t: both(*t)
        ),
    )


# Expressions built from the grammar, with the selection they must make.
VALID = st.recursive(_atoms(), _combine, max_leaves=12)

IDENT_CHARS = "abdegilmnoprstx_01.=,:/[]-+\\"


def _mutate(text: str, data) -> str:
    """Near-valid: one edit of a valid expression (a dropped, doubled or foreign character)."""
    if not text:
        return text
    at = data.draw(st.integers(0, len(text) - 1))
    edit = data.draw(st.sampled_from(["drop", "double", "insert"]))
    if edit == "drop":
        return text[:at] + text[at + 1 :]
    if edit == "double":
        return text[:at] + text[at] + text[at:]
    return text[:at] + data.draw(st.sampled_from("()&|!\"' \t$#;")) + text[at:]


HUGE = st.one_of(
    st.builds(lambda n: "seed=" + "9" * n, st.integers(300, 6000)),
    st.builds(lambda n: "lr=0." + "1" * n, st.integers(300, 6000)),
    st.builds(lambda n: "lr=1e" + "9" * n, st.integers(1, 600)),
    st.builds(lambda n, w: f"{w}{'x' * n}", st.integers(200, 6000), st.sampled_from(WORDS)),
)
NESTED = st.builds(
    lambda n, open_, close, atom: open_ * n + atom + close * n,
    st.integers(1, 3000),
    st.sampled_from(["(", "not ", "(not ", "not ("]),
    st.sampled_from([")", "", "))"]),
    st.sampled_from(["seed=1", "adam", "(", ""]),
)
RANDOM = st.text(alphabet=IDENT_CHARS + "() \t" + "&|!é\u00a0", max_size=80)


@pytest.fixture(scope="module")
def fuzz_project(tmp_path_factory) -> Project:
    project = Project(tmp_path_factory.mktemp("fuzz") / "proj")
    project.write("xp_a.py", XP_GRID)
    return project


def _collect_in_process(project: Project, expression: str) -> tuple[int, str, str]:
    """``xprun --collect-only -k EXPRESSION`` through the public ``xprun.main``.

    In-process (not a subprocess per example) so hypothesis can try hundreds of inputs; the
    CLI tests above cover the same path through ``python -m xprun``.
    """
    out, err = io.StringIO(), io.StringIO()
    argv = ["--collect-only", "-k", expression]
    if expression.startswith("-"):
        argv = ["--collect-only", f"-k{expression}"]
    with (
        contextlib.chdir(project.root),
        pytest.MonkeyPatch.context() as mp,
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        mp.setenv("XPRUN_DISABLE_PLUGIN_AUTOLOAD", "1")
        code = xprun.main(argv)
    return code, out.getvalue(), err.getvalue()


def _only_selection_or_usage_error(project: Project, expression: str) -> list[dict] | None:
    code, out, err = _collect_in_process(project, expression)
    assert "INTERNAL ERROR" not in err and "Traceback" not in err, err[-2000:]
    if code == 4:
        assert err.startswith("ERROR: wrong expression passed to '-k'"), err[:500]
        return None
    assert code in (0, 5), (code, out[-500:], err[-500:])
    nodeids = listed(out)
    assert len(nodeids) == len(set(nodeids))
    configs = [label_config(n) for n in nodeids]
    assert all(c in all_configs() for c in configs)
    assert not project.log_dir.exists()
    return sorted(configs, key=str)


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(pair=VALID)
def test_i9_06_keyword_fuzz_structured_selects_exactly(fuzz_project, pair):
    text, predicate = pair
    assert _only_selection_or_usage_error(fuzz_project, text) == expected(predicate)


@FUZZ
@given(pair=VALID, data=st.data())
def test_i9_06_keyword_fuzz_near_valid(fuzz_project, pair, data):
    # Anything typed is either a clean usage error (None) or a selection of real configs.
    selected = _only_selection_or_usage_error(fuzz_project, _mutate(pair[0], data))
    assert selected is None or all(c in all_configs() for c in selected)


@FUZZ
@given(text=st.one_of(RANDOM, HUGE, NESTED))
def test_i9_06_keyword_fuzz_random_deep_and_huge(fuzz_project, text):
    selected = _only_selection_or_usage_error(fuzz_project, text)
    assert selected is None or all(c in all_configs() for c in selected)
