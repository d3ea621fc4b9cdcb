"""``xprun reproduce``: run a recorded run again from the code it ran, and compare.

For each run the words name (``xprun.runref``: a hash, a unique prefix, a node id, a query):

1. **The code** is materialized into a temporary folder, from the first of:

   - the run's snapshot commit (``snapshot`` in ``run.json``; ``git.snapshot`` for runs of a
     pool or cluster recorded before it), ``git archive``d from the repository that took it
     (``snapshot.repo``), else from the current one (another clone that has the commit);
   - its commit (``git.commit``), with ``git.patch`` applied and its untracked files taken
     from the source store;
   - the source store alone (``<log_dir>/.xprun-sources``, through the session's list).

   What none of them holds is named, and nothing runs.

2. **The run** is executed again through the normal run protocol, by the job-spec worker
   (``xprun.worker``) in a fresh process that imports the materialized code only (as a
   cluster job imports its snapshot): the recorded config (``config.yaml``), seed and fixture
   params, into a scratch log directory, never the original.  Its hash is computed again
   from that code: a different one means the identity changed (an experiment renamed, a
   param's value changed, ``exclude`` edited), which is reported.

3. **The outcome** is compared with the recorded one: the status, then each value of
   ``outcome.json`` (nested), exactly or within ``--rtol``/``--atol`` for numbers.  With
   ``--check`` the exit code says whether they agree (0) or not (1): a CI step.

Installed versions of the run's ``packages`` (and of the session's ``distributions``) that
differ from the recorded ones are listed as a warning; ``--env`` builds a virtual environment
with the recorded versions (``uv``) and reproduces inside it.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .cli import Command

# subprocess, shutil and tempfile are imported where they are used: `xprun --help` imports
# this module to list its command, and should not pay for them.
if TYPE_CHECKING:
    import subprocess


def xprun_subcommand() -> Iterable[Command]:
    return (
        Command(
            "reproduce",
            lambda argv: main(argv),
            "run a recorded run again from its recorded code, and compare the outcomes",
        ),
    )


class NotReproducible(Exception):
    """What a run's directory does not record, so it cannot be run again (exit 4)."""


@dataclass
class Code:
    """The run's code, materialized: ``rootdir`` is the project's rootdir inside ``top``."""

    top: Path
    rootdir: Path
    how: str
    warnings: list[str] = field(default_factory=list)


# -- materializing the code ------------------------------------------------------------------


def _git(args: list[str], cwd: Path | str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    import subprocess

    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=False, **kwargs
    )


def _repo_top(path: Path | str | None) -> Path | None:
    """The top of the Git work tree holding ``path``, or None."""
    if not path or not os.path.isdir(path):
        return None
    proc = _git(["rev-parse", "--show-toplevel"], path)
    return Path(proc.stdout.strip()) if proc.returncode == 0 else None


def _holder(commit: str, places: Iterable[Path | str | None]) -> Path | None:
    """The first repository of ``places`` that has ``commit``."""
    tops = [_repo_top(p) for p in places]
    for top in dict.fromkeys(t for t in tops if t is not None):
        if _git(["cat-file", "-e", f"{commit}^{{commit}}"], top).returncode == 0:
            return top
    return None


def _places(recorded_in: Any, log_dir: Path) -> list[Any]:
    """Where a recorded commit may be: the recording repository first, then the repository
    holding the log directory, then the current one (another clone)."""
    return [recorded_in, log_dir, Path.cwd()]


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _rootdir_in(top: Path, record: dict[str, Any], recorded_rel: str | None) -> Path:
    """The project's rootdir inside a materialized repository: as recorded (``snapshot
    .rootdir``), else from the recorded rootdir and repository top, else the shallowest
    folder holding the run's experiment file (runs recorded before the rootdir was)."""
    if recorded_rel is not None:
        return top / recorded_rel
    code = record.get("code")
    git_root = _text((record.get("git") or {}).get("root"))
    root = _text(code.get("root")) if isinstance(code, dict) else None
    if root and git_root and Path(root).is_relative_to(git_root):
        return top / Path(root).relative_to(git_root)
    experiment_file = str(record.get("nodeid", "")).partition("::")[0]
    if not experiment_file or (top / experiment_file).exists():
        return top
    for folder, dirs, _ in os.walk(top):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        if (Path(folder) / experiment_file).exists():
            return Path(folder)
    return top


