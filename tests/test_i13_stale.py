"""Issue 13, section 2: stale results are flagged, never silently reused or silently rerun.

Through the CLI (``project.run`` runs ``python -m xprun``) and the public API (the Reader),
with the normalized digests of ``xprun.codedigest`` unit-tested below.
"""

from __future__ import annotations

import json
import keyword
import os
import re
import subprocess
from pathlib import Path

import pytest
from conftest import git_commit_all
from hypothesis import given, settings
from hypothesis import strategies as st
from test_slurm import slurm  # noqa: F401  (the fixture: skips without a cluster)

from xprun import codedigest

pytestmark = pytest.mark.inprocess  # xprun launched in the test's process (tests/launch.py)

XP_A = """\
import xprun
from pkg import mid


@xprun.config({"x": 1})
@xprun.grid(x=[1, 2, 3])
def xp_a(config):
    return {"y": mid.f(config.x)}
"""

MID = """\
from . import deep


def f(x):
    return deep.g(x) + 1
"""

DEEP = '''\
def g(x):
    """Twice x."""
    return x * 2


class Scale:
    def by(self, x):
        return x
'''

XP_B = """\
import xprun


@xprun.config({"x": 1})
@xprun.grid(x=[1, 2])
def xp_b(config):
    return {"y": config.x}
"""

STALE_SUMMARY = re.compile(r"(\d+) cached \((\d+) stale: code changed since they ran\)")


def _project(project):
    project.write("xp_a.py", XP_A)
    project.write("pkg/__init__.py", "")
    project.write("pkg/mid.py", MID)
    project.write("pkg/deep.py", DEEP)
    project.write("other.py", "def h():\n    return 1\n")  # imported by nothing
    return project


def _stale_count(result) -> int | None:
    """How many cached runs the summary calls stale (None: it says nothing of staleness)."""
    found = STALE_SUMMARY.search(result.stdout)
    return int(found.group(2)) if found else None


def _edit(project, relpath: str, old: str, new: str) -> None:
    path = project.root / relpath
    text = path.read_text()
    assert old in text, (relpath, old)
    path.write_text(text.replace(old, new))


def test_i13_stale_reacts_to_code_not_to_comments_docstrings_or_formatting(project):
    _project(project)
    first = project.run("-q")
    assert first.returncode == 0, first.output
    assert "3 complete" in first.stdout
    record = project.records()[0]
    assert set(record["code"]["files"]) == {
        "xp_a.py",
        "pkg/__init__.py",
        "pkg/mid.py",
        "pkg/deep.py",
    }
    assert record["code"]["root"] == str(project.root)
    assert record["code"]["version"] is None

    # Comments, blank lines, formatting, docstrings, in the module and two levels down; an
    # edit of a module the experiment does not import: nothing is stale.
    _edit(project, "pkg/deep.py", '"""Twice x."""', '"""Twice x, documented at length."""')
    _edit(project, "pkg/deep.py", "return x * 2", "return (x *\n            2)  # doubled")
    _edit(project, "xp_a.py", "def xp_a(config):", "\n\ndef xp_a(config):  # the experiment")
    _edit(project, "pkg/mid.py", "def f(x):", 'def f(x):\n    """Now with a docstring."""\n')
    project.write("other.py", "def h():\n    return 2\n")
    unchanged = project.run("-q")
    assert unchanged.returncode == 0, unchanged.output
    assert "3 cached in" in unchanged.stdout and "stale" not in unchanged.stdout

    # A function body two levels down: every run is stale, still cached (not rerun).
    _edit(project, "pkg/deep.py", "2)  # doubled", "3)  # tripled")
    stale = project.run("-q")
    assert stale.returncode == 0, stale.output
    assert _stale_count(stale) == 3 and "complete" not in stale.stdout
    assert [r["attempt"] for r in project.records()] == [1, 1, 1]

    # Back as it was: fresh again (the digest is of the code, not of the edit history).
    _edit(project, "pkg/deep.py", "3)  # tripled", "2)  # doubled")
    assert _stale_count(project.run("-q")) is None

    # A function body in the experiment's own module.
    _edit(project, "xp_a.py", 'return {"y": mid.f(config.x)}', 'return {"y": mid.f(config.x) + 0}')
    assert _stale_count(project.run("-q")) == 3


