"""Issue 12, Hydra's habits: override-key typos, Reader types (first-day items 10 and 16),
``--cfg``/``--info``, ``addopts`` and ``-p``, and the Hydra configs users already have.

Everything runs through the real CLI (``python -m xprun``) or the public ``xprun.Reader``.
"""

from __future__ import annotations

import pytest

from tests.conftest import Project

pytestmark = pytest.mark.inprocess  # xprun launched in the test's process (tests/launch.py)

SWEEP = """
    import xprun

    @xprun.config({"lr": 0.1, "model": {"width": 2, "depth": 1}})
    def xp_train(config):
        return {"loss": config.lr}
"""


# -- first-day item 10: a typo in an override key -------------------------------------------


def test_i12_10_override_typo_says_did_you_mean(project: Project) -> None:
    project.write("xp_train.py", SWEEP)
    result = project.run("lrr=0.1")
    assert result.returncode == 4, result.output
    assert "Did you mean 'lr'?" in result.stderr
    result = project.run("model.widht=3", "--collect-only")
    assert result.returncode == 4, result.output
    assert "Did you mean 'model.width'?" in result.stderr
    result = project.run("~model.dept")
    assert result.returncode == 4
    assert "Did you mean 'model.depth'?" in result.stderr
    assert not project.run_dirs()


def test_i12_10_override_far_from_every_key_has_no_guess(project: Project) -> None:
    project.write("xp_train.py", SWEEP)
    result = project.run("optimizer=adam")
    assert result.returncode == 4
    assert "Could not override 'optimizer'" in result.stderr
    assert "Did you mean" not in result.stderr


# -- addopts and -p -----------------------------------------------------------------------------


def test_i12_addopts_from_pyproject_come_first(project: Project) -> None:
    project.write("pyproject.toml", '[tool.xprun]\naddopts = ["--collect-only", "-k", "b"]\n')
    project.write(
        "xp_two.py",
        """
        import xprun

        def xp_a(config):
            pass

        def xp_b(config):
            pass
        """,
    )
    result = project.run()
    assert result.returncode == 0, result.output
    assert "xp_two.py::xp_b" in result.stdout
    assert "xp_two.py::xp_a" not in result.stdout
    assert not project.run_dirs()  # --collect-only came from addopts: nothing ran
    # The command line comes after addopts, so its -k wins.
    result = project.run("-k", "a")
    assert "xp_two.py::xp_a" in result.stdout and "xp_two.py::xp_b" not in result.stdout


def test_i12_addopts_string_is_split_as_a_shell_would(project: Project) -> None:
    project.write("pyproject.toml", "[tool.xprun]\naddopts = \"--co -k 'a or b'\"\n")
    project.write("xp_two.py", "def xp_a(config):\n    pass\ndef xp_c(config):\n    pass\n")
    result = project.run()
    assert result.returncode == 0, result.output
    assert "xp_two.py::xp_a" in result.stdout and "xp_two.py::xp_c" not in result.stdout


def test_i12_addopts_environment_variable(project: Project) -> None:
    project.write("xp_two.py", "def xp_a(config):\n    pass\ndef xp_b(config):\n    pass\n")
    result = project.run(env={"XPRUN_ADDOPTS": "--co -k b"})
    assert result.returncode == 0, result.output
    assert "xp_two.py::xp_b" in result.stdout and "xp_two.py::xp_a" not in result.stdout
    assert not project.run_dirs()
    result = project.run(env={"XPRUN_ADDOPTS": "-k 'unclosed"})
    assert result.returncode == 4
    assert "XPRUN_ADDOPTS" in result.stderr


def test_i12_addopts_setting_is_type_checked(project: Project) -> None:
    project.write("pyproject.toml", "[tool.xprun]\naddopts = [1]\n")
    project.write("xp_two.py", "def xp_a(config):\n    pass\n")
    result = project.run()
    assert result.returncode == 4
    assert "addopts must be" in result.stderr


