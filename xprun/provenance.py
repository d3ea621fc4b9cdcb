"""Provenance: which launch produced each attempt, and the exact code it ran.

Every session that executes a run (inline, ``-n``, SLURM, OAR) records, once:

- **a snapshot commit** of the work tree as it is (``xprun.snapshot.commit``: tracked changes
  and untracked, non-ignored files; fixed date, hidden ref ``refs/xprun/snapshots/<sha>``;
  the user's branch, index and stash untouched), the one a pool or cluster job imports from
  (inline runs import the work tree itself, so theirs is only committed, not extracted);
  ``null`` outside Git;
- **a session file** ``<log_dir>/.xprun-sessions/<id>.json``: the command, machine,
  interpreter, Git state, that snapshot, every installed distribution with its version, and
  the blobs of the project's sources;
- **the sources** of every project-local module the launcher had imported (a file under the
  rootdir, outside the log and snapshot folders: experiment modules, conftest.py files,
  helpers), Git or not, in the content-addressed store ``<log_dir>/.xprun-sources/<blob>``
  (``<blob>``: the xxh3-128 hex of the bytes), each written once.

Each run's ``run.json`` names the session (``"session": "<id>"``) and the snapshot (``"snapshot":
{commit, ref, repo, rootdir}`` or ``null``), added through ``xprun_run_record``.  Nothing is
recorded by a launch that runs nothing (every run cached, ``--collect-only``): the session is
recorded when its first run starts, or when its first job spec is written.  Workers (the
pool's, SLURM's, OAR's) record the launcher's session, which their job spec carries.

Readers use the helpers here, never the files by hand: :func:`load_session`,
:func:`recorded_source`, :func:`referenced`.  ``-p no:provenance`` turns recording off.
"""

from __future__ import annotations

import os
import posixpath
import re
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import store
from .hookimpl import hookimpl
from .metadata import Soon

if TYPE_CHECKING:
    from .config import Config
    from .runcontext import RunContext
    from .runspec import RunSpec
    from .session import Session
    from .snapshot import Snapshot

SESSIONS_DIR = ".xprun-sessions"
SOURCES_DIR = ".xprun-sources"
SESSION_FORMAT = 1
_RECORDER = "xprun.provenance.recorder"
_SESSION_ID = re.compile(r"[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}")
_BLOB = re.compile(r"[0-9a-f]{32}")
_COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")  # SHA-1 and SHA-256 repositories


class Recorder:
    """The session's provenance, decided once: its id and snapshot, and the session file.

    In a launcher it is computed when first asked (the first run's record, or the first job
    spec), so a launch that runs nothing records nothing; in a worker it is the launcher's,
    adopted from the job spec (:func:`adopt`), and a worker never records a session of its own.
    """

    def __init__(self) -> None:
        self.session: Session | None = None
        self.fields: dict[str, Any] | None = None
        self.adopted = False
        self.prepared: Soon[_Prepared] | None = None

    @hookimpl
    def xprun_sessionstart(self, session: Session) -> None:
        self.session = session

    @hookimpl
    def xprun_run_record(self, run: RunSpec, context: RunContext) -> dict[str, Any] | None:
        fields = self.decide()
        return dict(fields) if fields else None

    def decide(self) -> dict[str, Any] | None:
        """``{"session": id, "snapshot": {...} | None}``, recorded on first use."""
        if self.fields is None and not self.adopted and self.session is not None:
            prepared, self.prepared = self.prepared, None
            self.fields = _record_session(self.session, prepared)
        return self.fields

    def prepare(self) -> None:
        """Start gathering, in a thread, what the session file holds that depends neither on
        the snapshot nor on the Git state (see :func:`prepare`)."""
        session = self.session
        if self.fields is None and not self.adopted and session is not None and not self.prepared:
            self.prepared = Soon(lambda: _prepare(session))


def prepare(session: Session) -> None:
    """Gather the installed distributions and the project files the experiments import, for
    the session file, in a thread from now on: a launcher that is about to take its snapshot
    (git calls it waits for) and then record its session calls this first, so that the
    listing of every ``sys.path`` folder and the reading of the experiments' imports overlap
    those calls instead of following them.  The session file is still written, whole, before
    the job spec that names it, so no run can ever name a session file that does not exist.
    Nothing is gathered when provenance is off or already decided."""
    recorder = session.config.pluginmanager.get_plugin(_RECORDER)
    if isinstance(recorder, Recorder):
        recorder.prepare()


#: What :func:`prepare` gathers: (installed distributions, files imported lazily).
_Prepared = tuple[dict[str, str], list[Path]]


def _prepare(session: Session) -> _Prepared:
    return installed_distributions(), _imported_lazily(session)


