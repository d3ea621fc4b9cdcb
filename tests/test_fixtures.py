"""Fixtures: injection by name, scopes, teardown, layering, params."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.inprocess  # xprun launched in the test's process (tests/launch.py)


def outcomes(project, experiment=None):
    return [json.loads((d / "outcome.json").read_text()) for d in project.run_dirs(experiment)]


def test_scopes_dependencies_and_teardown_order(project):
    events = project.root / "events.txt"
    project.write(
        "conftest.py",
        f"""
        import xprun

        def log(text):
            with open({str(events)!r}, "a") as f:
                f.write(text + "\\n")

        @xprun.fixture(scope="session")
        def database():
            log("db up")
            yield {{"rows": 3}}
            log("db down")

        @xprun.fixture
        def table(database, config):
            log(f"table up {{config.i}}")
            yield database["rows"] * 10 + config.i
            log(f"table down {{config.i}}")
        """,
    )
    project.write(
        "xp_fx.py",
        """
        import xprun

        @xprun.grid(i=[1, 2])
        def xp_fx(table, seed, run_dir, run):
            assert run_dir == run.run_dir and run.attempt == 1 and len(run.hash) == 32
            return {"table": table, "seed": seed}
        """,
    )
    result = project.run()
    assert result.returncode == 0, result.output
    assert sorted(o["table"] for o in outcomes(project)) == [31, 32]
    assert events.read_text().splitlines() == [
        "db up",
        "table up 1",
        "table down 1",
        "table up 2",
        "table down 2",
        "db down",
    ]


def test_yield_fixture_tears_down_when_the_run_fails(project):
    marker = project.root / "torn_down"
    project.write(
        "xp_fail.py",
        f"""
        import pathlib
        import xprun

        @xprun.fixture
        def resource():
            yield 1
            pathlib.Path({str(marker)!r}).write_text("yes")

        def xp_fail(resource):
            raise RuntimeError("experiment broke")
        """,
    )
    result = project.run()
    assert result.returncode == 1
    assert marker.read_text() == "yes"
    (record,) = project.records()
    assert record["status"] == "failed"
    assert record["error"]["type"] == "RuntimeError"
    (run_dir,) = project.run_dirs()
    assert "RuntimeError: experiment broke" in (run_dir / "error.txt").read_text()


def test_closer_fixture_overrides_further_one(project):
    project.write("conftest.py", "import xprun\n\n@xprun.fixture\ndef data():\n    return 'root'\n")
    project.write("a/conftest.py", "import xprun\n\n@xprun.fixture\ndef data():\n    return 'a'\n")
    project.write("a/xp_a.py", "def xp_a(data):\n    return {'data': data}\n")
    project.write("b/xp_b.py", "def xp_b(data):\n    return {'data': data}\n")
    project.write(
        "c/xp_c.py",
        "import xprun\n\n@xprun.fixture\ndef data():\n    return 'module'\n\n"
        "def xp_c(data):\n    return {'data': data}\n",
    )
    result = project.run()
    assert result.returncode == 0, result.output
    assert outcomes(project, "a.xp_a.xp_a") == [{"data": "a"}]
    assert outcomes(project, "b.xp_b.xp_b") == [{"data": "root"}]
    assert outcomes(project, "c.xp_c.xp_c") == [{"data": "module"}]


def test_builtin_fixture_can_be_overridden(project):
    project.write("conftest.py", "import xprun\n\n@xprun.fixture\ndef seed():\n    return 42\n")
    project.write("xp_s.py", "def xp_s(seed):\n    return {'seed': seed}\n")
    assert project.run().returncode == 0
    assert outcomes(project) == [{"seed": 42}]


def test_fixture_params_multiply_runs_and_enter_identity(project):
    project.write(
        "xp_p.py",
        """
        import xprun

        @xprun.fixture(params=["mnist", "cifar"])
        def dataset(request):
            return request.param

        @xprun.fixture(params=[{"k": 1}, {"k": 2}], ids=["small", "large"])
        def model(request):
            return request.param["k"]

        @xprun.grid(lr=[0.1, 0.2])
        def xp_p(dataset, model, config):
            return {"dataset": dataset, "model": model, "lr": config.lr}
        """,
    )
    listing = project.run("--collect-only")
    assert listing.returncode == 0, listing.output
    assert "xp_p.py::xp_p[lr=0.1-cifar-large]" in listing.stdout
    result = project.run()
    assert result.returncode == 0, result.output
    got = sorted((o["dataset"], o["model"], o["lr"]) for o in outcomes(project))
    assert got == sorted(
        (d, m, lr) for d in ("mnist", "cifar") for m in (1, 2) for lr in (0.1, 0.2)
    )
    params = sorted(tuple(sorted(r["params"].items())) for r in project.records())
    assert len(set(params)) == 4 and (("dataset", "cifar"), ("model", "small")) in params
    assert len({d.name for d in project.run_dirs()}) == 8


def test_unknown_fixture_is_a_collection_error_listing_fixtures(project):
    project.write("conftest.py", "import xprun\n\n@xprun.fixture\ndef dataset():\n    return 1\n")
    project.write(
        "xp_u.py", "def xp_u(datset):\n    pass\n\ndef xp_ok(dataset):\n    return {'d': dataset}\n"
    )
    result = project.run()
    assert result.returncode == 1
    assert "fixture 'datset' not found" in result.stdout
    assert (
        "available fixtures: config, dataset, logger, request, run, run_dir, seed" in result.stdout
    )
    assert "did you mean 'dataset'?" in result.stdout
    assert outcomes(project) == [{"d": 1}]


def test_session_fixture_requesting_run_fixture_is_an_error(project):
    project.write(
        "xp_scope.py",
        """
        import xprun

        @xprun.fixture(scope="session")
        def cache(config):
            return 1

        def xp_scope(cache):
            pass
        """,
    )
    result = project.run()
    assert result.returncode == 1
    assert "session-scoped fixture 'cache'" in result.stdout and "'config'" in result.stdout


def test_seeding_makes_random_draws_reproducible(project):
    project.write(
        "xp_rand.py",
        """
        import random
        import numpy as np
        import xprun

        @xprun.grid(seed=[0, 0, 1][:2] + [1])
        def xp_rand(seed):
            return {"py": random.random(), "np": float(np.random.rand())}
        """,
    )
    assert project.run().returncode == 0
    first = {r["hash"]: o for r, o in zip(project.records(), outcomes(project), strict=True)}
    assert len(first) == 2  # seed 0 was listed twice: one run
    assert project.run("--force").returncode == 0
    second = {r["hash"]: o for r, o in zip(project.records(), outcomes(project), strict=True)}
    assert first == second
    values = list(first.values())
    assert values[0] != values[1]