def test_i13_stale_collect_only_and_verbose_mark_stale_runs(project):
    _project(project)
    project.write("xp_b.py", XP_B)
    assert project.run("-q").returncode == 0
    _edit(project, "pkg/deep.py", "x * 2", "x * 5")
    listing = project.run("--collect-only", "-q", "x=1,2,3,4")
    assert listing.returncode == 0, listing.output
    lines = [line for line in listing.stdout.splitlines() if "::" in line]
    a_lines = [line for line in lines if "xp_a.py::" in line]
    b_lines = [line for line in lines if "xp_b.py::" in line]
    assert sum(line.startswith("complete, stale ") for line in a_lines) == 3
    assert sum(line.startswith("new ") for line in a_lines) == 1
    # The other experiment does not import the changed module: complete, not stale.
    assert sum(line.startswith("complete ") for line in b_lines) == 2
    assert not any("stale" in line for line in b_lines)
    # One column: the hashes line up.
    assert len({re.search("[0-9a-f]{32}", line).start() for line in lines}) == 1
    verbose = project.run("-v")
    assert verbose.stdout.count("CACHED (STALE)") == 3
    assert verbose.stdout.count("CACHED ") == 5
    assert "5 cached (3 stale: code changed since they ran)" in verbose.stdout


def test_i13_stale_rerun_stale_reruns_exactly_the_stale_runs(project):
    _project(project)
    project.write("xp_b.py", XP_B)
    assert project.run("-q").returncode == 0
    _edit(project, "pkg/deep.py", "x * 2", "x * 7")
    rerun = project.run("-q", "--rerun-stale", "--retries", "1")
    assert rerun.returncode == 0, rerun.output
    assert "3 complete, 2 cached in" in rerun.stdout
    by_experiment = {}
    for record in project.records():
        by_experiment.setdefault(record["experiment"], []).append(record)
    assert sorted(r["attempt"] for r in by_experiment["xp_a.xp_a"]) == [2, 2, 2]
    assert sorted(r["attempt"] for r in by_experiment["xp_b.xp_b"]) == [1, 1]
    outcomes = sorted(
        json.loads((d / "outcome.json").read_text())["y"] for d in project.run_dirs("xp_a.xp_a")
    )
    assert outcomes == [8, 15, 22]  # today's code: 7x + 1
    for run_dir in project.run_dirs("xp_a.xp_a"):  # the replaced attempt is kept, as --force
        assert json.loads((run_dir / "previous" / "1" / "run.json").read_text())["attempt"] == 1
    after = project.run("-q")
    assert "5 cached in" in after.stdout and "stale" not in after.stdout


def test_i13_stale_pool_records_the_work_tree_and_reruns_stale_runs(project):
    """``-n 2`` from a Git snapshot: workers import the snapshot, yet ``code.root`` is the
    user's work tree, and ``--rerun-stale`` reaches them through the job spec."""
    _project(project)
    git_commit_all(project.root)
    first = project.run("-q", "-n", "2")
    assert first.returncode == 0, first.output
    inline = {r["code"]["digest"] for r in project.records()}
    records = project.records()
    assert {r["code"]["root"] for r in records} == {str(project.root)}
    assert set(records[0]["code"]["files"]) == {
        "xp_a.py",
        "pkg/__init__.py",
        "pkg/mid.py",
        "pkg/deep.py",
    }
    assert len(inline) == 1
    _edit(project, "pkg/mid.py", "+ 1", "+ 2")
    assert _stale_count(project.run("-q", "-n", "2")) == 3
    rerun = project.run("-q", "-n", "2", "--rerun-stale")
    assert rerun.returncode == 0, rerun.output
    assert "3 complete" in rerun.stdout
    assert [r["attempt"] for r in project.records()] == [2, 2, 2]
    assert "3 cached in" in project.run("-q").stdout


