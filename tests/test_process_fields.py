"""Two launches in one process (a notebook, a script that launches two sweeps) each record
their own current folder: run.json's ``cwd`` was the first launch's for every later one."""

from __future__ import annotations

import sys

from conftest import Project
from inprocess import InProcess


def test_each_launch_in_one_process_records_its_own_cwd_and_argv(tmp_path, monkeypatch):
    first, second = Project(tmp_path / "first"), Project(tmp_path / "second")
    for project in (first, second):
        project.write("xp_where.py", "def xp_where():\n    return {'ok': 1}\n")
    monkeypatch.setattr(sys, "argv", ["notebook", "--one"])
    ran = InProcess(first, monkeypatch).run("-q")
    assert ran.ret == 0, ran.output
    monkeypatch.setattr(sys, "argv", ["notebook", "--two"])
    ran_again = InProcess(second, monkeypatch).run("-q")
    assert ran_again.ret == 0, ran_again.output
    (one,), (two,) = ran.records(), ran_again.records()
    assert one["cwd"] == str(first.root.resolve()) and one["argv"] == ["notebook", "--one"]
    assert two["cwd"] == str(second.root.resolve()) and two["argv"] == ["notebook", "--two"]
    assert one["pid"] == two["pid"]  # the process's own fields stay the process's