def materialize(
    run_dir: Path, record: dict[str, Any], log_dir: Path, dest: Path, snapshots: Path | None = None
) -> Code:
    """The run's code in a folder of ``dest`` (see the module docstring, step 1); a snapshot
    commit is extracted into ``snapshots`` instead when given, once for all the runs of one
    snapshot (it is never modified: the other ways patch or fill their copy)."""
    git = record.get("git") if isinstance(record.get("git"), dict) else {}
    assert isinstance(git, dict)
    snapshot = record.get("snapshot") if isinstance(record.get("snapshot"), dict) else None
    missing: list[str] = []
    # 1. the snapshot commit
    commit = _text(snapshot.get("commit")) if snapshot else _text(git.get("snapshot"))
    if commit:
        repo = snapshot.get("repo") if snapshot else git.get("root")
        top = _holder(commit, _places(repo, log_dir))
        if top is not None:
            root = _extract(top, commit, snapshots or dest / "code")
            rel = _text(snapshot.get("rootdir")) if snapshot else None
            return Code(root, _rootdir_in(root, record, rel), f"snapshot {commit[:12]} of {top}")
        missing.append(
            f"the snapshot commit {commit[:12]} is in no repository at hand ({repo}, nor the "
            "current one): fetch it (git fetch <clone> 'refs/xprun/snapshots/*:refs/xprun/"
            "snapshots/*')"
        )
    # 2. the commit, the patch, the untracked files
    commit = _text(git.get("commit")) if git.get("available") else None
    if commit:
        top = _holder(commit, _places(git.get("root"), log_dir))
        if top is not None:
            return _from_commit(run_dir, record, log_dir, dest, top, commit)
        missing.append(f"the commit {commit[:12]} is in no repository at hand ({git.get('root')})")
    # 3. the source store
    code = _from_store(record, log_dir, dest)
    if code is not None:
        return code
    missing.append("no session with stored sources (.xprun-sources) is recorded")
    raise NotReproducible(_not_recorded(record, missing))


def _not_recorded(record: dict[str, Any], missing: list[str]) -> str:
    fmt = record.get("format")
    old = (
        f" (run.json format {fmt}: made before xprun recorded snapshots and sources; runs "
        "made by this version record them)"
        if fmt == 1
        else ""
    )
    return (
        f"cannot reproduce {record.get('nodeid')} ({str(record.get('hash'))[:12]}): its code "
        f"is not recorded{old}:\n  " + "\n  ".join(missing)
    )


def _extract(top: Path, commit: str, folder: Path) -> Path:
    """``folder/<commit>``: the commit's files (``git archive``), extracted once."""
    from .snapshot import extract

    return extract(top, commit, folder)


def _from_commit(
    run_dir: Path, record: dict[str, Any], log_dir: Path, dest: Path, top: Path, commit: str
) -> Code:
    """``git.commit`` + ``git.patch`` + the untracked files (from the source store)."""
    git = record["git"]
    root = _extract(top, commit, dest / "code")
    how = f"commit {commit[:12]} of {top}"
    patch = run_dir / "git.patch"
    if git.get("patch"):
        if not patch.is_file():
            raise NotReproducible(
                _not_recorded(record, [f"run.json names git.patch, but {patch} is missing"])
            )
        _apply(root, patch, record)
        how += " + git.patch"
    rootdir = _rootdir_in(root, record, None)
    untracked = [u for u in git.get("untracked") or () if isinstance(u, str)]
    code = Code(root, rootdir, how)
    if untracked:
        _untracked(record, log_dir, root, rootdir, untracked, code)
    return code


def _apply(root: Path, patch: Path, record: dict[str, Any]) -> None:
    """``git apply`` in a throwaway repository of the tree (so that no enclosing repository
    decides where the paths lead)."""
    import shutil

    _git(["init", "-q"], root)
    try:
        proc = _git(["apply", "--whitespace=nowarn", str(patch)], root)
    finally:
        shutil.rmtree(root / ".git", ignore_errors=True)
    if proc.returncode != 0:
        raise NotReproducible(
            _not_recorded(record, [f"git.patch does not apply to its commit: {proc.stderr}"])
        )