@hookimpl
def xprun_configure(config: Config) -> None:
    config.pluginmanager.register(Recorder(), _RECORDER)


def session_fields(session: Session, imported: Snapshot | None = None) -> dict[str, Any] | None:
    """The launch's ``{"session", "snapshot"}`` for a job spec (recorded now if not yet);
    None when provenance is turned off (``-p no:provenance``).

    ``imported``: the snapshot the jobs import.  It is the session's, but for a session
    whose inline runs came first and whose ``dirty``/``untracked`` policies are not the
    default: the jobs' runs then name the commit they import."""
    recorder = session.config.pluginmanager.get_plugin(_RECORDER)
    fields = recorder.decide() if isinstance(recorder, Recorder) else None
    if fields and imported is not None:
        recorded = fields["snapshot"] or {}
        if recorded.get("commit") != imported.commit:
            fields = {**fields, "snapshot": imported.taken.record()}
    return fields


def adopt(config: Config, fields: Any) -> None:
    """In a worker: record the launcher's session and snapshot (from the job spec), never a
    session of the worker's own; ``fields`` None (a launcher without provenance) records
    none."""
    recorder = config.pluginmanager.get_plugin(_RECORDER)
    if isinstance(recorder, Recorder):
        recorder.adopted = True
        recorder.fields = None
        if isinstance(fields, dict) and _SESSION_ID.fullmatch(str(fields.get("session"))):
            recorder.fields = {"session": fields["session"], "snapshot": fields.get("snapshot")}


# -- recording -------------------------------------------------------------------------------


def _record_session(session: Session, prepared: Soon[_Prepared] | None = None) -> dict[str, Any]:
    """Take the session's snapshot commit, store its sources, write its session file
    (``prepared``: its distributions and lazily imported files, gathered meanwhile)."""
    from .jobs import new_id
    from .metadata import process_fields

    config = session.config
    log_dir = Path(config.log_dir)
    taken = session.snapshot_commit()
    snapshot = taken.record() if taken is not None else None
    exclude = [Path(config.log_dir), Path(config.snapshot_dir)]
    # Jobs import the extracted snapshot, which the dirty/untracked policies may have made
    # differ from the work tree: the bytes kept are those of the copy the runs import.
    extracted = Path(config.snapshot_dir) / taken.commit / taken.rootdir if taken else None
    distributions, lazily = prepared.result() if prepared else _prepare(session)
    found = _project_sources(Path(config.rootdir), exclude, extracted, lazily)
    sources = {relpath: store_source(log_dir, data) for relpath, data in found.items()}
    git_fields, _ = session.git_state()
    git = (
        {key: git_fields.get(key) for key in ("root", "commit", "branch", "dirty")}
        if git_fields.get("available")
        else None
    )
    process = process_fields()
    identifier = new_id()
    data = {
        "format": SESSION_FORMAT,
        "id": identifier,
        "created": _now(),
        "argv": process["argv"],
        "cwd": process["cwd"],
        "host": process["host"],
        "python": process["python"],
        "python_executable": process["python_executable"],
        "platform": process["platform"],
        "xprun": process["xprun"],
        "rootdir": str(Path(config.rootdir).resolve()),
        "git": git,
        "snapshot": snapshot,
        "distributions": distributions,
        "sources": sources,
    }
    path = log_dir / SESSIONS_DIR / f"{identifier}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    store.write_json_atomic(path, data)
    return {"session": identifier, "snapshot": snapshot}


def _now() -> str:
    from .timestamps import timestamp

    return timestamp()


def _imported_lazily(session: Session) -> list[Path]:
    """The project files the collected experiments' modules import, transitively, read
    from their import statements: also those a function imports when it runs (``def
    xp_fit(): from models import net``), which are not imported yet when the session is
    recorded, before its first run."""
    from .codedigest import module_files

    config = session.config
    exclude = [Path(config.log_dir), Path(config.snapshot_dir)]
    modules = {experiment.path for experiment in session.experiments}
    found = {f for module in modules for f in module_files(module, Path(config.rootdir), exclude)}
    return [Path(f) for f in sorted(found)]


def _project_sources(
    rootdir: Path, exclude: list[Path], extracted: Path | None = None, also: Iterable[Path] = ()
) -> dict[str, bytes]:
    """The bytes of every project-local module imported so far, and of the files in
    ``also``, by path relative to the rootdir (posix): files under the rootdir, outside the
    log and snapshot folders; read in ``extracted`` (the rootdir in an extracted snapshot)
    when that copy exists."""
    from .snapshot import imported_files

    root = rootdir.resolve()
    excluded = [p.resolve() for p in exclude]
    copy = extracted if extracted is not None and extracted.is_dir() else None
    found: dict[str, bytes] = {}
    for path in [*imported_files(), *also]:
        path = path.resolve()
        if not path.is_relative_to(root) or any(path.is_relative_to(e) for e in excluded):
            continue
        relpath = path.relative_to(root).as_posix()
        try:
            found[relpath] = (copy / relpath if copy else path).read_bytes()
        except OSError:
            continue  # deleted since it was imported: nothing to keep
    return dict(sorted(found.items()))