@pytest.mark.usefixtures("slurm")
def test_i13_stale_slurm_records_the_work_tree_and_reruns_stale_runs(project):
    """A real SLURM job runs from the snapshot: ``code.root`` is still the work tree, and
    ``--rerun-stale`` reaches the batch worker (job spec settings)."""
    _project(project)
    git_commit_all(project.root)
    first = project.run("--scheduler", "slurm", "--wait", "-q", timeout=300)
    assert first.returncode == 0, first.output
    records = project.records()
    assert [r["code"]["root"] for r in records] == [str(project.root)] * 3
    assert "pkg/deep.py" in records[0]["code"]["files"]
    _edit(project, "pkg/deep.py", "return x * 2", "return x * 4")
    assert _stale_count(project.run("-q")) == 3
    rerun = project.run("--scheduler", "slurm", "--wait", "-q", "--rerun-stale", timeout=300)
    assert rerun.returncode == 0, rerun.output
    assert [r["attempt"] for r in project.records()] == [2, 2, 2]
    assert "3 cached in" in project.run("-q").stdout


def test_i13_stale_reader_column(project):
    import pandas as pd

    import xprun

    _project(project)
    project.write("xp_b.py", XP_B)
    assert project.run("-q").returncode == 0
    # A run recorded before code digests (format 1): its staleness is unknown.
    old = project.run_dirs("xp_b.xp_b")[0]
    record = json.loads((old / "run.json").read_text())
    for key in ("code", "session", "snapshot"):
        record.pop(key, None)
    record["format"] = 1
    (old / "run.json").write_text(json.dumps(record))
    _edit(project, "pkg/deep.py", "return x * 2", "return x * 2 + 0")

    def stale_by_hash():
        frame = xprun.Reader(project.log_dir).to_pandas(["hash", "experiment", "stale"])
        return dict(zip(frame["hash"], frame["stale"], strict=True))

    first, second = stale_by_hash(), stale_by_hash()  # the second from the cached index
    assert first.keys() == second.keys() and len(first) == 5
    for run_dir in project.run_dirs():
        for found in (first, second):
            value = found[run_dir.name]
            if run_dir == old:
                assert value is pd.NA
            elif run_dir.parent.name == "xp_a.xp_a":
                assert value is True
            else:
                assert value is False
    reader = xprun.Reader(project.log_dir)
    assert len(reader.filter("stale == true")) == 3
    assert len(reader.filter("stale == false")) == 1
    # A recorded file that is gone is stale too; the edit undone, the runs are fresh again.
    os.rename(project.root / "pkg" / "deep.py", project.root / "deep.moved")
    assert sum(v is True for v in stale_by_hash().values()) == 3
    os.rename(project.root / "deep.moved", project.root / "pkg" / "deep.py")
    _edit(project, "pkg/deep.py", "return x * 2 + 0", "return x * 2")
    assert sum(v is True for v in stale_by_hash().values()) == 0
    assert sum(v is False for v in reader.refresh().to_pandas(["stale"])["stale"]) == 4


def test_i13_stale_why_prints_the_changed_function_and_a_diff(project):
    _project(project)
    project.write("xp_b.py", XP_B)
    assert project.run("-q").returncode == 0
    a_hash = project.run_dirs("xp_a.xp_a")[0].name
    b_hash = project.run_dirs("xp_b.xp_b")[0].name
    _edit(project, "pkg/deep.py", "return x * 2", "return x * 9")
    why = project.run("why", a_hash[:8])
    assert why.returncode == 0, why.output
    assert f"{a_hash[:12]}" in why.stdout and "stale" in why.stdout
    assert "pkg/deep.py: changed: g (changed)" in why.stdout
    assert "Scale.by" not in why.stdout  # an unchanged method is not named
    assert "-    return x * 2" in why.stdout and "+    return x * 9" in why.stdout
    assert "xp_a.py" not in why.stdout.replace("xp_a.py::", "")  # unchanged files: not listed
    fresh = project.run("why", b_hash)
    assert fresh.returncode == 0 and "not stale" in fresh.stdout
    # Every run of an experiment (its node id), the same code explained once.
    everything = project.run("why", "xp_a.py::xp_a")
    assert everything.stdout.count("+    return x * 9") == 1
    assert everything.stdout.count("ran the same code as") == 2
    # Format 1: nothing recorded, said plainly.
    run_json = project.run_dirs("xp_b.xp_b")[0] / "run.json"
    record = json.loads(run_json.read_text())
    del record["code"]
    run_json.write_text(json.dumps(record))
    assert "not recorded" in project.run("why", b_hash).stdout
    unknown = project.run("why", "0123abcd")
    assert unknown.returncode == 4 and "0123abcd" in unknown.stderr