def _untracked(
    record: dict[str, Any],
    log_dir: Path,
    top: Path,
    rootdir: Path,
    untracked: list[str],
    code: Code,
) -> None:
    """Write the run's untracked files from the source store into the tree; a Python file
    that is not there stops the reproduction, other files are listed as a warning."""
    sources = _session_sources(record, log_dir)
    # The files the run's code imported (format 2): an untracked module outside them was
    # never imported (a scratch script), so not having it is no reason to refuse the run.
    ran = record.get("code", {}).get("files") if isinstance(record.get("code"), dict) else None
    missing: list[str] = []
    absent: list[str] = []
    found = 0
    for entry in untracked:
        path = top / entry
        try:
            rel = path.relative_to(rootdir).as_posix()
        except ValueError:
            rel = None
        names = []
        if rel is not None:
            if entry.endswith("/"):
                prefix = rel.rstrip("/") + "/"
                names = [s for s in sources if s.startswith(prefix)]
            elif rel in sources:
                names = [rel]
        for name in names:
            data = _recorded_source(log_dir, record, name)
            if data is not None:
                target = rootdir / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
                found += 1
        if not names:
            needed = entry.endswith((".py", "/")) and (
                not isinstance(ran, dict)
                or rel is None
                or any(f == rel or f.startswith(rel.rstrip("/") + "/") for f in ran)
            )
            (missing if needed else absent).append(entry)
    if missing:
        raise NotReproducible(
            _not_recorded(
                record,
                [
                    "its untracked files " + ", ".join(missing) + " were not kept (no source "
                    "store entry for them)"
                ],
            )
        )
    if found:
        code.how += f" + {found} untracked file{'s' * (found != 1)} from the source store"
    if absent:
        code.warnings.append(
            "untracked files not recorded (not imported code, left out): " + ", ".join(absent)
        )


def _session(record: dict[str, Any], log_dir: Path) -> dict[str, Any] | None:
    try:
        from .provenance import load_session
    except ImportError:  # pragma: no cover - an xprun without provenance
        return None
    session = record.get("session")
    return load_session(log_dir, session) if isinstance(session, str) else None


def _session_sources(record: dict[str, Any], log_dir: Path) -> list[str]:
    session = _session(record, log_dir)
    sources = session.get("sources") if session else None
    return sorted(s for s in sources if isinstance(s, str)) if isinstance(sources, dict) else []


def _recorded_source(log_dir: Path, record: dict[str, Any], relpath: str) -> bytes | None:
    from .provenance import recorded_source

    try:
        return recorded_source(log_dir, record, relpath)
    except ValueError:  # a path leaving the rootdir: never written
        return None


def _from_store(record: dict[str, Any], log_dir: Path, dest: Path) -> Code | None:
    """The project's sources the session stored, written under ``dest/code/``."""
    names = _session_sources(record, log_dir)
    if not names:
        return None
    root = dest / "code" / "store"
    written = 0
    for name in names:
        data = _recorded_source(log_dir, record, name)
        if data is None:
            continue
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        written += 1
    if not written:
        return None
    return Code(root, root, f"the source store ({written} file{'s' * (written != 1)})")


# -- the job spec, and its execution in a fresh process ---------------------------------------


def _split_nodeid(nodeid: str) -> tuple[str, str]:
    """``(experiment node id, label)`` of a run's node id."""
    path, _, rest = nodeid.partition("::")
    function = rest.partition("[")[0]
    experiment = f"{path}::{function}"
    return experiment, nodeid[len(experiment) :]


def write_spec(
    record: dict[str, Any], config: dict[str, Any], code: Code, scratch: Path, dest: Path
) -> Path:
    """A job spec (``xprun.jobs``) for the run as recorded, from the materialized code,
    into the scratch log directory."""
    from . import store
    from .jobs import SPEC_FORMAT
    from .settings import load_settings
    from .timestamps import timestamp

    settings = load_settings([], code.rootdir)
    if settings.inifile is None:  # the source store holds modules, not pyproject.toml
        settings = load_settings([], Path.cwd())
    experiment, label = _split_nodeid(str(record["nodeid"]))
    git = dict(record.get("git") or {})
    git["snapshot_dir"] = str(code.top)  # where imports are confined to (worker.py)
    packages = _packages(record)
    spec = {
        "format": SPEC_FORMAT,
        "created": timestamp(),
        "scheduler": "inline",
        "rootdir": str(code.rootdir),
        "source_rootdir": str(code.rootdir),
        "source_top": _live_tree(),
        "log_dir": str(scratch),
        "python": sys.executable,
        "settings": settings.values,
        "force": False,
        "capture": None,
        "full_trace": False,
        "plugins": [],
        "git": git,
        "patch": None,
        "resources": {},
        "provenance": None,  # the reproduction is no launch of the project's
        "packages": sorted(packages),
        "runs": [
            {
                "nodeid": experiment,
                "label": label,
                "config": config,
                "param_indices": {},  # found from the params' ids by the executor
                "param_ids": dict(record.get("params") or {}),
                "assignments": {},
                "marks": [],
                "volatile": record.get("resolved_at_run"),
                "digest": record["digest"],
                "run_dir": str(scratch / str(record["experiment"]) / str(record["hash"])),
            }
        ],
    }
    path = dest / "spec.json"
    store.write_json_atomic(path, spec)
    return path


