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
