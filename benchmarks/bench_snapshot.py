"""What a session pays to record its code: the snapshot commit, in a 5,000-file repository.

    python benchmarks/bench_snapshot.py [--files 5000] [--rounds 7]
    python benchmarks/run.py --only snapshot

Every launch that runs something takes one snapshot commit of the work tree (issue 13:
tracked changes and untracked files, a temporary index, a hidden ref; the user's index
untouched), once per session, not per run.  In a generated Git repository of ``--files``
Python files (100 per folder) with 20 of them edited and 20 new untracked ones:

- **snapshot commit**: ``xprun.snapshot.commit`` (what an inline session takes), against the
  floor ``git add -A && git write-tree`` into an empty temporary index on the same work tree
  (the plain way to write a tree of the work tree as it is, without touching the user's
  index);
- **session record**: a whole ``xprun`` launch of one run in that repository, against the
  same launch with ``-p no:provenance`` (no snapshot, no session file, no source store): the
  ratio is what provenance adds to the shortest launch, all of it paid once per session.

Rounds alternate the floor and xprun (``_paired.paired``); medians are reported.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _paired import figure, paired

_GIT_ENV = {
    "GIT_AUTHOR_NAME": "b",
    "GIT_AUTHOR_EMAIL": "b@x",
    "GIT_COMMITTER_NAME": "b",
    "GIT_COMMITTER_EMAIL": "b@x",
}
EXPERIMENT = """
import xprun

@xprun.config({"i": 0})
def xp_one(config):
    return {"i": config.i}
"""


def make_repository(root: Path, files: int) -> Path:
    """A committed project of ``files`` Python files, then 20 edited and 20 untracked."""
    project = root / "project"
    project.mkdir()
    env = {**os.environ, **_GIT_ENV}
    (project / "pyproject.toml").write_text('[tool.xprun]\nlog_dir = "xprun_logs"\n')
    (project / ".gitignore").write_text("xprun_logs/\n.xprun/\n__pycache__/\nlogs-*/\n")
    (project / "xp_one.py").write_text(EXPERIMENT)
    for number in range(files):
        folder = project / "pkg" / f"part{number // 100:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"mod{number:05d}.py").write_text(f"VALUE = {number}\n" + "# padding\n" * 20)
    for command in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"]):
        subprocess.run(command, cwd=project, check=True, env=env)
    subprocess.run(["git", "commit", "-qm", "bench"], cwd=project, check=True, env=env)
    for number in range(0, files, max(1, files // 20))[:20]:  # edited, spread over folders
        path = project / "pkg" / f"part{number // 100:03d}" / f"mod{number:05d}.py"
        path.write_text(f"VALUE = {number + 1}\n")
    for number in range(20):
        (project / "pkg" / f"new{number:02d}.py").write_text(f"NEW = {number}\n")
    return project


def measure(files: int, rounds: int) -> dict[str, float]:
    from xprun import snapshot

    tmp = Path(tempfile.mkdtemp(prefix="xprun-bench-snapshot-"))
    try:
        project = make_repository(tmp, files)
        index = tmp / "floor-index"
        exclude = [project / "xprun_logs", project / ".xprun"]

        def floor() -> None:
            index.unlink(missing_ok=True)
            env = {**os.environ, "GIT_INDEX_FILE": str(index)}
            subprocess.run(["git", "add", "-A"], cwd=project, check=True, env=env)
            subprocess.run(["git", "write-tree"], cwd=project, check=True, env=env, stdout=-1)

        def commit() -> None:
            snapshot.commit(project, exclude, {})

        commit_value, commit_floor = paired(floor, commit, rounds)

        launches = iter(range(10**6))

        def launch(*extra: str) -> None:
            logs = f"logs-{next(launches)}"  # a fresh log folder: the run is new each time
            proc = subprocess.run(
                [sys.executable, "-m", "xprun", "-q", "--log-dir", logs, *extra],
                cwd=project,
                env={**os.environ, "XPRUN_DISABLE_PLUGIN_AUTOLOAD": "1"},
                capture_output=True,
                text=True,
            )
            if proc.returncode != 0:
                raise RuntimeError(proc.stdout + proc.stderr)

        session_value, session_floor = paired(lambda: launch("-p", "no:provenance"), launch, rounds)
        recorded = sorted(project.glob("logs-*/.xprun-sessions/*.json"))
        if len(recorded) != rounds:  # the launches with provenance, one session file each
            raise RuntimeError(f"expected {rounds} session files, found {len(recorded)}")
        return {
            "commit": commit_value,
            "commit_floor": commit_floor,
            "session": session_value,
            "session_floor": session_floor,
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def figures(quick: bool = False) -> list[dict]:
    files = 5000
    rounds = 3 if quick else 7
    m = measure(files, rounds)
    return [
        figure(
            f"snapshot commit, {files:,}-file repository",
            m["commit"],
            m["commit_floor"],
            "s",
            None,
            "once per session; floor: git add -A && git write-tree into a temporary index",
        ),
        figure(
            f"launch of one run with provenance, {files:,}-file repository",
            m["session"],
            m["session_floor"],
            "s",
            None,
            "snapshot, session file, source store; floor: the same launch, -p no:provenance",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    m = measure(args.files, args.rounds)
    print(f"repository: {args.files:,} files, 20 edited, 20 untracked; medians of {args.rounds}")
    print(f"snapshot commit (xprun.snapshot.commit):     {m['commit'] * 1000:8.1f} ms")
    print(f"floor, git add -A && git write-tree:         {m['commit_floor'] * 1000:8.1f} ms")
    print(f"  ratio:                                     {m['commit'] / m['commit_floor']:8.2f}x")
    print(f"launch of one run, provenance recorded:      {m['session'] * 1000:8.1f} ms")
    print(f"same launch, -p no:provenance:               {m['session_floor'] * 1000:8.1f} ms")
    print(f"  ratio:                                     {m['session'] / m['session_floor']:8.2f}x")


if __name__ == "__main__":
    main()