def _packages(record: dict[str, Any]) -> dict[str, Any]:
    """The run's recorded ``packages`` (``{}`` when not recorded)."""
    packages = record.get("packages")
    return packages if isinstance(packages, dict) else {}


def _live_tree() -> str | None:
    """The user's work tree, which the executing process must not import from (a folder of
    it on ``sys.path``, through ``PYTHONPATH`` or an editable install, is confined to the
    materialized code as a cluster job's is to its snapshot): the current repository's top;
    None outside Git (nothing to confine: the materialized code is the only copy at hand)."""
    top = _repo_top(Path.cwd())
    return str(top) if top is not None else None


#: What the fresh process runs (``python -c``, with the spec's and the result's paths): the
#: interpreter chosen (this one, or ``--env``'s) with the xprun installed there.
_EXECUTE = "import sys; from pathlib import Path; from xprun.reproduce import execute; " + (
    "sys.exit(execute(Path(sys.argv[1]), Path(sys.argv[2])))"
)


def execute(spec_path: Path, result_path: Path) -> int:
    """In the fresh process: rebuild the run from the spec with the materialized code,
    check its hash, execute it through the run protocol, write what happened."""
    from . import store
    from .worker import Worker

    worker = Worker(spec_path)
    try:
        entry = worker.spec["runs"][0]
        result: dict[str, Any] = {"expected": entry["digest"]}
        experiment = worker.experiments.get(entry["nodeid"])
        if experiment is None:
            errors = [text for _, text in worker.session.collect_errors]
            result["error"] = f"experiment {entry['nodeid']} not found in the recorded code" + (
                ":\n" + "\n".join(errors) if errors else ""
            )
        else:
            try:
                digest, how = _identity(worker, experiment, entry)
            except NotReproducible as exc:
                result["error"] = str(exc)
                store.write_json_atomic(result_path, result)
                return 0
            result["identity"] = how
            if digest != entry["digest"]:
                entry["digest"] = digest
                entry["run_dir"] = str(Path(entry["run_dir"]).parent / digest.partition(":")[2])
            report = worker.execute(0)
            result.update(
                digest=digest,
                run_dir=entry["run_dir"],
                status=str(report.status),
                longrepr=report.longrepr,
            )
        result["packages"] = _installed(worker.spec.get("packages") or [])
        store.write_json_atomic(result_path, result)
    finally:
        worker.close()
    return 0


def _identity(worker: Any, experiment: Any, entry: dict[str, Any]) -> tuple[str, str]:
    """The run's digest under the materialized code, and how it was found; fills the
    entry's ``param_indices`` (the recorded params' ids, as that code numbers them)."""
    from .identity import KeyExcluder, run_digest

    identities: dict[str, Any] = {}
    missing = []
    for name, param_id in entry["param_ids"].items():
        fdef = experiment.fixtures.get(name)
        ids = list(fdef.ids or ()) if fdef is not None else []
        if param_id not in ids or fdef is None or fdef.identities is None:
            missing.append(f"{name}={param_id}")
            continue
        index = ids.index(param_id)
        entry["param_indices"][name] = index
        identities[name] = fdef.identities[index]
    settings = worker.config.settings
    excluder = KeyExcluder([*settings.patterns("exclude"), *experiment.declaration.exclude])
    config = entry["config"]
    hashed = excluder.apply(config) if excluder else config
    digest = run_digest(experiment.identity, hashed, identities)
    volatile = sorted(entry.get("volatile") or ())
    if digest == entry["digest"] and not missing and not volatile:
        return digest, "same"
    # Values resolved when it ran (${now:}, ${hydra:runtime.output_dir}) are hashed as their
    # text, which config.yaml does not keep: the expansion makes them again, resolved for the
    # scratch log directory (never the original run directory).
    found = _expanded(worker, experiment, entry["digest"])
    if found is not None and _same(found.config, config, volatile):
        entry.update(config=found.config, volatile=found.volatile)
        entry["param_indices"] = dict(found.param_indices)
        return entry["digest"], "same"
    if volatile:
        raise NotReproducible(
            f"its config has values resolved when it ran ({', '.join(volatile)}), which only "
            "its experiment's expansion makes again, and no run of it without command-line "
            f"overrides has the hash {entry['digest']} in the recorded code"
        )
    if missing:
        return digest, "params not found in the code: " + ", ".join(missing)
    return digest, "changed"


