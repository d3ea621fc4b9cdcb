"""Pool workers start lighter (issue 11, target 5): behaviour that must not change with it.

A worker no longer imports NumPy before its runs (about 0.2 CPU-seconds each, for runs that
may never use it): NumPy's global generator is seeded the moment ``numpy.random`` loads, with
the current run's seed.  These tests run real sweeps (``python -m xprun``, inline and on the
pool) and compare each run's draws with what seeding NumPy beforehand gives; no timing.
"""

from __future__ import annotations

import json
import os

import pytest
from conftest import git_commit_all

np = pytest.importorskip("numpy")

# How each experiment module reaches NumPy: not at all before the run, or ``numpy`` only
# (NumPy 2 loads its ``random`` on first use).
IMPORTS = {"late": "", "numpy": "import numpy\n"}

XP = """
import sys
import xprun
{imports}

@xprun.grid(seed=[3, 11, 2**32 + 5, 42])
def xp_draw(config):
    import numpy
    return {{"draw": float(numpy.random.random()), "size": int(numpy.random.randint(1000))}}
"""


def _expected(seed: int) -> dict:
    generator = np.random.RandomState(seed % 2**32)
    return {"draw": float(generator.random_sample()), "size": int(generator.randint(1000))}


@pytest.mark.parametrize(
    "how, pool",
    # ``random`` loaded before the run is seeded as it always was; inline and pool share the
    # seeding code, so one launch inline is enough.
    [("late", True), ("numpy", True), ("late", False)],
    ids=["pool-late", "pool-numpy", "inline-late"],
)
def test_i11_pool_warm_numpy_is_seeded_however_and_whenever_it_is_imported(project, how, pool):
    project.write("xp_draw.py", XP.format(imports=IMPORTS[how]))
    git_commit_all(project.root)
    result = project.run(*(["-n", "2"] if pool else []))
    assert result.returncode == 0, result.output
    records = project.records()
    assert len(records) == 4
    workers = {record["pid"] for record in records}
    assert len(workers) == (2 if pool else 1)  # several runs per process: each is re-seeded
    for run_dir in project.run_dirs():
        record = json.loads((run_dir / "run.json").read_text())
        outcome = json.loads((run_dir / "outcome.json").read_text())
        seed = int(record["nodeid"].split("seed=")[1].rstrip("]"))
        assert outcome == _expected(seed), (how, seed, outcome)


NOTHING_HEAVY = """
import sys
import xprun

@xprun.grid(i=[0, 1, 2, 3])
def xp_modules(config, seed):
    return {"heavy": sorted(m for m in ("numpy", "pandas", "pyarrow") if m in sys.modules)}
"""


def test_i11_pool_warm_a_worker_imports_neither_numpy_nor_pandas_for_runs_that_do_not(project):
    # Seeding (the run asks for ``seed``) must not load NumPy either.
    project.write("xp_modules.py", NOTHING_HEAVY)
    git_commit_all(project.root)
    result = project.run("-n", "2")
    assert result.returncode == 0, result.output
    outcomes = [json.loads((d / "outcome.json").read_text()) for d in project.run_dirs()]
    assert outcomes == [{"heavy": []}] * 4


# An installed package (in a site-packages folder) that notes, per process, the folder it was
# imported in: a worker is in the project's folder until it reads the spec, and in the
# snapshot from then on.
WARM_PKG = """
import os

with open(os.path.join(os.environ["WARM_LOG"], f"{os.getpid()}"), "w") as f:
    f.write(os.getcwd())
"""

WARM_XP = """
import warmpkg
import helper
import xprun

@xprun.grid(i=[0, 1, 2, 3])
def xp_warm(config):
    return {"helper": helper.__file__}
"""


def test_i11_pool_warm_workers_import_the_experiments_packages_before_the_spec_not_its_code(
    project, tmp_path
):
    # The launcher tells the waiting workers which installed packages the experiment module
    # imports; they import those before the spec arrives (while still in the project's
    # folder), while the project's own modules still come from the snapshot.
    site = tmp_path / "lib" / "site-packages"
    (site / "warmpkg").mkdir(parents=True)
    (site / "warmpkg" / "__init__.py").write_text(WARM_PKG)
    log = tmp_path / "imported"
    log.mkdir()
    project.write("helper.py", "VALUE = 1\n")
    project.write("xp_warm.py", WARM_XP)
    git_commit_all(project.root)
    result = project.run("-n", "2", env={"PYTHONPATH": str(site), "WARM_LOG": str(log)})
    assert result.returncode == 0, result.output
    records = project.records()
    workers = {record["pid"] for record in records}
    assert len(workers) == 2
    root = os.path.realpath(project.root)
    for pid in workers:
        assert os.path.realpath((log / str(pid)).read_text()) == root, pid
    for run_dir in project.run_dirs():
        helper = json.loads((run_dir / "outcome.json").read_text())["helper"]
        assert "/.xprun/snapshots/" in helper, helper
