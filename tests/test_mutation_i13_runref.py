"""Which run directories a word names (``xprun.runref``): hashes, prefixes, node ids, queries.

A wrong answer reproduces, diffs or deletes the wrong run, so each rule is checked where
mutation testing (tools/mutation.py) found it unchecked.  The runs are made by a session run
in-process (tests/inprocess.py) and looked up through the public ``RunResolver``: a mutant
loaded in the test's process is the one used (tests/test_i13_reproduce.py and
tests/test_i13_cleanup.py run ``python -m xprun``, which would import the original).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import inprocess as _inprocess
import pytest
from conftest import Project

from xprun import runref
from xprun.errors import UsageError

EXPERIMENT = """
import xprun

@xprun.config({"x": 3})
@xprun.grid(x=[3, 4])
def xp_calc(config):
    return {"score": config.x}

def xp_other(config):
    return {"score": 0}

@xprun.config({"y": 0})
@xprun.grid(y=list(range(21)))
def xp_many(config):
    return {"score": config.y}
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """A project with recorded runs: ``xp_calc[x=3]``, ``xp_calc[x=4]``, ``xp_other``, and 21
    of ``xp_many``."""
    project = Project(tmp_path_factory.mktemp("runref"))
    project.write("xp_calc.py", EXPERIMENT)
    with pytest.MonkeyPatch.context() as monkeypatch:
        result = _inprocess.InProcess(project, monkeypatch).run("-q")
    assert result.ret == 0, result.output
    assert len(result.run_dirs()) == 24
    return project


def _dir(project: Project, nodeid: str) -> Path:
    (found,) = [
        d for d in project.log_dir.glob("[!.]*/[!.]*") if _record(d).get("nodeid") == nodeid
    ]
    return found.resolve()


def _record(path: Path) -> dict:
    try:
        return json.loads((path / "run.json").read_text())
    except OSError:
        return {}


def test_i13_mut_runref_a_hash_and_its_4_character_prefix_name_the_run(runs):
    run = _dir(runs, "xp_calc.py::xp_calc[x=3]")
    resolver = runref.RunResolver(runs.log_dir, cwd=runs.root)
    assert resolver.resolve(run.name) == [run]
    others = [d.name for d in runs.log_dir.glob("[!.]*/[!.]*") if d.resolve() != run]
    prefix = run.name[:4]
    if any(name.startswith(prefix) for name in others):  # pragma: no cover - 1 in 20,000
        pytest.skip("another run shares the 4-character prefix")
    assert resolver.resolve(prefix) == [run]  # 4 is enough
    assert runref.resolve_one(runs.log_dir, prefix) == run
    with pytest.raises(UsageError, match="too short: give at least 4 characters"):
        resolver.resolve(prefix[:3])
    assert runref.is_hash_word(run.name) and runref.is_hash_word("0a9f")
    assert not runref.is_hash_word("0a9g") and not runref.is_hash_word("xp_calc")
    assert not runref.is_hash_word("0A9F")  # lowercase only, as hashes are written


def test_i13_mut_runref_an_empty_word_is_a_usage_error(runs):
    for word in ("", "  "):
        with pytest.raises(UsageError, match="an empty word names no run"):
            runref.resolve(runs.log_dir, [word])


def test_i13_mut_runref_node_ids_name_one_run_or_all_of_an_experiment(runs, monkeypatch):
    three = _dir(runs, "xp_calc.py::xp_calc[x=3]")
    four = _dir(runs, "xp_calc.py::xp_calc[x=4]")
    other = _dir(runs, "xp_calc.py::xp_other")
    resolver = runref.RunResolver(runs.log_dir, cwd=runs.root)
    assert resolver.resolve("xp_calc.py::xp_calc[x=4]") == [four]
    assert resolver.resolve("xp_calc.py::xp_calc") == sorted([three, four])
    assert resolver.resolve("xp_calc.py::xp_other") == [other]  # not xp_calc's, nor a prefix
    with pytest.raises(UsageError, match=re.escape("the node id 'xp_calc.py::xp_calc[x=5]'")):
        resolver.resolve("xp_calc.py::xp_calc[x=5]")
    with pytest.raises(UsageError, match=r"matches 2 runs, and one is wanted"):
        resolver.resolve_one("xp_calc.py::xp_calc")
    # The path relative to the current folder, as ``xprun`` reads it, from a subfolder.
    sub = runs.root / "sub"
    sub.mkdir(exist_ok=True)
    below = runref.RunResolver(runs.log_dir, cwd=sub)  # the folder given, not this process's
    assert below.resolve("../xp_calc.py::xp_calc[x=3]") == [three]
    monkeypatch.chdir(sub)  # without one: this process's
    assert runref.resolve(runs.log_dir, ["../xp_calc.py::xp_calc[x=3]"]) == [three]