def _same(config: dict[str, Any], recorded: dict[str, Any], volatile: list[str]) -> bool:
    """Whether two configs agree but for the dotted keys ``volatile``."""
    from .identity import canonical

    def without(tree: Any, prefix: str = "") -> Any:
        if not isinstance(tree, dict):
            return tree
        return {
            k: without(v, f"{prefix}{k}.")
            for k, v in tree.items()
            if f"{prefix}{k}" not in volatile
        }

    return canonical(without(config)) == canonical(without(recorded))


_EXPANSION_LIMIT = 100_000  # runs of an experiment expanded to find a hash; more: not tried


def _expanded(worker: Any, experiment: Any, digest: str) -> Any:
    """The run of ``digest`` among the experiment's runs without overrides, or None."""
    from .expand import Expander

    try:
        expander = Expander(experiment, worker.session)
        if expander.size([]) > _EXPANSION_LIMIT:
            return None
        runs = expander.runs([], _EXPANSION_LIMIT)
    except Exception:  # a config that no longer expands: the identity cannot be found so
        return None
    return next((run for run in runs if run.digest == digest), None)


def _installed(names: list[str]) -> dict[str, str | None]:
    """The installed version of each distribution (None: not installed)."""
    import importlib.metadata as metadata

    found: dict[str, str | None] = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


# -- comparing outcomes ---------------------------------------------------------------------


@dataclass(frozen=True)
class Tolerance:
    rtol: float = 0.0
    atol: float = 0.0

    @property
    def exact(self) -> bool:
        return self.rtol == 0 and self.atol == 0


def differences(
    recorded: Any, reproduced: Any, tolerance: Tolerance, where: str = "outcome"
) -> Iterator[tuple[str, Any, Any]]:
    """``(dotted key, recorded value, reproduced value)`` of each difference, walking
    mappings and lists; numbers agree within the tolerance (NaN agrees with NaN), anything
    else only when equal (``True`` is not ``1``: JSON tells them apart)."""
    if isinstance(recorded, dict) and isinstance(reproduced, dict):
        for key in list(dict.fromkeys([*recorded, *reproduced])):
            here = f"{where}.{key}"
            if key not in reproduced:
                yield here, recorded[key], _ABSENT
            elif key not in recorded:
                yield here, _ABSENT, reproduced[key]
            else:
                yield from differences(recorded[key], reproduced[key], tolerance, here)
    elif isinstance(recorded, list) and isinstance(reproduced, list):
        if len(recorded) != len(reproduced):
            yield f"{where} (length)", len(recorded), len(reproduced)
        for index, (a, b) in enumerate(zip(recorded, reproduced, strict=False)):
            yield from differences(a, b, tolerance, f"{where}[{index}]")
    elif _number(recorded) and _number(reproduced):
        if not _close(recorded, reproduced, tolerance):
            yield where, recorded, reproduced
    elif type(recorded) is not type(reproduced) or recorded != reproduced:
        yield where, recorded, reproduced


class _Absent:
    def __repr__(self) -> str:
        return "(absent)"


_ABSENT = _Absent()


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _close(a: float, b: float, tolerance: Tolerance) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if tolerance.exact:
        return a == b and type(a) is type(b)  # 1 and 1.0 are written differently
    return math.isclose(a, b, rel_tol=tolerance.rtol, abs_tol=tolerance.atol)