def blob_name(data: bytes) -> str:
    """The name of ``data`` in the source store: the xxh3-128 hex of its bytes."""
    import xxhash

    return xxhash.xxh3_128_hexdigest(data)


def store_source(log_dir: Path, data: bytes) -> str:
    """Put ``data`` in ``<log_dir>/.xprun-sources/`` (once: a blob already there is kept as
    it is) and return its blob name."""
    blob = blob_name(data)
    path = Path(log_dir) / SOURCES_DIR / blob
    if not os.path.lexists(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        store.write_bytes_atomic(path, data)
    return blob


def installed_distributions() -> dict[str, str]:
    """Every installed distribution, by normalized name (``pyyaml``, ``typing-extensions``),
    with its version: the first found along ``sys.path``, as the import system finds them.

    ``<name>-<version>.dist-info`` folders are read by their names (a stat-free listing:
    reading every distribution's metadata costs a fifth of a second); the other kinds
    (``.egg-info``) through ``importlib.metadata``.
    """
    import importlib.metadata as metadata

    found: dict[str, str] = {}
    for entry in sys.path:
        folder = entry or os.curdir
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            continue
        for name in names:
            if name.endswith(".dist-info"):
                dist, sep, version = name[: -len(".dist-info")].partition("-")
            elif name.endswith(".egg-info"):
                try:
                    info = metadata.Distribution.at(os.path.join(folder, name))
                    dist, sep, version = info.metadata["Name"] or "", "-", info.version or ""
                except Exception:  # a damaged egg-info: not a distribution we can name
                    continue
            else:
                continue
            if sep and dist and version:
                found.setdefault(_normalize(dist), version)
    return dict(sorted(found.items()))


def _normalize(name: str) -> str:
    """A distribution's name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


# -- reading ---------------------------------------------------------------------------------


def load_session(log_dir: Path, session_id: str) -> dict[str, Any] | None:
    """The session file of ``session_id`` under ``log_dir``, or None when it is not there
    (never recorded, removed, another log directory) or is not a session file of that id.

    ``session_id`` comes from a ``run.json``: anything but an id (a path, say) is None."""
    if not isinstance(session_id, str) or not _SESSION_ID.fullmatch(session_id):
        return None
    path = Path(log_dir) / SESSIONS_DIR / f"{session_id}.json"
    try:
        data = store.read_json(path)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("id") != session_id:
        return None
    if data.get("format") != SESSION_FORMAT:
        return None
    return data


def recorded_source(log_dir: Path, record: dict[str, Any], relpath: str) -> bytes | None:
    """The bytes of ``<rootdir>/<relpath>`` as the run of ``record`` (its ``run.json``) ran it.

    From the source store through the session's ``sources`` (checked against the blob's
    name), else ``<snapshot commit>:<rootdir>/<relpath>`` from the snapshot's repository or,
    failing that, the repository holding the log directory or the current folder (another
    clone that has the commit), else None: not recorded (a format-1 run, a file the session
    did not import, a snapshot gone from every repository at hand).

    ``relpath`` is relative to the rootdir, with ``/``; one leaving the rootdir is a
    ``ValueError``.
    """
    relpath = _inside(relpath)
    snapshot = record.get("snapshot")
    session = load_session(log_dir, record.get("session"))  # type: ignore[arg-type]
    # The session's sources are the code of its runs unless the run names another commit
    # than the session (jobs of a mixed session with non-default policies): Git knows then.
    same = session is not None and _commit_of(session.get("snapshot")) == _commit_of(snapshot)
    sources = session.get("sources") if session and same else None
    blob = sources.get(relpath) if isinstance(sources, dict) else None
    if isinstance(blob, str) and _BLOB.fullmatch(blob):
        data = read_blob(log_dir, blob)
        if data is not None:
            return data
    if not isinstance(snapshot, dict):
        return None
    commit, rootdir = snapshot.get("commit"), snapshot.get("rootdir")
    if not isinstance(commit, str) or not _COMMIT.fullmatch(commit):
        return None
    if not isinstance(rootdir, str):
        return None
    inside = _inside(posixpath.join(rootdir, relpath)) if rootdir not in ("", ".") else relpath
    places = [snapshot.get("repo"), str(log_dir), os.getcwd()]
    for place in dict.fromkeys(p for p in places if isinstance(p, str) and os.path.isdir(p)):
        proc = subprocess.run(
            ["git", "-C", place, "cat-file", "blob", f"{commit}:{inside}"],
            capture_output=True,
            check=False,
        )
        if proc.returncode == 0:
            return proc.stdout
    return None


def _commit_of(snapshot: Any) -> Any:
    return snapshot.get("commit") if isinstance(snapshot, dict) else None


def read_blob(log_dir: Path, blob: str) -> bytes | None:
    """The bytes stored as ``blob``, or None when absent or not matching its name."""
    if not _BLOB.fullmatch(blob):
        return None
    try:
        data = store.read_regular(Path(log_dir) / SOURCES_DIR / blob, 1 << 30)
    except OSError:
        return None
    return data if blob_name(data) == blob else None


def _inside(relpath: str) -> str:
    """``relpath`` normalized (posix), or ``ValueError`` when it is not under the rootdir."""
    if not isinstance(relpath, str) or not relpath:
        raise ValueError(f"a source path relative to the rootdir is needed, got {relpath!r}")
    normal = posixpath.normpath(relpath.replace("\\", "/"))
    if normal.startswith("/") or normal == ".." or normal.startswith("../") or normal == ".":
        raise ValueError(
            f"source path {relpath!r} is not a file under the rootdir: give it relative to "
            "the rootdir, with '/' (e.g. 'models/net.py')"
        )
    return normal


def referenced(log_dir: Path) -> tuple[set[str], set[str], set[str]]:
    """``(session ids, blobs, snapshot commits)`` that something under ``log_dir`` still
    needs: what ``gc`` must keep.

    Read from every run's ``run.json`` (and those of attempts set aside under
    ``previous/<N>/``), from the job specs of ``.xprun-jobs/`` (submitted runs that have not
    started have no ``run.json`` yet), and from the session files they name (their sources'
    blobs, their snapshot).  Format-1 runs of a pool or cluster name their snapshot in
    ``git.snapshot``: kept too.
    """
    log_dir = Path(log_dir)
    sessions: set[str] = set()
    commits: set[str] = set()
    for record in _records(log_dir):
        session = record.get("session")
        if isinstance(session, str) and _SESSION_ID.fullmatch(session):
            sessions.add(session)
        _add_commit(commits, record.get("snapshot"), "commit")
        _add_commit(commits, record.get("git"), "snapshot")
    for spec in _specs(log_dir):
        provenance = spec.get("provenance")
        if isinstance(provenance, dict):
            session = provenance.get("session")
            if isinstance(session, str) and _SESSION_ID.fullmatch(session):
                sessions.add(session)
            _add_commit(commits, provenance.get("snapshot"), "commit")
        _add_commit(commits, spec.get("git"), "snapshot")
    blobs: set[str] = set()
    for session in sessions:
        data = load_session(log_dir, session)
        if data is None:
            continue
        sources = data.get("sources")
        if isinstance(sources, dict):
            blobs.update(b for b in sources.values() if isinstance(b, str) and _BLOB.fullmatch(b))
        _add_commit(commits, data.get("snapshot"), "commit")
    return sessions, blobs, commits


def _add_commit(commits: set[str], holder: Any, key: str) -> None:
    value = holder.get(key) if isinstance(holder, dict) else None
    if isinstance(value, str) and _COMMIT.fullmatch(value):
        commits.add(value)


def _records(log_dir: Path) -> list[dict[str, Any]]:
    """Every readable ``run.json`` under ``log_dir``: runs and their set-aside attempts."""
    found = []
    for experiment in _folders(log_dir):
        for run_dir in _folders(experiment):
            paths = [run_dir / store.RUN_JSON]
            paths += [p / store.RUN_JSON for p in _folders(run_dir / "previous")]
            for path in paths:
                record = _read(path)
                if record is not None:
                    found.append(record)
    return found


def _specs(log_dir: Path) -> list[dict[str, Any]]:
    from .jobs import JOBS_DIR

    found = []
    for job_dir in _folders(log_dir / JOBS_DIR):
        spec = _read(job_dir / "spec.json")
        if spec is not None:
            found.append(spec)
    return found


def _folders(path: Path) -> list[Path]:
    """The folders in ``path`` not named with a dot (xprun's own: sessions, sources, jobs)."""
    try:
        entries = list(os.scandir(path))
    except OSError:
        return []
    folders = []
    for entry in entries:
        try:
            if entry.name[:1] != "." and entry.is_dir():
                folders.append(Path(entry.path))
        except OSError:
            continue
    return sorted(folders)


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = store.read_json(path)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
