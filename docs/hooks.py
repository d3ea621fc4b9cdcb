"""MkDocs hooks of the documentation site (``hooks:`` in mkdocs.yml).

The command-line reference (docs/reference/cli.md) is generated here at build time, from the
argument parsers themselves: each command's help is what ``xprun COMMAND --help`` prints, so
the page cannot drift from the code.  The commands are asked in a fresh interpreter (the
installed ``xprun``, with ``python -m xprun``) rather than imported into MkDocs: ``mkdocs
serve`` then shows an option the moment it is added, and no module state leaks between the
two.  Installed third-party plugins are left out (``XPRUN_DISABLE_PLUGIN_AUTOLOAD``): the
page documents xprun, not the machine that built it.

Pages also link to the source of the hooks (``../xprun/hookspec.py``), which is right on
GitHub; on the site such a link leads to the generated reference of that module instead
(``SOURCE_PAGES``), so a page reads well in both places and the strict build finds no
broken link.
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import re
import subprocess
import sys
import tempfile
from typing import Any

log = logging.getLogger("mkdocs.hooks.xprun")

#: Source files that pages link to → the reference page generated from them.
SOURCE_PAGES = {"xprun/hookspec.py": "reference/hooks.md"}

#: A Markdown link's target: ``](target)`` or ``](target#anchor)``.
_LINK = re.compile(r"\]\(([^)\s#]+)(#[^)\s]*)?\)")

#: The line of docs/reference/cli.md that the generated reference replaces.
MARKER = "<!-- xprun-cli-reference:"

# Lists the commands (name and one-line help) in registration order, as `xprun` dispatches.
_LIST_COMMANDS = """
import json
from xprun.cli import commands
print(json.dumps([[c.name, c.help] for c in commands([]).values()]))
"""


def _xprun(args: list[str], cwd: str) -> str:
    """What ``python -m xprun ARGS`` prints, at a fixed width (argparse reads COLUMNS)."""
    env = {**os.environ, "COLUMNS": "100", "XPRUN_DISABLE_PLUGIN_AUTOLOAD": "1", "NO_COLOR": "1"}
    done = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        # A warning, not an exception: `mkdocs build --strict` fails on it with this message,
        # `mkdocs serve` keeps serving the other pages.
        log.warning(
            "the CLI reference: `python %s` exited %d:\n%s",
            " ".join(args),
            done.returncode,
            done.stderr,
        )
        return f"(`python {' '.join(args)}` failed: exit code {done.returncode})"
    return done.stdout


def cli_reference() -> str:
    """Markdown for every command of ``xprun``: its one-line help, then its ``--help``."""
    parts: list[str] = []
    # An empty folder: no project's pyproject.toml or conftest.py can change the text.
    with tempfile.TemporaryDirectory() as cwd:
        listed: list[list[str]] = json.loads(_xprun(["-c", _LIST_COMMANDS], cwd) or "[]")
        for name, summary in listed:
            argv = ["--help"] if name == "run" else [name, "--help"]
            shown = "xprun --help" if name == "run" else f"xprun {name} --help"
            text = _xprun(["-m", "xprun", *argv], cwd).rstrip()
            parts.append(
                f"## `xprun {name}`\n\n{summary[:1].upper() + summary[1:]}.\n\n"
                f'``` {{ .text title="{shown}" }}\n{text}\n```\n'
            )
    return "\n".join(parts)


def _source_links(markdown: str, page_uri: str) -> str:
    """Links to a source file of ``SOURCE_PAGES`` made links to its reference page."""
    here = posixpath.dirname(page_uri)

    def replace(match: re.Match[str]) -> str:
        target, anchor = match.group(1), match.group(2) or ""
        in_repo = posixpath.normpath(posixpath.join("docs", here, target))
        page = SOURCE_PAGES.get(in_repo)
        if page is None:
            return match.group(0)
        return f"]({posixpath.relpath(page, here or '.')}{anchor})"

    return _LINK.sub(replace, markdown)


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    """Source links → reference pages; the CLI reference's marker line → every command's help."""
    markdown = _source_links(markdown, page.file.src_uri)
    if MARKER not in markdown:
        return markdown
    lines = markdown.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith(MARKER))
    lines[at] = cli_reference()
    return "\n".join(lines) + "\n"