def test_i12_plugin_option_read_as_the_parser_reads_it(project: Project) -> None:
    project.write("xp_two.py", "def xp_a(config):\n    pass\n")
    # -q and -p combined: the parser accepts it, so the block must happen too.
    result = project.run("-qpno:terminal")
    assert result.returncode == 0, result.output
    assert "session starts" not in result.stdout and "complete" not in result.stdout
    # -k's value is not a plugin: the parser's own message, not an import of "foo".
    result = project.run("-k", "-pfoo")
    assert result.returncode == 4
    assert "plugin" not in result.stderr and "-k" in result.stderr


# -- first-day item 16: the Reader keeps integers and null -----------------------------------

FOREST = """
    import xprun

    @xprun.config({"n_estimators": 50, "max_depth": None})
    @xprun.grid(n_estimators=[50, 100], max_depth=[None, 3])
    def xp_forest(config):
        return {"score": config.n_estimators, "best": None}
"""
LINEAR = """

    @xprun.config({"alpha": 1})
    def xp_linear(config):
        return {"score": 0.5}
"""


def _typed(project: Project) -> dict[str, tuple[str, list[object]]]:
    import pandas as pd

    import xprun

    frame = xprun.Reader(project.log_dir).runs().to_pandas()
    frame = frame.sort_values(
        ["experiment", "config.n_estimators", "config.max_depth"], key=lambda c: c.astype(str)
    )
    return {
        name: (str(frame[name].dtype), ["NA" if v is pd.NA else v for v in frame[name]])
        for name in ("config.n_estimators", "config.max_depth", "config.alpha", "outcome.best")
        if name in frame.columns
    }


def test_i12_16_reader_keeps_integers_and_null_apart_from_missing(project: Project) -> None:
    project.write("xp_forest.py", FOREST)
    assert project.run().returncode == 0
    first = _typed(project)
    assert first["config.n_estimators"][0] == "int64"
    assert sorted(first["config.n_estimators"][1]) == [50, 50, 100, 100]
    # null is a value (None), kept as such; 3 stays an integer
    assert first["config.max_depth"][1].count(None) == 2
    assert [v for v in first["config.max_depth"][1] if v is not None] == [3, 3]
    assert all(type(v) is int for v in first["config.max_depth"][1] if v is not None)
    assert first["outcome.best"][1] == [None] * 4  # a column of nulls is not dropped
    assert _typed(project) == first  # read again: from the cached Parquet index

    # A second experiment without those keys: missing (pd.NA) is not null (None), and an
    # integer column with gaps is Int64, not float.
    project.write("xp_forest.py", FOREST + LINEAR)
    assert project.run().returncode == 0
    for _ in range(2):  # the refreshed index, then the one read back from Parquet
        typed = _typed(project)
        assert typed["config.n_estimators"][0] == "Int64"
        assert typed["config.n_estimators"][1] == [100, 100, 50, 50, "NA"]
        assert typed["config.max_depth"][1].count("NA") == 1
        assert typed["config.max_depth"][1].count(None) == 2
        assert typed["config.alpha"] == ("Int64", ["NA", "NA", "NA", "NA", 1])


def test_i12_16_integer_group_keys_stay_integers(project: Project) -> None:
    import pandas as pd

    import xprun

    project.write("xp_forest.py", FOREST + LINEAR)
    assert project.run().returncode == 0
    runs = xprun.Reader(project.log_dir).runs()
    table = runs.groupby("config.n_estimators").agg(n=("hash", "count"))
    assert [k for k in table.index if not pd.isna(k)] == [50, 100]
    assert all(type(k) is not float for k in table.index)
    table = runs.groupby("config.max_depth").agg(n=("hash", "count"))
    assert 3 in list(table.index) and 3.0 not in [k for k in table.index if type(k) is float]
    assert runs.filter("config.max_depth == 3").to_pandas().shape[0] == 2
    assert runs.filter("config.n_estimators > 60").to_pandas().shape[0] == 2
    shown = project.run("show", "--group-by", "config.n_estimators")
    assert shown.returncode == 0, shown.output
    assert " 50 " in shown.stdout and "50.0" not in shown.stdout


