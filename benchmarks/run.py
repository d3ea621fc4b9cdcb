"""Run every benchmark against its floor and print one table, with the machine described.

    python benchmarks/run.py [--quick] [--only NAME ...] [--markdown FILE] [--json FILE]

Imports each ``benchmarks/bench_*.py`` (NAME is the part after ``bench_``: ``pool``,
``overhead``...), calls its ``figures(quick)`` and prints one row per figure: value, floor,
ratio (value / floor), the target ratio the issue allows, and pass or fail.  ``--quick``
asks each benchmark for a short version (the suite's smoke test uses it): its figures are
noisier.  ``--markdown FILE`` writes the table, the command and the machine as Markdown: into
FILE between the lines ``<!-- benchmarks:start -->`` and ``<!-- benchmarks:end -->`` when it
has them (docs/performance.md does: its prose stays), else as the whole file.  ``--json
FILE`` writes the figures and the machine for programs.

Exit code 1 when a benchmark raised (its row says why), else 0: a ratio over its target is
reported, not an error, since only a quiet machine gives figures to judge.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import math
import os
import platform
import re
import subprocess
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
START, END = "<!-- benchmarks:start -->", "<!-- benchmarks:end -->"


def available() -> list[str]:
    return sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))


def run_benchmark(name: str, quick: bool) -> tuple[list[dict], str | None, float]:
    """The figures of ``bench_<name>``, the error text if it raised, and its seconds."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    start = time.perf_counter()
    try:
        module = importlib.import_module(f"bench_{name}")
        figures = list(module.figures(quick=quick))
    except Exception:
        return [], traceback.format_exc(), time.perf_counter() - start
    return figures, None, time.perf_counter() - start


def verdict(row: dict) -> str:
    value, ratio, target = row.get("value"), row.get("ratio"), row.get("target")
    if not _finite(value) or not _finite(ratio):
        return "skipped" if str(row.get("note", "")).startswith("skipped") else "no value"
    if target is None:
        return "-"
    return "pass" if ratio <= target else "FAIL"


def _finite(x: object) -> bool:
    return isinstance(x, int | float) and math.isfinite(x)


def _num(x: object, digits: int = 3) -> str:
    if not _finite(x):
        return "-"
    x = float(x)  # type: ignore[arg-type]
    if x == 0:
        return "0"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{max(0, digits - 1 - math.floor(math.log10(abs(x))))}f}"


def table_rows(results: list[tuple[str, list[dict], str | None]]) -> list[list[str]]:
    rows = []
    for name, figures, error in results:
        if error is not None:
            last = error.strip().splitlines()[-1]
            rows.append([f"{name}: error", "-", "-", "-", "-", "ERROR", last])
        for f in figures:
            target = f.get("target")
            rows.append(
                [
                    str(f["name"]),
                    f"{_num(f['value'])} {f.get('unit', '')}".strip(),
                    f"{_num(f['floor'])} {f.get('unit', '')}".strip(),
                    f"{_num(f['ratio'])}x" if _finite(f.get("ratio")) else "-",
                    f"<= {_num(target)}x" if target is not None else "-",
                    verdict(f),
                    str(f.get("note", "")),
                ]
            )
    return rows


HEADER = ["figure", "value", "floor", "ratio", "target", "pass/fail", "note"]


