"""Trust in collection (issue 8): one folder per experiment, safe names, nothing collected
that cannot run, no silent exit while importing."""

from __future__ import annotations

import json

import pytest

import xprun

pytestmark = pytest.mark.inprocess  # xprun launched in the test's process (tests/launch.py)

# -- issue 8 item 4: two experiments never share a folder -------------------------------------

TRAIN = "def xp_train():\n    return {{'domain': '{}'}}\n"


def test_i8_04_same_file_and_function_in_two_folders_get_two_folders(project):
    project.write("vision/xp_train.py", TRAIN.format("vision"))
    project.write("nlp/xp_train.py", TRAIN.format("nlp"))
    assert project.run("vision").returncode == 0
    assert project.run("nlp").returncode == 0
    frame = xprun.Reader(project.log_dir).to_pandas()
    assert sorted(zip(frame["experiment"], frame["outcome.domain"], strict=True)) == [
        ("nlp.xp_train.xp_train", "nlp"),
        ("vision.xp_train.xp_train", "vision"),
    ]
    both = project.run("-v")  # together as well: no clash, both cached
    assert both.returncode == 0, both.output
    assert both.output.lower().count("cached") >= 2


def test_i8_04_a_folder_owned_by_another_experiment_is_refused_in_every_invocation(project):
    project.write("xp_a.py", "def xp_train():\n    return {'who': 'a'}\n")
    project.write(
        "xp_b.py",
        "import xprun\n\n@xprun.config(experiment='xp_a.xp_train')\n"
        "def xp_train():\n    return {'who': 'b'}\n",
    )
    assert project.run("xp_a.py").returncode == 0
    before = project.run_dirs()
    refused = project.run("xp_b.py")
    assert refused.returncode == 4, refused.output
    assert "xp_b.py::xp_train" in refused.stderr and "xp_a.py::xp_train" in refused.stderr
    assert "experiment=" in refused.stderr
    assert project.run_dirs() == before
    assert project.run("xp_a.py").returncode == 0  # the owner still runs
    listing = project.run("xp_b.py", "--collect-only")
    assert listing.returncode == 4, listing.output


def test_i8_04_an_upgrade_keeps_a_nested_experiment_in_its_old_folder(project):
    """xprun 0.1 put sub/xp_a.py::xp_train in ``xp_a.xp_train``; upgrading must not rerun it."""
    project.write(
        "sub/xp_a.py",
        "import xprun\n\n@xprun.grid(k=[1, 2])\n@xprun.config({'k': 0})\n"
        "def xp_train(config):\n"
        "    with open('calls.txt', 'a') as f:\n        f.write('x')\n"
        "    return {'k': config.k}\n",
    )
    assert project.run().returncode == 0
    calls = (project.root / "calls.txt").read_text()
    assert calls == "xx"
    # What 0.1 left behind: the same runs (same hashes) under the old folder name.
    (project.log_dir / "sub.xp_a.xp_train").rename(project.log_dir / "xp_a.xp_train")
    again = project.run("-v")
    assert again.returncode == 0, again.output
    assert "2 cached" in again.output, again.output
    assert (project.root / "calls.txt").read_text() == calls  # nothing ran twice
    assert not (project.log_dir / "sub.xp_a.xp_train").exists()
    # A top-level experiment of the same file and function name is not given those runs.
    project.write("xp_a.py", "def xp_train():\n    return {}\n")
    clash = project.run("xp_a.py")
    assert clash.returncode == 4, clash.output
    assert "sub/xp_a.py::xp_train" in clash.stderr


# -- issue 8 item 18: experiment names are folder names -----------------------------------------

BAD_NAMES = ["../../x", "..", ".", ".hidden", "a/b", "a\\b", "x" * 300, "a\x00b", "a\nb", "", " "]


@pytest.mark.parametrize("name", BAD_NAMES, ids=lambda n: repr(n)[:20])
def test_i8_18_a_name_that_is_not_one_plain_folder_is_a_usage_error(project, name):
    project.write(
        "xp_a.py",
        f"import xprun\n\n@xprun.config(experiment={name!r})\ndef xp_a():\n    return {{}}\n",
    )
    result = project.run()
    assert result.returncode == 4, result.output
    assert "experiment=" in result.stderr and "xp_a" in result.stderr
    assert "INTERNAL ERROR" not in result.output
    created = [p.name for p in project.root.parent.iterdir() if p.name != project.root.name]
    assert created == []  # nothing beside the project (../../x would land there)
    assert not project.log_dir.exists() or not any(project.log_dir.rglob("run.json"))


