"""Digests of the code an experiment runs: what makes a cached result stale.

A result is stale when the code behind it changed, not when its text did: comments, blank
lines, formatting and docstrings change nothing a run computes.  So a source file is
digested through its syntax tree, without docstrings and without positions (xxh3-128 of a
dump of the tree that leaves out empty fields, so that a new Python's extra empty fields,
such as 3.12's ``type_params``, change no digest).  A file that does not parse is digested
by its bytes, in a domain of its own: it never equals a parsed file's digest.

The code of an experiment is its module plus every module under the rootdir that it
imports, transitively: the import statements of each project-local module (anywhere in it,
functions included) resolved against ``sys.modules`` and the files under the rootdir.  The
log and snapshot folders, installed packages, the standard library and xprun itself are
not the project's code.  A module the experiment does not import never counts.

Each file is read and parsed once per process (cached by path, size and modification time);
the staleness plugin asks for each experiment once per session, never per run.
"""

from __future__ import annotations

import ast
import copy
import os
import stat
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import xxhash

ALGORITHM = "xxh3_128"
#: The key of a module's own statements (imports, constants...) in ``function_digests``.
MODULE_LEVEL = "<module>"
_SKIPPED_FIELDS = frozenset({"kind", "type_comment"})  # u"" prefixes, type comments
_DOCUMENTED = (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)


def _hex(data: bytes) -> str:
    return xxhash.xxh3_128_hexdigest(data)


def _as_bytes(text: str | bytes) -> bytes:
    return text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text


def _parse(text: str | bytes) -> ast.Module | None:
    try:
        return ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _without_docstring(body: list[ast.stmt]) -> list[ast.stmt]:
    first = body[0] if body else None
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        return body[1:]
    return body


def _dump(node: Any, out: list[str]) -> None:
    """The tree as text: node names and non-empty fields, docstrings and positions left out."""
    if isinstance(node, ast.AST):
        out.append(type(node).__name__ + "(")
        for name in node._fields:
            if name in _SKIPPED_FIELDS:
                continue
            value = getattr(node, name, None)
            if name == "body" and isinstance(node, _DOCUMENTED) and isinstance(value, list):
                value = _without_docstring(value)
            if value is None or (isinstance(value, list) and not value):
                continue
            out.append(name + "=")
            _dump(value, out)
            out.append(",")
        out.append(")")
    elif isinstance(node, list):
        out.append("[")
        for item in node:
            _dump(item, out)
            out.append(",")
        out.append("]")
    else:  # a constant, an identifier, an operator's field
        out.append(repr(node))


def _digest_nodes(nodes: Any) -> str:
    out: list[str] = []
    _dump(nodes, out)
    return _hex("".join(out).encode("utf-8", "surrogateescape"))


def _raw_digest(data: bytes) -> str:
    return _hex(b"unparsed\0" + data)


def _tree_digest(tree: ast.Module | None, data: bytes) -> str:
    if tree is None:
        return _raw_digest(data)
    try:
        return _digest_nodes(tree)
    except RecursionError:  # a tree too deep to walk: its bytes decide
        return _raw_digest(data)


def source_digest(text: str | bytes) -> str:
    """The xxh3-128 hex digest of a source's syntax tree without docstrings: equal for two
    sources that differ only in comments, blank lines, formatting or docstrings; the digest
    of the bytes (never equal to a parsed source's) when it does not parse."""
    data = _as_bytes(text)
    return _tree_digest(_parse(data), data)


def function_digests(text: str | bytes) -> dict[str, str]:
    """The digest of each function and method (``"func"``, ``"Class.method"``, nested classes
    ``"Outer.Inner.method"``), of each class's own statements (``"Class"``: bases, decorators,
    attributes) and of the module's own statements (``"<module>"``), docstrings left out.
    Empty when the source does not parse."""
    tree = _parse(_as_bytes(text))
    if tree is None:
        return {}
    found: dict[str, str] = {}
    try:
        found[MODULE_LEVEL] = _walk_body(tree.body, "", found)
    except RecursionError:
        return {}
    return found