def _shown(value: Any) -> str:
    """A value as JSON text (what the files hold), cut at 200 characters."""
    text = repr(value) if value is _ABSENT else json.dumps(value, allow_nan=True)
    return text if len(text) <= 200 else text[:197] + "..."


# -- the environment ------------------------------------------------------------------------


def package_differences(
    recorded: dict[str, Any], installed: dict[str, str | None]
) -> list[tuple[str, str, str | None]]:
    """``(name, recorded version, installed version or None)`` of each that differs."""
    return [
        (name, str(version), installed.get(name))
        for name, version in sorted(recorded.items())
        if name in installed and installed.get(name) != version
    ]


def _distribution_differences(session: dict[str, Any] | None) -> list[tuple[str, str, str | None]]:
    """The session's ``distributions`` against those installed here (by normalized name)."""
    recorded = session.get("distributions") if session else None
    if not isinstance(recorded, dict):
        return []
    from .provenance import installed_distributions

    here = installed_distributions()
    return [
        (name, str(version), here.get(name))
        for name, version in sorted(recorded.items())
        if here.get(name) != version
    ]


def build_env(record: dict[str, Any], dest: Path) -> Path:
    """A fresh virtual environment (``uv``) with the run's recorded ``packages`` at their
    recorded versions and this xprun; returns its Python.

    xprun itself is installed from the current installation, not from the materialized
    tree: the tree is the user's project, and the xprun that reproduces must be the one that
    reads this run directory and speaks this job spec.  Its recorded version, when it
    differs, is listed with the other packages.
    """
    import shutil

    uv = shutil.which("uv")
    if uv is None:
        raise NotReproducible("--env needs uv (https://docs.astral.sh/uv/): install it first")
    venv = dest / "venv"
    python = record.get("python_executable")
    wanted = python if isinstance(python, str) and os.path.exists(python) else None
    wanted = wanted or (record.get("python") if isinstance(record.get("python"), str) else None)
    command = [uv, "venv", "-q", str(venv), "--python", str(wanted or sys.executable)]
    _uv(command, "create the virtual environment")
    packages = _packages(record)
    pins = [f"{name}=={version}" for name, version in sorted(packages.items()) if name != "xprun"]
    target = venv / "bin" / "python"
    install = [uv, "pip", "install", "-q", "--python", str(target), *pins, _xprun_source()]
    _uv(install, "install", _local_builds_hint(pins))
    return target


def _local_builds_hint(pins: list[str]) -> Callable[[str], str]:
    """What to add to uv's refusal when it names a pin of a local build (a version with a
    ``+label``: ``torch==2.13.0+cpu``), which no default index serves: it came from another
    index or a folder of wheels, and uv finds it only when told where (its own settings, read
    from the environment, so xprun need not invent options for them)."""

    def hint(stderr: str) -> str:
        # by the version, which uv prints as recorded (the name it may print normalized)
        local = [pin for pin in pins if "+" in pin and pin.partition("==")[2] in stderr]
        if not local:
            return ""
        return (
            f"\n{', '.join(local)}: a local build (the '+' label), from another package "
            "index or a folder of wheels than the default; point uv at it "
            "(UV_FIND_LINKS=<folder of wheels> or UV_INDEX=<index URL>) and run again"
        )

    return hint


def _xprun_source() -> str:
    """What installs the current xprun: its source folder (an editable or source checkout),
    else its version from the package index."""
    here = Path(__file__).resolve().parent.parent
    if (here / "pyproject.toml").is_file():
        return str(here)
    from ._version import __version__

    return f"xprun=={__version__}"


def _uv(command: list[str], what: str, hint: Callable[[str], str] | None = None) -> None:
    import subprocess

    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        stderr = proc.stderr.strip()
        more = hint(stderr) if hint is not None else ""
        raise NotReproducible(f"--env: uv could not {what}:\n{stderr}{more}")


# -- the command ----------------------------------------------------------------------------


@dataclass
class Outcome:
    """One reproduction: what was compared and how it ended."""

    nodeid: str
    agrees: bool = False
    lines: list[str] = field(default_factory=list)


@dataclass
class Shared:
    """What the reproductions of one command share: a snapshot's extraction, and each
    ``--env`` environment (by the recorded Python and packages it was built for)."""

    root: Path
    envs: dict[str, Path] = field(default_factory=dict)

    def env(self, record: dict[str, Any], dest: Path) -> Path:
        key = json.dumps([record.get("python_executable"), record.get("python"), _packages(record)])
        if key not in self.envs:
            self.envs[key] = build_env(record, dest)
        return self.envs[key]