def test_i8_18_an_absolute_name_writes_nothing_outside_the_log_dir(project, tmp_path):
    outside = tmp_path / "elsewhere"
    project.write(
        "xp_a.py",
        f"import xprun\n\n@xprun.config(experiment={str(outside)!r})\n"
        "def xp_a():\n    return {}\n",
    )
    result = project.run()
    assert result.returncode == 4, result.output
    assert not outside.exists()


def test_i8_18_a_plain_name_still_works(project):
    project.write(
        "xp_a.py",
        "import xprun\n\n@xprun.config(experiment='mnist v2 (ablation)')\n"
        "def xp_a():\n    return {}\n",
    )
    assert project.run().returncode == 0
    assert len(project.run_dirs("mnist v2 (ablation)")) == 1


# -- issue 8 item 25: what cannot run is not collected ------------------------------------------

GOOD = "def xp_good():\n    return {'ok': 1}\n"


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("async def xp_bad():\n    return {}\n", "async def"),
        ("async def xp_bad():\n    yield {}\n", "async def"),
        ("def xp_bad():\n    yield {}\n", "generator"),
        ("def xp_bad(config, /):\n    return {}\n", "positional-only"),
        (
            "import xprun\n\n@xprun.fixture\nasync def data():\n    return 1\n\n"
            "def xp_bad(data):\n    return {}\n",
            "async def",
        ),
        (
            "import xprun\n\n@xprun.fixture\ndef data(config, /):\n    return 1\n\n"
            "def xp_bad(data):\n    return {}\n",
            "positional-only",
        ),
        (
            "import xprun\n\n@xprun.fixture\ndef a(b):\n    return 1\n\n"
            "@xprun.fixture\ndef b(c):\n    return 1\n\n"
            "@xprun.fixture\ndef c(a):\n    return 1\n\n"
            "def xp_bad(a):\n    return {}\n",
            "cycle",
        ),
        (
            "import xprun\n\n@xprun.fixture\ndef data(data):\n    return 1\n\n"
            "def xp_bad(data):\n    return {}\n",
            "cycle",
        ),
    ],
    ids=[
        "async",
        "async-generator",
        "generator",
        "positional-only",
        "async-fixture",
        "positional-only-fixture",
        "fixture-cycle",
        "fixture-requests-itself",
    ],
)
def test_i8_25_an_experiment_that_cannot_run_is_a_collection_error(project, source, reason):
    project.write("xp_bad.py", source)
    project.write("xp_good.py", GOOD)
    result = project.run()
    assert result.returncode == 1, result.output
    assert "xp_bad.py::xp_bad" in result.output and reason in result.output
    assert "RecursionError" not in result.output
    assert [d.parent.name for d in project.run_dirs()] == ["xp_good.xp_good"]
    assert project.records()[0]["status"] == "complete"


# -- issue 9 item 9 (collection half): exiting while being imported ------------------------------


@pytest.mark.parametrize(
    ("where", "code"),
    [
        ("xp_bad.py", "import sys\nsys.exit(0)\n"),
        ("xp_bad.py", "raise SystemExit(3)\n"),
        ("xp_bad.py", "class Stop(BaseException):\n    pass\n\nraise Stop('no')\n"),
        ("sub/conftest.py", "import sys\nsys.exit(0)\n"),
    ],
    ids=["module-sys-exit-0", "module-system-exit-3", "module-base-exception", "conftest"],
)
def test_i9_09_exiting_at_import_is_a_collection_error(project, where, code):
    project.write(where, code)
    project.write("sub/xp_sub.py", "def xp_sub():\n    return {}\n")
    project.write("xp_good.py", GOOD)
    result = project.run()
    assert result.returncode == 1, result.output
    assert where in result.output
    assert "Stop" in result.output or "SystemExit" in result.output
    assert "xp_good.xp_good" in {d.parent.name for d in project.run_dirs()}
    summary = result.stdout.strip().splitlines()[-1]
    assert "error" in summary, summary
    record = json.loads((project.run_dirs("xp_good.xp_good")[0] / "run.json").read_text())
    assert record["status"] == "complete"
