"""``xprun rm`` and ``xprun gc``: clean-up that cannot hurt.

``xprun rm WORDS...`` removes the runs the words name (hashes, unique prefixes, node ids,
queries: :mod:`xprun.runref`); ``xprun gc`` removes what nothing references (see
:func:`plan_gc` for each kind, and docs/reproducibility.md, "Cleaning up").

Three rules make them safe:

- **A dry run by default.**  Both print what they would delete, grouped, with counts and
  bytes, and delete only with ``--yes``; the listing is the plan ``--yes`` then carries out.
- **A running run is never touched.**  A run is removed only once this process holds its
  claim (``store.acquire``: the next attempt's ``claim.<N+1>``, which only one process can
  create), so a run with a live claim is kept, and no launcher can start it while it is being
  moved; a stale claim is not live.  Files of a run (checkpoints, ``previous/<N>/``) are left
  alone while the run is running.
- **No half-deleted run.**  A folder is renamed whole into the trash (:mod:`xprun.trash`)
  before it is deleted, so a clean-up killed at any point leaves each run either whole where
  it was or whole in the trash, where nothing looks; the next ``gc`` finishes the trash.  (A
  kill between claiming a run and moving it leaves the run whole with a claim whose process
  is gone: stale, so a run that was not complete reads ``interrupted``, as after any killed
  owner, and runs again.)

What launches that are under way still need (a session file, source-store entries, a
snapshot) may not be referenced by any run yet: such files are kept while they are younger
than ``--grace`` (one hour by default), as ``git gc`` keeps recent unreachable objects.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .cli import Command

# subprocess is imported where it is used: `xprun --help` imports this module to list its
# commands, and should not pay for it.

#: Set by the tests only: after the first folder is moved into the trash, create this file
#: and wait to be killed, so a test can kill a clean-up between its rename and its delete
#: (a real kill -9 cannot otherwise be timed to land there).
PAUSE_ENV = "_XPRUN_TEST_CLEANUP_PAUSE"

SNAPSHOT_REFS = "refs/xprun/snapshots/"
DEFAULT_GRACE = 3600.0
_SHA = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

# The groups of a listing, in the order they are printed and carried out: runs first, the
# trash last.
RUNS = "runs"
FAILED = "failed, interrupted and unfinished runs"
PREVIOUS = "replaced attempts (previous/<N>/ of --force reruns)"
CHECKPOINTS = "checkpoints beyond keep"
JOBS = "job folders of finished submissions"
SESSIONS = "session files no run references"
BLOBS = "source-store entries no session references"
SNAPSHOTS = "extracted snapshots no run references"
REFS = "snapshot refs no run references"
INDEX = "index entries of removed runs"
TRASH = "trash left by an interrupted clean-up"
ORDER = (RUNS, FAILED, PREVIOUS, CHECKPOINTS, JOBS, SESSIONS, BLOBS, SNAPSHOTS, REFS, INDEX, TRASH)


def xprun_subcommand() -> Iterable[Command]:
    return (
        Command("rm", rm_main, "remove runs (a dry run unless --yes)"),
        Command("gc", gc_main, "remove what no run references (a dry run unless --yes)"),
    )


@dataclass
class Item:
    """One thing to delete, as listed and as carried out."""

    group: str
    shown: str  # its line in the listing
    size: int
    paths: list[Path] = field(default_factory=list)  # deleted in this order
    run: Path | None = None  # a whole run directory: claimed, then moved to the trash
    owner: Path | None = None  # the run the paths belong to: left alone while it runs
    trash: Path | None = None  # move ``paths`` into this folder's trash first
    ref: tuple[Path, str, str] | None = None  # (repository, ref name, commit) to delete


@dataclass
class Context:
    """Where the clean-up works, and how it tells live claims and young files."""

    log_dir: Path
    rootdir: Path
    snapshot_dir: Path
    clock: Any  # store.FsClock
    heartbeat: Any  # store.Heartbeat
    grace: float = DEFAULT_GRACE
    _paused: bool = False

    @classmethod
    def make(cls, log_dir_option: str | None, grace: float = DEFAULT_GRACE) -> Context:
        from . import store
        from .errors import UsageError
        from .settings import load_settings
        from .show import default_log_dir

        log_dir = default_log_dir(log_dir_option)
        if not log_dir.is_dir():
            raise UsageError(
                f"log directory {log_dir} does not exist (pass --log-dir, or run xprun first)"
            )
        settings = load_settings([], Path.cwd())
        heartbeat = store.Heartbeat(
            float(settings["heartbeat_interval"]), float(settings["heartbeat_timeout"])
        )
        return cls(
            log_dir=log_dir,
            rootdir=settings.rootdir,
            snapshot_dir=(settings.rootdir / settings["snapshot_dir"]).resolve(),
            clock=store.FsClock(log_dir),
            heartbeat=heartbeat,
            grace=grace,
        )

    def state(self, run_dir: Path) -> Any:
        from . import store

        return store.read_state(run_dir, self.clock, self.heartbeat)

    def young(self, path: Path) -> bool:
        """Modified less than ``grace`` seconds ago (by the log directory's clock)."""
        try:
            return self.clock.now() - os.lstat(path).st_mtime < self.grace
        except OSError:
            return False

    def shown(self, path: Path) -> str:
        try:
            return path.relative_to(self.log_dir).as_posix()
        except ValueError:
            return str(path)

    def paused(self) -> None:
        """The test-only pause (``PAUSE_ENV``), after the first move into the trash."""
        signal_file = os.environ.get(PAUSE_ENV)
        if signal_file and not self._paused:
            self._paused = True
            Path(signal_file).write_text(str(os.getpid()))
            while True:
                time.sleep(1)


# -- the run directories ------------------------------------------------------------------------


def run_dirs(log_dir: Path) -> Iterator[Path]:
    """Every run directory of the log directory: ``<experiment>/<hash>/`` folders, xprun's
    own dot folders (index, jobs, trash, ...) left out, links not followed."""
    try:
        experiments = sorted(
            e.path for e in os.scandir(log_dir) if e.name[:1] != "." and _is_dir(e)
        )
    except OSError:
        return
    for experiment in experiments:
        try:
            runs = sorted(
                e.path for e in os.scandir(experiment) if e.name[:1] != "." and _is_dir(e)
            )
        except OSError:
            continue
        yield from map(Path, runs)


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def _describe_run(ctx: Context, run_dir: Path, state: Any) -> str:
    record = state.record or {}
    nodeid = record.get("nodeid") if isinstance(record.get("nodeid"), str) else ""
    return f"{ctx.shown(run_dir)}  {state.status}  {nodeid}".rstrip()


def _running(ctx: Context, run_dir: Path, state: Any) -> str:
    owner = state.owner
    who = owner.describe(ctx.clock) if owner is not None else "a live claim"
    return f"{ctx.shown(run_dir)}  running ({who})"


# -- references ---------------------------------------------------------------------------------


@dataclass
class References:
    sessions: set[str] = field(default_factory=set)
    blobs: set[str] = field(default_factory=set)
    commits: set[str] = field(default_factory=set)

    def add_record(self, record: dict[str, Any]) -> None:
        """What one ``run.json`` (or job spec) references: its session and its snapshot
        (format 2's ``snapshot.commit``, format 1's ``git.snapshot``)."""
        for holder in (record, record.get("provenance")):  # a job spec: under "provenance"
            if isinstance(holder, dict):
                if isinstance(holder.get("session"), str):
                    self.sessions.add(holder["session"])
                self.add_snapshot(holder.get("snapshot"))
        git = record.get("git")
        if isinstance(git, dict) and isinstance(git.get("snapshot"), str):
            self.commits.add(git["snapshot"])

    def add_snapshot(self, snapshot: Any) -> None:
        if isinstance(snapshot, dict) and isinstance(snapshot.get("commit"), str):
            self.commits.add(snapshot["commit"])
        elif isinstance(snapshot, str):
            self.commits.add(snapshot)


def _references(records: Iterable[dict[str, Any] | None]) -> References:
    """What the given records (``run.json`` files, job specs) reference."""
    found = References()
    for record in records:
        if record is not None:
            found.add_record(record)
    return found


# -- planning -----------------------------------------------------------------------------------


def plan_rm(ctx: Context, words: list[str]) -> tuple[list[Item], list[str]]:
    """The runs ``words`` name (items), and those kept because they are running."""
    from . import runref, trash

    resolver = runref.RunResolver(ctx.log_dir)
    chosen: dict[Path, None] = {}
    for word in words:
        # A hash prefix must name one run: a short prefix must not remove several by chance.
        found = (
            [resolver.resolve_one(word)] if runref.is_hash_word(word) else resolver.resolve(word)
        )
        chosen.update(dict.fromkeys(found))
    items, kept = [], []
    for run_dir in chosen:
        state = ctx.state(run_dir)
        if state.status == "running":
            kept.append(_running(ctx, run_dir, state))
            continue
        shown = _describe_run(ctx, run_dir, state)
        items.append(Item(RUNS, shown, trash.size(run_dir), run=run_dir))
    return items, kept


def plan_gc(
    ctx: Context, failed: bool, previous: bool, keep: int, ask_queue: Callable[..., Any]
) -> tuple[list[Item], list[str]]:
    """What ``xprun gc`` would delete, and what it keeps for being in use (with why)."""
    from . import store, trash

    items: list[Item] = []
    kept: list[str] = []
    runs = list(run_dirs(ctx.log_dir))
    states = {run_dir: ctx.state(run_dir) for run_dir in runs}
    for run_dir, state in states.items():
        if state.status == "running":
            continue
        if failed and state.status != "complete":
            if state.record is None and ctx.young(run_dir):
                continue  # no record yet: a launch may be starting it right now
            shown = _describe_run(ctx, run_dir, state)
            items.append(Item(FAILED, shown, trash.size(run_dir), run=run_dir))
            continue  # the whole run goes: nothing more to say of its files
        if previous:
            for folder in _previous(run_dir):
                items.append(
                    Item(
                        PREVIOUS,
                        ctx.shown(folder),
                        trash.size(folder),
                        paths=[folder],
                        owner=run_dir,
                        trash=ctx.log_dir,
                    )
                )
        items += _checkpoints(ctx, run_dir, keep)
    # What stays references what must stay: the runs and attempts not removed above, the
    # job folders kept (below), the session files kept (their sources and snapshot).  What
    # only removed things referenced is removed in the same pass.
    gone = {p for item in items for p in ([item.run] if item.run else item.paths)}
    references = _references(
        store.read_record(path)
        for run_dir in runs
        if run_dir not in gone
        for path in [run_dir, *_previous(run_dir)]
        if path not in gone
    )
    items += _jobs(ctx, states, references, kept, ask_queue)
    items += _sessions(ctx, references, kept)
    items += _blobs(ctx, references)
    items += _snapshots(ctx, references)
    items += _index(ctx)
    for holder in (ctx.log_dir, ctx.snapshot_dir):
        for path in trash.leftovers(holder):
            items.append(Item(TRASH, ctx.shown(path), trash.size(path), paths=[path]))
    items.sort(key=lambda item: ORDER.index(item.group))  # stable: each group in its order
    return items, kept


def _previous(run_dir: Path) -> list[Path]:
    try:
        return sorted(
            Path(e.path)
            for e in os.scandir(run_dir / "previous")
            if e.name.isdigit() and _is_dir(e)
        )
    except OSError:
        return []


def _checkpoints(ctx: Context, run_dir: Path, keep: int) -> list[Item]:
    """Each checkpoint older than the last ``keep``, with its ``steps-<N>.json`` (deleted
    after it: a checkpoint on disk always has its steps beside it)."""
    from .logger import checkpoint_files

    found = checkpoint_files(run_dir)
    items = []
    for number, path in found[: max(0, len(found) - keep)]:
        steps = path.parent / f"steps-{number:08d}.json"
        paths = [path, steps] if steps.exists() else [path]
        size = sum(os.lstat(p).st_size for p in paths if p.exists())
        items.append(Item(CHECKPOINTS, ctx.shown(path), size, paths=paths, owner=run_dir))
    return items


def _jobs(
    ctx: Context,
    states: dict[Path, Any],
    references: References,
    kept: list[str],
    ask_queue: Callable[..., Any],
) -> list[Item]:
    """Job folders whose submission is over; the snapshot and session of every other one
    count as referenced (its workers import from that snapshot)."""
    from . import store, trash
    from .jobs import JOBS_DIR

    items = []
    try:
        folders = sorted(Path(e.path) for e in os.scandir(ctx.log_dir / JOBS_DIR) if _is_dir(e))
    except OSError:
        return []
    for folder in folders:
        try:
            spec = store.read_json(folder / "spec.json")
        except (OSError, ValueError):
            spec = None
        spec = spec if isinstance(spec, dict) else {}
        reason = _job_in_use(ctx, folder, spec, states, ask_queue)
        if reason is None:
            items.append(
                Item(JOBS, ctx.shown(folder), trash.size(folder), paths=[folder], trash=ctx.log_dir)
            )
        else:
            references.add_record(spec)
            kept.append(f"{ctx.shown(folder)}: {reason}")
    return items


def _job_in_use(
    ctx: Context,
    folder: Path,
    spec: dict[str, Any],
    states: dict[Path, Any],
    ask_queue: Callable[..., Any],
) -> str | None:
    """Why a job folder is still needed, or None when its submission is over.

    Over means: no run of it is running, and either the scheduler's queue knows none of its
    jobs (a submission, ``job.json``), or, with no submission recorded (a local pool's spec,
    or a launch killed before it recorded one), every run of it is complete, or was attempted
    since the spec was written, or has no directory (removed, or never started) while the
    folder is older than the grace period.  A folder without a readable spec is over once it
    is older than the grace period (its launcher may be writing it).
    """
    from . import store

    if not spec:
        return "being written (younger than --grace)" if ctx.young(folder) else None
    runs = spec.get("runs")
    run_paths = [
        Path(r["run_dir"])
        for r in (runs if isinstance(runs, list) else [])
        if isinstance(r, dict) and isinstance(r.get("run_dir"), str)
    ]
    for run_dir in run_paths:
        state = states.get(run_dir) or ctx.state(run_dir)
        if state.status == "running":
            return f"its run {ctx.shown(run_dir)} is running"
    try:
        job = store.read_json(folder / "job.json")
    except (OSError, ValueError):
        job = None
    if isinstance(job, dict):
        ids = [str(i) for i in job.get("job_ids") or []]
        if not ids:
            return None
        try:
            queue = ask_queue(str(job.get("scheduler")), ids)
        except Exception as exc:  # the queue did not answer: it may still hold the jobs
            return f"the {job.get('scheduler')} queue could not be asked ({exc})"
        return f"{len(queue)} of its tasks are queued or running" if queue else None
    created = spec.get("created")
    for run_dir in run_paths:
        if not os.path.lexists(run_dir):
            if ctx.young(folder):  # not started yet, by a launch under way
                return f"its run {ctx.shown(run_dir)} has not started (younger than --grace)"
            continue  # removed since, or never started by a launch long over
        state = states.get(run_dir) or ctx.state(run_dir)
        if state.status == "complete":
            continue
        start = (state.record or {}).get("start")
        if not (isinstance(start, str) and isinstance(created, str) and start >= created):
            return f"its run {ctx.shown(run_dir)} has not run since it was submitted"
    return None


def _sessions(ctx: Context, references: References, kept: list[str]) -> list[Item]:
    """Session files no run references and not young; what every kept session references
    (its sources, its snapshot) counts as referenced."""
    from .provenance import SESSIONS_DIR, load_session

    items = []
    for path in _files(ctx.log_dir / SESSIONS_DIR):
        if not path.name.endswith(".json"):
            continue
        session_id = path.name.removesuffix(".json")
        if session_id not in references.sessions and not ctx.young(path):
            items.append(Item(SESSIONS, ctx.shown(path), os.lstat(path).st_size, paths=[path]))
            continue
        session = load_session(ctx.log_dir, session_id) or {}
        sources = session.get("sources")
        if isinstance(sources, dict):
            references.blobs |= {b for b in sources.values() if isinstance(b, str)}
        references.add_snapshot(session.get("snapshot"))
    return items


def _blobs(ctx: Context, references: References) -> list[Item]:
    from .provenance import SOURCES_DIR

    items = []
    for path in _files(ctx.log_dir / SOURCES_DIR):
        if path.name in references.blobs or path.name.startswith(".") or ctx.young(path):
            continue
        items.append(Item(BLOBS, ctx.shown(path), os.lstat(path).st_size, paths=[path]))
    return items


def _files(folder: Path) -> list[Path]:
    try:
        return sorted(Path(e.path) for e in os.scandir(folder) if e.is_file(follow_symlinks=False))
    except OSError:
        return []


def _snapshots(ctx: Context, references: References) -> list[Item]:
    """Extracted snapshot folders and ``refs/xprun/snapshots/*`` refs of the project's
    repository that nothing references; a young extracted folder keeps its ref too."""
    from . import trash

    items = []
    young: set[str] = set()
    try:
        extracted = sorted(
            Path(e.path)
            for e in os.scandir(ctx.snapshot_dir)
            if _SHA.fullmatch(e.name) and _is_dir(e)
        )
    except OSError:
        extracted = []
    for folder in extracted:
        if folder.name in references.commits:
            continue
        if ctx.young(folder):
            young.add(folder.name)
            continue
        items.append(
            Item(SNAPSHOTS, str(folder), trash.size(folder), paths=[folder], trash=ctx.snapshot_dir)
        )
    repo = _repository(ctx.rootdir)
    if repo is not None:
        for ref, commit in _snapshot_refs(repo):
            if commit in references.commits or commit in young:
                continue
            items.append(Item(REFS, ref, 0, ref=(repo, ref, commit)))
    return items


def _repository(rootdir: Path) -> Path | None:
    import subprocess

    try:
        top = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"],
            cwd=rootdir,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return Path(top) if top else None


def _snapshot_refs(repo: Path) -> list[tuple[str, str]]:
    import subprocess

    try:
        listing = subprocess.run(
            ["git", "for-each-ref", "--format=%(refname) %(objectname)", SNAPSHOT_REFS],
            cwd=repo,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return []
    refs = []
    for line in listing.splitlines():
        ref, _, commit = line.partition(" ")
        if ref.startswith(SNAPSHOT_REFS):
            refs.append((ref, commit))
    return refs


def _index(ctx: Context) -> list[Item]:
    """Rows of the Reader's cached index for runs that are no longer there: the index is
    rewritten without them (a refresh) at the end of a clean-up."""
    from .reader.index import Index

    index = Index(ctx.log_dir)
    if not index.path.exists():
        return []
    try:
        frame = index._load(time.time_ns())
        paths = [str(p) for p in frame["path"]] if "path" in frame.columns else []
    except Exception:  # a damaged index is rebuilt by the next read anyway
        return []
    return [Item(INDEX, ctx.shown(Path(p)), 0) for p in paths if not os.path.isdir(p)]


# -- carrying out -------------------------------------------------------------------------------


@dataclass
class Outcome:
    removed: list[Item] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # "what: why" of items not removed


def carry_out(ctx: Context, items: list[Item]) -> Outcome:
    """Delete ``items`` in order; a run or a run's files found running meanwhile are kept.
    The Reader's index is refreshed at the end, so no later read shows a removed run."""
    import subprocess

    from . import store, trash

    outcome = Outcome()
    for item in items:
        try:
            if item.run is not None:
                acquired = store.acquire(item.run, ctx.clock, ctx.heartbeat)
                if acquired.claim is None:
                    outcome.kept.append(f"{item.shown}: started running meanwhile")
                    continue
                moved = trash.move(ctx.log_dir, item.run)
                ctx.paused()
                trash.delete(moved)
            elif item.ref is not None:
                repo, ref, commit = item.ref
                subprocess.run(
                    ["git", "update-ref", "-d", ref, commit],
                    cwd=repo,
                    capture_output=True,
                    check=True,
                )
            elif item.paths:
                if item.owner is not None and ctx.state(item.owner).status == "running":
                    outcome.kept.append(f"{item.shown}: its run started running meanwhile")
                    continue
                for path in item.paths:
                    if item.trash is not None:
                        path = trash.move(item.trash, path)
                        ctx.paused()
                    trash.delete(path)
                if item.group == PREVIOUS:
                    with contextlib.suppress(OSError):
                        os.rmdir(item.paths[0].parent)  # previous/, once empty
        except FileNotFoundError:
            pass  # gone meanwhile (another clean-up): nothing left to delete
        except (OSError, subprocess.CalledProcessError) as exc:
            outcome.kept.append(f"{item.shown}: {exc}")
            continue
        outcome.removed.append(item)
    _refresh_index(ctx)
    return outcome


def _refresh_index(ctx: Context) -> None:
    from .reader import Reader

    try:
        Reader(ctx.log_dir, warn=False).refresh()
    except Exception:  # a read-only or damaged index: rebuilt when next read
        pass


# -- the listing --------------------------------------------------------------------------------


def human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{size:,} B" if unit == "B" else f"{value:.1f} {unit} ({size:,} B)"
        value /= 1024
    return f"{size:,} B"  # unreachable: the loop returns at GiB


def listing(items: list[Item], kept: list[str], keep: int | None = None) -> str:
    lines = []
    groups: dict[str, list[Item]] = {}
    for item in items:
        groups.setdefault(item.group, []).append(item)
    for group, members in groups.items():
        title = f"{group}={keep}" if group == CHECKPOINTS and keep is not None else group
        total = sum(m.size for m in members)
        lines.append(f"{title}: {len(members)}, {human(total)}")
        lines += [f"  {m.shown}" for m in members]
    if kept:
        lines.append(f"kept: {len(kept)}")
        lines += [f"  {k}" for k in kept]
    return "\n".join(lines) + ("\n" if lines else "")


def _report(
    items: list[Item],
    kept: list[str],
    yes: bool,
    ctx: Context,
    keep: int | None = None,
    asked: bool = False,
) -> int:
    """Print the listing (and carry it out with ``yes``); the exit code: 1 when something
    listed could not be removed, or (``asked``: the user named it, ``rm``) was kept."""
    from .errors import ExitCode

    if not yes:
        sys.stdout.write(listing(items, kept, keep))
        total = sum(i.size for i in items)
        if items:
            sys.stdout.write(
                f"would free {human(total)}; nothing deleted (dry run): pass --yes to delete\n"
            )
        else:
            sys.stdout.write("nothing to remove\n")
        return int(ExitCode.OK)
    outcome = carry_out(ctx, items)
    sys.stdout.write(listing(outcome.removed, [*kept, *outcome.kept], keep))
    freed = sum(i.size for i in outcome.removed)
    if outcome.removed or outcome.kept:
        sys.stdout.write(f"removed {len(outcome.removed)}, freed {human(freed)}\n")
    else:
        sys.stdout.write("nothing to remove\n")  # as the dry run says it
    failed = outcome.kept or (asked and kept)
    return int(ExitCode.RUNS_FAILED if failed else ExitCode.OK)


# -- the commands -------------------------------------------------------------------------------


def _parser(prog: str, description: str) -> Any:
    from . import runref
    from .options import ArgumentParser

    parser = ArgumentParser(prog=prog, description=description)
    runref.add_log_dir_option(parser)
    parser.add_argument(
        "--yes",
        "-y",
        action="store_true",
        help="delete (without it, only list what would be deleted and the bytes freed)",
    )
    return parser


def make_rm_parser() -> Any:
    parser = _parser(
        "xprun rm",
        "Remove runs: each WORD is a hash, a unique hash prefix (4+ characters), a node id "
        "or a query of the Reader. A dry run unless --yes; running runs are never removed.",
    )
    parser.add_argument("words", nargs="+", metavar="WORD", help="the runs to remove")
    return parser


def make_gc_parser() -> Any:
    parser = _parser(
        "xprun gc",
        "Remove what no run references: superseded checkpoints, finished job folders, "
        "unreferenced snapshots, session files and source-store entries, stale index "
        "entries, and the trash of an interrupted clean-up; with --failed, failed and "
        "interrupted runs; with --previous, attempts replaced by --force. A dry run unless "
        "--yes; running runs are never touched.",
    )
    parser.add_argument(
        "--failed",
        action="store_true",
        help="also remove the runs that are not complete (failed, interrupted, timed out, "
        "or never recorded), whole",
    )
    parser.add_argument(
        "--previous",
        action="store_true",
        help="also remove the attempts that --force reruns set aside in previous/<N>/",
    )
    parser.add_argument(
        "--keep-checkpoints",
        type=int,
        default=1,
        metavar="N",
        help="keep the last N checkpoints of each run (default 1, the logger's default "
        "keep; pass the keep your runs save with)",
    )
    parser.add_argument(
        "--grace",
        default="1h",
        metavar="AGE",
        help="keep unreferenced session files, source-store entries and snapshots younger "
        "than AGE, which a launch under way may still need (default 1h; e.g. 0, 90s, 30m, 2d)",
    )
    return parser


def parse_age(text: str) -> float:
    from .errors import UsageError

    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if match is None:
        raise UsageError(
            f"--grace {text!r} is not an age: give a number of seconds, or one with a unit "
            "(90s, 30m, 2h, 14d)"
        )
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


def rm_main(argv: list[str]) -> int:
    args = make_rm_parser().parse_args(argv)
    ctx = Context.make(args.log_dir)
    items, kept = plan_rm(ctx, args.words)
    return _report(items, kept, args.yes, ctx, asked=True)


def gc_main(argv: list[str]) -> int:
    from .errors import UsageError

    args = make_gc_parser().parse_args(argv)
    if args.keep_checkpoints < 1:
        raise UsageError(
            f"--keep-checkpoints must be at least 1 (the checkpoint a run resumes from), "
            f"got {args.keep_checkpoints}"
        )
    ctx = Context.make(args.log_dir, parse_age(args.grace))
    items, kept = plan_gc(ctx, args.failed, args.previous, args.keep_checkpoints, _queue_asker())
    return _report(items, kept, args.yes, ctx, args.keep_checkpoints)


def _queue_asker() -> Callable[[str, list[str]], dict[str, str]]:
    """Asks a scheduler's queue which of some job ids it still holds, as ``xprun status``
    does (the scheduler plugin chosen by name; the config made once, when first needed)."""
    made: dict[str, Any] = {}

    def ask(name: str, job_ids: list[str]) -> dict[str, str]:
        from .config import make_config
        from .status import _ask

        if "config" not in made:
            made["config"] = make_config([], Path.cwd())
        config = made["config"]
        scheduler = config.hook.xprun_choose_scheduler(name=name, config=config)
        if scheduler is None:
            raise RuntimeError(f"no scheduler plugin named {name!r}")
        return _ask(scheduler, job_ids)

    return ask
