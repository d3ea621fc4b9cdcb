"""Issue 12: the documentation site builds strictly, and every command in it runs as written.

Runnable blocks (the convention docs/index.md states for writers):

- A ```` ```console ```` block is a terminal session: each ``$ `` line is a command (a line
  ending in ``\\`` continues it), the lines after it are what it prints.  Every such block of
  README.md and docs/**/*.md is run, in document order, one folder per page.
- A code block titled with a file name (```` ```python title="xp_train.py" ````, any
  language) is that file: it is written into the page's folder where it appears, so the
  commands after it see it (a later block of the same title replaces it, as an edited file).
- A command must exit 0, unless it ends with a comment ``# exit code N``.  The lines a block
  shows after a command must appear in its output, in that order (other lines may come
  between them); ``...`` in a shown line matches any text, and spaces at either end of a
  line are not compared.
- ```` ``` { .console .no-run } ```` is shown, never run (it needs a cluster, say);
  ```` ``` { .console .pending } ```` depends on a feature not built yet: it is run, and the
  test reports it as expected to fail until it passes, and then fails so that someone
  removes the ``.pending``.
- Every console, bash and sh block, run or not, must at least parse as bash (``bash -n``):
  ``xprun seed=range(0,5)`` unquoted does not.

Each command runs in its own ``bash``, in the folder the previous command of the page left
(``cd`` carries over, variables do not), which starts as a fresh empty folder; ``xprun`` and
``python`` are the ones running these tests.  A console block titled with a folder of the
repository (```` ```console title="conftest_examples/quickstart" ````) runs in a fresh copy of
that folder instead, as a user would from a checkout.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
SHELLS = {"console", "bash", "sh", "shell"}

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>.*)$")
_ATTR = re.compile(r'(?P<key>[\w-]+)="(?P<value>[^"]*)"')
_EXIT = re.compile(r"#\s*exit code (?P<code>\d+)\b")


@dataclasses.dataclass
class Block:
    """One fenced code block of a page."""

    page: Path
    line: int  # of the opening fence, from 1
    lang: str
    classes: set[str]
    attrs: dict[str, str]
    text: str

    @property
    def where(self) -> str:
        page = self.page.relative_to(ROOT) if self.page.is_relative_to(ROOT) else self.page.name
        return f"{page}:{self.line}"

    @property
    def file_name(self) -> str | None:
        """The file this block defines: its title, when the title is a relative file name."""
        title = self.attrs.get("title", "")
        if self.lang in SHELLS or not re.fullmatch(r"[\w./-]+\.\w+", title):
            return None
        return title


def _info(info: str) -> tuple[str, set[str], dict[str, str]]:
    """A fence's language, classes and attributes: ``lang k="v"`` or ``{ .lang .cls k="v" }``."""
    attrs = {m["key"]: m["value"] for m in _ATTR.finditer(info)}
    bare = _ATTR.sub("", info).strip()
    if bare.startswith("{"):
        classes = [word[1:] for word in bare.strip("{} ").split() if word.startswith(".")]
        return (classes[0] if classes else ""), set(classes[1:]), attrs
    return (bare.split() or [""])[0], set(), attrs


def blocks(page: Path) -> list[Block]:
    """Every fenced code block of a Markdown page, indented ones (lists, admonitions) too."""
    found: list[Block] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        lang, classes, attrs = _info(opening["info"])
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not (
            lines[j].strip().startswith(fence) and lines[j].strip().strip(fence[0]) == ""
        ):
            body.append(lines[j][len(indent) :] if lines[j].startswith(indent) else lines[j])
            j += 1
        found.append(Block(page, i + 1, lang, classes, attrs, "\n".join(body) + "\n"))
        i = j + 1
    return found


@dataclasses.dataclass
class Command:
    line: str  # as shown, without the prompt
    expected_exit: int
    shown: list[str]  # output lines the block shows


def commands(block: Block) -> list[Command]:
    """The ``$ `` commands of a console block, with their expected exit code and output."""
    found: list[Command] = []
    lines = block.text.splitlines()
    i = 0
    while i < len(lines):
        if not lines[i].startswith("$ "):
            if found:
                found[-1].shown.append(lines[i].rstrip())
            i += 1
            continue
        command = lines[i][2:]
        while command.endswith("\\") and i + 1 < len(lines):
            i += 1
            command = command + "\n" + lines[i]
        exit_code = _EXIT.search(command.splitlines()[-1])
        found.append(Command(command, int(exit_code["code"]) if exit_code else 0, []))
        i += 1
    return found