def test_i13_stale_why_names_added_and_removed_functions(project):
    _project(project)
    assert project.run("-q").returncode == 0
    run_hash = project.run_dirs()[0].name
    _edit(project, "pkg/deep.py", "class Scale:", "def extra():\n    return 0\n\n\nclass Scale:")
    _edit(project, "pkg/deep.py", "    def by(self, x):\n        return x\n", "    pass\n")
    why = project.run("why", run_hash)
    assert "extra (added)" in why.stdout and "Scale.by (removed)" in why.stdout


def _hashes(result) -> list[str]:
    return sorted(re.findall(r"\b[0-9a-f]{32}\b", result.stdout))


BASE = Path("/tmp/xprun-base")
BASE_PYTHON = Path("/tmp/base-venv/bin/python")


def test_i13_stale_code_version_enters_the_hash_and_nothing_else_does(project):
    _project(project)
    project.write("xp_b.py", XP_B)
    before = project.run("--collect-only", "-q")
    assert before.returncode == 0, before.output
    if BASE_PYTHON.exists() and (BASE / "xprun").is_dir():
        # The previous main (8ceb111): every hash without code_version is the same.
        env = {**project.env(), "PYTHONPATH": str(BASE)}
        base = subprocess.run(
            [str(BASE_PYTHON), "-m", "xprun", "--collect-only", "-q"],
            cwd=project.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert base.returncode == 0, base.stderr
        assert _hashes(base) == _hashes(before) and len(_hashes(before)) == 5
    _edit(project, "xp_b.py", '@xprun.config({"x": 1})', '@xprun.config({"x": 1}, code_version=2)')
    after = project.run("-q")
    assert after.returncode == 0, after.output
    changed = set(_hashes(before)) ^ set(_hashes(project.run("--collect-only", "-q")))
    assert len(changed) == 4  # the two runs of xp_b, each with a new hash
    versions = {r["experiment"]: r["code"]["version"] for r in project.records()}
    assert versions == {"xp_a.xp_a": None, "xp_b.xp_b": 2}
    bad = project.write(
        "xp_c.py", XP_B.replace("xp_b", "xp_c").replace("})", "}, code_version=1.5)", 1)
    )
    failed = project.run("--collect-only", "-q", str(bad))
    assert failed.returncode != 0 and "code_version" in failed.output


def test_i13_stale_rerun_stale_setting(project):
    _project(project)
    assert project.run("-q").returncode == 0
    _edit(project, "pkg/deep.py", "x * 2", "x * 3")
    table = '[tool.xprun]\nlog_dir = "xprun_logs"\n[tool.xprun.staleness]\nrerun_stale = '
    project.write("pyproject.toml", table + '"yes"\n')
    bad = project.run("-q")
    assert bad.returncode == 4 and "rerun_stale must be true or false" in bad.stderr
    project.write("pyproject.toml", table + "true\n")
    assert "3 complete in" in project.run("-q").stdout


def test_i13_stale_blocked_plugin_records_no_code(project):
    _project(project)
    assert project.run("-q", "-p", "no:staleness").returncode == 0
    assert all("code" not in r for r in project.records())
    _edit(project, "pkg/deep.py", "x * 2", "x * 3")
    again = project.run("-q")
    assert "3 cached in" in again.stdout and "stale" not in again.stdout  # unknown: not stale


# -- codedigest --------------------------------------------------------------------------------

FUNCTION = '''\
def {name}(a, b={default}):
    """{doc}"""
    total = a + b  # {comment}
    return total * {factor}
'''

names = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True).filter(
    lambda n: not keyword.iskeyword(n) and not keyword.issoftkeyword(n)
)
texts = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=20)