def _walk_body(body: list[ast.stmt], prefix: str, found: dict[str, str]) -> str:
    """Digest each function and class of ``body`` into ``found``; return the digest of the
    other statements."""
    rest: list[ast.stmt] = []
    for node in _without_docstring(body):
        if isinstance(node, _FUNCTIONS):
            found[prefix + node.name] = _digest_nodes(node)
        elif isinstance(node, ast.ClassDef):
            name = prefix + node.name
            inner = _walk_body(node.body, name + ".", found)
            header = [node.bases, node.keywords, node.decorator_list]
            found[name] = _hex(f"{_digest_nodes(header)}{inner}".encode())
        else:
            rest.append(node)
    return _digest_nodes(rest)


# -- files -----------------------------------------------------------------------------------


class _Parsed:
    """One source file as read: its digest and the modules its import statements name."""

    __slots__ = ("digest", "imports")

    def __init__(self, digest: str, imports: list[tuple[int, str, tuple[str, ...]]]) -> None:
        self.digest = digest
        self.imports = imports  # (level, module, names imported from it)


_files: dict[tuple[str, int, int], _Parsed] = {}  # (path, size, mtime_ns) → parsed
_RACY_NS = 2_000_000_000  # files changed this recently are digested again (git's racy rule)
SOURCE_LIMIT = 16 << 20  # bytes: a larger file is not read (it counts as gone)
_FILES_MAX = 65536


def _read(path: str) -> _Parsed | None:
    """The parsed file at ``path`` (a regular file), cached by size and modification time;
    None when it cannot be read, is not a regular file or is larger than ``SOURCE_LIMIT``."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode) or info.st_size > SOURCE_LIMIT:
        return None  # a record may name anything: no device, no giant file is read
    key = (path, info.st_size, info.st_mtime_ns)
    parsed = _files.get(key)
    if parsed is None:
        try:
            with open(path, "rb") as file:
                data = file.read()
        except OSError:
            return None
        tree = _parse(data)
        parsed = _Parsed(_tree_digest(tree, data), _imports(tree) if tree is not None else [])
        if time.time_ns() - info.st_mtime_ns < _RACY_NS:
            return parsed  # changed just now: a same-size edit in the same tick would hide
        if len(_files) >= _FILES_MAX:
            _files.clear()
        _files[key] = parsed
    return parsed


def file_digest(path: str | Path) -> str | None:
    """``source_digest`` of the file at ``path``, cached by its size and modification time;
    None when it cannot be read (gone, a folder)."""
    parsed = _read(os.fspath(path))
    return None if parsed is None else parsed.digest


def _imports(tree: ast.Module) -> list[tuple[int, str, tuple[str, ...]]]:
    found: list[tuple[int, str, tuple[str, ...]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((0, alias.name, ()) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names = tuple(alias.name for alias in node.names if alias.name != "*")
            found.append((node.level, node.module or "", names))
    return found


class _Resolver:
    """Module names to the project's files: ``sys.modules`` first, else the folders of
    ``sys.path`` under the rootdir (a module imported lazily, not yet imported), a package
    before a module of the same name, as Python's finder."""

    def __init__(self, rootdir: Path, exclude: Iterable[Path]) -> None:
        self.rootdir = rootdir
        self.exclude = [Path(p).resolve() for p in exclude]
        roots = []
        for entry in sys.path:
            folder = Path(os.path.abspath(entry or os.curdir)).resolve()
            if folder.is_relative_to(rootdir) and self.project(folder) and folder not in roots:
                roots.append(folder)
        self.roots = roots
        self._known: dict[str, str | None] = {}

    def project(self, path: Path) -> bool:
        """Whether ``path`` (absolute) is the project's code: under the rootdir, outside the
        log and snapshot folders, installed packages and xprun."""
        from .snapshot import _installed

        if not path.is_relative_to(self.rootdir):
            return False
        if any(path.is_relative_to(folder) for folder in self.exclude):
            return False
        return not _installed(path)

    def _file(self, path: str | None) -> str | None:
        if not path or not path.endswith(".py"):
            return None
        resolved = Path(path).resolve()
        return str(resolved) if self.project(resolved) and resolved.is_file() else None

    def module(self, name: str) -> str | None:
        """The project file of the module ``name``, or None."""
        if name in self._known:
            return self._known[name]
        found = None
        module = sys.modules.get(name)
        if module is not None:
            found = self._file(getattr(module, "__file__", None))
        else:
            parts = name.split(".")
            for root in self.roots:
                base = root.joinpath(*parts)
                for candidate in (base / "__init__.py", base.with_name(base.name + ".py")):
                    found = self._file(str(candidate))
                    if found:
                        break
                if found:
                    break
        self._known[name] = found
        return found

    def relative(self, path: str, level: int, module: str) -> str | None:
        """The project file of ``from <level dots><module> import ...`` in ``path``."""
        base = Path(path).parent
        for _ in range(level - 1):
            base = base.parent
        if not module:  # ``from . import x``: the package itself (x is looked up apart)
            return self._file(str(base / "__init__.py"))
        target = base.joinpath(*module.split("."))
        for candidate in (target / "__init__.py", target.with_name(target.name + ".py")):
            found = self._file(str(candidate))
            if found:
                return found
        return None