def shown_lines_missing(shown: list[str], output: str) -> str | None:
    """The first shown line not found (in order) in the output, or None when all are."""
    actual = [line.strip() for line in output.splitlines()]
    at = 0
    for line in shown:
        if not line.strip() or line.strip() == "...":
            continue
        parts = line.strip().split("...")
        pattern = re.compile(".*".join(re.escape(part) for part in parts) + r"\Z")
        while at < len(actual) and not pattern.match(actual[at]):
            at += 1
        if at == len(actual):
            return line
        at += 1
    return None


def _environment() -> dict[str, str]:
    """The test's own interpreter first on PATH; no inherited xprun or colour settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XPRUN_", "PYTEST_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(NO_COLOR="1", COLUMNS="100", XPRUN_DISABLE_PLUGIN_AUTOLOAD="1")
    return env


@dataclasses.dataclass
class Result:
    failures: list[str]
    pending_failed: list[str]
    pending_passed: list[str]


def run_page(page: Path, folder: Path) -> Result:
    """Materialize the page's files and run its console blocks in order in ``folder``."""
    cwd, env = folder, _environment()
    result = Result([], [], [])
    for block in blocks(page):
        name = block.file_name
        if name is not None:
            target = folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.text, encoding="utf-8")
            continue
        if block.lang != "console" or "no-run" in block.classes:
            continue
        problems: list[str] = []
        here = _repository_folder(block, folder) or cwd
        for command in commands(block):
            problem, here = _run(command, here, folder, env)
            if problem:
                problems.append(f"{block.where}: $ {command.line}\n{problem}")
                break  # the block's next commands depend on this one
        if block.attrs.get("title") is None:
            cwd = here  # a block in a repository folder leaves the page's folder as it was
        if "pending" not in block.classes:
            result.failures += problems
        elif problems:
            result.pending_failed.append(block.where)
        else:
            result.pending_passed.append(block.where)
    return result


def _repository_folder(block: Block, folder: Path) -> Path | None:
    """A fresh copy of the repository folder a console block's title names, if it names one."""
    title = block.attrs.get("title")
    if title is None:
        return None
    source = ROOT / title
    assert source.is_dir() and source.resolve().is_relative_to(ROOT), (
        f"{block.where}: a console block's title must be a folder of the repository: {title!r}"
    )
    copy = folder / ".repository" / title
    if copy.exists():
        shutil.rmtree(copy)
    leftovers = shutil.ignore_patterns("xprun_logs", ".xprun", "__pycache__")
    shutil.copytree(source, copy, ignore=leftovers)
    return copy


def _run(command: Command, cwd: Path, folder: Path, env: dict[str, str]) -> tuple[str, Path]:
    """Run one command; what went wrong (empty when nothing) and the folder it ended in."""
    where = folder / ".cwd-after"
    script = f"{command.line}\n__status=$?\npwd > {shlex.quote(str(where))}\nexit $__status\n"
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,  # a guard against a hung example, not a measurement
    )
    after = Path(where.read_text().strip()) if where.exists() else cwd
    if done.returncode != command.expected_exit:
        return (
            f"exit code {done.returncode}, expected {command.expected_exit}; output:\n"
            f"{done.stdout[-3000:]}",
            after,
        )
    missing = shown_lines_missing(command.shown, done.stdout)
    if missing is not None:
        return f"the shown line {missing!r} is not in the output:\n{done.stdout[-3000:]}", after
    return "", after


def _runnable(page: Path) -> bool:
    return any(b.lang == "console" and "no-run" not in b.classes for b in blocks(page))


RUNNABLE = [page for page in PAGES if _runnable(page)]


def missing_modules(page: Path) -> list[str]:
    """Top-level modules the page's Python files import that are not installed here (torch
    where CI could not install it) and that the page does not define itself."""
    files = [b for b in blocks(page) if b.file_name and b.file_name.endswith(".py")]
    own = {Path(b.file_name).stem for b in files if b.file_name}
    imported = {
        m[1] for b in files for m in re.finditer(r"^(?:import|from)\s+(\w+)", b.text, re.MULTILINE)
    }
    return sorted(m for m in imported - own if importlib.util.find_spec(m) is None)