def text_table(rows: list[list[str]]) -> str:
    shown = [row[:6] for row in rows]
    widths = [max(len(r[i]) for r in [HEADER[:6], *shown]) for i in range(6)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(HEADER[:6], widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in shown]
    return "\n".join(lines)


def markdown_table(rows: list[list[str]]) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| " + " | ".join(HEADER) + " |", "|" + " --- |" * len(HEADER)]
    lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


# -- the machine ------------------------------------------------------------------------------


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _fs_type(path: str) -> str:
    """The file system type under ``path`` (the longest mount point containing it)."""
    best, kind = "", "?"
    real = os.path.realpath(path)
    for line in _read("/proc/mounts").splitlines():
        fields = line.split()
        if len(fields) < 3 or len(fields[1]) <= len(best):
            continue
        if real == fields[1] or real.startswith(fields[1].rstrip("/") + "/"):
            best, kind = fields[1], fields[2]
    return kind


def _dependency_versions() -> dict[str, str]:
    versions = {}
    try:
        requires = importlib.metadata.requires("xprun") or []
    except importlib.metadata.PackageNotFoundError:
        requires = []
    for requirement in requires:
        if "extra ==" in requirement and 'extra == "bench"' not in requirement:
            continue
        name = re.split(r"[\s<>=!~;\[(]", requirement, maxsplit=1)[0]
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def machine() -> dict[str, object]:
    cpu = re.search(r"^model name\s*:\s*(.+)$", _read("/proc/cpuinfo"), re.M)
    mem = re.search(r"^MemTotal:\s*(\d+) kB", _read("/proc/meminfo"), re.M)
    commit = subprocess.run(
        ["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    import tempfile

    tmp = tempfile.gettempdir()
    return {
        "cpu": cpu.group(1).strip() if cpu else platform.processor() or "?",
        "cores": os.cpu_count(),
        "ram": f"{int(mem.group(1)) / 2**20:.1f} GiB" if mem else "?",
        "python": sys.version.split()[0],
        "os": platform.platform(),
        "disk": f"{tmp}: {_fs_type(tmp)}; /dev/shm: {_fs_type('/dev/shm')}",
        "load average": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "xprun": f"{_version('xprun')} (commit {commit or '?'})",
        "dependencies": _dependency_versions(),
    }


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def machine_lines(info: dict[str, object]) -> list[str]:
    deps = info["dependencies"]
    assert isinstance(deps, dict)
    lines = [f"{key}: {value}" for key, value in info.items() if key != "dependencies"]
    lines.append("dependencies: " + ", ".join(f"{k} {v}" for k, v in deps.items()))
    return lines


def write_markdown(path: Path, command: str, info: dict[str, object], table: str) -> None:
    block = "\n".join(
        [
            START,
            f"Generated by `{command}`; the machine:",
            "",
            *(f"- {line}" for line in machine_lines(info)),
            "",
            table,
            END,
        ]
    )
    text = path.read_text() if path.exists() else ""
    if START in text and END in text:
        before, rest = text.split(START, 1)
        after = rest.split(END, 1)[1]
        text = before + block + after
    else:
        text = block + "\n"
    path.write_text(text)


def write_outputs(
    args: argparse.Namespace,
    command: str,
    info: dict[str, object],
    results: list[tuple[str, list[dict], str | None]],
) -> None:
    if args.markdown:
        write_markdown(args.markdown, command, info, markdown_table(table_rows(results)))
    if args.json:
        figures = [dict(f, benchmark=name) for name, fs, _ in results for f in fs]
        errors = {name: error for name, _, error in results if error is not None}
        args.json.write_text(
            json.dumps({"machine": info, "figures": figures, "errors": errors}, indent=1)
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (noisier figures)")
    parser.add_argument(
        "--only", action="append", metavar="NAME", help=f"one of {', '.join(available())}"
    )
    parser.add_argument("--markdown", type=Path, metavar="FILE")
    parser.add_argument("--json", type=Path, metavar="FILE")
    args = parser.parse_args(argv)
    names = available()
    chosen = [n.removeprefix("bench_").removesuffix(".py") for n in args.only or names]
    unknown = [n for n in chosen if n not in names]
    if unknown:
        parser.error(f"no benchmark named {', '.join(unknown)}; there are: {', '.join(names)}")
    info = machine()
    started_load = info["load average"]
    print("\n".join(machine_lines(info)), flush=True)
    settings = [f"{k}={v}" for k, v in sorted(os.environ.items()) if k.startswith("XPRUN_BENCH_")]
    command = " ".join([*settings, "python benchmarks/run.py"]) + " ".join(
        [""] + (["--quick"] if args.quick else []) + [f"--only {n}" for n in args.only or []]
    )
    results: list[tuple[str, list[dict], str | None]] = []
    for name in chosen:
        print(f"\n== {name} ...", flush=True)
        figures, error, seconds = run_benchmark(name, args.quick)
        if error is not None:
            print(error, file=sys.stderr)
        print(f"== {name}: {len(figures)} figure(s) in {seconds:.1f} s", flush=True)
        print(text_table(table_rows([(name, figures, error)])), flush=True)  # as they come
        results.append((name, figures, error))
        info["load average"] = (
            f"{started_load} (start); "
            + " ".join(f"{x:.2f}" for x in os.getloadavg())
            + f" (after {name})"
        )
        # Written after each benchmark: a run of many minutes that is stopped keeps the rest.
        write_outputs(args, command, info, results)
    print("\n" + text_table(table_rows(results)))
    return 1 if any(error is not None for _, _, error in results) else 0


if __name__ == "__main__":
    sys.exit(main())
