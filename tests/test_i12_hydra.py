"""Issue 12, Hydra's habits: override-key typos, Reader types (first-day items 10 and 16),
``--cfg``/``--info``, ``addopts`` and ``-p``, and the Hydra configs users already have.

Everything runs through the real CLI (``python -m xprun``) or the public ``xprun.Reader``.
"""

from __future__ import annotations

from tests.conftest import Project

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
