"""``xprun.runref``'s cut-off of a listing at 20 runs, at its boundary: an experiment of
exactly 20 runs is listed whole (the last survivor of tools/mutation.py's run over runref's
``_labels``: ``len(names) > _SHOWN`` as ``>=``; tests/test_mutation_i13_runref.py has 21).

The runs are made in-process (tests/inprocess.py), so a mutant loaded in the test's process
is the one resolving.
"""

from __future__ import annotations

import inprocess as _inprocess
import pytest

from xprun import runref
from xprun.errors import UsageError

TWENTY = """
import xprun

@xprun.config({"y": 0})
@xprun.grid(y=list(range(20)))
def xp_twenty(config):
    return {"score": config.y}
"""


def test_i14_mut_runref_a_label_of_an_experiment_of_exactly_20_runs_lists_them_all(
    project, monkeypatch
):
    project.write("xp_twenty.py", TWENTY)
    assert _inprocess.InProcess(project, monkeypatch).run("-q").ret == 0
    resolver = runref.RunResolver(project.log_dir, cwd=project.root)
    with pytest.raises(UsageError) as wrong:
        resolver.resolve("xp_twenty.py::xp_twenty[y=99]")
    listed = str(wrong.value).split("; the runs of xp_twenty.py::xp_twenty are:\n  ")[1]
    assert listed.split("\n  ") == sorted(f"xp_twenty.py::xp_twenty[y={y}]" for y in range(20))
