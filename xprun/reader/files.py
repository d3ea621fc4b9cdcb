"""Reading the files of a run directory without trusting them.

A log directory can come from anywhere (a colleague, a crashed node, a hostile archive), so
the Reader opens only regular files, never follows a symbolic link out of the run directory,
reads at most a fixed number of bytes per file, and parses YAML without letting aliases
expand into more data than the file holds.  Whatever fails raises :class:`Damage`, whose
message names the file and says what is wrong with it; the caller skips and names the run.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

from .. import store
from ..configvalues import READABLE_DEPTH

# Upper bounds, far above anything xprun writes: a record is kilobytes, a config rarely more.
RECORD_LIMIT = 16 << 20  # run.json, claim.<N>
DATA_LIMIT = 256 << 20  # config.yaml, outcome.json
METRICS_LIMIT = 2 << 30  # one metrics/<name>.jsonl
MAX_DEPTH = READABLE_DEPTH  # nesting of a config or outcome value
MAX_NODES = 1_000_000  # values in a config once YAML aliases are expanded


class Damage(Exception):
    """A file of a run directory that cannot be read as what it should be."""


class NotALogDirectory(FileNotFoundError):
    """A folder inside a log directory (an experiment's, a run's) given as the log directory.

    A ``FileNotFoundError``: no log directory is there, and every caller that says so for a
    missing one says this one's message the same way."""


_RUN_NAME = re.compile(r"[0-9a-f]{32}")


def refuse_inner_folder(folder: Path) -> None:
    """Raise :class:`NotALogDirectory` if ``folder`` is a run's directory or an experiment's
    folder (it holds run directories), which a Reader of it would read as damaged runs and
    write its index into; a few entries are looked at, not the whole folder."""
    if (folder / store.RUN_JSON).is_file() and _RUN_NAME.fullmatch(folder.name):
        top, kind = folder.parent.parent, f"the directory of a run of {folder.parent.name}"
        how = f"Reader({str(top)!r}).filter(\"hash == '{folder.name}'\")"
    else:
        with os.scandir(folder) as entries:
            for count, entry in enumerate(entries):
                if count >= 16:
                    return
                if _RUN_NAME.fullmatch(entry.name) and os.path.isfile(
                    os.path.join(entry.path, store.RUN_JSON)
                ):
                    break
            else:
                return
        top, kind = folder.parent, f"the folder of experiment {folder.name}"
        how = f"Reader({str(top)!r}).experiment({folder.name!r})"
    raise NotALogDirectory(
        f"{folder} is not a log directory: it is {kind} in the log directory {top}; pass "
        f"that one ({how}; xprun show {top})"
    )


def open_dir(run_dir: Path | str) -> int:
    """A descriptor of ``run_dir`` for :func:`read_bytes`'s ``dir_fd`` (the caller closes
    it): reading several files of one run opens its directory once."""
    return os.open(run_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def read_bytes(run_dir: Path | str, name: str, limit: int, dir_fd: int | None = None) -> bytes:
    """The bytes of ``run_dir/name`` (``name`` may hold ``/``), a regular file of at most
    ``limit`` bytes reached without following any link below ``run_dir``.

    Raises ``FileNotFoundError`` when it does not exist and :class:`Damage` otherwise.  The
    file is opened non-blocking, so a FIFO planted under a record's name cannot hang us.
    ``dir_fd``, from :func:`open_dir`, is ``run_dir`` already opened.
    """
    *folders, leaf = name.split("/")
    nofollow = os.O_NOFOLLOW | os.O_CLOEXEC
    fd = -1
    try:
        fd = open_dir(run_dir) if dir_fd is None else dir_fd
        for folder in folders:
            inner = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | nofollow, dir_fd=fd)
            if fd != dir_fd:
                os.close(fd)
            fd = inner
        inner = os.open(leaf, os.O_RDONLY | os.O_NONBLOCK | nofollow, dir_fd=fd)
        if fd != dir_fd:
            os.close(fd)
        fd = inner
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise Damage(f"{name} is {_kind(info.st_mode)}, not a regular file")
        if info.st_size > limit:
            raise Damage(f"{name} is larger than {limit >> 20} MiB")
        # One read for the size fstat gave (a regular file reads short only at its end);
        # more only when it grew meanwhile or is large, up to the limit.
        want = min(info.st_size + 1, limit + 1, 1 << 26)
        chunks = [os.read(fd, want)]
        size = len(chunks[0])
        while size == want and size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            want = size  # keep reading until the end
        if size > limit:
            raise Damage(f"{name} is larger than {limit >> 20} MiB")
        return b"".join(chunks)
    except (FileNotFoundError, Damage):
        raise
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise Damage(
                f"{name} is a symbolic link (the Reader follows no link inside a run directory)"
            ) from None
        if exc.errno == errno.ENOTDIR:
            raise Damage(f"{name}: {'/'.join(folders)} is not a directory") from None
        raise Damage(f"{name} cannot be read ({exc.strerror or exc})") from None
    finally:
        if fd >= 0 and fd != dir_fd:
            os.close(fd)


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a file"


