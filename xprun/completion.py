"""``xprun completion bash|zsh``: shell completion for xprun, loaded with one line
(``eval "$(xprun completion bash)"`` in ``~/.bashrc``, ``eval "$(xprun completion zsh)"``
after ``compinit`` in ``~/.zshrc``).

The script is a small shell function that asks ``xprun completion --complete`` for the
candidates of the word under the cursor, so every answer comes from xprun itself:

- the first word: the commands (every plugin's ``xprun_subcommand``), options, experiment
  files and folders;
- ``-...``: the options of the command being typed (the ``run`` command's with every plugin's,
  or ``show``'s, ``plot``'s, ``status``'s), and the values of an option that has choices
  (``--scheduler``, ``-f``, ``-p``) or names a file;
- ``file.py::...``: the node ids of that file's experiments and runs, from collection (which
  imports the files, as ``--collect-only`` does);
- any other word: experiment files and folders, and override keys of the collected runs'
  configs (``lr=``, ``model.width=``, and ``+``, ``++``, ``~`` forms); ``key=...`` completes
  the values the runs have.

Hand-written rather than argcomplete: argcomplete completes one argparse parser, found by
re-running the program up to ``parse_args``, while xprun picks its command before any parser
exists and builds the ``run`` parser only once plugins are loaded; and most candidates here
(node ids, override keys and values) are not argparse options but come from collection, which
would need custom completers anyway.  bash splits words at ``=`` and ``:``
(``COMP_WORDBREAKS``), so the function passes the line itself and the candidates are cut to
the part bash replaces.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterable, Iterator
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from .errors import ExitCode, UsageError

BASH = r"""# xprun completion for bash: eval "$(xprun completion bash)"
_xprun() {
    local IFS=$'\n' line point
    if [[ -n ${COMP_LINE+set} ]]; then
        line=$COMP_LINE point=${COMP_POINT:-${#COMP_LINE}}
    else
        line="${COMP_WORDS[*]:0:COMP_CWORD+1}" point=-1
    fi
    # mapfile, not COMPREPLY=($(...)): node ids hold [...], which a glob would expand
    mapfile -t COMPREPLY < <(command xprun completion --complete --line="$line" \
        --point="$point" --current="${COMP_WORDS[COMP_CWORD]}" -- \
        "${COMP_WORDS[@]:0:COMP_CWORD}" 2>/dev/null)
    if [[ ${#COMPREPLY[@]} -eq 1 && ${COMPREPLY[0]} == *[=/:] ]]; then
        compopt -o nospace 2>/dev/null
    fi
}
complete -o default -F _xprun xprun
"""

ZSH = r"""# xprun completion for zsh: eval "$(xprun completion zsh)" after compinit
_xprun() {
    local -a found
    local candidate
    found=("${(@f)$(command xprun completion --complete --line="${(j: :)words[1,CURRENT]}" \
        --point=-1 --current="${words[CURRENT]}" -- "${(@)words[1,CURRENT-1]}" 2>/dev/null)}")
    for candidate in $found; do
        [[ -z $candidate ]] && continue
        if [[ $candidate == *[=/:] ]]; then
            compadd -S '' -- "$candidate"
        else
            compadd -- "$candidate"
        fi
    done
}
compdef _xprun xprun
"""

SCRIPTS = {"bash": BASH, "zsh": ZSH}
#: Parsers of the built-in commands other than ``run`` (``module:function``).
_PARSERS = {
    "show": "xprun.show:make_parser",
    "plot": "xprun.plot:make_parser",
    "status": "xprun.status:make_parser",
    "diff": "xprun.diff:make_parser",
    "reproduce": "xprun.reproduce:make_parser",
    "why": "xprun.staleness:make_parser",
    "rm": "xprun.cleanup:make_rm_parser",
    "gc": "xprun.cleanup:make_gc_parser",
}
#: Options whose value is a file or folder.
_PATH_METAVARS = ("DIR", "PATH", "LOG_DIR", "FILE.png", "FILE")
_SCHEDULERS = ("inline", "local", "slurm", "oar")  # the built-in ones; plugins may add others
_OVERRIDE_PREFIXES = ("++", "+", "~")


def make_parser() -> argparse.ArgumentParser:
    from .options import ArgumentParser

    parser = ArgumentParser(
        prog="xprun completion",
        description="Print the shell completion script for bash or zsh. Load it with "
        'eval "$(xprun completion bash)" (in ~/.bashrc) or eval "$(xprun completion zsh)" '
        "(in ~/.zshrc, after compinit).",
    )
    parser.add_argument("shell", choices=sorted(SCRIPTS), help="bash or zsh")
    return parser


def _protocol(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    """The words of ``xprun completion --complete --line=L --point=P --current=C -- WORDS``,
    the call the scripts make on each Tab (read by hand: argparse would take a value ``--``,
    which the current word can be, for its separator)."""
    values: dict[str, str] = {}
    for i, word in enumerate(argv):
        if word == "--":
            return values, argv[i + 1 :]
        name, eq, value = word.partition("=")
        if not eq or name not in ("--line", "--point", "--current"):
            raise UsageError(f"xprun completion --complete: unexpected {word!r}")
        values[name[2:]] = value
    return values, []


def main(argv: list[str]) -> int:
    if argv[:1] == ["--complete"]:
        given, words = _protocol(argv[1:])
        try:
            point = int(given.get("point", "-1"))
        except ValueError:
            point = -1
        found = complete(words, given.get("current", ""), given.get("line"), point, Path.cwd())
        sys.stdout.write("".join(f"{candidate}\n" for candidate in found))
        return int(ExitCode.OK)
    args = make_parser().parse_args(argv)
    sys.stdout.write(SCRIPTS[args.shell])
    return int(ExitCode.OK)


def complete(before: list[str], current: str, line: str | None, point: int, cwd: Path) -> list[str]:
    """The candidates for the word being typed, cut to the part the shell replaces.

    ``before``: the shell's words before it (the command name first); ``current``: the
    shell's current word, which bash cuts at ``=`` and ``:``; ``line``/``point``: the
    command line up to the cursor (``point`` -1: all of it), from which the whole word is
    read.
    """
    text = line if line is not None and point < 0 else (line or "")[: max(point, 0)]
    words = _split(text) if line is not None else [*before, current]
    if not words or text[-1:].isspace():
        words.append("")
    typed = words[-1]
    found = sorted(set(_candidates(words[1:-1], typed, cwd)))
    cut = len(typed) - len(current) if typed.endswith(current) else 0
    return [c[cut:] for c in found if c.startswith(typed)]


def _split(text: str) -> list[str]:
    """Words of a command line the way the shell reads them, tolerating an open quote."""
    import shlex

    lexer = shlex.shlex(text, posix=True, punctuation_chars=False)
    lexer.whitespace_split = True
    words: list[str] = []
    try:
        for word in lexer:
            words.append(word)
    except ValueError:  # an unclosed quote: the rest is the word being typed
        words.append(lexer.token)
    return words


def _candidates(before: list[str], typed: str, cwd: Path) -> Iterator[str]:
    from .cli import commands

    table = commands(before)
    first = next((w for w in before if not w.startswith("-")), None)
    command = first if first in table and first != "run" else "run"
    parser = _parser(command, before)
    if parser is not None and before and before[-1].startswith("-"):
        action = _action(parser, before[-1])
        if action is not None and action.nargs != 0:
            yield from _values(action, typed, cwd)
            return
    if typed.startswith("-"):
        if parser is not None:
            yield from (o for a in parser._actions for o in a.option_strings)
        return
    if first is None:
        yield from (name for name in table if name != "worker")  # worker: internal
    if command != "run":
        yield from _paths(typed, cwd, experiments_only=False)
        return
    yield from _paths(typed, cwd, experiments_only=True)
    if "::" in typed or (typed and "/" not in typed):
        yield from _from_collection(typed, _given_paths(before, parser, cwd), cwd)


def _given_paths(before: list[str], parser: argparse.ArgumentParser | None, cwd: Path) -> list[str]:
    """The paths (and node ids' files) already on the command line, not options' values."""
    paths = []
    for i, word in enumerate(before):  # the words after the command's name
        previous = _action(parser, before[i - 1]) if parser is not None and i else None
        if word.startswith("-") or (previous is not None and previous.nargs != 0):
            continue
        path = word.split("::")[0]
        if os.path.exists(cwd / path):
            paths.append(path)
    return paths


def _parser(command: str, before: list[str]) -> argparse.ArgumentParser | None:
    if command == "run":
        from .config import build_parser, make_pluginmanager
        from .settings import load_settings

        return build_parser(make_pluginmanager(before), load_settings([], Path.cwd()))
    target = _PARSERS.get(command)
    if target is None:
        return None
    import importlib

    module, _, function = target.partition(":")
    parser: argparse.ArgumentParser = getattr(importlib.import_module(module), function)()
    return parser


def _action(parser: argparse.ArgumentParser, option: str) -> argparse.Action | None:
    return next((a for a in parser._actions if option in a.option_strings), None)


def _values(action: argparse.Action, typed: str, cwd: Path) -> Iterable[str]:
    if action.choices:
        return [str(c) for c in action.choices]
    if action.dest == "scheduler":
        return _SCHEDULERS
    if action.dest == "plugins":
        from .config import BUILTIN_PLUGINS

        names = [n.rsplit(".", 1)[1] for n in BUILTIN_PLUGINS]
        return [*names, *(f"no:{n}" for n in names)]
    if action.metavar in _PATH_METAVARS or action.dest in ("log_dir", "output"):
        return _paths(typed, cwd, experiments_only=False)
    return ()


def _paths(typed: str, cwd: Path, experiments_only: bool) -> Iterator[str]:
    """Folders (with a ``/``) and files under the typed prefix; only experiment files
    (``experiment_files`` of the project's settings) when ``experiments_only``."""
    if "::" in typed:
        return
    folder, _, _ = typed.rpartition("/")
    where = cwd / folder if folder else cwd
    patterns: list[str] = ["*"]
    if experiments_only:
        from .settings import load_settings

        with contextlib.suppress(UsageError):
            patterns = load_settings([], cwd).patterns("experiment_files")
    try:
        entries = sorted(os.scandir(where), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith(".") and not typed.rpartition("/")[2].startswith("."):
            continue
        path = f"{folder}/{entry.name}" if folder else entry.name
        if entry.is_dir():
            yield path + "/"
        elif any(fnmatchcase(entry.name, p) for p in patterns):
            yield path


def _from_collection(typed: str, paths: list[str], cwd: Path) -> Iterator[str]:
    """Node ids (``file.py::...``) and override words (``key=``, ``key=value``) of the runs
    that collection finds under ``paths`` (the file being typed, else those given)."""
    if "::" in typed:
        paths = [typed.split("::")[0]]
    runs = _collect(paths, cwd)
    if "::" in typed:
        for run in runs:
            file = os.path.relpath(run.experiment.path, cwd)
            rest = run.nodeid.split("::", 1)[1]
            yield f"{file}::{rest.split('[')[0]}"
            yield f"{file}::{rest}"
        return
    prefix = next((p for p in _OVERRIDE_PREFIXES if typed.startswith(p)), "")
    key, eq, _ = typed[len(prefix) :].partition("=")
    for run in runs:
        for name, value in _flat(run.config):
            if prefix == "~":
                yield f"~{name}"
            elif eq and name == key:
                yield f"{prefix}{name}={_override_text(value)}"
            elif not eq:
                yield f"{prefix}{name}="


def _collect(paths: list[str], cwd: Path) -> list[Any]:
    """The runs ``xprun --collect-only PATHS`` lists; none when collection fails (a Tab must
    not print errors into the command line)."""
    from .config import make_config
    from .session import Session

    argv = [*paths, "--collect-only", "-p", "no:terminal"]
    try:
        with contextlib.redirect_stdout(sys.stderr):  # what the user's modules print
            config = make_config(argv, cwd)
            session = Session(config)
            session.main()
    except Exception:
        return []
    return list(session.runs)


def _flat(config: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in config.items() if isinstance(config, dict) else ():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            yield from _flat(value, name + ".")
        else:
            yield name, value


def _override_text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
