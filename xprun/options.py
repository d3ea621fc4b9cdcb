"""The ``run`` command's parser and its built-in options, without the plugin manager.

``xprun --help`` must list every option, and the built-in ones are registered by
``xprun_addoption`` below (a hook implementation of the ``xprun.config`` plugin, which
re-exports it).  Keeping it here, importing only the standard library, lets the console
script answer ``--help`` and ``--version`` without pluggy when no installed plugin could add
an option (:func:`installed_plugins_possible`): the text is built by the same function the
plugin manager calls, so it cannot drift from the full path's.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from .cli import Command

#: Built-in plugins that add options of their own (each module's ``xprun_addoption``),
#: registered after ``config.BUILTIN_PLUGINS``.  Their modules import only the standard
#: library at top level, so that ``xprun --help`` can list their options without the
#: plugin manager (:func:`add_builtin_options`).
OPTION_PLUGINS: tuple[str, ...] = (
    "xprun.debugging",
    "xprun.setuponly",
    "xprun.timeout",
    "xprun.retries",
    "xprun.markers",
    "xprun.junitxml",
    "xprun.reportlog",
    "xprun.durations",
    "xprun.history",
    "xprun.ordering",
    "xprun.cfgshow",
    "xprun.search",
    "xprun.staleness",
)

#: The group of entry points through which installed plugins register (as pytest's ``pytest11``).
ENTRY_POINT_GROUP = "xprun"
_ENTRY_POINT_SECTION = re.compile(rf"^\s*\[\s*{ENTRY_POINT_GROUP}\s*\]\s*$", re.MULTILINE)


class ArgumentParser(argparse.ArgumentParser):
    """argparse, with its errors turned into usage errors (exit code 4, as pytest)."""

    def error(self, message: str) -> NoReturn:
        from .errors import UsageError  # imported when needed: --help stays light

        raise UsageError(f"{message}\n{self.format_usage().strip()}")


def base_parser(commands: Iterable[Command] | None = None) -> ArgumentParser:
    """The ``run`` command's parser before any plugin has added its options.

    Its help lists ``commands`` (every plugin's ``xprun_subcommand``, given by the plugin
    manager), by default the built-in ones, which ``cli`` declares without pluggy.
    """
    from . import cli
    from ._version import __version__

    table = cli.xprun_subcommand() if commands is None else commands
    parser = ArgumentParser(
        prog="xprun",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Discover xp_* experiments, expand their configs and sweeps, run each\n"
        "content-hashed config once.",
        epilog=f"{cli.describe(table)}\n\nexit codes: 0 ok, 1 runs failed, 2 interrupted, "
        "3 internal error,\n4 usage error, 5 no runs collected.",
    )
    parser.add_argument("--version", action="version", version=f"xprun {__version__}")
    parser.add_argument(
        "args",
        nargs="*",
        metavar="PATH|NODEID|OVERRIDE",
        help="files, folders or node ids (file.py::xp_name[label]) to collect, and config "
        "overrides in Hydra's grammar (lr=0.1, lr=0.1,0.01, seed=range(0,5), +key=1, ~key)",
    )
    return parser


def installed_plugins_possible() -> bool:
    """Whether an installed distribution may declare an ``xprun`` entry point (a plugin).

    Reads the same ``entry_points.txt`` files ``importlib.metadata`` reads, without importing
    it (its import and its parsing of every distribution cost more than the rest of
    ``--help``).  Errs towards True: a ``sys.path`` entry that is not a plain folder (a zip)
    counts as a possible plugin, and then the caller takes the full path.
    """
    if os.environ.get("XPRUN_DISABLE_PLUGIN_AUTOLOAD"):
        return False
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except NotADirectoryError:
            return True
        except OSError:
            continue  # a folder that does not exist (python311.zip usually does not)
        for name in names:
            if not name.endswith((".dist-info", ".egg-info")):
                continue
            try:
                with open(os.path.join(entry, name, "entry_points.txt"), encoding="utf-8") as f:
                    if _ENTRY_POINT_SECTION.search(f.read()):
                        return True
            except (OSError, UnicodeDecodeError):
                continue  # no entry points (or an egg-info file, not a folder)
    return False


def xprun_addoption(parser: argparse.ArgumentParser, settings: dict[str, Any]) -> None:
    """The built-in options (the ``xprun.config`` plugin's implementation of the hook)."""
    group = parser.add_argument_group("running")
    group.add_argument(
        "-k",
        dest="keyword",
        metavar="EXPR",
        default="",
        help="only runs matching the keyword expression (pytest's -k: "
        "'sgd and not lr=0.1'); a word matches part of a node id or key=value item, "
        "a key=value word a whole value",
    )
    group.add_argument(
        "-x", "--exitfirst", action="store_true", help="stop after the first failed run"
    )
    group.add_argument(
        "--force", action="store_true", help="run again runs that are already complete"
    )
    group.add_argument(
        "--collect-only",
        "--co",
        action="store_true",
        dest="collect_only",
        help="list every run with its status and hash; run nothing",
    )
    group.add_argument(
        "--log-dir",
        metavar="DIR",
        default=None,
        help="where run directories go (default: [tool.xprun] log_dir, "
        "else 'xprun_logs' under the rootdir)",
    )
    group.add_argument(
        "--scheduler",
        default=None,
        help="where runs execute: inline (this process), local (a pool of processes, -n), "
        "slurm, oar (default: a 'scheduler' fixture, else [tool.xprun] scheduler, else inline)",
    )
    group.add_argument(
        "-n",
        "--numprocesses",
        default=None,
        metavar="N",
        help="run on N local worker processes ('auto': one per core); implies --scheduler local",
    )
    group.add_argument(
        "--wait",
        action="store_true",
        help="with a cluster scheduler, wait for the jobs and report how the runs ended",
    )
    snap = group.add_mutually_exclusive_group()
    snap.add_argument(
        "--snapshot",
        action="store_true",
        default=None,
        help="run from a Git snapshot of the code (the default for every scheduler but inline)",
    )
    snap.add_argument(
        "--no-snapshot",
        action="store_false",
        dest="snapshot",
        help="run from the work tree as it is when each run starts",
    )
    group.add_argument(
        "-s",
        action="store_const",
        const="no",
        dest="capture",
        default="sys",
        help="also show the runs' output on the terminal as it is written",
    )
    plugins = parser.add_argument_group("plugins")
    plugins.add_argument(
        "-p",
        dest="plugins",
        action="append",
        default=[],
        metavar="NAME",
        help="load the plugin NAME early (a module, an installed plugin's entry point); "
        "-p no:NAME blocks it, built-in ones included (-p no:terminal)",
    )
    from .tracebacks import full_trace_from_env  # standard library only, as this module

    out = parser.add_argument_group("reporting")
    out.add_argument(
        "-q",
        "--quiet",
        action="count",
        default=0,
        help="less output: -q no header and no experiment names, -qq only the summary",
    )
    out.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="more output: -v one line per run (node id, status, hash), -vv whole "
        "captured output of failed runs",
    )
    out.add_argument(
        "--color",
        choices=("yes", "no", "auto"),
        default="auto",
        help="color the output (auto: on a terminal, unless NO_COLOR is set or FORCE_COLOR "
        "forces it)",
    )
    out.add_argument(
        "--full-trace",
        action="store_true",
        default=full_trace_from_env(),
        help="show every frame of a failed run's traceback, xprun's and pluggy's too "
        "(also XPRUN_FULL_TRACE=1)",
    )


def add_builtin_options(parser: argparse.ArgumentParser, settings: dict[str, Any]) -> None:
    """Every built-in option, as the plugin manager would add them: this module's, then each
    of ``OPTION_PLUGINS``, last first (for the ``--help`` path that runs without the plugin
    manager)."""
    import importlib

    xprun_addoption(parser, settings)
    # In pluggy's order: the core's first (``tryfirst``), then the last registered first.
    for name in reversed(OPTION_PLUGINS):
        importlib.import_module(name).xprun_addoption(parser=parser, settings=settings)


def option_group(parser: argparse.ArgumentParser, title: str) -> Any:
    """The parser's option group called ``title``, made if there is none yet (as pytest's
    ``parser.getgroup``): plugins that share a heading (``reporting``) add to one group."""
    for group in parser._action_groups:
        if group.title == title:
            return group
    return parser.add_argument_group(title)
