"""``python benchmarks/run.py``: each fast benchmark produces its figures (issue 11, "Also").

A smoke test, not a timing test: each benchmark's ``--quick`` run must give finite positive
values and floors and their ratio (or say why it skipped), and the entry point must write the
table into a Markdown file between its markers, keeping the prose around them.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
# Fast enough with --quick for the suite (the others take minutes: run them by hand).
# Not "overhead": its figure is a marginal cost, (T(big) - T(small)) / (big - small), and the
# quick sizes on a loaded CI machine make it noise, even negative (seen in CI).
FAST = ["log_metrics", "pool", "submit", "startup"]


def run_entry_point(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BENCHMARKS / "run.py"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize("name", FAST)
def test_i11_also_each_fast_benchmark_gives_its_figures_and_ratios(name, tmp_path):
    if not (BENCHMARKS / f"bench_{name}.py").exists():
        pytest.skip(f"benchmarks/bench_{name}.py is not written yet")
    out = tmp_path / "figures.json"
    proc = run_entry_point("--quick", "--only", name, "--json", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(out.read_text())
    assert result["errors"] == {}
    assert result["machine"]["cores"] and result["machine"]["python"]
    figures = result["figures"]
    assert figures, proc.stdout
    for figure in figures:
        assert set(figure) >= {"name", "value", "floor", "unit", "ratio", "target", "note"}
        if figure["note"].startswith("skipped"):
            continue
        assert math.isfinite(figure["value"]) and figure["value"] > 0, figure
        assert math.isfinite(figure["floor"]) and figure["floor"] > 0, figure
        assert figure["ratio"] == pytest.approx(figure["value"] / figure["floor"]), figure
        assert figure["name"] in proc.stdout  # in the printed table


def test_i11_also_the_markdown_table_replaces_only_the_marked_block(tmp_path):
    doc = tmp_path / "performance.md"
    doc.write_text(
        "# Performance\n\nProse before.\n\n<!-- benchmarks:start -->\nold table\n"
        "<!-- benchmarks:end -->\n\nProse after.\n"
    )
    proc = run_entry_point("--quick", "--only", "log_metrics", "--markdown", str(doc))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = doc.read_text()
    assert text.startswith("# Performance\n\nProse before.\n\n<!-- benchmarks:start -->\n")
    assert text.endswith("<!-- benchmarks:end -->\n\nProse after.\n")
    assert "old table" not in text
    assert "`python benchmarks/run.py --quick --only log_metrics`" in text
    assert "| figure | value | floor | ratio | target | pass/fail | note |" in text
    assert "| log_metrics, a dict of 3 floats per call |" in text
    assert "- cores: " in text and "- dependencies: " in text and "pluggy" in text


def test_i11_also_an_unknown_benchmark_is_named_with_the_existing_ones():
    proc = run_entry_point("--only", "nosuch")
    assert proc.returncode == 2
    assert "no benchmark named nosuch" in proc.stderr and "log_metrics" in proc.stderr