def read_json(
    run_dir: Path | str, name: str, limit: int = RECORD_LIMIT, dir_fd: int | None = None
) -> Any:
    """A JSON file of a run directory, or :class:`Damage` saying why it is not one."""
    data = read_bytes(run_dir, name, limit, dir_fd)
    if not data.strip():
        raise Damage(f"{name} is empty")
    try:
        if data[:1] == b"{":  # what xprun writes: UTF-8, no byte order mark to detect
            return json.loads(data.decode("utf-8", "surrogatepass"))
        return json.loads(data)
    except RecursionError:
        raise Damage(f"{name} is nested too deeply") from None
    except ValueError as exc:
        raise Damage(f"{name} is not valid JSON ({exc})") from None


def read_yaml(
    run_dir: Path | str, name: str, limit: int = DATA_LIMIT, dir_fd: int | None = None
) -> Any:
    """A YAML file of a run directory, safely: see :func:`load_yaml`."""
    data = read_bytes(run_dir, name, limit, dir_fd)
    try:
        return load_yaml(data)
    except Damage as exc:
        raise Damage(f"{name} {exc}") from None
    except RecursionError:
        raise Damage(f"{name} is nested too deeply") from None
    except Exception as exc:  # the YAML parser's errors have no common base we can rely on
        raise Damage(f"{name} is not valid YAML ({type(exc).__name__})") from None


def load_yaml(data: bytes) -> Any:
    """The YAML document ``data``: :func:`plain_yaml` when it can read it, else the careful
    path (:func:`careful_yaml`).  Both give the same value for every text the first accepts."""
    fast = plain_yaml(data)
    return careful_yaml(data) if fast is None else fast


# What ``yaml.dump`` writes for a plain config: ``key: scalar`` lines, nested mappings
# indented, lists of scalars as ``- item`` lines.  Scalars are taken only in forms whose
# meaning under YAML 1.1 (PyYAML's resolver) is unambiguous; any other text falls back.
_KEY_LINE = re.compile(r"( *)([A-Za-z_][A-Za-z0-9_]*):(?: (.+))?")
_ITEM_LINE = re.compile(r"( *)- (.+)")
_INT = re.compile(r"-?(?:0|[1-9][0-9]*)")
_FLOAT = re.compile(r"-?[0-9]+\.[0-9]*(?:[eE][-+][0-9]+)?")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_./-]*")
_QUOTED = re.compile(r"'([^']*)'")
_WORDS: dict[str, Any] = {
    **dict.fromkeys(("null", "Null", "NULL", "~"), None),
    **dict.fromkeys(("true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"), True),
    **dict.fromkeys(("false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF"), False),
    ".inf": float("inf"),
    "-.inf": float("-inf"),
    ".nan": float("nan"),
}
_NO_VALUE = object()


def _plain_scalar(text: str) -> Any:
    """The value of one scalar token, or ``_NO_VALUE`` when it is not one we are sure of."""
    if text in _WORDS:
        return _WORDS[text]
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    if _WORD.fullmatch(text):
        return text
    quoted = _QUOTED.fullmatch(text)
    if quoted:
        return quoted.group(1)
    if text == "[]":
        return []
    if text == "{}":
        return {}
    return _NO_VALUE


# What one line of a config means, by its text: sweeps repeat most lines from run to run
# (``batch_size: 128``), so each distinct line is matched once per process.  Only immutable
# values are kept (``[]`` and ``{}`` are made afresh); the memo is emptied when it grows.
_LINES: dict[str, tuple[bool, int, str, Any] | None] = {}
_LINES_LIMIT = 1 << 16
_EMPTY_LIST, _EMPTY_DICT = object(), object()  # stand for ``[]`` and ``{}`` in the memo


def _memo_value(token: str, value: Any) -> Any:
    return _EMPTY_LIST if token == "[]" else _EMPTY_DICT if token == "{}" else value


def _line(line: str) -> tuple[bool, int, str, Any] | None:
    """``(is_key, indent, key, value)`` of one line (value ``None`` with ``key`` set for an
    open key; ``key`` empty for a list item), or None when the line is not plain."""
    match = _KEY_LINE.fullmatch(line)
    if match is not None:
        key, token = match.group(2), match.group(3)
        if key in _WORDS:
            return None  # ``yes:`` is a boolean key
        value = _NO_VALUE if token is None else _plain_scalar(token)
        if token is not None and value is _NO_VALUE:
            return None
        return True, len(match.group(1)), key, value if token is None else _memo_value(token, value)
    match = _ITEM_LINE.fullmatch(line)
    if match is None:
        return None
    token = match.group(2)
    value = _plain_scalar(token)
    if value is _NO_VALUE:
        return None
    return False, len(match.group(1)), "", _memo_value(token, value)