def module_files(
    module: ModuleType | Path | str,
    rootdir: Path,
    exclude: Iterable[Path] = (),
    also: Iterable[Path | str] = (),
) -> list[str]:
    """The files an experiment's code is: ``module``'s (a module, or its file) and every
    project-local module's it imports, transitively (absolute paths, sorted); ``also``:
    more files to start from (the conftest.py files defining the experiment's fixtures)."""
    rootdir = Path(rootdir).resolve()
    resolver = _Resolver(rootdir, exclude)
    start = module if isinstance(module, Path | str) else getattr(module, "__file__", None)
    first = str(Path(start).resolve()) if start else None
    if first is None:
        return []
    starts = [first, *(f for f in map(resolver._file, map(str, also)) if f is not None)]
    seen = set(starts)
    todo = list(starts)
    while todo:
        path = todo.pop()
        parsed = _read(path)
        if parsed is None:
            continue
        for level, name, names in parsed.imports:
            found: list[str | None] = []
            if level:
                found.append(resolver.relative(path, level, name))
                found += [
                    resolver.relative(path, level, f"{name}.{n}" if name else n) for n in names
                ]
            else:
                parts = name.split(".")
                found += [resolver.module(".".join(parts[: i + 1])) for i in range(len(parts))]
                found += [resolver.module(f"{name}.{n}") for n in names]
            for file in found:
                if file is not None and file not in seen:
                    seen.add(file)
                    todo.append(file)
    return sorted(seen)


def code_digest(files: dict[str, str]) -> str:
    """``"xxh3_128:<hex>"`` of a ``files`` mapping (relative path → file digest)."""
    text = "\n".join(f"{path}\0{digest}" for path, digest in sorted(files.items()))
    return f"{ALGORITHM}:{_hex(text.encode('utf-8', 'surrogateescape'))}"


# -- the experiment's own module ----------------------------------------------------------------


def _is_xprun(node: ast.expr) -> bool:
    """Whether an expression is rooted at the name ``xprun`` (``xprun.mark.skip(...)``)."""
    while True:
        if isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Attribute):
            node = node.value
        else:
            return isinstance(node, ast.Name) and node.id == "xprun"


def _imports_only_xprun(node: ast.stmt) -> bool:
    if isinstance(node, ast.Import):
        return all(a.name == "xprun" or a.name.startswith("xprun.") for a in node.names)
    if isinstance(node, ast.ImportFrom):
        module = node.module or ""
        return node.level == 0 and (module == "xprun" or module.startswith("xprun."))
    return False


