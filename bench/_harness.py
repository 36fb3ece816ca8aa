"""The harness: alternation, medians, timed commands, /proc reads, the machine, the table.

Only the standard library (and rich, when present, for the table): the driver stays light,
and everything heavy runs in child processes.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
WORK = BENCH / ".work"
SPECS = BENCH / "specs"
BASELINES = BENCH / "baselines"
VENV_PYTHON = sys.executable
RESULT_PREFIX = "BENCH-RESULT "  # a child prints its JSON result on one line after this

T = TypeVar("T")


class BenchError(RuntimeError):
    """A measurement could not be taken (a command failed); the goal is reported as not measured."""


# ------------------------------------------------------------------------------------------------
# results


@dataclass
class Row:
    """One goal's line of the table."""

    goal: str
    what: str
    value: float | None
    shown: str
    target: str
    met: bool | None
    detail: str = ""


@dataclass
class Lever:
    """One lever: what was compared, the figure, and whether it is kept."""

    name: str
    compared: str
    figure: str
    verdict: str
    detail: str = ""


@dataclass
class Ctx:
    repeats: int
    quick: bool
    work: Path
    rows: list[Row] = field(default_factory=list)
    levers: list[Lever] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def log(self, message: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        print(f"[{stamp}] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------
# statistics


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def alternate(variants: dict[str, Callable[[], T]], repeats: int,
              log: Callable[[str], None] | None = None) -> dict[str, list[T]]:
    """Run each variant ``repeats`` times, interleaved: round r runs them all, in an order rotated
    by r and reversed in odd rounds, so no variant always runs first, nor always right after the
    same one (whatever one leaves behind, a warm cache or a busy thread, is spread over the others)."""
    names = list(variants)
    out: dict[str, list[T]] = {name: [] for name in names}
    for r in range(repeats):
        k = r % len(names)
        order = names[k:] + names[:k]
        for name in (order[::-1] if r % 2 else order):
            value = variants[name]()
            out[name].append(value)
            if log is not None:
                log(f"  round {r + 1}/{repeats} {name}: {_short(value)}")
    return out


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_short(v)}" for k, v in list(value.items())[:4])
    return str(value)


def paired_ratio(samples: dict[str, list[float]], num: str, den: str) -> float:
    """Median over rounds of num/den, each round's pair measured side by side."""
    return median([a / b for a, b in zip(samples[num], samples[den], strict=False) if b > 0])


def spread(values: Sequence[float]) -> str:
    if len(values) < 2:
        return ""
    return f"{min(values):.3g}-{max(values):.3g}"


# ------------------------------------------------------------------------------------------------
# processes


def bench_env(**extra: str | None) -> dict[str, str]:
    """The environment of every timed child: quiet TensorFlow, no tracking server from outside."""
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "NNLAB_THREADS", "NNLAB_STORE")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.setdefault("PYTHONHASHSEED", "0")
    for key, value in extra.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def run_timed(cmd: Sequence[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
              timeout: float = 1800, log_to: Path | None = None) -> tuple[float, str]:
    """Wall seconds of one command (perf_counter around start..exit) and its stdout; raises
    BenchError with the tail of its output when it fails."""
    started = time.perf_counter()
    proc = subprocess.run(list(cmd), env=env or bench_env(), cwd=str(cwd or ROOT), capture_output=True, text=True,
                          timeout=timeout)
    seconds = time.perf_counter() - started
    if log_to is not None:
        log_to.parent.mkdir(parents=True, exist_ok=True)
        with log_to.open("a") as fh:
            fh.write(f"$ {' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}\n")
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-4:])
        raise BenchError(f"{' '.join(cmd[:4])} ... exited {proc.returncode}: {tail[:600]}")
    return seconds, proc.stdout


def child_result(stdout: str) -> Any:
    """The JSON a child printed after RESULT_PREFIX."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX):])
    raise BenchError(f"the child printed no result: {stdout[-400:]}")


def emit(result: Any) -> None:
    """Print a child's result for ``child_result``."""
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def child_main(tasks: dict[str, Callable[[dict[str, Any]], Any]], *, skip_teardown: bool = False) -> None:
    """A child's entry point, for ``run_child``: ``python -m MODULE TASK JSON`` prints ``tasks[TASK](args)``
    and exits. ``skip_teardown``: exit with ``os._exit`` once stdout is flushed, skipping TensorFlow's slow
    interpreter teardown (for children that imported it; nothing is left to write)."""
    task, args = sys.argv[1], json.loads(sys.argv[2])
    emit(tasks[task](args))
    if skip_teardown:
        sys.stdout.flush()
        os._exit(0)
    sys.exit(0)


