"""The ``xprun`` console script: dispatch to a command (``run`` is the default)."""

from __future__ import annotations

import sys

COMMANDS: dict[str, str] = {
    # name → "module:function"; each takes argv and returns an exit code
    "run": "xprun.main:main",
    "show": "xprun.show:main",
    "plot": "xprun.plot:main",
    "status": "xprun.status:main",
    "worker": "xprun.worker:main",
}


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``xprun [COMMAND] ...``; without a known command, ``run``."""
    import importlib

    argv = list(sys.argv[1:] if argv is None else argv)
    name = argv[0] if argv and argv[0] in COMMANDS else "run"
    if argv and argv[0] == name:
        argv = argv[1:]
    module, _, function = COMMANDS[name].partition(":")
    code = getattr(importlib.import_module(module), function)(argv)
    sys.stdout.flush()
    return code


def console_main() -> None:
    sys.exit(main())
