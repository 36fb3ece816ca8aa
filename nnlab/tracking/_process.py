"""Process helpers the tracker and the sweep share: is a process (by pid and kernel start time) still the
one that wrote a record, and which commit the code runs from. Standard library only."""

from __future__ import annotations

import os
import subprocess
from functools import lru_cache
from pathlib import Path


def proc_start_time(pid: int) -> str:
    """The kernel's start time of a process (guards against a reused pid); '' when unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return fields[19]
    except (OSError, IndexError):
        return ""


def process_alive(pid: int, start: str) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not start or proc_start_time(pid) == start


@lru_cache(maxsize=1)
def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parents[2])
        return out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""
