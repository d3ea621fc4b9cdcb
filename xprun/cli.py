"""The ``xprun`` console script: dispatch to a command (``run`` is the default).

Commands are registered through the ``xprun_subcommand`` hook, so plugins add their own; the
built-in ones are declared here and imported only when chosen (``xprun --help`` stays light).
Leading ``-p NAME`` options load or block plugins before the command is chosen, so
``xprun -p myplugin mycommand`` works; they are passed on to ``run`` only.

``xprun --version`` and ``xprun --help`` are answered before the plugin manager exists when
nothing could change the answer (no ``-p``, no installed plugin): pluggy and the modules
behind it cost more than the rest of the start-up.  This module therefore imports nothing
but the standard library, and its hook implementation is unmarked (the plugin manager treats
an unmarked ``xprun_*`` function as one; registered before any plugin, it is called after
theirs, so a plugin's command of the same name wins).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple


class Command(NamedTuple):
    """A command of the ``xprun`` console script: ``xprun NAME ARGS...``.

    (A ``NamedTuple``, not a dataclass: ``dataclasses`` costs a tenth of ``--version``.)
    """

    name: str
    main: Callable[[list[str]], int]  # gets the words after NAME, returns the exit code
    help: str = ""


def _lazy(target: str) -> Callable[[list[str]], int]:
    """``module:function``, imported when the command runs."""

    def main(argv: list[str]) -> int:
        import importlib

        module, _, function = target.partition(":")
        command: Callable[[list[str]], int] = getattr(importlib.import_module(module), function)
        return command(argv)

    return main


def xprun_subcommand() -> Iterable[Command]:
    return (
        Command("run", _lazy("xprun.config:main"), "collect and run experiments (the default)"),
        Command("show", _lazy("xprun.show:main"), "a table of results"),
        Command("plot", _lazy("xprun.plot:main"), "a metric, mean ± std, to a PNG file"),
        Command("status", _lazy("xprun.status:main"), "where runs submitted to SLURM or OAR are"),
        Command(
            "completion", _lazy("xprun.completion:main"), "the shell completion script (bash, zsh)"
        ),
        Command("worker", _lazy("xprun.worker:main"), "execute runs of a job spec (internal)"),
    )


#: Built-in plugins besides this module that add commands, in the order the plugin manager
#: calls them (the last registered first).  Their modules import only the standard library at
#: top level, so that ``xprun --help`` lists their commands without the plugin manager (a
#: test compares that help with the plugin manager's).
COMMAND_PLUGINS = ("xprun.staleness", "xprun.reproduce", "xprun.diff", "xprun.cleanup")


def builtin_commands() -> list[Command]:
    """Every built-in command, in the order the plugin manager lists them, without it."""
    import importlib

    found = [
        c for name in COMMAND_PLUGINS for c in importlib.import_module(name).xprun_subcommand()
    ]
    return [*found, *xprun_subcommand()]


def command_table(hook: Any) -> dict[str, Command]:
    """Every command of the plugins behind ``hook`` (a plugin manager's hook relay), by name;
    the first of two with one name wins (plugins are called before the built-ins)."""
    found: dict[str, Command] = {}
    for result in hook.xprun_subcommand():
        for command in result or ():
            found.setdefault(command.name, command)
    return found


def commands(argv: list[str]) -> dict[str, Command]:
    """Every command, by name, from the plugins that ``argv``'s ``-p`` options leave."""
    from .config import make_pluginmanager

    return command_table(make_pluginmanager(argv).hook)


def describe(table: Iterable[Command]) -> str:
    """The commands as ``xprun --help`` lists them: one per line with its help."""
    listed = [c for c in table if c.name != "run"]
    width = max((len(c.name) for c in listed), default=0)
    lines = [f"  xprun {c.name:<{width}}  {c.help}".rstrip() for c in listed]
    return "commands (xprun COMMAND --help for each):\n" + "\n".join(lines)


def _leading_plugin_options(argv: list[str]) -> int:
    """How many words at the start of ``argv`` are ``-p NAME`` / ``-pNAME`` options."""
    i = 0
    while i < len(argv):
        if argv[i] == "-p" and i + 1 < len(argv):
            i += 2
        elif argv[i].startswith("-p") and len(argv[i]) > 2:
            i += 1
        else:
            break
    return i


def _answer_alone(argv: list[str]) -> bool:
    """Answer ``xprun --version`` / ``xprun --help`` without plugins, when none could change
    the answer; False when the plugin manager is needed."""
    if argv == ["--version"]:
        from ._version import __version__

        sys.stdout.write(f"xprun {__version__}\n")  # the run parser's version action says so
        return True
    from . import options

    if argv not in (["--help"], ["-h"]) or options.installed_plugins_possible():
        return False
    from .settings import DEFAULTS

    parser = options.base_parser(builtin_commands())
    options.add_builtin_options(parser, dict(DEFAULTS))
    parser.print_help()
    return True


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``xprun [COMMAND] ...``; without a known command, ``run``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if _answer_alone(argv):
        sys.stdout.flush()
        return 0  # ExitCode.OK (errors.py is not needed to say so)
    from .errors import ExitCode, UsageError

    try:
        table = commands(argv)
    except UsageError as exc:
        sys.stderr.write(f"ERROR: {exc}\n")
        return int(ExitCode.USAGE_ERROR)
    skip = _leading_plugin_options(argv)
    word = argv[skip] if skip < len(argv) else None
    if word in table and word != "run":
        name, words = word, argv[skip + 1 :]
    else:
        name, words = "run", (argv[:skip] + argv[skip + 1 :] if word == "run" else argv)
    code = _guarded(table[name], words)
    try:
        sys.stdout.flush()
    except BrokenPipeError:  # `xprun show | head`: what was read is all that was wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return code


def _guarded(command: Command, argv: list[str]) -> int:
    """Run a command with pytest's exit codes for what escapes it, the same for every
    command, plugins' included: a usage error is 4 (``ERROR: ...``), an interrupt 2, and
    anything else is xprun's (or the plugin's) bug: ``INTERNAL ERROR`` with its traceback, 3.
    """
    import traceback

    from .errors import ExitCode, Terminated, UsageError

    try:
        return command.main(argv)
    except UsageError as exc:
        sys.stderr.write(f"ERROR: {exc}\n")
        return int(ExitCode.USAGE_ERROR)
    except BrokenPipeError:  # `xprun show | head`: the reader took what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # and no more
        return int(ExitCode.OK)
    except (KeyboardInterrupt, Terminated):
        sys.stderr.write(f"xprun {command.name}: interrupted\n")
        return int(ExitCode.INTERRUPTED)
    except Exception:
        sys.stderr.write(f"INTERNAL ERROR in xprun {command.name}:\n{traceback.format_exc()}")
        return int(ExitCode.INTERNAL_ERROR)


def console_main() -> None:
    sys.exit(main())