def run_child(module: str, task: str, args: dict[str, Any], *, env: dict[str, str] | None = None,
              timeout: float = 3600, log_to: Path | None = None) -> Any:
    """``python -m MODULE TASK JSON`` in a fresh process; its result."""
    _, out = run_timed([VENV_PYTHON, "-m", module, task, json.dumps(args)], env=env, timeout=timeout, log_to=log_to)
    return child_result(out)


def rss_kib(pid: int | str = "self") -> int:
    """Resident set size from /proc/PID/status (VmRSS), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# ------------------------------------------------------------------------------------------------
# the machine


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return float("nan")


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def _version(dist: str, path: Path | None = None) -> str:
    from importlib import metadata

    try:
        if path is not None:
            found = list(metadata.distributions(path=[str(path)]))
            for d in found:
                if d.metadata["Name"].lower().replace("_", "-") == dist:
                    return d.version
            return "not installed"
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine() -> dict[str, str]:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    tf = _version("tensorflow-cpu")
    if tf == "not installed":
        tf = _version("tensorflow")
    return {
        "cpu": f"{_cpu_model()}, {os.cpu_count()} logical CPUs ({cores} usable)",
        "memory": f"{_mem_total_gib():.1f} GiB",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "packages": (f"keras {_version('keras')}, tensorflow {tf}, mlflow {_version('mlflow')}, "
                     f"optuna {_version('optuna')}, keras-tuner {_version('keras-tuner', WORK / 'kt')} "
                     "(bench/.work/kt only)"),
        "gpu": "none" if not Path("/proc/driver/nvidia").exists() else "NVIDIA driver present",
    }


# ------------------------------------------------------------------------------------------------
# the table and results.md


def verdict(met: bool | None) -> str:
    return {True: "yes", False: "NO", None: "n/a"}[met]


def print_table(rows: list[Row], levers: list[Lever]) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        Console = None  # noqa: N806
    if Console is not None:
        console = Console()
        table = Table(title="nnlab bench: goals")
        for col in ("#", "what", "measured", "target", "met"):
            table.add_column(col, justify="right" if col in ("#", "measured") else "left")
        for row in rows:
            colour = {True: "green", False: "red", None: "yellow"}[row.met]
            table.add_row(row.goal, row.what, row.shown, row.target, f"[{colour}]{verdict(row.met)}[/{colour}]")
        console.print(table)
        if levers:
            lt = Table(title="levers")
            for col in ("lever", "compared", "figure", "verdict"):
                lt.add_column(col)
            for lever in levers:
                lt.add_row(lever.name, lever.compared, lever.figure, lever.verdict)
            console.print(lt)
        return
    print(f"{'#':>3}  {'what':60}  {'measured':>14}  {'target':24}  met")
    for row in rows:
        print(f"{row.goal:>3}  {row.what[:60]:60}  {row.shown:>14}  {row.target[:24]:24}  {verdict(row.met)}")
    for lever in levers:
        print(f"lever  {lever.name}: {lever.compared}: {lever.figure} ({lever.verdict})")


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def write_results(path: Path, ctx: Ctx, started: float, argv: Sequence[str], load_before: str) -> None:
    info = machine()
    lines = [
        "# nnlab benchmark results",
        "",
        f"Run: {_dt.datetime.fromtimestamp(started).strftime('%Y-%m-%d %H:%M')} "
        f"({(time.time() - started) / 60:.1f} min), `python -m bench {' '.join(argv)}`"
        f"{' (quick: smoke-sized, not the goals)' if ctx.quick else ''}, repeats {ctx.repeats}.",
        "",
        "Every figure is a ratio or a count measured side by side in this run (variants alternated, "
        "order rotated each round, median of the rounds).",
        "",
        "## Machine",
        "",
        *[f"- {key}: {value}" for key, value in info.items()],
        f"- load average (1/5/15 min) before: {load_before}; after: {loadavg()} "
        "(other processes may have been running)",
        "",
        "## Goals",
        "",
        "| # | what | measured | target | met | detail |",
        "|---|---|---|---|---|---|",
        *[f"| {r.goal} | {_md_cell(r.what)} | {_md_cell(r.shown)} | {_md_cell(r.target)} | {verdict(r.met)} | "
          f"{_md_cell(r.detail)} |" for r in ctx.rows],
        "",
    ]
    if ctx.levers:
        lines += ["## Levers", "", "| lever | compared | figure | verdict | detail |", "|---|---|---|---|---|",
                  *[f"| {_md_cell(v.name)} | {_md_cell(v.compared)} | {_md_cell(v.figure)} | {_md_cell(v.verdict)} | "
                    f"{_md_cell(v.detail)} |" for v in ctx.levers], ""]
    if ctx.notes:
        lines += ["## Notes", "", *[f"- {note}" for note in ctx.notes], ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
