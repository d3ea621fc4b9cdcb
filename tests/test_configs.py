"""Config sources, grids, zip, command-line overrides, and bad input (exit code 4)."""

from __future__ import annotations

import pytest
import yaml

pytestmark = pytest.mark.inprocess  # xprun launched in the test's process (tests/launch.py)

HYDRA_XP = """
    import xprun

    @xprun.config(path="conf", name="train")
    def xp_hydra(config):
        return {"model": config.model.name, "width": config.model.width, "lr": config.lr,
                "scaled": config.scaled_lr}
"""


def make_hydra_project(project):
    project.write(
        "conf/train.yaml",
        """
        defaults:
          - model: small
          - _self_
        lr: 0.1
        batch: 32
        scaled_lr: ${lr}
        """,
    )
    project.write("conf/model/small.yaml", "name: small\nwidth: 16\n")
    project.write("conf/model/big.yaml", "name: big\nwidth: 256\n")
    project.write("xp_hydra.py", HYDRA_XP)


def configs(project):
    return [yaml.safe_load((d / "config.yaml").read_text()) for d in project.run_dirs()]


def test_hydra_config_dir_with_group_options_and_sweeps(project):
    make_hydra_project(project)
    result = project.run("model=small,big", "lr=0.5")
    assert result.returncode == 0, result.output
    got = sorted(
        (c["model"]["name"], c["model"]["width"], c["lr"], c["scaled_lr"]) for c in configs(project)
    )
    assert got == [("big", 256, 0.5, 0.5), ("small", 16, 0.5, 0.5)]


def test_grid_over_hydra_group_and_value(project):
    make_hydra_project(project)
    project.write(
        "xp_hydra.py",
        """
        import xprun

        @xprun.config(path="conf", name="train")
        @xprun.grid(model=["small", "big"], **{"model.width": [1, 2]})
        def xp_hydra(config):
            return {"w": config.model.width}
        """,
    )
    result = project.run()
    assert result.returncode == 0, result.output
    got = sorted((c["model"]["name"], c["model"]["width"]) for c in configs(project))
    assert got == [("big", 1), ("big", 2), ("small", 1), ("small", 2)]


def test_yaml_config_relative_to_experiment_file(project):
    project.write("exps/base.yaml", "lr: 0.25\nmodel:\n  width: 4\n")
    project.write(
        "exps/xp_yaml.py",
        """
        import xprun

        @xprun.config("base.yaml")
        @xprun.grid({"model.width": [4, 8]})
        def xp_yaml(config):
            return {"w": config.model.width}
        """,
    )
    result = project.run("seed=range(0,3)", cwd=project.root / "exps")
    assert result.returncode == 0, result.output
    got = sorted((c["model"]["width"], c["seed"], c["lr"]) for c in configs(project))
    assert got == [(w, s, 0.25) for w in (4, 8) for s in range(3)]


def test_zip_axes_vary_together_and_grids_multiply(project):
    project.write(
        "xp_zip.py",
        """
        import xprun

        @xprun.config({"lr": 0.0, "batch": 0, "opt": "sgd"})
        @xprun.grid(xprun.zip(lr=[0.1, 0.2, 0.3], batch=[16, 32, 64]))
        @xprun.grid(opt=["sgd", "adam"])
        def xp_zip(config):
            return {}
        """,
    )
    result = project.run()
    assert result.returncode == 0, result.output
    got = sorted((c["lr"], c["batch"], c["opt"]) for c in configs(project))
    assert got == sorted(
        (lr, b, o) for lr, b in [(0.1, 16), (0.2, 32), (0.3, 64)] for o in ("sgd", "adam")
    )


def test_cli_override_replaces_grid_axis_add_and_delete(project):
    project.write(
        "xp_ov.py",
        """
        import xprun

        @xprun.config({"lr": 0.1, "drop": 1, "nested": {"a": 1}})
        @xprun.grid(lr=[0.1, 0.2])
        def xp_ov(config):
            return {}
        """,
    )
    result = project.run("lr=0.9", "+new_key=abc", "~drop", "nested.a=2,3")
    assert result.returncode == 0, result.output
    got = configs(project)
    assert len(got) == 2
    for c in got:
        assert c["lr"] == 0.9 and c["new_key"] == "abc" and "drop" not in c
    assert sorted(c["nested"]["a"] for c in got) == [2, 3]


