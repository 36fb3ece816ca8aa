"""How a sweep shows its progress: on a pseudo-terminal a live display (overall bar, elapsed, eta, what each
worker trains, per-cell completion), plain lines elsewhere; the time left from the measured runs; and, end
to end, a real sweep whose workers report their epochs to the coordinator's display."""

from __future__ import annotations

import datetime as dt
import fcntl
import io
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from optuna.trial import TrialState
from sweep_testkit import cli_env, write_spec

from nnlab.spec import Spec
from nnlab.sweep._ledger import CellProgress, Snapshot
from nnlab.sweep._plan import build_plan
from nnlab.sweep._progress import LineDisplay, LiveDisplay, make_display, remaining_seconds
from nnlab.sweep._slots import SlotView

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")
T0 = dt.datetime(2026, 12, 1, 12, 0, 0)


def trial(number: int, seconds: float | None = None, value: float = 0.5, *, running: bool = False) -> Any:
    return SimpleNamespace(number=number, state=TrialState.RUNNING if running else TrialState.COMPLETE, value=value,
                           datetime_start=T0, datetime_complete=None if running else T0 + dt.timedelta(seconds=seconds or 0),
                           user_attrs={}, params={}, intermediate_values={})


def plan_and_snapshot(tmp_path: Path) -> tuple[Any, Snapshot]:
    """Two cells of two confirm runs each (3 epochs): cell 1 has one run done (10 s) and one running, cell 2
    waits."""
    path = write_spec(tmp_path, "shown", {"grid": {"model.depth": [1, 2]}, "seeds": 2},
                      train={"epochs": 3})
    plan = build_plan(Spec.from_yaml(path), None)
    first, second = plan.cells
    cells = [CellProgress(first, [], [SlotView(0, outcome=trial(0, 10.0)), SlotView(1, running=[trial(1, running=True)])],
                          plan.direction),
             CellProgress(second, [], [SlotView(0), SlotView(1)], plan.direction)]
    return plan, Snapshot(cells)


def test_time_left_is_the_remaining_runs_at_the_measured_pace(tmp_path: Path) -> None:
    plan, snapshot = plan_and_snapshot(tmp_path)
    now = T0 + dt.timedelta(seconds=4)
    # cell 1: its running run needs 10 - 4 s more; cell 2: two runs of 10 s (same epochs); one worker
    assert remaining_seconds(plan, snapshot, 1, {}, now) == pytest.approx(26.0)
    assert remaining_seconds(plan, snapshot, 2, {}, now) == pytest.approx(13.0)
    nothing = Snapshot([CellProgress(c.cell, [], [SlotView(0), SlotView(1)], c.direction) for c in snapshot.cells])
    assert remaining_seconds(plan, nothing, 1, {}, now) is None  # nothing measured yet
    # before any run finished: the pace of the running ones (2 epochs in 4 s -> 6 s per 3-epoch run)
    status = {0: {"epoch": 2, "epochs": 3, "started": time.time() - 4.0}}
    assert remaining_seconds(plan, nothing, 1, status, now) == pytest.approx(24.0, rel=0.05)


def open_terminal(columns: int = 140, rows: int = 40) -> tuple[int, int]:
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    return master, slave


def read_all(master: int, until: Any = None, timeout: float = 5.0) -> str:
    """What the terminal received, until ``until()`` is true (then drained) or the timeout."""
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the other side closed
                break
            if not chunk:
                break
            out += chunk
        elif until is not None and until():
            break
    return ANSI.sub("", out.decode(errors="replace"))


def test_live_display_on_a_terminal(tmp_path: Path) -> None:
    from rich.console import Console

    plan, snapshot = plan_and_snapshot(tmp_path)
    master, slave = open_terminal()
    terminal = os.fdopen(slave, "w", buffering=1)
    console = Console(file=terminal)
    assert console.is_terminal
    display = make_display(plan, console, "auto", workers=2)
    assert isinstance(display, LiveDisplay)
    display.start(snapshot)
    status = {"run": "model.depth=1 confirm 1", "phase": "confirm", "cell": "model.depth=1",
              "slot": "model.depth=1/confirm/1", "epoch": 2, "epochs": 3, "started": time.time() - 3, "pid": 1}
    display.update(snapshot, {0: status})
    display.stop()
    terminal.flush()
    shown = read_all(master, timeout=2.0)
    terminal.close()
    os.close(master)
    assert "sweep shown" in shown and "1/4 runs" in shown
    assert "elapsed 0:0" in shown and re.search(r"eta 0:\d\d", shown)
    assert re.search(r"0[\s│]+model\.depth=1[\s│]+confirm 1[\s│]+\S+[\s│]+2/3", shown), shown  # worker 0's epoch
    assert "━" in shown  # the bars
    assert re.search(r"model\.depth=2\s.*waiting", shown) and "running 1" in shown  # a row per cell


def test_plain_lines_elsewhere(tmp_path: Path) -> None:
    from rich.console import Console

    plan, snapshot = plan_and_snapshot(tmp_path)
    out = io.StringIO()
    console = Console(file=out, width=160)
    assert not console.is_terminal
    display = make_display(plan, console, "auto", workers=2)
    assert isinstance(display, LineDisplay)
    before = Snapshot([CellProgress(c.cell, [], [SlotView(0), SlotView(1)], c.direction) for c in snapshot.cells])
    display.start(before)
    display.update(snapshot, {0: {"epoch": 2, "epochs": 3}})
    display.stop()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("confirm per cell: 2 runs of the cell")
    assert lines[1:] == ["[1/4] model.depth=1  confirm 0  completed  val_loss=0.5  (10.0 s)"]
    assert "\x1b" not in out.getvalue() and "━" not in out.getvalue()


@pytest.mark.xdist_group("sweep")
def test_a_sweep_on_a_terminal_shows_its_workers_epochs(tmp_path: Path) -> None:
    """The real thing: ``nnlab sweep`` under a pseudo-terminal, its workers (forked) writing their epochs."""
    path = write_spec(tmp_path, "live", {"grid": {"model.depth": [1, 2]}, "seeds": 2, "workers": 1},
                      data={"n_samples": 1200}, train={"epochs": 15, "batch_size": 16})
    master, slave = open_terminal()
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**cli_env(tmp_path / "store"), "TERM": "xterm-256color", "COLUMNS": "140", "LINES": "40",
           "TMPDIR": str(scratch)}
    proc = subprocess.Popen([sys.executable, "-m", "nnlab.cli", "sweep", str(path)], cwd=tmp_path, env=env,
                            stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    try:
        shown = read_all(master, until=lambda: proc.poll() is not None, timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        os.close(master)
    assert proc.returncode == 0, shown[-3000:]
    # a worker's line: its cell, its run (a cohort's: the slots it trains, as "confirm 0,1") and epochs
    assert re.search(r"0[\s│]+model\.depth=\d[\s│]+confirm \d[\d,]*[\s│]+\S+[\s│]+\d+/15", shown), shown[-3000:]
    assert "eta " in shown and "elapsed " in shown and "runs" in shown
    assert "4/4 runs" in shown  # the summary
    assert not list(scratch.glob("nnlab-sweep-status-*"))  # the workers' status files went with the sweep