@settings(max_examples=60, deadline=None)
@given(names, st.integers(-5, 5), st.integers(0, 9), texts, texts)
def test_i13_stale_digest_ignores_docstrings_comments_and_layout(name, default, factor, doc, note):
    doc = doc.replace("\\", "").replace('"', "")
    source = FUNCTION.format(name=name, default=default, doc=doc, comment=note, factor=factor)
    relaid = "\n\n# " + note + "\n" + source.replace("a + b", "(a +\n             b)")
    relaid = relaid.replace(f'"""{doc}"""', "'''another text'''")
    assert codedigest.source_digest(source) == codedigest.source_digest(relaid)
    assert codedigest.source_digest(source) == codedigest.source_digest(source.encode())
    changed = source.replace(f"* {factor}", f"* {factor + 1}")
    assert codedigest.source_digest(source) != codedigest.source_digest(changed)
    functions = codedigest.function_digests(source)
    assert set(functions) == {name, codedigest.MODULE_LEVEL}
    assert functions == codedigest.function_digests(relaid)
    assert functions[name] != codedigest.function_digests(changed)[name]


def test_i13_stale_digest_tells_apart_what_runs_differently():
    pairs = [
        ("x = 1", "x = 1.0"),
        ("x = 1", "x = True"),
        ("x = 'a'", "x = b'a'"),
        ("def f(): return", "def f(): return None"),
        ("def f():\n    'doc'\n    return 1", "def f():\n    return 'doc'"),
        ("import a", "import b"),
        ("class A: pass", "class A(B): pass"),
        ("def f(a, b): pass", "def f(b, a): pass"),
    ]
    for first, second in pairs:
        assert codedigest.source_digest(first) != codedigest.source_digest(second), (first, second)
    # A file that does not parse is digested by its bytes, never as a parsed one.
    assert codedigest.source_digest("def (") != codedigest.source_digest("def  (")
    assert codedigest.source_digest("x = 1") != codedigest.source_digest("x = 1\n(")
    assert codedigest.function_digests("def (") == {}
    methods = codedigest.function_digests(
        "class A:\n    n = 1\n    def m(self): return 1\n    class B:\n        def k(self): pass"
    )
    assert set(methods) == {"A", "A.m", "A.B", "A.B.k", codedigest.MODULE_LEVEL}
    attribute = codedigest.function_digests(
        "class A:\n    n = 2\n    def m(self): return 1\n    class B:\n        def k(self): pass"
    )
    assert [k for k in methods if methods[k] != attribute[k]] == ["A"]


def test_i13_stale_module_files_follow_imports_under_the_rootdir_only(tmp_path, monkeypatch):
    root = tmp_path / "root"
    files = {
        "xp_m.py": "import helper\nfrom pkg import sub\nfrom pkg.inner import thing\n"
        "def f():\n    import lazy\n",
        "helper.py": "from . import nothing_here\nimport json\n",
        "lazy.py": "",
        "unused.py": "",
        "pkg/__init__.py": "",
        "pkg/sub.py": "from .inner import thing\nfrom .. import top\nfrom . import inner\n",
        "pkg.py": "",  # shadowed by the package pkg/, as Python's finder has it
        "pkg/inner.py": "thing = 1\n",
        "top.py": "",
        "logs/xp_log.py": "",
        ".venv/lib/python3.11/site-packages/helper2.py": "",
    }
    for relpath, text in files.items():
        (root / relpath).parent.mkdir(parents=True, exist_ok=True)
        (root / relpath).write_text(text)
    (root / "xp_m.py").write_text(files["xp_m.py"] + "import xp_log\nimport helper2\n")
    monkeypatch.syspath_prepend(str(root / ".venv/lib/python3.11/site-packages"))
    monkeypatch.syspath_prepend(str(root / "logs"))
    monkeypatch.syspath_prepend(str(root))
    found = codedigest.module_files(root / "xp_m.py", root, [root / "logs"])
    relative = sorted(Path(p).relative_to(root).as_posix() for p in found)
    assert relative == [
        "helper.py",
        "lazy.py",
        "pkg/__init__.py",
        "pkg/inner.py",
        "pkg/sub.py",
        "top.py",
        "xp_m.py",
    ]
    code = codedigest.experiment_code(root / "xp_m.py", root, [root / "logs"], version=3)
    assert sorted(code["files"]) == relative and code["version"] == 3
    assert code["digest"] == codedigest.code_digest(code["files"])
    (root / "unused.py").write_text("x = 2\n")  # not imported: the same code
    assert codedigest.experiment_code(root / "xp_m.py", root, [root / "logs"]) == {
        **code,
        "version": None,
    }
    (root / "pkg" / "inner.py").write_text("thing = 2\n")
    assert (
        codedigest.experiment_code(root / "xp_m.py", root, [root / "logs"])["digest"]
        != (code["digest"])
    )


