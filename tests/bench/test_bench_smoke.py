"""The benchmark suite runs: its quickest goals end to end, and the harness's pieces.

Shapes only (a ratio is a positive number, the table has its rows): timings are never asserted.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench._harness import Ctx, Row, alternate, machine, median, paired_ratio, write_results

ROOT = Path(__file__).resolve().parents[2]


def test_alternate_rotates_and_reverses_the_order_and_keeps_every_sample():
    calls: list[str] = []
    out = alternate({name: (lambda n=name: calls.append(n) or len(calls)) for name in "abc"}, 3)
    assert calls == ["a", "b", "c", "a", "c", "b", "c", "a", "b"]
    assert {k: len(v) for k, v in out.items()} == {"a": 3, "b": 3, "c": 3}


def test_paired_ratio_is_the_median_of_the_rounds():
    samples = {"a": [2.0, 4.0, 9.0], "b": [1.0, 1.0, 3.0]}
    assert paired_ratio(samples, "a", "b") == 3.0
    assert median([3.0, 1.0, 2.0]) == 2.0


def test_results_file_describes_the_machine(tmp_path):
    ctx = Ctx(repeats=1, quick=True, work=tmp_path)
    ctx.rows.append(Row("9", "start-up", 0.1, "0.100 s", "<= 0.3 s", True))
    out = tmp_path / "results.md"
    write_results(out, ctx, 0.0, ["--quick"], "0 0 0")
    text = out.read_text()
    assert "## Machine" in text and "| 9 | start-up | 0.100 s |" in text
    assert set(machine()) >= {"cpu", "memory", "packages"}


@pytest.mark.slow
@pytest.mark.xdist_group("train")
def test_quickest_goals_run_end_to_end(tmp_path):
    out = tmp_path / "results.md"
    proc = subprocess.run([sys.executable, "-m", "bench", "--only", "9,1", "--repeats", "1", "--quick", "--skip-levers",
                           "--out", str(out), "--work", str(tmp_path / "work")], cwd=ROOT, capture_output=True, text=True,
                          timeout=1200)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| (\d+b?) \| [^|]+ \| ([^|]+) \|", out.read_text(), re.M)}
    assert set(rows) == {"1", "9"}, out.read_text()
    ratio = float(rows["1"].strip().rstrip("x"))
    seconds = float(rows["9"].strip().split()[0])
    assert ratio > 0 and seconds > 0
    assert "lazy imports" in out.read_text()  # goal 9's lever row
    assert "nnlab bench: goals" in proc.stdout