# -- Hydra configs users already have ----------------------------------------------------------

HYDRA_CONFIG = """
    defaults:
      - model: small
      - _self_
    lr: 0.1
    seed: 0
    day: ${now:%Y-%m-%d}
    user: ${oc.env:XPRUN_TEST_USER,nobody}
    out: ${hydra:runtime.output_dir}
    ckpt: ${out}/ckpt.pt
    tag: run_${model.name}
    hydra:
      sweeper:
        params:
          lr: 0.1,0.01
          seed: range(2)
"""
HYDRA_XP = """
    import os
    import xprun

    @xprun.config(path="conf", name="config")
    def xp_train(config, run_dir):
        assert config.out == str(run_dir), (config.out, str(run_dir))
        assert config.ckpt == os.path.join(str(run_dir), "ckpt.pt")
        return {"user": config.user, "day": config.day, "tag": config.tag}
"""


def _hydra_project(project: Project) -> None:
    project.write("conf/config.yaml", HYDRA_CONFIG)
    project.write("conf/model/small.yaml", "name: small\nwidth: 2\n")
    project.write("conf/model/big.yaml", "name: big\nwidth: 8\n")
    project.write("xp_train.py", HYDRA_XP)


def test_i12_hydra_sweeper_params_are_sweep_axes(project: Project) -> None:
    _hydra_project(project)
    result = project.run("--collect-only")
    assert result.returncode == 0, result.output
    for label in ("lr=0.1-seed=0", "lr=0.1-seed=1", "lr=0.01-seed=0", "lr=0.01-seed=1"):
        assert f"xp_train.py::xp_train[{label}]" in result.stdout
    assert "collected 4 runs" in result.stdout
    # The command line's override of a swept key wins, as in Hydra; the other axis stays.
    result = project.run("--collect-only", "lr=0.5")
    assert "xp_train[seed=0]" in result.stdout and "xp_train[seed=1]" in result.stdout
    assert "collected 2 runs" in result.stdout, result.output
    # Malformed params are named with where they come from.
    project.write("conf/config.yaml", "x: 1\nhydra:\n  sweeper:\n    params:\n      x: range(\n")
    result = project.run("--collect-only")
    assert result.returncode == 4
    assert "hydra.sweeper.params" in result.stderr and "config.yaml" in result.stderr


def test_i12_hydra_sweeper_params_in_a_yaml_file_config(project: Project) -> None:
    project.write("train.yaml", "lr: 0.1\nhydra:\n  sweeper:\n    params:\n      lr: 1,2,3\n")
    project.write(
        "xp_y.py",
        "import xprun\n@xprun.config('train.yaml')\ndef xp_y(config):\n"
        "    assert 'hydra' not in config\n    return {'lr': config.lr}\n",
    )
    result = project.run()
    assert result.returncode == 0, result.output
    assert sorted(r["nodeid"] for r in project.records()) == [
        f"xp_y.py::xp_y[lr={v}]" for v in (1, 2, 3)
    ]


def test_i12_hydra_output_dir_and_volatile_interpolations(project: Project) -> None:
    _hydra_project(project)
    result = project.run("-k", "lr=0.1 and seed=0", env={"XPRUN_TEST_USER": "ada"})
    assert result.returncode == 0, result.output  # the run checks ${hydra:...} itself
    (record,) = project.records()
    run_dir = project.log_dir / "xp_train.xp_train" / record["hash"]
    resolved = record["resolved_at_run"]
    assert resolved["user"] == "ada"
    assert resolved["out"] == str(run_dir)
    assert resolved["ckpt"] == str(run_dir / "ckpt.pt")  # through another key
    assert len(resolved["day"]) == 10 and resolved["day"].count("-") == 2
    assert "tag" not in resolved and "lr" not in resolved  # not volatile
    config = (run_dir / "config.yaml").read_text()
    assert "user: ada" in config and f"out: {run_dir}" in config
    # Another user (or another day) is the same run: cached, not run again.
    result = project.run("-k", "lr=0.1 and seed=0", env={"XPRUN_TEST_USER": "bob"})
    assert result.returncode == 0 and "1 cached" in result.stdout, result.output
    assert len(project.records()) == 1
    # A real change of a hashed key is a new run.
    result = project.run("-k", "seed=0", "lr=0.2", "model=big", env={"XPRUN_TEST_USER": "bob"})
    assert result.returncode == 0, result.output
    assert len(project.records()) == 2