def test_i13_mut_runref_resolve_all_keeps_the_first_order_and_each_run_once(runs):
    three = _dir(runs, "xp_calc.py::xp_calc[x=3]")
    four = _dir(runs, "xp_calc.py::xp_calc[x=4]")
    words = [four.name, "xp_calc.py::xp_calc", three.name]
    assert runref.RunResolver(runs.log_dir, cwd=runs.root).resolve_all(words) == [four, three]


def test_i13_mut_runref_queries_go_to_the_reader(runs):
    three = _dir(runs, "xp_calc.py::xp_calc[x=3]")
    resolver = runref.RunResolver(runs.log_dir, cwd=runs.root)
    assert resolver.resolve("config.x == 3") == [three]
    assert len(resolver.resolve("status == complete")) == 24
    with pytest.raises(UsageError, match=re.escape("the query 'config.x == 9'")):
        resolver.resolve("config.x == 9")
    with pytest.raises(UsageError, match=re.escape("'config.x >' is not a hash")):
        resolver.resolve("config.x >")


def test_i13_mut_runref_a_log_dir_that_does_not_exist_is_a_usage_error(tmp_path):
    resolver = runref.RunResolver(tmp_path / "nothing")
    with pytest.raises(UsageError):
        resolver.resolve("config.x == 3")
    assert runref.hash_matches(tmp_path / "nothing", "abcd") == []


def test_i13_mut_runref_hash_matches_skips_dot_folders_files_and_unreadable_records(tmp_path):
    log = tmp_path / "logs"
    good = log / "xp_a.xp_a" / ("abcd" + "0" * 28)
    good.mkdir(parents=True)
    (good / "run.json").write_text(json.dumps({"nodeid": "xp_a.py::xp_a"}))
    for bad, text in [("abcd" + "1" * 28, "{no json"), ("abcd" + "2" * 28, "[1, 2]")]:
        (log / "xp_a.xp_a" / bad).mkdir()
        (log / "xp_a.xp_a" / bad / "run.json").write_text(text)
    (log / "xp_a.xp_a" / ("abcd" + "3" * 28)).mkdir()  # no record at all
    later = log / "xp_a.xp_a" / ("abcd" + "5" * 28)  # after the unreadable ones
    later.mkdir()
    (later / "run.json").write_text(json.dumps({"nodeid": "xp_a.py::xp_a[5]"}))
    trashed = log / ".xprun-trash" / ("abcd" + "4" * 28)  # xprun's own folder: never a run
    shutil.copytree(good, trashed)
    (log / "abcd-file").write_text("a file of the log directory, not an experiment folder")
    assert runref.hash_matches(log, "abcd") == [
        (good, {"nodeid": "xp_a.py::xp_a"}),
        (later, {"nodeid": "xp_a.py::xp_a[5]"}),
    ]
    assert runref.hash_matches(log, "abce") == []
    assert runref.resolve(log, ["abcd0"]) == [good.resolve()]


def test_i13_mut_runref_an_ambiguous_prefix_lists_its_runs(tmp_path):
    log = tmp_path / "logs"
    names = []
    for i in range(2):
        run = log / "xp_a.xp_a" / (f"abcd0{i}" + "0" * 26)
        run.mkdir(parents=True)
        (run / "run.json").write_text(json.dumps({"nodeid": f"xp_a.py::xp_a[i={i}]"}))
        names.append(run)
    nameless = log / "xp_a.xp_a" / ("abcd2" + "0" * 27)
    nameless.mkdir()
    (nameless / "run.json").write_text(json.dumps({"nodeid": None}))
    with pytest.raises(UsageError) as info:
        runref.resolve(log, ["abcd"])
    message = str(info.value)
    assert message.startswith("hash prefix abcd is ambiguous: it matches 3 runs; give more")
    assert message.endswith(  # sorted; a run without a node id is listed by its path
        f":\n  {nameless.resolve()}\n  {names[0].name[:12]}  xp_a.py::xp_a[i=0]"
        f"\n  {names[1].name[:12]}  xp_a.py::xp_a[i=1]"
    )
    assert runref.resolve(log, ["abcd01"]) == [names[1].resolve()]
    with pytest.raises(UsageError, match="hash prefix abcd0 is ambiguous: it matches 2 runs"):
        runref.resolve(log, ["abcd0"])  # two are as many as three


def test_i13_mut_runref_an_ambiguity_shows_at_most_20_runs():
    twenty = [f"run{i:02d}" for i in range(20)]
    shown = runref.ambiguous_prefix("abcd", twenty)
    assert shown.endswith("\n  run19") and "..." not in shown and "matches 20 runs" in shown
    more = runref.ambiguous_prefix("abcd", [*twenty, "run20"])
    assert more.endswith("\n  run19\n  ...") and "run20" not in more
    assert "matches 21 runs" in more
    assert runref.ambiguous_prefix("abcd", ["b", "a"]).endswith("\n  a\n  b")  # sorted