def reproduce(
    run_dir: Path,
    log_dir: Path,
    tolerance: Tolerance,
    work: Path,
    env: bool,
    out: Any,
    shared: Shared | None = None,
) -> Outcome:
    import subprocess

    from .reader.files import Damage, read_json, read_yaml

    try:
        record = read_json(run_dir, "run.json")
        config = read_yaml(run_dir, "config.yaml")
    except (OSError, Damage) as exc:
        raise NotReproducible(f"{run_dir}: cannot read its record: {exc}") from None
    if not isinstance(record, dict) or not isinstance(config, dict | type(None)):
        raise NotReproducible(f"{run_dir}: run.json or config.yaml is not a mapping")
    for key in ("nodeid", "digest", "hash", "experiment"):
        if not isinstance(record.get(key), str):
            raise NotReproducible(f"{run_dir}: run.json has no {key}")
    result = Outcome(record["nodeid"])
    say = out.write
    say(f"reproducing {record['nodeid']} ({record['hash'][:12]})\n")
    work.mkdir(parents=True, exist_ok=True)
    snapshots = shared.root / "snapshots" if shared else None
    code = materialize(run_dir, record, log_dir, work, snapshots)
    say(f"  code: {code.how}\n")
    for warning in code.warnings:
        say(f"  warning: {warning}\n")
    if not env:
        python = Path(sys.executable)
    else:
        python = shared.env(record, work) if shared else build_env(record, work)
    if env:
        say(f"  environment: {python.parent.parent} (recorded package versions, uv)\n")
    scratch = work / "logs"
    spec = write_spec(record, config or {}, code, scratch, work)
    answer = work / "result.json"
    proc = subprocess.run(
        [str(python), "-c", _EXECUTE, str(spec), str(answer)],
        cwd=code.rootdir,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        executed = json.loads(answer.read_text())
    except (OSError, ValueError):
        raise NotReproducible(
            f"the run could not be executed from its recorded code (exit {proc.returncode}):\n"
            + (proc.stderr.strip() or proc.stdout.strip())
        ) from None
    _environment(record, log_dir, executed.get("packages") or {}, env, say)
    if executed.get("error"):
        say(f"  ERROR: {executed['error']}\n")
        return result
    new_dir = Path(executed["run_dir"])
    say(f"  ran again: {executed['status']}\n")
    if executed["status"] != "complete" and executed.get("longrepr"):
        tail = str(executed["longrepr"]).rstrip().splitlines()[-15:]
        say("".join(f"    | {line}\n" for line in tail))
    same = executed["identity"] == "same"
    if not same:
        say(
            f"  identity changed: recorded {record['digest']}, this code gives "
            f"{executed['digest']} ({executed['identity']})\n"
        )
    diffs = list(_compare(run_dir, record, new_dir, executed, tolerance))
    if diffs:
        say(f"  DIFFERS ({len(diffs)} key{'s' * (len(diffs) != 1)}):\n")
        for key, recorded, reproduced in diffs:
            say(f"    {key}: recorded {_shown(recorded)}, reproduced {_shown(reproduced)}\n")
    else:
        how = (
            "exactly" if tolerance.exact else f"within rtol={tolerance.rtol}, atol={tolerance.atol}"
        )
        say(f"  outcome agrees ({how})\n")
    result.agrees = same and not diffs
    return result


def _compare(
    run_dir: Path, record: dict[str, Any], new_dir: Path, executed: dict[str, Any], tol: Tolerance
) -> Iterator[tuple[str, Any, Any]]:
    from .reader.files import Damage, read_json

    if record.get("status") != executed.get("status"):
        yield "status", record.get("status"), executed.get("status")

    def outcome(folder: Path) -> Any:
        try:
            return read_json(folder, "outcome.json", 1 << 30)
        except FileNotFoundError:
            return _ABSENT
        except (OSError, Damage) as exc:
            return f"(unreadable: {exc})"

    recorded, reproduced = outcome(run_dir), outcome(new_dir)
    if recorded is _ABSENT or reproduced is _ABSENT:
        if recorded is not reproduced:
            yield "outcome", recorded, reproduced
        return
    yield from differences(recorded, reproduced, tol)


def _environment(
    record: dict[str, Any], log_dir: Path, installed: dict[str, Any], env: bool, say: Any
) -> None:
    packages = record.get("packages") if isinstance(record.get("packages"), dict) else None
    if packages is None:
        say("  packages: not recorded\n")
        return
    found = package_differences(packages, installed)
    if not env:
        session = _session(record, log_dir)
        listed = {name for name, _, _ in found}
        found += [d for d in _distribution_differences(session) if d[0] not in listed]
    if found:
        say("  warning: installed package versions differ from the recorded ones:\n")
        for name, version, now in found:
            say(f"    {name}: recorded {version}, installed {now or '(not installed)'}\n")


def make_parser() -> Any:
    from .options import ArgumentParser
    from .runref import add_log_dir_option

    parser = ArgumentParser(
        prog="xprun reproduce",
        description="Run recorded runs again from the code they ran (in a temporary folder, "
        "into a scratch log directory) and compare the outcomes.",
    )
    parser.add_argument(
        "runs", nargs="*", metavar="RUN", help="a hash, a unique hash prefix, a node id, or a query"
    )
    add_log_dir_option(parser)
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 0 when every reproduction agrees with its record, 1 otherwise",
    )
    parser.add_argument("--rtol", type=float, default=0.0, help="relative tolerance for numbers")
    parser.add_argument("--atol", type=float, default=0.0, help="absolute tolerance for numbers")
    parser.add_argument(
        "--env",
        action="store_true",
        help="reproduce in a fresh virtual environment with the recorded package versions (uv)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary folder (code, scratch logs)"
    )
    return parser