def own_module_digest(text: str | bytes, experiment: Mapping[str, Any]) -> str:
    """The digest of an experiment's own module as that experiment's code: its other
    experiments (top-level functions matching ``experiment["patterns"]``, the
    ``experiment_functions`` setting), its ``xprun`` decorators (marks, config and grids:
    what they change is in the run's hash or changes no result) and its imports of xprun
    left out, so that adding an experiment to the file, or marking one, makes no run stale.
    ``experiment``: ``{"function": name, "patterns": [...]}`` as recorded in ``code.own``."""
    import fnmatch

    data = _as_bytes(text)
    tree = _parse(data)
    function = experiment.get("function")
    patterns = [p for p in experiment.get("patterns") or () if isinstance(p, str)]
    if tree is None or not isinstance(function, str):
        return _tree_digest(tree, data)
    kept: list[ast.stmt] = []
    for node in tree.body:
        if isinstance(node, _FUNCTIONS):
            if node.name != function and any(fnmatch.fnmatchcase(node.name, p) for p in patterns):
                continue  # another experiment
            if node.name == function:
                node = copy.copy(node)
                node.decorator_list = [d for d in node.decorator_list if not _is_xprun(d)]
        elif _imports_only_xprun(node):
            continue
        kept.append(node)
    return _tree_digest(ast.Module(body=kept, type_ignores=[]), data)


def recorded_digest(path: str | Path, relpath: str, code: Mapping[str, Any]) -> str | None:
    """Today's digest of the file ``relpath`` of a ``code`` record, the way it was recorded:
    :func:`own_module_digest` for the experiment's own module (``code.own``), else
    :func:`file_digest`; None when the file cannot be read."""
    own = code.get("own")
    if isinstance(own, Mapping) and own.get("file") == relpath:
        parsed = _read(os.fspath(path))
        if parsed is None:
            return None
        try:
            return own_module_digest(Path(path).read_bytes(), own)
        except OSError:
            return None
    return file_digest(path)


def experiment_code(
    module: ModuleType | Path | str,
    rootdir: Path,
    exclude: Iterable[Path] = (),
    *,
    root: Path | str | None = None,
    version: int | None = None,
    also: Iterable[Path | str] = (),
    function: str | None = None,
    patterns: Iterable[str] = (),
) -> dict[str, Any]:
    """The ``code`` object of ``run.json`` for an experiment module: ``digest`` (of
    ``files``), ``root`` (``root``, else ``rootdir``: the user's work tree, where ``xprun
    why`` and the Reader find today's files), ``files`` (path relative to ``rootdir``,
    posix → file digest) and ``version`` (``code_version``); ``also``: files the experiment's
    code includes besides its module's imports (its fixtures' conftest.py files).

    With ``function`` (the experiment's name) and ``patterns`` (``experiment_functions``),
    the module's own file is digested as that experiment's code (:func:`own_module_digest`)
    and ``own`` records how, so that readers digest it today the same way."""
    rootdir = Path(rootdir).resolve()
    files: dict[str, str] = {}
    paths = module_files(module, rootdir, exclude, also)
    start = module if isinstance(module, Path | str) else getattr(module, "__file__", None)
    own_path = str(Path(start).resolve()) if start else None
    own: dict[str, Any] | None = None
    if function is not None and own_path is not None and Path(own_path).is_relative_to(rootdir):
        own = {
            "file": Path(own_path).relative_to(rootdir).as_posix(),
            "function": function,
            "patterns": list(patterns),
        }
    for path in paths:
        if not Path(path).is_relative_to(rootdir):
            continue
        relpath = Path(path).relative_to(rootdir).as_posix()
        digest = recorded_digest(path, relpath, {"own": own} if own else {})
        if digest is not None:  # the project's
            files[relpath] = digest
    code: dict[str, Any] = {
        "digest": code_digest(files),
        "root": str(root if root is not None else rootdir),
        "files": files,
        "version": version,
    }
    if own is not None:
        code["own"] = own
    return code