@pytest.mark.parametrize("page", RUNNABLE, ids=[str(p.relative_to(ROOT)) for p in RUNNABLE])
def test_i12_15_console_examples_run_as_written(page: Path, tmp_path: Path) -> None:
    """Item 15: every console example of the README and the docs runs as written."""
    if os.environ.get("XPRUN_TESTS_ENV") == "lowest":
        pytest.skip(
            "CI runs the pages' examples once, in its newest environment: they check that the "
            "pages are true for a user who installs the newest releases; every feature they "
            "show has its own tests, run here too (docs/quality.md, CI time)"
        )
    missing = missing_modules(page)
    if missing:
        pytest.skip(f"the page's files import what is not installed here: {missing}")
    result = run_page(page, tmp_path)
    assert not result.failures, "\n\n".join(result.failures)
    assert not result.pending_passed, (
        "these blocks marked .pending run now: remove their .pending mark: "
        + ", ".join(result.pending_passed)
    )
    if result.pending_failed:
        pytest.xfail("pending features: " + ", ".join(result.pending_failed))


def test_i12_15_readme_is_runnable() -> None:
    """Item 15: the README's examples are runnable blocks (so the test above runs them):
    its sweep and its ``-k adam`` selection, with the files they need."""
    readme = blocks(ROOT / "README.md")
    files = {b.file_name for b in readme}
    assert {"xp_train.py", "conftest.py"} <= files
    run = [c.line for b in readme if b.lang == "console" and not b.classes for c in commands(b)]
    assert any("-k adam" in line and "range(0,5)" in line for line in run), run


def test_i12_15_shell_blocks_parse_in_bash() -> None:
    """Item 15: every shell command shown (run or not) parses in bash: `seed=range(0,5)`
    unquoted is a syntax error there."""
    bad: list[str] = []
    for page in PAGES:
        for block in blocks(page):
            if block.lang not in SHELLS:
                continue
            if block.lang == "console":
                script = "\n".join(c.line for c in commands(block))
            else:
                script = block.text
            done = subprocess.run(
                ["bash", "-n"], input=script, capture_output=True, text=True, check=False
            )
            if done.returncode != 0:
                bad.append(f"{block.where}: {done.stderr.strip()}")
    assert not bad, "\n".join(bad)


def test_i12_docs_runner_checks_exit_codes_and_output(tmp_path: Path) -> None:
    """The runner itself: a wrong exit code, a missing shown line and a pending block that
    now passes are each reported; files are written; `cd` carries over."""
    page = tmp_path / "page.md"
    page.write_text(
        '```text title="sub/data.txt"\nhello\n```\n\n'
        "```console\n$ cd sub\n$ cat data.txt\nhello\n$ false  # exit code 1\n```\n\n"
        "```console\n$ echo one\nt...\n```\n\n"
        "```console\n$ true  # exit code 3\n```\n\n"
        "``` { .console .pending }\n$ true\n```\n\n"
        "``` { .console .pending }\n$ false\n```\n\n"
        "``` { .console .no-run }\n$ false\n```\n",
        encoding="utf-8",
    )
    work = tmp_path / "work"
    work.mkdir()
    result = run_page(page, work)
    assert [f.split("\n")[0] for f in result.failures] == [
        "page.md:12: $ echo one",
        "page.md:17: $ true  # exit code 3",
    ]
    assert "'t...' is not in the output" in result.failures[0]
    assert "exit code 0, expected 3" in result.failures[1]
    assert result.pending_passed == ["page.md:21"]
    assert result.pending_failed == ["page.md:25"]
    assert (work / "sub" / "data.txt").read_text() == "hello\n"


def test_i12_docs_site_builds_strictly(tmp_path: Path) -> None:
    """`mkdocs build --strict` passes: no broken link or anchor, every API page resolves,
    the CLI reference is generated from the parsers."""
    pytest.importorskip("mkdocs", reason="the docs extra is not installed (CI installs it)")
    pytest.importorskip("mkdocstrings", reason="the docs extra is not installed")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-5000:]
    cli = (tmp_path / "site" / "reference" / "cli" / "index.html").read_text(encoding="utf-8")
    for command in ("xprun --help", "xprun show --help", "xprun plot --help"):
        assert command in cli
    assert "--collect-only" in cli  # the run parser's own options, not a summary
    hooks = (tmp_path / "site" / "reference" / "hooks" / "index.html").read_text("utf-8")
    assert "xprun_run_protocol" in hooks and "xprun_run_status" in hooks
