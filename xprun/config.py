"""Configuration: the plugin manager, command-line options, and ``Config``.

As in pytest, everything is a plugin: the built-in ones (``BUILTIN_PLUGINS``), those named
with ``-p NAME``, those installed with an ``xprun`` entry point, and the ``conftest.py`` files
the session finds.  ``-p no:NAME`` blocks any of them (built-in ones by their short name:
``-p no:terminal``), but for ``ESSENTIAL_PLUGINS``, which hold the core's defaults.

The hook contract is pytest's: a function named ``xprun_*`` in a plugin or conftest is a hook
implementation with or without ``@xprun.hookimpl``, and one that matches no hook of
``hookspec.py`` is an error naming it (``PluginManager.check_pending``), not silence.

``main(argv)`` is the ``run`` command (``xprun.main``): it builds a ``Config`` and runs a
``xprun.session.Session``.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import importlib
import inspect
import os
import re
import sys
from collections.abc import Sequence
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, NoReturn

import pluggy

from . import hookspec
from .errors import CollectError, ExitCode, UsageError
from .options import (
    ENTRY_POINT_GROUP,
    OPTION_PLUGINS,
    ArgumentParser,
    base_parser,
    xprun_addoption,
)
from .overrides import looks_like_override
from .settings import DEFAULTS, ProjectSettings, addopts, load_settings
from .store import Heartbeat

# The core options are added first, whatever plugins are registered after this one (as
# pytest's): their groups come first in --help, and plugins may add to them (option_group).
pluggy.HookimplMarker("xprun")(tryfirst=True)(xprun_addoption)

#: Registered first, in this order, under their module names; ``-p no:SHORT`` blocks one
#: by the last part of its name (``terminal``, ``pool``...).
BUILTIN_PLUGINS = (
    "xprun.config",
    "xprun.session",
    "xprun.cli",
    "xprun.collect",
    "xprun.expand",
    "xprun.keyword",
    "xprun.runner",
    "xprun.builtin_fixtures",
    "xprun.schedulers.inline",
    "xprun.schedulers.pool",
    "xprun.schedulers.slurm",
    "xprun.schedulers.oar",
    "xprun.terminal",
    "xprun.skipping",
    "xprun.provenance",
    "xprun.cleanup",
    "xprun.diff",
    "xprun.reproduce",
    *OPTION_PLUGINS,
)
#: The core's own defaults (options, collection, the run loop, the commands): they cannot
#: be blocked, only replaced or wrapped through their hooks.
ESSENTIAL_PLUGINS = ("xprun.config", "xprun.session", "xprun.cli")
_SHORT_NAMES = {name.rsplit(".", 1)[1]: name for name in BUILTIN_PLUGINS}


class PluginManager(pluggy.PluginManager):
    """pluggy's manager with pytest's rules: unmarked ``xprun_*`` functions are hook
    implementations, ``-p NAME`` / ``-p no:NAME`` load or block a plugin, and an
    implementation of no known hook is an error that names it."""

    def __init__(self) -> None:
        super().__init__("xprun")
        self.add_hookspecs(hookspec)

    def parse_hookimpl_opts(self, plugin: object, name: str) -> pluggy.HookimplOpts | None:
        opts = super().parse_hookimpl_opts(plugin, name)
        unmarked = opts is None and name.startswith("xprun_")
        if unmarked and inspect.isroutine(getattr(plugin, name, None)):
            opts = pluggy.HookimplOpts(
                wrapper=False,
                hookwrapper=False,
                optionalhook=False,
                tryfirst=False,
                trylast=False,
                specname=None,
            )
        return opts

    def consider_preparse(self, argv: Sequence[str], exclude_only: bool) -> None:
        """Act on every ``-p NAME`` / ``-pNAME`` of ``argv``: blocks (``no:``) always,
        loads only when not ``exclude_only`` (blocks must be set before anything loads)."""
        for spec in plugin_args(argv):
            if spec.startswith("no:"):
                self.block(spec[3:])
            elif not exclude_only:
                self.import_plugin(spec)

    def block(self, name: str) -> None:
        """``-p no:NAME``: never register the plugin ``NAME``; unregister it if it is."""
        if not name:
            raise UsageError("-p no: needs a plugin name (-p no:terminal)")
        full = _SHORT_NAMES.get(name, name)
        if full in ESSENTIAL_PLUGINS:
            raise UsageError(
                f"plugin {name} cannot be blocked: it holds xprun's defaults; "
                "replace or wrap its hooks in a plugin instead"
            )
        self.set_blocked(full)
        self.set_blocked(name)

    def import_plugin(self, name: str) -> None:
        """Register the plugin ``name``: a built-in (short or full name), an ``xprun`` entry
        point, or an importable module; nothing when it is blocked or already registered."""
        full = _SHORT_NAMES.get(name, name)
        if self.is_blocked(full) or self.get_plugin(full) is not None:
            return
        if full not in BUILTIN_PLUGINS and self._load_entry_point(full):
            return
        try:
            module = importlib.import_module(full)
        except ImportError as exc:
            raise UsageError(
                f"plugin {name!r} (-p {name}) cannot be imported: {exc}; name a module on "
                "sys.path, an installed plugin's entry point, or a built-in plugin "
                f"({', '.join(sorted(_SHORT_NAMES))})"
            ) from None
        self._register(module, full)

    def _load_entry_point(self, name: str) -> bool:
        """Load the ``xprun`` entry point called ``name``, if there is one."""
        loaded = self._guarded(lambda: self.load_setuptools_entrypoints(ENTRY_POINT_GROUP, name))
        return bool(loaded)

    def load_entry_points(self) -> None:
        """Every installed plugin (entry-point group ``xprun``) not blocked."""
        self._guarded(lambda: self.load_setuptools_entrypoints(ENTRY_POINT_GROUP))

    def _register(self, plugin: object, name: str) -> None:
        self._guarded(lambda: self.register(plugin, name=name))

    @staticmethod
    def _guarded(load: Any) -> Any:
        try:
            return load()
        except pluggy.PluginValidationError as exc:
            raise UsageError(
                f"plugin {_plugin_name(exc.plugin)!r} does not fit xprun's hooks: {exc}; fix "
                "or uninstall it, or set XPRUN_DISABLE_PLUGIN_AUTOLOAD=1"
            ) from None

    def check_pending(self) -> None:
        """Every hook implementation must implement a hook of ``hookspec.py``.

        Called once plugins and conftest.py files are loaded (as pytest does), so a
        misspelled ``xprun_*`` function is a usage error naming it and its plugin rather
        than code that silently never runs.  ``@xprun.hookimpl(optionalhook=True)`` marks
        an implementation of another plugin's hook, which may be absent.
        """
        known = [n for n, c in vars(self.hook).items() if not n.startswith("_") and c.has_spec()]
        for name, caller in vars(self.hook).items():
            if name.startswith("_") or caller.has_spec():
                continue
            for impl in caller.get_hookimpls():
                if impl.opts.get("optionalhook"):
                    continue
                close = difflib.get_close_matches(name, known, n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                raise UsageError(
                    f"{impl.plugin_name}: {name} is not an xprun hook{hint}; rename it, or mark "
                    "it @xprun.hookimpl(optionalhook=True) if it implements another plugin's hook"
                )


def _plugin_name(plugin: Any) -> str:
    return str(getattr(plugin, "__name__", plugin))


def plugin_args(argv: Sequence[str]) -> list[str]:
    """The values of every ``-p NAME`` / ``-pNAME`` in ``argv``, in order, as the real parse
    will see them: read by argparse with the built-in options, so a word that is the value
    of another option (``-k -pfoo`` is refused there too), an override (``x=-pfoo``), a path
    after ``--`` or a combined flag (``-sp NAME``) are taken as the parse takes them, not by
    their spelling.  Options only a plugin knows are left aside (``parse_known``)."""
    from .options import add_builtin_options

    parser = ArgumentParser(add_help=False)
    parser.add_argument("args", nargs="*")
    add_builtin_options(parser, dict(DEFAULTS))
    try:
        option, _ = parser.parse_known_intermixed_args(list(argv))
    except UsageError:  # the real parse, with every plugin's options, reports it
        return []
    return list(option.plugins)


def make_pluginmanager(argv: Sequence[str] = ()) -> PluginManager:
    """The plugin manager with the built-in plugins, ``-p`` plugins and installed plugins
    registered (in that order), after the ``-p no:NAME`` blocks of ``argv``."""
    pm = PluginManager()
    pm.consider_preparse(argv, exclude_only=True)
    for name in BUILTIN_PLUGINS:
        pm.import_plugin(name)
    pm.consider_preparse(argv, exclude_only=False)
    if not os.environ.get("XPRUN_DISABLE_PLUGIN_AUTOLOAD"):
        pm.load_entry_points()
    return pm


def _exists(path: Path) -> bool:
    """Whether ``path`` exists; False for words no file system accepts (too long, NUL...)."""
    return os.path.exists(path)  # never raises, unlike Path.exists


#: A positional word that is a run's hash (or a prefix of it), as ``xprun show`` prints it.
_RUN_HASH = re.compile(r"[0-9a-f]{4,32}")


def classify_word(word: str, cwd: Path) -> str | None:
    """What a positional word of the command line is: ``"path"`` (an existing file or folder,
    or a node id in one: ``xp_a.py::xp_a``), ``"override"`` (``lr=0.1``, ``~key``), or None
    (neither: a usage error).  The one place that decides it, for finding the rootdir and for
    the run; a word naming an existing path is a path even if it reads like an override (a
    folder called ``lr=0.1``)."""
    if _exists(cwd / word.split("::", 1)[0]):
        return "path"
    return "override" if looks_like_override(word) else None


def _candidate_paths(argv: list[str], cwd: Path) -> list[Path]:
    """Existing paths among the positional words of the command line, to find the rootdir
    before plugins add their options.

    The words are sorted out by the built-in options, so their values (``-k ..``,
    ``--log-dir ../elsewhere``) never move the rootdir; a word after an option only a plugin
    knows is still tried.
    """
    return [
        (cwd / word.split("::", 1)[0]).resolve()
        for word in _positional_words(argv)
        if classify_word(word, cwd) == "path"
    ]


def _positional_words(argv: list[str]) -> list[str]:
    """The positional words of the command line, as the built-in options sort them out."""
    parser = ArgumentParser(add_help=False)
    parser.add_argument("args", nargs="*")
    xprun_addoption(parser, dict(DEFAULTS))
    try:
        option, unknown = parser.parse_known_intermixed_args(argv)
        words = [*option.args, *unknown]
    except UsageError:  # reported by the real parse, with every plugin's options known
        words = argv
    return [word for word in words if not word.startswith("-")]


class Config:
    """Everything decided before the session starts: settings, options, plugins."""

    def __init__(
        self,
        pluginmanager: pluggy.PluginManager,
        settings: ProjectSettings,
        option: argparse.Namespace,
        cwd: Path,
    ) -> None:
        self.pluginmanager = pluginmanager
        self.hook = pluginmanager.hook
        self.settings = settings
        self.option = option
        self.cwd = cwd
        self.rootdir = settings.rootdir
        self.run_hashes: list[str] = []  # runs named by their hash (or a prefix of it)
        self.args, self.override_args = self._split_positionals(option.args)
        if not self.args and not self.run_hashes:
            # As pytest: with no path given, collect from the invocation directory (the
            # rootdir, settings and log directory are still the project's).
            self.args = [str(cwd)]
        if option.log_dir:
            log_dir, source = cwd / option.log_dir, "--log-dir"
        else:
            log_dir, source = settings.rootdir / settings["log_dir"], "[tool.xprun] log_dir"
        self.log_dir = check_log_dir(log_dir, source, writable=not option.collect_only)
        self.snapshot_dir = (settings.rootdir / settings["snapshot_dir"]).resolve()
        self.heartbeat = Heartbeat(
            float(settings["heartbeat_interval"]), float(settings["heartbeat_timeout"])
        )

    def _split_positionals(self, words: list[str]) -> tuple[list[str], list[str]]:
        args, overrides = [], []
        for word in words:
            kind = classify_word(word, self.cwd)
            if kind is None and "::" in word and _exists(self.rootdir / word.split("::", 1)[0]):
                kind = "path"  # a node id as run.json records it: relative to the rootdir
            if kind == "override":
                overrides.append(word)
            elif kind == "path":
                args.append(word)
            elif _RUN_HASH.fullmatch(word):  # a run's hash, as xprun show prints it
                self.run_hashes.append(word)
            else:
                raise UsageError(
                    f"file or directory not found: {word.split('::', 1)[0]} "
                    "(positional arguments are paths, node ids, or key=value overrides)"
                )
        return args, overrides


def build_parser(pm: pluggy.PluginManager, settings: ProjectSettings) -> argparse.ArgumentParser:
    """The ``run`` command's parser with every registered plugin's options (and commands)."""
    from .cli import command_table

    parser = base_parser(command_table(pm.hook).values())
    pm.hook.xprun_addoption.call_historic(kwargs={"parser": parser, "settings": settings.values})
    return parser


def check_log_dir(path: Path, source: str, writable: bool) -> Path:
    """``path`` resolved, once it is sure to hold run directories; a usage error otherwise.

    Checked before anything is written, so a bad log directory stops xprun with nothing
    created: a file or a device (``/dev/null``) in its place, a symbolic link that leads
    nowhere (whose target ``mkdir`` would silently create) or loops, a name too long for the
    file system, or (unless ``writable`` is false, as for ``--collect-only``) a folder this
    process may not write into.
    """

    def fail(problem: str) -> NoReturn:
        raise UsageError(
            f"log directory {path} (from {source}): {problem}; fix it, or choose another "
            "with --log-dir or [tool.xprun] log_dir"
        )

    existing = path
    while not os.path.exists(existing):  # the nearest part that exists (symlinks followed)
        if os.path.lexists(existing):
            fail(f"{existing} is a symbolic link to nothing (its target is missing, or it loops)")
        if existing.parent == existing:
            break
        existing = existing.parent
    where = "it" if existing == path else str(existing)
    if not os.path.isdir(existing):
        fail(f"{where} exists and is not a directory")
    try:
        limit = os.pathconf(existing, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    too_long = [p for p in path.relative_to(existing).parts if len(os.fsencode(p)) > limit]
    if too_long:
        fail(f"the name {too_long[0][:40]}... is longer than the file system allows ({limit})")
    if writable and not os.access(existing, os.W_OK | os.X_OK):
        fail(f"{where} is not writable by this user")
    if writable and existing != path:
        # Permissions are not all: a folder may refuse new entries whatever they say (/proc,
        # a read-only mount seen by root).  The first missing folder is made and removed
        # again, so the check leaves nothing behind.
        probe = existing / path.relative_to(existing).parts[0]
        try:
            os.mkdir(probe)
        except FileExistsError:
            pass  # made meanwhile (another launcher): it exists, as it should
        except OSError as exc:
            fail(f"{probe} cannot be created ({exc.strerror or exc})")
        else:
            with contextlib.suppress(OSError):
                os.rmdir(probe)
    try:
        return path.resolve()
    except (OSError, RuntimeError) as exc:  # a loop that appeared meanwhile
        fail(f"cannot be resolved ({exc})")


def make_config(
    argv: list[str], cwd: Path, settings: ProjectSettings | None = None, terminal: bool = True
) -> Config:
    """Plugins registered, options parsed, plugins configured: a ``Config`` for ``argv``.

    ``terminal=False`` leaves out terminal reporting (as ``-p no:terminal``), for workers.
    Without ``settings`` (a user's command line, not a worker's), ``[tool.xprun] addopts``
    and ``XPRUN_ADDOPTS`` come first, as pytest's.
    """
    if settings is None:
        settings = load_settings(_candidate_paths(argv, cwd), cwd)
        argv = [*addopts(settings), *argv]
    pm = make_pluginmanager(argv)
    if not terminal:
        pm.block("terminal")
    parser = build_parser(pm, settings)
    option = parser.parse_intermixed_args(argv)
    config = Config(pm, settings, option, cwd)
    pm.hook.xprun_configure.call_historic(kwargs={"config": config})
    return config


def main(argv: list[str] | None = None) -> int:
    """Run ``xprun`` in this process with ``argv``; return the exit code (``pytest.main``).

    Without ``argv``, the command line (``sys.argv[1:]``); and when called so from a script
    run as ``__main__`` that is an experiment file, that file is collected (unless the
    command line names paths): ``python xp_train.py lr=0.1``, whose file ends with ``if
    __name__ == "__main__": raise SystemExit(xprun.main())``, is ``xprun xp_train.py lr=0.1``,
    the same runs, hashes and run directories, so an IDE's "run/debug this file" works.
    xprun imports the file once more as the experiment module it collects (as ``xprun
    xp_train.py`` does): the ``__main__`` copy's functions are never run, and its top level
    runs twice (the ``__main__`` guard keeps the second import from launching again).
    """
    cwd = Path.cwd()
    try:
        if argv is None:
            argv = _script_argv(sys.argv[1:], cwd, sys._getframe(1).f_globals)
        config = make_config(list(argv), cwd)
    except (UsageError, CollectError) as exc:  # CollectError: a plugin failed to load
        sys.stderr.write(f"ERROR: {exc}\n")
        return int(ExitCode.USAGE_ERROR)
    from .session import Session

    try:
        return Session(config).main()
    finally:
        config.hook.xprun_unconfigure(config=config)


def _script_argv(words: list[str], cwd: Path, caller: dict[str, Any]) -> list[str]:
    """``words``, after the path of the script run as ``__main__`` when that script is an
    experiment file and ``words`` name no path (see :func:`main`); ``caller`` is the
    globals of ``main``'s caller."""
    script = sys.modules.get("__main__")
    file = getattr(script, "__file__", None)
    if not file or getattr(script, "__spec__", None) is not None:
        return words  # python -m ..., python -c, an interactive session: the command line
    path = Path(file).resolve()
    imported = caller.get("__name__") != "__main__" and caller.get("__file__")
    if imported and Path(str(caller["__file__"])).resolve() == path:
        raise UsageError(
            f"{path.name} calls xprun.main() at import: xprun imports the file again to "
            "collect its experiments, and would launch them again from there; call it "
            'under `if __name__ == "__main__":` only'
        )
    settings = load_settings([path], cwd)
    patterns = settings.patterns("experiment_files")
    if not any(fnmatchcase(path.name, p) for p in patterns) or any(
        # a path, a node id (as run.json records it: relative to the rootdir), a run's hash
        classify_word(word, cwd) == "path"
        or classify_word(word, settings.rootdir) == "path"
        or _RUN_HASH.fullmatch(word)
        for word in _positional_words(words)
    ):
        return words
    return [str(path), *words]