def test_i12_hydra_volatile_keys_recorded_by_pool_workers(project: Project) -> None:
    project.write("train.yaml", "lr: 0.1\nwhere: ${oc.env:XPRUN_TEST_USER}\n")
    project.write(
        "xp_y.py",
        "import xprun\n@xprun.config('train.yaml')\n@xprun.grid(lr=[1, 2])\n"
        "def xp_y(config):\n    return {'where': config.where}\n",
    )
    result = project.run("-n", "2", env={"XPRUN_TEST_USER": "ada"})
    assert result.returncode == 0, result.output
    records = project.records()
    assert [r["resolved_at_run"] for r in records] == [{"where": "ada"}] * 2
    # Without the variable (and no default) the config does not resolve: a usage error.
    result = project.run("--collect-only", "lr=3")
    assert result.returncode == 4
    assert "XPRUN_TEST_USER" in result.stderr


def test_i12_hydra_unknown_hydra_key_is_refused(project: Project) -> None:
    project.write("train.yaml", "lr: 0.1\nname: ${hydra:job.override_dirname}\n")
    project.write(
        "xp_y.py", "import xprun\n@xprun.config('train.yaml')\ndef xp_y(config):\n  pass\n"
    )
    result = project.run()
    assert result.returncode == 4
    assert "job.override_dirname" in result.stderr
    assert "${hydra:runtime.output_dir}" in result.stderr
    assert not project.run_dirs()


# -- --cfg job and --info ------------------------------------------------------------------------


def test_i12_cfg_job_prints_each_selected_config(project: Project) -> None:
    _hydra_project(project)
    result = project.run("--cfg", "job", "-k", "lr=0.01", "model=big")
    assert result.returncode == 0, result.output
    assert result.stdout.count("# xp_train.py::xp_train[") == 2
    assert "# xp_train.py::xp_train[lr=0.01-seed=1]" in result.stdout
    assert "day: ${now:%Y-%m-%d}" in result.stdout  # as written
    assert "tag: run_${model.name}" in result.stdout
    assert "width: 8" in result.stdout
    assert not project.run_dirs()  # runs nothing

    result = project.run("--cfg", "job", "--resolve", "-k", "lr=0.01 and seed=1")
    assert result.returncode == 0, result.output
    assert "tag: run_small" in result.stdout and "${" not in result.stdout
    assert "out: " + str(project.log_dir / "xp_train.xp_train") in result.stdout
    assert not project.run_dirs()

    result = project.run("--resolve")
    assert result.returncode == 4 and "--cfg job" in result.stderr


def test_i12_info_shows_sources_and_what_overrides_change(project: Project) -> None:
    _hydra_project(project)
    result = project.run("--info", "lr=0.5", "model=big", "+extra=1")
    assert result.returncode == 0, result.output
    out = result.stdout
    assert "Hydra config directory" in out and "conf" in out
    assert "model/small (package model" in out and "config (primary config)" in out
    assert "group choices: model=small" in out
    assert "hydra.sweeper.params: lr=0.1,0.01 (replaced by the command line)" in out
    assert "hydra.sweeper.params: seed=range(2)" in out
    assert "lr=0.5: lr: 0.1 -> 0.5" in out
    assert "model=big: group model: small -> big" in out
    assert "+extra=1: extra: (absent) -> 1" in out
    assert not project.run_dirs()

    project.write("xp_plain.py", SWEEP.replace("xp_train", "xp_plain"))
    result = project.run("xp_plain.py", "--info", "lr=0.1,0.2")
    assert "the mapping given to @xprun.config" in result.stdout
    assert "lr=0.1,0.2: lr: 0.1 -> [0.1, 0.2] (a sweep)" in result.stdout