def test_i13_stale_file_digest_reads_only_regular_files(tmp_path):
    assert codedigest.file_digest(tmp_path) is None
    assert codedigest.file_digest(tmp_path / "missing.py") is None
    if os.path.exists("/dev/zero"):
        assert codedigest.file_digest("/dev/zero") is None
    path = tmp_path / "a.py"
    path.write_text("x = 1\n")
    assert codedigest.file_digest(path) == codedigest.source_digest("x = 1\n")
    path.write_text("x = 3\n")  # the same size, at once: not taken from the cache
    assert codedigest.file_digest(path) == codedigest.source_digest("x = 3\n")


def test_i13_stale_docs_name_what_exists():
    docs = Path(__file__).parent.parent / "docs"
    text = (docs / "reproducibility.md").read_text()
    section = text.split("## Stale results", 1)[1].split("\n## ", 1)[0]
    for needed in ("--rerun-stale", "xprun why", "code_version", "stale"):
        assert needed in section
    assert "| `code` |" in (docs / "run-directory.md").read_text()


def test_i13_stale_a_changed_fixture_in_a_conftest_makes_its_users_stale(project):
    """A fixture computes part of every result that uses it: its conftest.py is part of the
    code of the experiments whose closure holds it, and only of those."""
    project.write(
        "sub/conftest.py",
        """\
        import xprun


        @xprun.fixture
        def offset():
            return 10
        """,
    )
    project.write(
        "sub/xp_uses.py",
        """\
        import xprun


        @xprun.grid(x=[1, 2])
        def xp_uses(config, offset):
            return {"y": config.x + offset}
        """,
    )
    project.write(
        "sub/xp_plain.py",
        """\
        import xprun


        @xprun.grid(x=[1, 2])
        def xp_plain(config):
            return {"y": config.x}
        """,
    )
    assert project.run("-q").returncode == 0
    records = {r["nodeid"].split("::")[1].split("[")[0]: r for r in project.records()}
    assert "sub/conftest.py" in records["xp_uses"]["code"]["files"]
    assert "sub/conftest.py" not in records["xp_plain"]["code"]["files"]
    project.write(
        "sub/conftest.py",
        """\
        import xprun


        @xprun.fixture
        def offset():
            return 20
        """,
    )
    result = project.run("-q")
    assert result.returncode == 0, result.output
    assert _stale_count(result) == 2, result.output
    listed = project.run("--collect-only", "-q")
    stale_lines = [line for line in listed.stdout.splitlines() if "stale" in line]
    assert len(stale_lines) == 2 and all("xp_uses" in line for line in stale_lines), listed.stdout


def test_i13_stale_another_experiment_or_a_mark_in_the_same_file_is_not_a_code_change(project):
    """A file often holds several experiments: adding one, or marking one, changes nothing
    the others compute; their helpers in the same file and their own bodies do count."""
    project.write(
        "xp_two.py",
        """\
        def helper(x):
            return x + 1


        def xp_first():
            return {"y": helper(1)}
        """,
    )
    assert project.run("-q").returncode == 0
    project.write(
        "xp_two.py",
        """\
        import xprun


        def helper(x):
            return x + 1


        @xprun.mark.slow
        def xp_first():
            return {"y": helper(1)}


        def xp_second():
            return {"z": 2}
        """,
    )
    again = project.run("-q", "xp_two.py::xp_first")
    assert again.returncode == 0, again.output
    assert "1 cached" in again.stdout and _stale_count(again) is None, again.output
    reader_stale = _reader_stale(project)
    assert list(reader_stale.values()) == [False], reader_stale
    project.write("xp_two.py", (project.root / "xp_two.py").read_text().replace("x + 1", "x + 2"))
    helper_changed = project.run("-q", "xp_two.py::xp_first")
    assert _stale_count(helper_changed) == 1, helper_changed.output
    assert list(_reader_stale(project).values()) == [True]


def _reader_stale(project) -> dict:
    import xprun

    frame = xprun.Reader(project.log_dir).to_pandas(["hash", "stale"])
    return dict(zip(frame["hash"], frame["stale"], strict=True))