def test_interpolations_are_resolved_and_config_is_read_only(project):
    project.write(
        "xp_ro.py",
        """
        import xprun
        from omegaconf import DictConfig

        @xprun.config({"lr": 0.1, "sched": {"max_lr": "${lr}"}})
        def xp_ro(config):
            assert isinstance(config, DictConfig)
            try:
                config.lr = 1.0
            except Exception as exc:
                return {"max_lr": config.sched.max_lr, "error": type(exc).__name__}
            return {"error": None}
        """,
    )
    result = project.run("lr=0.3")
    assert result.returncode == 0, result.output
    import json

    (run_dir,) = project.run_dirs()
    outcome = json.loads((run_dir / "outcome.json").read_text())
    assert outcome == {"max_lr": 0.3, "error": "ReadonlyConfigError"}
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["sched"]["max_lr"] == 0.3


def test_excluded_keys_do_not_change_the_hash(project):
    project.write("pyproject.toml", '[tool.xprun]\nlog_dir = "xprun_logs"\nexclude = ["device"]\n')
    project.write(
        "xp_ex.py",
        """
        import xprun

        @xprun.config({"lr": 0.1, "device": "cpu", "num_workers": 1, "seed_data": 0},
                      exclude=["num_workers"])
        def xp_ex(config):
            return {}
        """,
    )
    assert project.run().returncode == 0
    result = project.run("device=cuda", "num_workers=8")
    assert "1 cached" in result.stdout, result.output
    result = project.run("seed_data=1")
    assert "1 complete" in result.stdout, result.output


# -- bad input ------------------------------------------------------------------------------

BAD_CASES = {
    "unknown key": (["lrr=0.5"], "lrr"),
    "unknown nested key": (["model.depth=3"], "model.depth"),
    "malformed override": (["lr=[1,"], "lr=[1,"),
    "unknown group option": (["model=huge"], "huge"),
    "unresolvable config": (["+bad=${missing_key}"], "missing_key"),
    "missing mandatory value": (["+must=???"], "must"),
    "interval sweep": (["lr=interval(0,1)"], "interval"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_input_exits_4_names_key_and_experiment_and_creates_nothing(project, case):
    make_hydra_project(project)
    args, key = BAD_CASES[case]
    result = project.run(*args)
    assert result.returncode == 4, result.output
    assert key in result.stderr
    if case not in ("malformed override", "interval sweep"):
        assert "xp_hydra.py::xp_hydra" in result.stderr
    assert not project.log_dir.exists()


def test_bad_override_in_mapping_config_suggests_plus(project):
    project.write(
        "xp_m.py", "import xprun\n\n@xprun.config({'a': 1})\ndef xp_m(config):\n    pass\n"
    )
    result = project.run("b=2")
    assert result.returncode == 4
    assert "xp_m.py::xp_m" in result.stderr and "+b=2" in result.stderr
    assert not project.log_dir.exists()


@pytest.mark.parametrize(
    ("decorators", "message"),
    [
        ("@xprun.grid(lr=0.1)", "grid axis 'lr' must be a list"),
        ("@xprun.grid(xprun.zip(a=[1, 2], b=[1]))", "equal lengths"),
        ("@xprun.config('missing.yaml')", "missing.yaml"),
    ],
)
def test_declaration_mistakes_are_reported_clearly(project, decorators, message):
    project.write("xp_bad.py", f"import xprun\n\n{decorators}\ndef xp_bad():\n    pass\n")
    project.write("xp_good.py", "def xp_good():\n    return {'ok': 1}\n")
    result = project.run()
    assert result.returncode in (1, 4), result.output
    assert message in result.output
    assert "xp_bad" in result.output


def test_unknown_setting_in_pyproject_is_a_usage_error(project):
    project.write("pyproject.toml", '[tool.xprun]\nlog-dir = "x"\n')
    result = project.run()
    assert result.returncode == 4
    assert "log-dir" in result.stderr and "log_dir" in result.stderr


def test_unknown_path_is_a_usage_error(project):
    result = project.run("no_such_dir")
    assert result.returncode == 4
    assert "no_such_dir" in result.stderr
