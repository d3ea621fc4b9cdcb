"""Start-up of the ``xprun`` command against ``python -c pass`` (issue 11 item 7).

    python benchmarks/bench_startup.py [--rounds 30]

Each figure times a fresh process, alternating with a fresh ``python -c pass`` of the same
interpreter (the floor: what any Python command costs here, ``.pth`` files included), median
of each over the rounds:

- ``python -m xprun --version``;
- ``xprun --help``, the console script installed beside this interpreter (falls back to
  ``python -m xprun --help`` when there is none);
- ``python -c "import xprun"``.

The target is at most 2x the floor for the first two.  ``XPRUN_DISABLE_PLUGIN_AUTOLOAD`` is
left as it is: with an installed ``xprun`` plugin, ``--help`` must load it (and is slower).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _paired import figure, paired

TARGET = 2.0


def _console_script() -> list[str]:
    script = Path(sys.executable).parent / "xprun"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "xprun"]


def _commands() -> list[tuple[str, list[str], float | None]]:
    return [
        ("python -m xprun --version", [sys.executable, "-m", "xprun", "--version"], TARGET),
        ("xprun --help", [*_console_script(), "--help"], TARGET),
        ('python -c "import xprun"', [sys.executable, "-c", "import xprun"], None),
    ]


def _runner(argv: list[str]):
    def run() -> None:
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)

    return run


def _figures(rounds: int) -> list[dict]:
    floor = _runner([sys.executable, "-c", "pass"])
    rows = []
    for name, argv, target in _commands():
        _runner(argv)()  # warm the page cache and byte-code once
        value, floor_s = paired(floor, _runner(argv), rounds)
        note = f"fresh processes against python -c pass, median of {rounds} alternating rounds"
        rows.append(figure(name, value * 1000, floor_s * 1000, "ms", target, note))
    return rows


def figures(quick: bool = False) -> list[dict]:
    return _figures(5 if quick else 30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30, help="alternating rounds (30)")
    for row in _figures(parser.parse_args().rounds):
        target = f" (target <= {row['target']:.1f}x)" if row["target"] else ""
        print(
            f"{row['name']:<28} {row['value']:7.1f} ms  floor {row['floor']:6.1f} ms  "
            f"{row['ratio']:.2f}x{target}"
        )


if __name__ == "__main__":
    main()
