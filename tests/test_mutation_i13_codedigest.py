"""What counts as a code change, and which files are the experiment's code
(``xprun.codedigest``): each rule checked where mutation testing (tools/mutation.py) found it
unchecked.  The staleness tests (tests/test_i13_stale.py) run ``python -m xprun``, which a
mutant does not reach, and its unit tests check the digests; these check the rest.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from xprun import codedigest


def test_i13_mut_codedigest_the_digest_names_its_algorithm_and_functions_their_module():
    digest = codedigest.code_digest({"a.py": "0" * 32})
    assert digest.startswith("xxh3_128:") and len(digest) == len("xxh3_128:") + 32
    assert "<module>" in codedigest.function_digests("x = 1\ndef f(): pass\n")


def test_i13_mut_codedigest_a_file_older_than_the_racy_window_is_read_and_cached(tmp_path):
    path = tmp_path / "old.py"
    path.write_text("x = 1\n")
    hour_ago = time.time_ns() - 3600 * 10**9
    os.utime(path, ns=(hour_ago, hour_ago))
    assert codedigest.file_digest(path) == codedigest.source_digest("x = 1\n")
    # Cached by path, size and modification time, as git's index is: an edit that keeps all
    # three (made here on purpose) is not seen, which is why a file changed in the last two
    # seconds is never cached (tests/test_i13_stale.py checks that one).
    path.write_text("x = 2\n")
    os.utime(path, ns=(hour_ago, hour_ago))
    assert codedigest.file_digest(path) == codedigest.source_digest("x = 1\n")
    os.utime(path, ns=(hour_ago + 1, hour_ago + 1))
    assert codedigest.file_digest(path) == codedigest.source_digest("x = 2\n")


def test_i13_mut_codedigest_a_file_larger_than_16_mib_is_not_read(tmp_path):
    limit = 16 * 1024 * 1024
    big = tmp_path / "big.py"
    with open(big, "wb") as file:  # sparse: the size is what is checked, before any read
        file.truncate(limit + 1)
    assert codedigest.file_digest(big) is None
    with open(big, "r+b") as file:
        file.truncate(limit)  # the limit itself is read (NUL bytes: digested by its bytes)
    assert codedigest.file_digest(big) == codedigest.source_digest(b"\0" * limit)


def test_i13_mut_codedigest_a_tree_too_deep_to_walk_is_digested_by_its_bytes():
    deep = "x = a" + ".b" * 2000  # parses, but walking it recurses 2,000 levels
    digest = codedigest.source_digest(deep)
    assert isinstance(digest, str) and len(digest) == 32
    assert digest == codedigest.source_digest(deep.encode())
    assert digest != codedigest.source_digest(deep + ".b")  # more code: another digest
    assert digest != codedigest.source_digest(deep + "  # note")  # its bytes decide
    assert codedigest.function_digests(deep) == {}  # as for a file that does not parse


def test_i13_mut_codedigest_a_module_without_a_file_has_no_code(tmp_path):
    from types import ModuleType

    assert codedigest.module_files(ModuleType("made_in_memory"), tmp_path) == []
    code = codedigest.experiment_code(ModuleType("made_in_memory"), tmp_path)
    assert code["files"] == {} and code["digest"] == codedigest.code_digest({})


#: A source with a module docstring, a function with one, defaults, an annotation, a class
#: with bases, a keyword, an attribute and a method.
RECORDED = '''"""Module doc."""
import os

def f(a, b=1, *args, **kw):
    """Doc."""
    x: int = a + b
    return x

class A(Base, metaclass=M):
    n = 2
    def m(self):
        return u"t"
'''


def test_i13_mut_codedigest_digests_are_those_recorded_before():
    """A run records these digests, and a later xprun, on another Python, compares today's
    with them: they must not change, or every result would read stale.  The values were
    computed when the format was made; the tree's dump they hash was checked to be the same
    on Python 3.11, 3.12 (new empty fields: ``type_params``) and 3.13."""
    assert codedigest.source_digest(RECORDED) == "4656ddf5c118b2d0a09daac96fe33c10"
    assert codedigest.function_digests(RECORDED) == {
        "f": "bafdfc03842df0c3c3198e1bf96c849c",
        "A.m": "aa67f0ad444b290fca73b8ecd7c6f095",
        "A": "fa0dfdbeb419ebb644841e696fd780a5",
        "<module>": "7648f880cd098768d0dea10db7fb6416",
    }


def test_i13_mut_codedigest_the_statement_after_a_docstring_counts():
    for template in ('def f():\n    """doc"""\n    return {}\n', '"""doc"""\nx = {}\n'):
        one, two = template.format(1), template.format(2)
        assert codedigest.source_digest(one) != codedigest.source_digest(two), template
        assert codedigest.function_digests(one) != codedigest.function_digests(two), template


def test_i13_mut_codedigest_a_file_changed_in_the_racy_window_is_read_again(tmp_path):
    """A file whose modification time is not yet 2 seconds old (here: in the future, so
    the test does not depend on how fast it runs) is never taken from the cache: an edit
    of the same size in the same clock tick would be missed."""
    path = tmp_path / "racy.py"
    future = time.time_ns() + 3600 * 10**9
    path.write_text("x = 1\n")
    os.utime(path, ns=(future, future))
    assert codedigest.file_digest(path) == codedigest.source_digest("x = 1\n")
    path.write_text("x = 2\n")  # same size, same modification time
    os.utime(path, ns=(future, future))
    assert codedigest.file_digest(path) == codedigest.source_digest("x = 2\n")


def test_i13_mut_codedigest_an_imported_file_too_large_to_read_is_not_in_the_code(
    tmp_path, monkeypatch
):
    root = tmp_path / "root"
    root.mkdir()
    (root / "xp_m.py").write_text("import big_table\nimport helper\n")
    (root / "helper.py").write_text("x = 1\n")
    with open(root / "big_table.py", "wb") as file:
        file.truncate(16 * 1024 * 1024 + 1)  # counts as gone: not read, no digest
    monkeypatch.syspath_prepend(str(root))
    code = codedigest.experiment_code(root / "xp_m.py", root)
    assert sorted(code["files"]) == ["helper.py", "xp_m.py"]


def test_i13_mut_codedigest_lazy_imports_are_found_in_each_folder_of_sys_path(
    tmp_path, monkeypatch
):
    """Modules not imported yet are looked up in every folder of ``sys.path`` under the
    rootdir, in order: the first folder that has one wins."""
    root = tmp_path / "root"
    for relpath in ("xp_m.py", "a/first_only.py", "b/second_only.py", "a/both.py", "b/both.py"):
        (root / relpath).parent.mkdir(parents=True, exist_ok=True)
        (root / relpath).write_text("")
    (root / "xp_m.py").write_text(
        "def f():\n    import first_only, second_only, both\n"  # lazy: not in sys.modules
    )
    monkeypatch.syspath_prepend(str(root / "b"))
    monkeypatch.syspath_prepend(str(root / "a"))
    found = codedigest.module_files(root / "xp_m.py", root)
    assert sorted(str(Path(p).relative_to(root)) for p in found) == [
        "a/both.py",
        "a/first_only.py",
        "b/second_only.py",
        "xp_m.py",
    ]


def test_i13_mut_codedigest_which_files_an_experiment_in_a_subfolder_imports(tmp_path, monkeypatch):
    """Absolute imports from the rootdir (not the experiment's folder), dotted ones with
    their packages, relative ones from a package (``from . import x``, ``from .sub import
    mod``), an unreadable file among them, and a module that is not Python source."""
    import sys
    from types import ModuleType

    root = tmp_path / "root"
    files = {
        "xp/__init__.py": "",
        "xp/xp_m.py": "import helper\nimport deep.pkg.leaf\nimport native\n"
        "from . import sibling\nfrom .sub import mod\nimport big_table\n",
        "xp/sibling.py": "",
        "xp/sub/__init__.py": "",
        "xp/sub/mod.py": "",
        "helper.py": "import helper_dep\n",
        "helper_dep.py": "",
        "deep/__init__.py": "",
        "deep/pkg/__init__.py": "",
        "deep/pkg/leaf.py": "",
        "native.so": "not python",
    }
    for relpath, text in files.items():
        (root / relpath).parent.mkdir(parents=True, exist_ok=True)
        (root / relpath).write_text(text)
    with open(root / "big_table.py", "wb") as file:  # not read: its imports are unknown
        file.truncate(16 * 1024 * 1024 + 1)
    native = ModuleType("native")
    native.__file__ = str(root / "native.so")  # an extension module: not the project's source
    monkeypatch.setitem(sys.modules, "native", native)
    monkeypatch.syspath_prepend(str(root))
    found = codedigest.module_files(root / "xp" / "xp_m.py", root)
    assert sorted(Path(p).relative_to(root).as_posix() for p in found) == [
        "big_table.py",
        "deep/__init__.py",
        "deep/pkg/__init__.py",
        "deep/pkg/leaf.py",
        "helper.py",
        "helper_dep.py",
        "xp/__init__.py",
        "xp/sibling.py",
        "xp/sub/__init__.py",
        "xp/sub/mod.py",
        "xp/xp_m.py",
    ]


def test_i13_mut_codedigest_the_recorded_root_is_the_one_given(tmp_path):
    (tmp_path / "xp_m.py").write_text("")
    assert codedigest.experiment_code(tmp_path / "xp_m.py", tmp_path)["root"] == str(
        tmp_path.resolve()
    )
    code = codedigest.experiment_code(tmp_path / "xp_m.py", tmp_path, root="/work/tree")
    assert code["root"] == "/work/tree"


# -- the experiment's own module: digested as that experiment's code ----------------------------

#: Two experiments (``xp_b`` first: what follows a left-out one still counts), a helper,
#: xprun's imports and decorators.
OWN = """
import os
import xprun
from xprun import config as cfg

def xp_b(config):
    return {"v": 1}

SCALE = 2

def helper(x):
    return x * SCALE

@xprun.mark.skip(reason="slow")
@cfg({"i": 0})
def xp_a(config):
    return {"v": helper(config.i)}
"""

_A = {"function": "xp_a", "patterns": ["xp_*"]}


def _own(text: str, experiment=_A) -> str:
    return codedigest.own_module_digest(text, experiment)


def test_i13_mut_codedigest_own_module_leaves_out_other_experiments_and_xprun_only():
    base = _own(OWN)
    same = {
        "another experiment changed": OWN.replace('{"v": 1}', '{"v": 2}'),
        "another experiment removed": OWN.replace('def xp_b(config):\n    return {"v": 1}\n', ""),
        "an experiment added at the end": OWN + "\ndef xp_c():\n    return {}\n",
        "an async experiment added": OWN + "\nasync def xp_d():\n    return {}\n",
        "a mark removed": OWN.replace('@xprun.mark.skip(reason="slow")\n', ""),
        "a mark added": OWN.replace("@cfg", "@xprun.mark.slow\n@xprun.grid(i=[1])\n@cfg"),
        "an xprun import added": OWN.replace("import os\n", "import os\nimport xprun.mark\n"),
        "xprun's imports removed": OWN.replace("import xprun\n", "").replace(
            "from xprun import config as cfg\n", ""
        ),
        "an import from a module of xprun": OWN.replace(
            "import os\n", "import os\nfrom xprun.marks import mark\n"
        ),
    }
    for what, text in same.items():
        assert _own(text) == base, what
    other = {
        "the experiment changed": OWN.replace("helper(config.i)", "helper(config.i) + 1"),
        "a helper after another experiment changed": OWN.replace("x * SCALE", "x + SCALE"),
        "a constant changed": OWN.replace("SCALE = 2", "SCALE = 3"),
        "another import": OWN.replace("import os\n", "import os, sys\n"),
        "an import of xprun with another module": OWN.replace(
            "import xprun\n", "import xprun, os\n"
        ),
        "a relative import of a module named xprun": OWN.replace(
            "import os\n", "import os\nfrom .xprun import helper2\n"
        ),
        "an import of a module whose name starts with xprun": OWN.replace(
            "import os\n", "import os\nfrom xprunlike import y\n"
        ),
        "a plain import of such a module": OWN.replace(
            "import os\n", "import os\nimport xprun_x\n"
        ),
        "a decorator of another library": OWN.replace("@cfg", "@functools.cache\n@cfg"),
        "a decorator taking xprun": OWN.replace("@cfg", "@wrap(xprun)\n@cfg"),
        "a function not matching the patterns": OWN + "\ndef util():\n    return 1\n",
        "a class matching them": OWN + "\nclass xp_k:\n    pass\n",
    }
    for what, text in other.items():
        assert _own(text) != base, what
    # The experiment itself is never left out, whatever the patterns say.
    assert _own(OWN, {"function": "xp_b", "patterns": ["xp_*"]}) != base
    assert _own(
        OWN.replace('{"v": 1}', '{"v": 2}'), {"function": "xp_b", "patterns": ["xp_*"]}
    ) != (_own(OWN, {"function": "xp_b", "patterns": ["xp_*"]}))
    # Without patterns no other function is an experiment; entries that are no text are not
    # patterns.
    for patterns in (None, [], [3]):
        assert _own(
            OWN.replace('{"v": 1}', '{"v": 2}'), {"function": "xp_a", "patterns": patterns}
        ) != (_own(OWN, {"function": "xp_a", "patterns": patterns})), patterns
    assert _own(OWN, {"function": "xp_a", "patterns": [3, "xp_*"]}) == base


def test_i13_mut_codedigest_own_module_without_a_function_or_parse_is_the_file_digest():
    assert _own(OWN, {"patterns": ["xp_*"]}) == codedigest.source_digest(OWN)
    assert _own(OWN, {"function": 3, "patterns": ["xp_*"]}) == codedigest.source_digest(OWN)
    broken = OWN + "\ndef (:\n"
    assert _own(broken) == codedigest.source_digest(broken)
    assert _own(OWN.encode()) == _own(OWN)


def test_i13_mut_codedigest_experiment_code_records_the_own_module_and_conftests(
    tmp_path, monkeypatch
):
    root = tmp_path / "proj"
    monkeypatch.syspath_prepend(str(root))
    (root / "sub").mkdir(parents=True)
    (root / "xp_m.py").write_text(OWN.replace("import os\n", "import os\nimport xp_i13_lib\n"))
    (root / "xp_i13_lib.py").write_text("K = 1\n")
    (root / "sub" / "conftest.py").write_text("import xp_i13_fixlib\n")
    (root / "xp_i13_fixlib.py").write_text("F = 1\n")
    (tmp_path / "outside.py").write_text("import xp_i13_lib\n")
    own = codedigest.experiment_code(
        root / "xp_m.py",
        root,
        function="xp_a",
        patterns=["xp_*"],
        also=[root / "sub" / "conftest.py", tmp_path / "outside.py"],
    )
    assert own["own"] == {"file": "xp_m.py", "function": "xp_a", "patterns": ["xp_*"]}
    assert own["files"] == {
        "xp_m.py": _own((root / "xp_m.py").read_text()),
        "xp_i13_lib.py": codedigest.file_digest(root / "xp_i13_lib.py"),
        "sub/conftest.py": codedigest.file_digest(root / "sub" / "conftest.py"),
        "xp_i13_fixlib.py": codedigest.file_digest(root / "xp_i13_fixlib.py"),
    }
    assert own["digest"] == codedigest.code_digest(own["files"])
    assert own["root"] == str(root.resolve()) and own["version"] is None
    # Today's digest of each file, the way it was recorded.
    for relpath, digest in own["files"].items():
        assert codedigest.recorded_digest(root / relpath, relpath, own) == digest, relpath
    assert codedigest.recorded_digest(root / "gone.py", "xp_m.py", own) is None
    assert codedigest.recorded_digest(root / "xp_m.py", "xp_m.py", {}) == (
        codedigest.file_digest(root / "xp_m.py")
    )
    assert codedigest.recorded_digest(root / "xp_m.py", "xp_m.py", {"own": "xp_m.py"}) == (
        codedigest.file_digest(root / "xp_m.py")
    )
    # Without the experiment's name: the whole file, and no "own".
    plain = codedigest.experiment_code(root / "xp_m.py", root, root="/elsewhere", version=3)
    assert "own" not in plain and plain["root"] == "/elsewhere" and plain["version"] == 3
    assert plain["files"] == {
        "xp_m.py": codedigest.file_digest(root / "xp_m.py"),
        "xp_i13_lib.py": codedigest.file_digest(root / "xp_i13_lib.py"),
    }
    # A module outside the rootdir is no file of the project (no "own" either), but the
    # project's modules it imports are, whichever sorts first.
    outside = codedigest.experiment_code(
        tmp_path / "outside.py", root, function="xp_a", patterns=["xp_*"]
    )
    assert str(tmp_path / "outside.py") < str(root / "xp_i13_lib.py")
    assert "own" not in outside
    assert outside["files"] == {"xp_i13_lib.py": codedigest.file_digest(root / "xp_i13_lib.py")}