def _recorded_status(run_dir: Path) -> Any:
    from . import store

    record = store.read_record(run_dir)
    return record.get("status") if isinstance(record, dict) else None


def main(argv: list[str]) -> int:
    import shutil
    import tempfile

    from .errors import ExitCode, UsageError
    from .runref import RunResolver, default_log_dir

    parser = make_parser()
    args = parser.parse_args(argv)
    if not args.runs:
        raise UsageError(
            "name the run(s) to reproduce: a hash, a hash prefix, a node id or a query"
        )
    for name in ("rtol", "atol"):
        value = getattr(args, name)
        if not math.isfinite(value) or value < 0:
            raise UsageError(f"--{name} must be a number >= 0, got {value}")
    log_dir = default_log_dir(args.log_dir)
    run_dirs = RunResolver(log_dir).resolve_all(args.runs)
    tolerance = Tolerance(args.rtol, args.atol)
    work_root = Path(tempfile.mkdtemp(prefix="xprun-reproduce-"))
    shared = Shared(work_root)
    agreed = True
    failures: list[str] = []  # runs that could not be reproduced at all
    try:
        for number, run_dir in enumerate(run_dirs):
            if _recorded_status(run_dir) == "pruned":
                sys.stdout.write(
                    f"{run_dir.name}: a pruned trial: the pruner stopped it from its sibling "
                    "trials' values, which a run reproduced alone does not have; skipped\n"
                )
                continue
            try:
                outcome = reproduce(
                    run_dir,
                    log_dir,
                    tolerance,
                    work_root / str(number),
                    args.env,
                    sys.stdout,
                    shared,
                )
            except NotReproducible as exc:
                if len(run_dirs) == 1:
                    raise UsageError(str(exc)) from None
                # One run that cannot be rebuilt must not hide the others' answers (a CI
                # step checks every run of a query): said, counted, and the others go on.
                sys.stdout.flush()
                sys.stderr.write(f"ERROR: {run_dir.name}: cannot reproduce: {exc}\n")
                failures.append(run_dir.name)
                continue
            sys.stdout.flush()
            agreed = agreed and outcome.agrees
    finally:
        if args.keep:
            sys.stdout.write(f"kept {work_root}\n")
        else:
            shutil.rmtree(work_root, ignore_errors=True)
    if failures:
        if len(failures) == len(run_dirs):
            raise UsageError(f"none of the {len(run_dirs)} runs could be reproduced (above)")
        sys.stderr.write(f"{len(failures)} of {len(run_dirs)} runs could not be reproduced\n")
        agreed = False
    if args.check and not agreed:
        return int(ExitCode.RUNS_FAILED)
    return int(ExitCode.OK)
