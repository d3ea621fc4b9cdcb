"""``--setup-show``, ``--setup-plan`` and ``--fixtures``: which fixtures a run gets, as pytest.

- ``--setup-show``: each executed run's fixtures as they are set up and torn down, with
  their scope's letter (``S`` session, ``R`` run), indented by scope::

      SETUP    S data
          SETUP    R model (fixtures used: data)
          xp_train.py::xp_train[lr=0.1] (fixtures used: config, data, model)
          TEARDOWN R model
      TEARDOWN S data

  A session fixture is shown where it is set up (the first run that needs it) and torn
  down (the session's end).  The lines go to the terminal, never to the run's captured
  output, so the runs must execute in this process (``-n`` and cluster schedulers are usage
  errors).  A fixture's SETUP line comes once its setup has finished (as pytest's), so the
  order is the order they finished in: a fixture after those it requests.
- ``--setup-plan``: the same lines for every selected run, from the fixtures each would
  request, without running (or setting up) anything; a run already complete says so.
- ``--fixtures``: every fixture the collected experiments could request, grouped by where
  it is defined (the built-ins, then each conftest.py and experiment module), with its
  scope, its location and its docstring's summary (its first paragraph, as pytest; ``-v``:
  the whole docstring, and the fixtures whose name starts with ``_``); nothing runs.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Generator, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    import argparse

    from .config import Config
    from .fixtures import FixtureDef
    from .runcontext import RunContext
    from .runspec import RunSpec
    from .session import Session

_LETTER = {"session": "S", "run": "R"}
_INDENT = {"session": "", "run": "    "}


def xprun_addoption(parser: argparse.ArgumentParser, settings: dict[str, Any]) -> None:
    group = parser.add_argument_group("fixtures")
    group.add_argument(
        "--setup-show",
        action="store_true",
        dest="setupshow",
        help="show each run's fixtures as they are set up and torn down (runs inline only)",
    )
    group.add_argument(
        "--setup-plan",
        action="store_true",
        dest="setupplan",
        help="show the fixtures each selected run would set up and tear down; run nothing",
    )
    group.add_argument(
        "--fixtures",
        action="store_true",
        dest="showfixtures",
        help="list every available fixture (built-in, conftest.py, experiment modules) with "
        "its scope, location and docstring (-v: whole docstrings); run nothing",
    )


def xprun_configure(config: Config) -> None:
    option = config.option
    if not (option.setupshow or option.setupplan or option.showfixtures):
        return
    if option.setupshow and not (option.setupplan or option.showfixtures):
        from .debugging import refuse_out_of_process

        refuse_out_of_process(config, "--setup-show")
    _mark_hookimpls()
    config.pluginmanager.register(SetupShow(config, sys.stdout), "xprun.setuponly.session")


def _location(func: Any, rootdir: Path) -> str:
    """``file:line`` of a fixture function: relative to the rootdir, or to the folder of
    the package that holds it (``xprun/builtin_fixtures.py:38``), else absolute."""
    try:
        file = Path(inspect.getsourcefile(func) or "")
        line = inspect.getsourcelines(func)[1]
    except (OSError, TypeError):
        return "?"
    for base in (rootdir, Path(__file__).parent.parent):
        try:
            return f"{file.relative_to(base).as_posix()}:{line}"
        except ValueError:
            continue
    return f"{file}:{line}"


class SetupShow:
    """The hooks behind the three options (registered only when one is given)."""

    def __init__(self, config: Config, out: TextIO) -> None:
        self.config = config
        self.out = out  # the terminal, as it is before any run captures its output
        self._session_shown: dict[tuple[int, int | None], FixtureDef] = {}
        option = config.option
        # The terminal reporter leaves its line of progress letters open after a run.
        self._letters = option.verbose - option.quiet in (0, -1)
        self._line_open = False

    # -- output ---------------------------------------------------------------------------

    def _write(self, lines: Iterable[str]) -> None:
        text = "".join(f"{line}\n" for line in lines)
        if not text:
            return
        if self._line_open:
            text = "\n" + text
            self._line_open = False
        self.out.write(text)
        self.out.flush()

    @staticmethod
    def _action(step: str, fdef: FixtureDef, param: str | None = None) -> str:
        name = fdef.name if param is None else f"{fdef.name}[{param}]"
        line = f"{_INDENT[fdef.scope]}{step:<8} {_LETTER[fdef.scope]} {name}"
        deps = sorted(a for a in fdef.argnames if a != "request")
        if step == "SETUP" and deps:
            line += f" (fixtures used: {', '.join(deps)})"
        return line

    def _setup_lines(self, run: RunSpec, names: Iterable[str]) -> list[str]:
        """SETUP lines of ``names`` (in setup order); a session fixture once per session."""
        lines = []
        for name in names:
            fdef = run.experiment.fixtures.get(name)
            if fdef is None:
                continue
            index = run.param_indices.get(name)
            if fdef.scope == "session":
                key = (id(fdef), index)
                if key in self._session_shown:
                    continue
                self._session_shown[key] = fdef
            lines.append(self._action("SETUP", fdef, run.param_ids.get(name)))
        used = ", ".join(sorted(run.experiment.fixtures))
        lines.append(f"    {run.nodeid}" + (f" (fixtures used: {used})" if used else ""))
        return lines

    def _teardown_lines(self, run: RunSpec, names: Iterable[str]) -> list[str]:
        """TEARDOWN lines of the run-scoped ``names``, newest first."""
        fixtures = run.experiment.fixtures
        return [
            self._action("TEARDOWN", fixtures[n], run.param_ids.get(n))
            for n in reversed(list(names))
            if n in fixtures and fixtures[n].scope == "run"
        ]

    # -- --setup-show ---------------------------------------------------------------------

    def xprun_run_setup(self, run: RunSpec, context: RunContext) -> Generator[None, Any, Any]:
        try:
            return (yield)
        finally:
            if self.config.option.setupshow and run.request is not None:
                self._write(self._setup_lines(run, run.request.setup_order()))

    def xprun_run_teardown(self, run: RunSpec, context: RunContext) -> Generator[None, Any, Any]:
        names = run.request.setup_order() if run.request is not None else []
        try:
            return (yield)
        finally:
            if self.config.option.setupshow:
                self._write(self._teardown_lines(run, names))

    def xprun_run_logreport(self, report: Any) -> None:
        self._line_open = self._letters

    def xprun_sessionfinish(self, session: Session, exitstatus: int) -> None:
        """The session fixtures shown set up, torn down by now (the session's end)."""
        shown = list(self._session_shown.values())
        self._write(self._action("TEARDOWN", fdef) for fdef in reversed(shown))
        self._session_shown.clear()

    # -- --setup-plan and --fixtures: instead of running --------------------------------------

    def xprun_runloop(self, session: Session) -> bool | None:
        option = self.config.option
        if option.collect_only:
            return None
        if option.showfixtures:
            self._write(self.fixture_listing(session))
            return True
        if option.setupplan:
            self._write(line for run in session.runs for line in self._plan(session, run))
            return True
        return None

    def _plan(self, session: Session, run: RunSpec) -> list[str]:
        from .states import Status

        if not self.config.option.force and session.run_state(run).status == Status.COMPLETE:
            return [f"    {run.nodeid} (complete: cached, nothing is set up)"]
        order: list[str] = []

        def visit(name: str) -> None:  # a fixture's setup finishes after its requests'
            fdef = run.experiment.fixtures.get(name)
            if fdef is None or name in order:
                return
            for arg in fdef.argnames:
                visit(arg)
            order.append(name)

        for name in run.experiment.argnames:
            visit(name)
        return self._setup_lines(run, order) + self._teardown_lines(run, order)

    def fixture_listing(self, session: Session) -> list[str]:
        """``--fixtures``: a section per place of definition, built-ins first."""
        from .fixtures import REQUEST, FixtureRequest

        verbose = self.config.option.verbose > 0
        rootdir = self.config.rootdir
        sections: dict[str, list[tuple[str, str, str, str]]] = {}
        for fdef in session.fixtures.definitions():
            if fdef.name.startswith("_") and not verbose:
                continue
            where = "built-in fixtures" if fdef.baseid == "" else _defined_in(fdef, rootdir)
            scope = "" if fdef.scope == "run" else f" [{fdef.scope} scope]"
            sections.setdefault(where, []).append(
                (fdef.name, scope, _location(fdef.func, rootdir), inspect.getdoc(fdef.func) or "")
            )
        request_doc = inspect.getdoc(FixtureRequest) or ""
        sections.setdefault("built-in fixtures", []).append(
            (REQUEST, "", _location(FixtureRequest, rootdir), request_doc)
        )
        lines: list[str] = []
        order = sorted(sections, key=lambda w: (w != "built-in fixtures", w))
        for where in order:
            title = f" {where} "
            lines.append(f"{title:-^78}")
            for name, scope, location, doc in sorted(sections[where]):
                lines.append(f"{name}{scope} -- {location}")
                text = doc if verbose else doc.split("\n\n", 1)[0]  # pytest's: its summary
                for line in (text or "no docstring available").splitlines():
                    lines.append(f"    {line}".rstrip())
            lines.append("")
        return lines


def _defined_in(fdef: FixtureDef, rootdir: Path) -> str:
    try:
        file = Path(inspect.getsourcefile(fdef.func) or "")
        where = file.relative_to(rootdir).as_posix()
    except (OSError, TypeError, ValueError):
        where = fdef.baseid.strip("/") or "?"
    return f"fixtures defined from {where}"


def _mark_hookimpls() -> None:
    """Give ``SetupShow``'s hooks their options (pluggy reads them from an attribute of each
    function).  Done when the plugin is registered, not at import: this module is imported
    by ``xprun --help``, which imports nothing but the standard library."""
    from .hookimpl import hookimpl

    hookimpl(wrapper=True)(SetupShow.xprun_run_setup)
    hookimpl(wrapper=True)(SetupShow.xprun_run_teardown)
    hookimpl(tryfirst=True)(SetupShow.xprun_sessionfinish)
    hookimpl(tryfirst=True)(SetupShow.xprun_runloop)
