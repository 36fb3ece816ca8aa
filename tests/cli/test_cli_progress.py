"""``nnlab run`` shows its epochs: a live bar on a (pseudo-)terminal, one plain line per epoch in logs; then its
result."""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")
SPEC = """
name: epochs
data: {dataset: moons, n_samples: 1500}
model: {depth: 1, width: 8}
train: {epochs: 12, batch_size: 8, diagnostics: false}
"""

pytestmark = pytest.mark.xdist_group("train")


def env(store: Path) -> dict[str, str]:
    # the terminal's size as the pseudo-terminal says, whatever COLUMNS/LINES the caller's shell exported
    base = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    return {**base, "NNLAB_STORE": str(store), "PYTHONPATH": str(ROOT), "TERM": "xterm-256color",
            "COLUMNS": "140", "LINES": "40"}


def test_run_on_a_terminal_shows_a_bar(write_spec, tmp_path):
    path = write_spec(SPEC)
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 140, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "nnlab.cli", "run", str(path)], cwd=tmp_path,
                            env=env(tmp_path / "store"), stdin=slave, stdout=slave, stderr=slave,
                            start_new_session=True)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        os.close(master)
    shown = ANSI.sub("", out.decode(errors="replace"))
    assert proc.returncode == 0, shown[-2000:]
    frames = re.findall(r"epochs\s+[━╸╺]+\S*\s+(\d+)(?:/12 epochs|…)", shown)
    assert frames and int(frames[-1]) >= 1, shown[-2000:]  # the bar, redrawn as epochs end
    assert "eta" in shown and "val_loss" in shown
    assert not re.search(r"^epoch +1/12", shown, re.M)  # no plain lines on a terminal
    assert "completed after 12" in shown  # then the result table


def test_run_in_a_log_prints_a_line_per_epoch_then_its_result(write_spec, tmp_path):
    """And the run as a whole, checked on this process rather than on a second one: the override applied, the
    result table printed, the store written."""
    path = write_spec(SPEC)
    store = tmp_path / "store"
    out = subprocess.run([sys.executable, "-m", "nnlab.cli", "run", str(path), "train.epochs=3"], cwd=tmp_path,
                         env=env(store), capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stdout.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in lines] == ["1/3", "2/3", "3/3"]
    assert re.fullmatch(r"epoch 1/3  loss \S+  val_loss \S+  val_accuracy \S+  \(\d+\.\d s\)", lines[0]), lines[0]
    assert not re.search(r"\d+/3 epochs", out.stdout) and "\x1b" not in out.stdout  # no bar
    assert "completed after 3" in out.stdout and "test_accuracy" in out.stdout
    assert (store / "mlflow.db").exists()