def plain_yaml(data: bytes) -> dict[str, Any] | None:
    """A config as ``yaml.dump`` writes it, read without the YAML machinery; None for
    anything else (anchors, aliases, tags, flow collections, comments, quoting beyond plain
    single quotes, non-ASCII text, duplicate keys...), which the careful path reads.

    It builds at most one value per line, so no text can make it expand or recurse.
    """
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        return None
    if not text.endswith("\n") or "\r" in text:
        return None
    memo = _LINES
    if len(memo) > _LINES_LIMIT:
        memo.clear()
    root: dict[str, Any] = {}
    stack: list[tuple[int, dict[str, Any]]] = [(0, root)]
    open_key: tuple[int, dict[str, Any], str] | None = None  # a key whose value follows
    items: tuple[int, list[Any]] | None = None  # the list being filled
    for line in text[:-1].split("\n"):
        try:
            parsed = memo[line]
        except KeyError:
            parsed = memo[line] = _line(line)
        if parsed is None:
            return None
        is_key, indent, key, value = parsed
        if value is _EMPTY_LIST:
            value = []
        elif value is _EMPTY_DICT:
            value = {}
        if not is_key:
            if open_key is not None and indent == open_key[0]:
                items = (indent, [])
                open_key[1][open_key[2]] = items[1]
                open_key = None
            if items is None or indent != items[0]:
                return None
            items[1].append(value)
            continue
        items = None
        if open_key is not None:
            if indent > open_key[0]:
                child: dict[str, Any] = {}
                open_key[1][open_key[2]] = child
                stack.append((indent, child))
            open_key = None
        while stack[-1][0] > indent:
            stack.pop()
        level, mapping = stack[-1]
        if level != indent or key in mapping:
            return None
        if value is _NO_VALUE:
            mapping[key] = None
            open_key = (indent, mapping, key)
            continue
        mapping[key] = value
    return root


def careful_yaml(data: bytes) -> Any:
    """YAML with the safe loader, refusing what aliases would blow up or tie in a knot.

    Aliases are legitimate (PyYAML writes one for an object that appears twice), so they
    are not refused outright: the composed node graph is measured as if every alias were
    expanded, and a graph that refers to itself, nests deeper than ``MAX_DEPTH`` or expands
    beyond ``MAX_NODES`` values is refused before any Python object is built.
    """
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(data)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _measure(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _measure(root: Any) -> None:
    """Raise :class:`Damage` if ``root`` expands to too many values, too deep, or a cycle."""
    import yaml

    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            children = _children(node, yaml)
            sizes[key] = 1 + sum(sizes[id(c)] for c in children)
            if sizes[key] > MAX_NODES:
                raise Damage(f"expands to more than {MAX_NODES:,} values (nested aliases)")
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise Damage("holds an alias that refers to itself")
        if len(on_path) >= MAX_DEPTH:
            raise Damage(f"nests deeper than {MAX_DEPTH} levels")
        on_path.add(key)
        stack.append((node, True))
        for child in _children(node, yaml):
            if id(child) in on_path:
                raise Damage("holds an alias that refers to itself")
            if id(child) not in sizes:
                stack.append((child, False))


def _children(node: Any, yaml: Any) -> list[Any]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def claims(run_dir: Path | str, dir_fd: int | None = None) -> list[store.ClaimInfo]:
    """The run's claims as :func:`xprun.store.list_claims` finds them, read safely.

    A ``claim.<N>`` that is not a regular file (a directory, a FIFO, a link) raises
    :class:`Damage`; one released while we look is left out.  ``dir_fd`` (from
    :func:`open_dir`) lists the folder through it; most runs have no claim left, and their
    listing is all this costs.
    """
    found = []
    try:
        names = os.listdir(run_dir if dir_fd is None else dir_fd)
        if not any(name.startswith(store.CLAIM_PREFIX) for name in names):
            return []
        entries = list(os.scandir(run_dir))
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        raise Damage(f"the run directory cannot be listed ({exc.strerror or exc})") from None
    for entry in entries:
        suffix = entry.name[len(store.CLAIM_PREFIX) :]
        is_claim = suffix.isascii() and suffix.isdigit()
        if not entry.name.startswith(store.CLAIM_PREFIX) or not is_claim:
            continue
        try:
            raw = read_bytes(run_dir, entry.name, RECORD_LIMIT)
            mtime = entry.stat(follow_symlinks=False).st_mtime
        except FileNotFoundError:
            continue
        try:
            owner = json.loads(raw) if raw.strip() else {}
        except (ValueError, RecursionError):
            owner = {}
        owner = owner if isinstance(owner, dict) else {}
        pid = owner.get("pid")
        if not (isinstance(pid, int) and not isinstance(pid, bool) and 0 < pid < 1 << 22):
            owner.pop("pid", None)  # is_stale() signals the pid: only a plausible one
        found.append(store.ClaimInfo(int(suffix), Path(entry.path), mtime, owner))
    found.sort(key=lambda c: c.attempt)
    return found
