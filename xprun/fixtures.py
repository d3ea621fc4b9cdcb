"""Fixtures, as pytest has them: injected by argument name, scoped, layered by location.

A fixture is a function marked with ``@xprun.fixture``.  Where it is defined decides who sees
it: ``conftest.py`` fixtures serve every experiment in that folder and below, fixtures in an
experiment module serve that module, and the closest definition of a name wins (so a project
can override a built-in such as ``logger``).  Built-ins are defined the same way, in
``xprun/builtin_fixtures.py``, visible everywhere.

Scopes: ``run`` (default; set up and torn down around each run) and ``session`` (set up once,
torn down when the session ends).  ``yield`` fixtures tear down after the run, also when it
failed.  ``params=[...]`` multiplies runs like a grid axis; the parameter's value is part of
the run's identity (its id only labels the run, see ``identity.param_identity``).  The
argument name ``request`` gives a fixture its run (``request.run``), its parameter
(``request.param``) and ``request.getfixturevalue(name)``.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from types import GeneratorType
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from .errors import CollectError, Terminated
from .identity import ParamIdentity, param_identity

if TYPE_CHECKING:
    from .runspec import RunSpec

F = TypeVar("F", bound=Callable[..., Any])

MARKER = "_xprun_fixture"
SCOPES = ("run", "session")
Scope = Literal["run", "session"]
_SIMPLE_ID_TYPES = (str, int, float, bool, type(None))
#: The one built-in fixture that is not a ``FixtureDef``: the requester's own
#: ``FixtureRequest`` (its run, its param, ``getfixturevalue``).
REQUEST = "request"


@dataclass(frozen=True)
class FixtureMarker:
    scope: Scope
    params: tuple[Any, ...] | None
    ids: tuple[str, ...] | Callable[[Any], str] | None
    name: str | None


@dataclass(frozen=True, eq=False)
class FixtureDef:
    """A fixture as collected: where it lives decides who can see it (``baseid``)."""

    name: str
    func: Callable[..., Any]
    scope: Scope
    params: tuple[Any, ...] | None
    ids: tuple[str, ...] | None
    argnames: tuple[str, ...]
    baseid: str  # "" everywhere, "dir/" a folder and below, "dir/xp_a.py" one module
    # What each param contributes to a run's hash; None where nothing can (see
    # identity.param_identity): expansion refuses such a param, collection does not.
    identities: tuple[ParamIdentity | None, ...] | None = None

    @property
    def location(self) -> str:
        code = self.func.__code__
        return f"{code.co_filename}:{code.co_firstlineno}"


@overload
def fixture(func: F) -> F: ...
@overload
def fixture(
    *,
    scope: Scope = "run",
    params: Iterable[Any] | None = None,
    ids: Sequence[str] | Callable[[Any], str] | None = None,
    name: str | None = None,
) -> Callable[[F], F]: ...
def fixture(
    func: Callable[..., Any] | None = None,
    *,
    scope: Scope = "run",
    params: Iterable[Any] | None = None,
    ids: Sequence[str] | Callable[[Any], str] | None = None,
    name: str | None = None,
) -> Any:
    """Mark a function as a fixture (``@xprun.fixture`` or ``@xprun.fixture(scope=...)``)."""
    if scope not in SCOPES:
        raise CollectError(f"fixture scope must be one of {', '.join(SCOPES)}, got {scope!r}")
    params_tuple = None if params is None else tuple(params)
    if params_tuple is not None and not params_tuple:
        raise CollectError("fixture params must hold at least one value")
    if ids is not None and not callable(ids):
        ids = tuple(str(i) for i in ids)
        if params_tuple is None or len(ids) != len(params_tuple):
            raise CollectError("fixture ids must have one id per param")
    marker = FixtureMarker(scope, params_tuple, ids, name)

    def decorate(f: F) -> F:
        setattr(f, MARKER, marker)
        return f

    return decorate(func) if func is not None else decorate


def argnames(func: Callable[..., Any]) -> tuple[str, ...]:
    """Arguments to inject: those without defaults, as pytest does."""
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return ()
    return tuple(
        p.name
        for p in signature.parameters.values()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.default is p.empty
    )


def not_injectable(func: Callable[..., Any]) -> str | None:
    """Why ``func`` cannot be called with its fixtures as keyword arguments, or None."""
    if inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func):
        return (
            "is an async def: xprun calls experiments and fixtures as plain functions; "
            "write a plain def (it may call asyncio.run)"
        )
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return None
    positional = [
        p.name
        for p in signature.parameters.values()
        if p.kind is p.POSITIONAL_ONLY and p.default is p.empty
    ]
    if positional:
        return (
            f"has positional-only parameters ({', '.join(positional)}), which cannot be "
            "injected by name: remove the '/' from its signature"
        )
    return None


def _param_ids(name: str, marker: FixtureMarker) -> tuple[str, ...] | None:
    if marker.params is None:
        return None
    if isinstance(marker.ids, tuple):
        ids = list(marker.ids)
    elif callable(marker.ids):
        ids = [str(marker.ids(p)) for p in marker.params]
    else:
        ids = [
            str(p) if isinstance(p, _SIMPLE_ID_TYPES) and len(str(p)) <= 32 else f"{name}{i}"
            for i, p in enumerate(marker.params)
        ]
    seen: dict[str, int] = {}
    for i, value in enumerate(ids):  # duplicates get their index appended, as pytest does
        if value in seen or ids.count(value) > 1:
            ids[i] = f"{value}{i}"
        seen[value] = i
    return tuple(ids)


def _param_identities(
    marker: FixtureMarker, ids: tuple[str, ...] | None
) -> tuple[ParamIdentity | None, ...] | None:
    if marker.params is None or ids is None:
        return None
    explicit = marker.ids is not None
    return tuple(param_identity(p, i, explicit) for p, i in zip(marker.params, ids, strict=True))


def _visible_from(baseid: str, nodepath: str) -> bool:
    return (
        baseid == "" or nodepath == baseid or (baseid.endswith("/") and nodepath.startswith(baseid))
    )


class FixtureRegistry:
    """Every fixture definition of the session, by name, most general first."""

    def __init__(self) -> None:
        self._defs: dict[str, list[FixtureDef]] = {}

    def parse_module(self, module: Any, baseid: str) -> None:
        for attr, obj in vars(module).items():
            marker = getattr(obj, MARKER, None)
            if not isinstance(marker, FixtureMarker) or not callable(obj):
                continue
            name = marker.name or attr
            ids = _param_ids(name, marker)
            fdef = FixtureDef(
                name=name,
                func=obj,
                scope=marker.scope,
                params=marker.params,
                ids=ids,
                argnames=argnames(obj),
                baseid=baseid,
                identities=_param_identities(marker, ids),
            )
            defs = self._defs.setdefault(name, [])
            defs[:] = [d for d in defs if d.baseid != baseid]
            defs.append(fdef)
            defs.sort(key=lambda d: (len(d.baseid), not d.baseid.endswith("/")))

    def lookup(self, name: str, nodepath: str) -> FixtureDef | None:
        """The closest definition of ``name`` visible from the module at ``nodepath``."""
        for fdef in reversed(self._defs.get(name, ())):
            if _visible_from(fdef.baseid, nodepath):
                return fdef
        return None

    def available(self, nodepath: str) -> list[str]:
        """Every fixture name the module at ``nodepath`` may request, ``request`` included,
        sorted."""
        return sorted({REQUEST, *(n for n in self._defs if self.lookup(n, nodepath) is not None)})

    def definitions(self) -> list[FixtureDef]:
        """Every fixture definition, overridden ones included, by name then location."""
        return [fdef for name in sorted(self._defs) for fdef in self._defs[name]]

    def closure(self, requested: Iterable[str], nodepath: str, where: str) -> dict[str, FixtureDef]:
        """Every fixture that ``requested`` needs, transitively; unknown names are errors."""
        found: dict[str, FixtureDef] = {}
        stack = [(name, where) for name in requested]
        while stack:
            name, requester = stack.pop()
            if name == REQUEST or name in found:
                continue
            fdef = self.lookup(name, nodepath)
            if fdef is None:
                available = self.available(nodepath)
                close = difflib.get_close_matches(name, available, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise CollectError(
                    f"fixture {name!r} not found (requested by {requester}){hint}\n"
                    f"available fixtures: {', '.join(available)}\n"
                    "define it with @xprun.fixture in a conftest.py or the experiment module"
                )
            problem = not_injectable(fdef.func)
            if problem:
                raise CollectError(
                    f"fixture {name!r} ({fdef.location}, requested by {requester}) {problem}"
                )
            found[name] = fdef
            stack.extend((arg, f"fixture {name!r}") for arg in fdef.argnames)
        _refuse_cycles(found)
        for fdef in found.values():
            if fdef.scope == "session":
                for arg in fdef.argnames:
                    if arg != REQUEST and found[arg].scope == "run":
                        raise CollectError(
                            f"session-scoped fixture {fdef.name!r} ({fdef.location}) requests "
                            f"run-scoped fixture {arg!r}; make {arg!r} session-scoped or "
                            f"{fdef.name!r} run-scoped"
                        )
        return found


def _refuse_cycles(found: dict[str, FixtureDef]) -> None:
    """A fixture that requests itself, directly or not, would recurse until Python gives up."""
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in done or name == REQUEST:
            return
        if name in path:
            cycle = [*path[path.index(name) :], name]
            fdef = found[name]
            raise CollectError(
                f"fixture dependency cycle: {' -> '.join(cycle)} ({fdef.location}); "
                "a fixture cannot request itself, directly or through others (to build on a "
                "fixture of the same name further up, give one of them another name)"
            )
        for arg in found[name].argnames:
            visit(arg, [*path, name])
        done.add(name)

    for name in found:
        visit(name, [])


class FixtureLookupError(LookupError):
    pass


class FixtureRequest:
    """What a fixture (or ``request``) sees: the run, its fixtures, and its own param.

    ``request.run`` (the run's ``RunSpec``), ``request.param`` (the fixture's param, with
    ``params=``), ``request.config`` and ``request.getfixturevalue(name)``.
    """

    def __init__(
        self,
        run: RunSpec | None,
        closure: dict[str, FixtureDef],
        session_cache: SessionFixtures,
        new_run_dir: bool = False,
    ) -> None:
        self.run = run
        #: The run's directory was made for this attempt, its first: nothing of an earlier
        #: attempt is in it (the logger need not look for metrics or checkpoints to resume).
        self.new_run_dir = new_run_dir
        self._closure = closure
        self._session_cache = session_cache
        self._values: dict[str, Any] = {}
        self._teardowns: list[GeneratorType[Any, Any, Any]] = []
        self.param: Any = None
        self.fixturename: str | None = None

    @property
    def config(self) -> Any:
        return self.getfixturevalue("config")

    def getfixturevalue(self, name: str) -> Any:
        if name == REQUEST:
            return self
        if name in self._values:
            return self._values[name]
        fdef = self._closure.get(name)
        if fdef is None:
            raise FixtureLookupError(f"fixture {name!r} is not available to this run")
        index = self.run.param_indices.get(name) if self.run is not None else None
        if fdef.scope == "session":
            value = self._session_cache.get(fdef, index, self)
        else:
            value = call_fixture(fdef, index, self, self._teardowns)
        self._values[name] = value
        return value

    def cached_value(self, name: str) -> Any:
        """The value of a fixture already set up for this run, else None."""
        return self._values.get(name)

    def setup_order(self) -> list[str]:
        """The fixtures this run has got so far, in the order their setup finished (a
        fixture after those it requests), as ``--setup-show`` lists them."""
        return list(self._values)

    def teardown(self) -> list[BaseException]:
        """Finish every ``yield`` fixture, newest first; return the errors raised."""
        return finish_generators(self._teardowns)


class _SubRequest:
    """The ``request`` a single fixture receives: its own ``param`` and name."""

    def __init__(self, parent: FixtureRequest, fdef: FixtureDef, index: int | None) -> None:
        self._parent = parent
        self.fixturename = fdef.name
        self.param = None if index is None or fdef.params is None else fdef.params[index]
        self.param_index = index

    def __getattr__(self, name: str) -> Any:
        return getattr(self._parent, name)


def call_fixture(
    fdef: FixtureDef,
    index: int | None,
    request: FixtureRequest,
    teardowns: list[GeneratorType[Any, Any, Any]],
) -> Any:
    kwargs = {
        arg: (_SubRequest(request, fdef, index) if arg == REQUEST else request.getfixturevalue(arg))
        for arg in fdef.argnames
    }
    result = fdef.func(**kwargs)
    if inspect.isgenerator(result):
        value = next(result)
        teardowns.append(result)
        return value
    return result


def finish_generators(teardowns: list[GeneratorType[Any, Any, Any]]) -> list[BaseException]:
    errors: list[BaseException] = []
    while teardowns:
        gen = teardowns.pop()
        try:
            next(gen)
        except StopIteration:
            continue
        except (KeyboardInterrupt, Terminated):
            raise  # the caller finishes the others and then ends the run or session
        except BaseException as exc:  # sys.exit() in a teardown is its error, not the end
            errors.append(exc)
            continue
        errors.append(RuntimeError(f"fixture {gen.__name__!r} yielded more than once"))
    return errors


class SessionFixtureError(Exception):
    """A session-scoped fixture this run needs raised when it was first set up, earlier in
    the session: it is not set up again (as pytest caches the error of a higher-scoped
    fixture), and this run is failed with a message that points to the first report."""


class SessionFixtures:
    """Values of session-scoped fixtures, kept until the session ends; and their errors.

    A session fixture that raises is set up once, not once per run: its error is reported
    with its traceback by the run that set it up, and every later run that needs it fails at
    once with a :class:`SessionFixtureError` naming the fixture and that run.  An interrupt
    (or a time limit) during its setup is not an error of the fixture: it is tried again.
    """

    def __init__(self) -> None:
        self._values: dict[tuple[int, int | None], Any] = {}
        self._errors: dict[tuple[int, int | None], str] = {}
        self._raised: list[BaseException] = []  # what the failed setups raised
        self._teardowns: list[GeneratorType[Any, Any, Any]] = []

    def get(self, fdef: FixtureDef, index: int | None, request: FixtureRequest) -> Any:
        key = (id(fdef), index)
        if key not in self._values:
            failed = self._errors.get(key)
            if failed is not None:
                raise SessionFixtureError(failed)
            # A session fixture only sees session fixtures (checked at collection).
            session_request = FixtureRequest(request.run, request._closure, self)
            try:
                self._values[key] = call_fixture(fdef, index, session_request, self._teardowns)
            except (Exception, SystemExit) as exc:
                self._raised.append(exc)
                first = request.run.nodeid if request.run is not None else "an earlier run"
                self._errors[key] = (
                    f"session-scoped fixture {fdef.name!r} ({fdef.location}) failed in "
                    f"{first} with {type(exc).__name__}: {_first_line(exc)}; not set up "
                    "again this session (the traceback is in that run's report)"
                )
                raise
        return self._values[key]

    def raised(self, error: BaseException) -> bool:
        """Whether ``error`` is a session fixture's setup error (first raised, or met again
        as a :class:`SessionFixtureError`): another attempt would meet it again."""
        return isinstance(error, SessionFixtureError) or any(e is error for e in self._raised)

    def teardown(self) -> list[BaseException]:
        self._values.clear()
        self._errors.clear()
        self._raised.clear()
        return finish_generators(self._teardowns)


def _first_line(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:
        text = ""
    return text.strip().splitlines()[0] if text.strip() else ""