def test_i13_mut_runref_the_log_dir_is_the_one_given_else_the_projects(runs, monkeypatch):
    monkeypatch.chdir(runs.root)
    assert runref.default_log_dir("elsewhere") == (runs.root / "elsewhere").resolve()
    assert runref.default_log_dir(None) == runs.log_dir.resolve()


def test_i13_mut_runref_one_run_wanted_lists_at_most_20_of_those_named(runs):
    resolver = runref.RunResolver(runs.log_dir, cwd=runs.root)
    with pytest.raises(UsageError, match="matches 21 runs") as more:
        resolver.resolve_one("xp_calc.py::xp_many")
    assert str(more.value).endswith("\n  ...") and str(more.value).count("xp_many[") == 20
    with pytest.raises(UsageError, match="matches 20 runs") as twenty:
        resolver.resolve_one("config.y < 20")
    assert "..." not in str(twenty.value) and str(twenty.value).count("xp_many[") == 20


def test_i13_mut_runref_a_run_without_a_node_id_is_named_by_hash_or_query_only(runs, tmp_path):
    log = tmp_path / "logs"
    shutil.copytree(runs.log_dir, log, ignore=shutil.ignore_patterns(".*"))
    source = _dir(runs, "xp_calc.py::xp_calc[x=3]")
    nameless = log / source.parent.name / ("f" * 32)
    shutil.copytree(source, nameless)
    record = json.loads((nameless / "run.json").read_text())
    del record["nodeid"]
    record["hash"] = nameless.name
    (nameless / "run.json").write_text(json.dumps(record))
    resolver = runref.RunResolver(log, cwd=runs.root)
    assert nameless.resolve() not in resolver.resolve("xp_calc.py::xp_calc")
    assert nameless.resolve() in resolver.resolve("config.x == 3")


def test_i13_mut_runref_a_folder_that_cannot_be_listed_does_not_hide_the_others(
    tmp_path, monkeypatch
):
    """An experiment folder whose listing fails (removed meanwhile, or unreadable: this runs
    as root, so the failure is injected) is passed over, not the end of the search."""
    log = tmp_path / "logs"
    for folder in ("xp_a.xp_a", "xp_b.xp_b"):
        run = log / folder / ("abcd" + "0" * 28)
        run.mkdir(parents=True)
        (run / "run.json").write_text(json.dumps({"nodeid": folder}))
    listing = runref.os.scandir

    def scandir(path):
        if str(path).endswith("xp_a.xp_a"):
            raise PermissionError(13, "Permission denied", str(path))
        return listing(path)

    monkeypatch.setattr(runref.os, "scandir", scandir)
    assert [record for _, record in runref.hash_matches(log, "abcd")] == [{"nodeid": "xp_b.xp_b"}]


def test_i13_mut_runref_a_run_gone_since_the_reader_read_it_is_listed_by_its_path(tmp_path):
    log = tmp_path / "logs"
    runs = []
    for i in range(2):
        run = log / "xp_a.xp_a" / (f"abcd{i}" + "0" * 27)
        run.mkdir(parents=True)
        runs.append(run)
    assert runref._name(runs[0]) == str(runs[0])  # no record to name it by
    (runs[1] / "run.json").write_text(json.dumps({"nodeid": "xp_a.py::xp_a"}))
    assert runref._name(runs[1]) == f"{runs[1].name[:12]}  xp_a.py::xp_a"


def test_i13_mut_runref_a_label_that_names_no_run_lists_the_experiments_runs(runs):
    resolver = runref.RunResolver(runs.log_dir, cwd=runs.root)
    with pytest.raises(UsageError) as wrong:
        resolver.resolve("xp_calc.py::xp_calc[x=5]")
    assert str(wrong.value).endswith(
        "; the runs of xp_calc.py::xp_calc are:\n"
        "  xp_calc.py::xp_calc[x=3]\n  xp_calc.py::xp_calc[x=4]"
    )
    with pytest.raises(UsageError) as other:  # an experiment without labels: its one run
        resolver.resolve("xp_calc.py::xp_other[x=1]")
    assert str(other.value).endswith("are:\n  xp_calc.py::xp_other")
    with pytest.raises(UsageError) as many:
        resolver.resolve("xp_calc.py::xp_many[y=99]")
    listed = str(many.value).count("\n  xp_calc.py::xp_many[")
    assert str(many.value).endswith("\n  ...") and listed == 20
    with pytest.raises(UsageError) as unknown:  # no such experiment: nothing to list
        resolver.resolve("xp_calc.py::xp_nothing[x=1]")
    assert str(unknown.value).endswith("matches the node id 'xp_calc.py::xp_nothing[x=1]'")
