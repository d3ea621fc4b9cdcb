"""Optional dependencies of some tests: skipped locally when missing, a failure in CI."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest


def require(module: str) -> ModuleType:
    if module == "torch" and os.environ.get("XPRUN_TESTS_NO_TORCH"):
        pytest.skip("torch could not be installed on this machine (see .ci/run)")
    if os.environ.get("CI") == "true":
        return importlib.import_module(module)
    return pytest.importorskip(module)


def require_tool(name: str) -> str:
    """A program the test runs (``uv``): skipped locally when it is not on ``PATH``, a
    failure in CI, which installs it (.ci/run)."""
    import shutil

    found = shutil.which(name)
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is not on PATH; .ci/run installs it")
        pytest.skip(f"{name} is not installed here")
    return found
