"""Test helpers: a throwaway xprun project on disk, driven through the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Property tests check values, never speed: on a loaded 2-core CI machine (two suites, other
# work) an example can take seconds, which hypothesis's per-example deadline (200 ms) and its
# "input generation is slow" health check would report as a failure (seen in the suite).
settings.register_profile("xprun", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("xprun")


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class Project:
    """A folder with a pyproject.toml (so it is its own rootdir) and helpers to run xprun."""

    def __init__(self, root: Path, inprocess: bool = False) -> None:
        self.root = root
        #: ``run``'s default: launches in this process (tests/launch.py), set by the test's
        #: ``inprocess`` mark.
        self.inprocess = inprocess
        self.log_dir = root / "xprun_logs"
        self.write("pyproject.toml", '[tool.xprun]\nlog_dir = "xprun_logs"\n')

    def write(self, relpath: str, text: str) -> Path:
        path = self.root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path

    def with_path(self, folder: Path) -> dict[str, str]:
        """Environment additions putting ``folder`` first on PATH (for command wrappers)."""
        return {"PATH": f"{folder}:{os.environ['PATH']}"}

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["XPRUN_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        env.pop("PYTHONPATH", None)
        return env

    def command(self) -> list[str]:
        return [sys.executable, "-m", "xprun"]

    def popen(self, *args: str, **kwargs) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "xprun", *args],
            cwd=kwargs.pop("cwd", self.root),
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            **kwargs,
        )

    def run(
        self,
        *args: str,
        timeout: float = 120,
        cwd: Path | None = None,
        env: dict | None = None,
        inprocess: bool | None = None,
    ) -> Result:
        """``python -m xprun ARGS`` in the project; ``env`` is merged over the test's.

        ``inprocess`` (default: the test's ``inprocess`` mark) makes the same launch in this
        process, with the same result (tests/launch.py), unless its arguments or environment
        need a process of its own (``launch.needs_process``: the pool, a scheduler, ``--pdb``,
        ``PYTHON*`` variables); ``timeout`` is then not enforced."""
        full_env = {**self.env(), **(env or {})}
        if self.inprocess if inprocess is None else inprocess:
            import launch

            if not launch.needs_process(args, full_env):
                return Result(*launch.launch(args, cwd or self.root, full_env))
        proc = subprocess.run(
            [sys.executable, "-m", "xprun", *args],
            cwd=cwd or self.root,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def run_dirs(self, experiment: str | None = None) -> list[Path]:
        if not self.log_dir.exists():
            return []
        pattern = f"{experiment}/*/run.json" if experiment else "*/*/run.json"
        return sorted(p.parent for p in self.log_dir.glob(pattern))

    def records(self, experiment: str | None = None) -> list[dict]:
        return [json.loads((d / "run.json").read_text()) for d in self.run_dirs(experiment)]


@pytest.fixture
def project(tmp_path: Path, request: pytest.FixtureRequest) -> Project:
    """A project in the test's folder; ``run`` launches in this process under the test's
    ``inprocess`` mark (``pytestmark = pytest.mark.inprocess`` marks a whole file;
    ``@pytest.mark.inprocess(False)`` keeps one test's launches in subprocesses)."""
    return Project(tmp_path / "proj", launches_inprocess(request.node))


def launches_inprocess(node: pytest.Item | pytest.Collector) -> bool:
    """Whether ``node``'s ``inprocess`` mark (a test's, or its module's for a module-scoped
    fixture's ``Project``) makes ``project.run`` launch in this process."""
    mark = node.get_closest_marker("inprocess")
    inprocess = mark is not None and bool((mark.args or (True,))[0])
    # XPRUN_TESTS_SUBPROCESS=1: every launch in a subprocess, as before the marks (to compare).
    return inprocess and not os.environ.get("XPRUN_TESTS_SUBPROCESS")


def git_commit_all(root: Path, message: str = "commit") -> None:
    """Make ``root`` a Git repository (if needed) and commit everything in it."""
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@x",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@x",
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(root),
    }
    if not (root / ".git").exists():
        subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True, env=env)
        (root / ".gitignore").write_text("xprun_logs/\n.xprun/\n__pycache__/\n")
    subprocess.run(["git", "add", "-A"], cwd=root, check=True, env=env)
    subprocess.run(
        ["git", "commit", "-q", "--allow-empty", "-m", message], cwd=root, check=True, env=env
    )
