"""Showing a sweep: on a terminal a live display (the overall bar with elapsed time and the time left,
what each worker trains, a row per cell), one line per finished run otherwise, and the summary at the
end. Data comes from ``Ledger.snapshot()`` and the workers' status files; nothing here reads a store.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import statistics
import time
from pathlib import Path
from typing import Any

from nnlab.sweep._ledger import CellProgress, Snapshot
from nnlab.sweep._slots import outcome_status


def _fmt(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.4g}"


def mean_sd(values: list[float]) -> str:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return "-"
    if len(finite) == 1:
        return f"{finite[0]:.4g}"
    return f"{statistics.fmean(finite):.4g} ± {statistics.stdev(finite):.2g}"


def _state(cell: CellProgress) -> str:
    if cell.failed:
        return "[red]failed[/red]"
    if cell.finished:
        return "[green]done[/green]"
    if cell.running:
        return f"[cyan]running {cell.running}[/cyan]"
    return "waiting"


def describe_repeats(plan: Any) -> str:
    """What the confirm runs of a cell are and what each repeat sets, e.g. ``confirm per cell: 3 runs of the
    cell, repeat k = 0..2 setting train.seed 0..2, data.seed 7..9 (each first value + k, alike in every
    cell)``: every key of ``sweep.seed_keys``, through ``Plan.repeat_values``, as the workers set them."""
    n = plan.seeds
    if not n:
        return "confirm: none (seeds: 0, pure search)"
    what = "best tuned setting" if plan.tuned else "cell"
    first, last = plan.repeat_values(plan.cells[0], 0), plan.repeat_values(plan.cells[0], n - 1)
    if n == 1:
        return f"confirm per cell: 1 run of the {what}, setting " + ", ".join(f"{k} {v}" for k, v in first.items())
    ranges = ", ".join(f"{key} {value}..{last[key]}" for key, value in first.items())
    return (f"confirm per cell: {n} runs of the {what}, repeat k = 0..{n - 1} setting {ranges} "
            "(each first value + k, alike in every cell)")


def cell_table(plan: Any, snapshot: Snapshot, title: str | None = None, *, max_rows: int | None = None) -> Any:
    """A row per cell: tune and confirm runs done, the best and mean objective, how much of the cell is
    done, its state. With ``max_rows`` and more cells than that, the unfinished cells come first and one
    row counts the others."""
    from rich.progress_bar import ProgressBar
    from rich.table import Table

    table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    table.add_column("cell")
    if plan.trials:
        table.add_column("tune", justify="right")
        table.add_column(f"best {plan.objective}", justify="right")
    if plan.seeds:
        table.add_column("confirm", justify="right")
        table.add_column(f"{plan.objective} (mean ± sd)", justify="right")
    table.add_column("done")
    table.add_column("state")
    cells = list(snapshot.cells)
    if max_rows is not None and len(cells) > max_rows:
        cells = sorted(cells, key=lambda c: (c.finished, not c.running))[:max(1, max_rows - 1)]
    for cell in cells:
        row: list[Any] = [cell.cell.id]
        if plan.trials:
            best = cell.best
            row += [f"{cell.tune_done}/{len(cell.tune)}",
                    _fmt(best.value if best is not None and best.state.name == "COMPLETE" else None)]
        if plan.seeds:
            row += [f"{cell.confirm_done}/{len(cell.confirm)}", mean_sd(cell.confirm_values())]
        slots = len(cell.tune) + len(cell.confirm)
        row += [ProgressBar(total=max(1, slots), completed=cell.tune_done + cell.confirm_done, width=12),
                _state(cell)]
        table.add_row(*row)
    hidden = [c for c in snapshot.cells if c not in cells]
    if hidden:
        done = sum(c.finished for c in hidden)
        table.add_row(f"... {len(hidden)} more cells: {done} done, {len(hidden) - done} waiting")
    return table


# ------------------------------------------------------------------------------------------------
# the time left


def run_seconds(trial: Any) -> float | None:
    """How long a finished slot's run took, claim to outcome (data, model, training, tracking)."""
    if trial is None or trial.datetime_start is None or trial.datetime_complete is None:
        return None
    return max(0.0, (trial.datetime_complete - trial.datetime_start).total_seconds())


def remaining_seconds(plan: Any, snapshot: Snapshot, workers: int, statuses: dict[int, dict[str, Any]],
                      now: dt.datetime | None = None) -> float | None:
    """The time the sweep still needs: its remaining runs (the plan's slots, each cell's epochs) at the pace
    measured so far, shared by ``workers``; None until something was measured.

    A cell's run is expected to take what its finished runs took on average; a cell with none yet, the
    seconds per planned epoch of every finished run times its epochs; before any run finished, the
    seconds per epoch of the running ones (``statuses``, see ``WorkerStatus``). A running slot counts
    with what its run still needs. Pruning and early stopping make it shorter than said."""
    now = now or dt.datetime.now()
    epochs = {c.cell.id: plan.cell_specs[c.cell.id].train.epochs for c in snapshot.cells}
    measured: dict[str, list[float]] = {}
    for cell in snapshot.cells:
        for view in (*cell.tune, *cell.confirm):
            seconds = run_seconds(view.outcome) if view.done and view.outcome.state.name != "FAIL" else None
            if seconds is not None:
                measured.setdefault(cell.cell.id, []).append(seconds)
    planned = sum(epochs[c] * len(v) for c, v in measured.items())
    pace = sum(sum(v) for v in measured.values()) / planned if planned else None
    if pace is None:
        running = [(time.time() - s["started"], s["epoch"]) for s in statuses.values()
                   if s.get("epoch", 0) >= 1 and s.get("started")]
        done_epochs = sum(e for _, e in running)
        pace = sum(t for t, _ in running) / done_epochs if done_epochs else None
    if pace is None:
        return None
    work, slots = 0.0, 0
    for cell in snapshot.cells:
        runs = measured.get(cell.cell.id)
        expected = sum(runs) / len(runs) if runs else pace * epochs[cell.cell.id]
        for view in (*cell.tune, *cell.confirm):
            if view.done:
                continue
            slots += 1
            started = view.running[0].datetime_start if view.running else None
            ran = (now - started).total_seconds() if started is not None else 0.0
            work += max(expected - ran, 0.05 * expected)
    return work / max(1, min(workers, slots)) if slots else 0.0


def read_status(path: Path) -> dict[str, Any] | None:
    """A worker's status file (see ``nnlab.train._callbacks.WorkerStatus``); None when absent or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _clock(seconds: float) -> str:
    seconds = int(max(0.0, seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class LineDisplay:
    """One line per finished run (for logs and pipes)."""

    def __init__(self, plan: Any, console: Any) -> None:
        self.plan = plan
        self.console = console
        self._seen: set[tuple[str, str, int]] = set()

    def start(self, snapshot: Snapshot) -> None:
        self._mark(snapshot, show=False)
        self.console.print(describe_repeats(self.plan), markup=False, highlight=False)
        if snapshot.done:
            self.console.print(f"resuming: {snapshot.done}/{snapshot.total} runs already done")

    def update(self, snapshot: Snapshot, statuses: dict[int, dict[str, Any]] | None = None) -> None:
        self._mark(snapshot, show=True)

    def stop(self) -> None:
        return None

    def note(self, line: str) -> None:
        """A line about the sweep itself (a worker's fault), between the runs' lines."""
        self.console.print(line, markup=False, highlight=False)

    def _mark(self, snapshot: Snapshot, *, show: bool) -> None:
        width = len(str(snapshot.total))
        done = snapshot.done - sum(1 for _ in self._new(snapshot))
        for cell, phase, view in self._new(snapshot):
            self._seen.add((cell.cell.id, phase, view.index))
            if not show:
                continue
            done += 1
            trial = view.outcome
            value = f"  {self.plan.objective}={_fmt(trial.value)}" if trial.value is not None else ""
            seconds = ""
            if trial.datetime_start and trial.datetime_complete:
                seconds = f"  ({(trial.datetime_complete - trial.datetime_start).total_seconds():.1f} s)"
            error = trial.user_attrs.get("nnlab_error")
            tail = f"  {error}" if error and outcome_status(trial) == "failed" else ""
            self.console.print(f"[{done:>{width}}/{snapshot.total}] {cell.cell.id}  {phase} {view.index}  "
                               f"{outcome_status(trial)}{value}{seconds}{tail}", markup=False, highlight=False)

    def _new(self, snapshot: Snapshot) -> list[tuple[CellProgress, str, Any]]:
        out = []
        for cell in snapshot.cells:
            for phase, views in (("tune", cell.tune), ("confirm", cell.confirm)):
                for view in views:
                    if view.done and (cell.cell.id, phase, view.index) not in self._seen:
                        out.append((cell, phase, view))
        return out


class LiveDisplay:
    """Redrawn in place on a terminal: the overall bar with elapsed time and the time left, what each
    worker trains (cell, run, epoch), and a row per cell with its completion."""

    def __init__(self, plan: Any, console: Any, workers: int = 1) -> None:
        self.plan = plan
        self.console = console
        self.workers = workers
        self._live: Any = None
        self._started = time.monotonic()

    def _render(self, snapshot: Snapshot, statuses: dict[int, dict[str, Any]]) -> Any:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        left = remaining_seconds(self.plan, snapshot, self.workers, statuses)
        head = Table.grid(padding=(0, 1))
        head.add_row(f"sweep {self.plan.sweep_id}", ProgressBar(total=max(1, snapshot.total), completed=snapshot.done,
                                                                width=30),
                     f"{snapshot.done}/{snapshot.total} runs", f"elapsed {_clock(time.monotonic() - self._started)}",
                     f"eta {_clock(left) if left is not None else '...'}",
                     f"({snapshot.running} running)" if snapshot.running else "")
        parts: list[Any] = [head]
        if statuses:
            finished = {f"{c.cell.id}/{phase}/{v.index}" for c in snapshot.cells
                        for phase, views in (("tune", c.tune), ("confirm", c.confirm)) for v in views if v.done}
            workers = Table(show_edge=False, pad_edge=False)
            for name, justify in (("worker", "right"), ("cell", "left"), ("run", "left"), ("epoch", "left"),
                                  ("", "right"), ("time", "right")):
                workers.add_column(name, justify=justify)  # type: ignore[arg-type]
            for index, status in sorted(statuses.items()):
                if status.get("slot") in finished:  # its run is recorded; the next one is being prepared
                    workers.add_row(str(index), "[dim]starting its next run[/dim]", "", "", "", "")
                    continue
                done, total = int(status.get("epoch", 0)), max(1, int(status.get("epochs", 1)))
                slot = str(status.get("slot", "")).rsplit("/", 1)[-1]
                workers.add_row(str(index), str(status.get("cell", "")), f"{status.get('phase', '')} {slot}",
                                ProgressBar(total=total, completed=done, width=20), f"{done}/{total}",
                                _clock(time.time() - float(status.get("started") or time.time())))
            parts.append(workers)
        room = max(4, self.console.size.height - 6 - len(statuses))
        parts.append(cell_table(self.plan, snapshot, max_rows=room))
        return Group(*parts)

    def start(self, snapshot: Snapshot) -> None:
        from rich.live import Live

        self._started = time.monotonic()
        self.console.print(describe_repeats(self.plan), markup=False, highlight=False)
        self._live = Live(self._render(snapshot, {}), console=self.console, refresh_per_second=4, transient=False)
        self._live.start()

    def update(self, snapshot: Snapshot, statuses: dict[int, dict[str, Any]] | None = None) -> None:
        if self._live is not None:
            self._live.update(self._render(snapshot, statuses or {}))

    def note(self, line: str) -> None:
        """A line about the sweep itself, printed above the live display."""
        self.console.print(line, markup=False, highlight=False)

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
            if not self.console.is_terminal:
                self.console.line()  # the last frame ends without a newline in files


def is_live(console: Any, mode: str) -> bool:
    """``--progress``: live on a terminal unless ``lines`` (or always, ``live``)."""
    return mode == "live" or (mode == "auto" and console.is_terminal)


def make_display(plan: Any, console: Any, mode: str, workers: int = 1) -> LineDisplay | LiveDisplay:
    return LiveDisplay(plan, console, workers) if is_live(console, mode) else LineDisplay(plan, console)


def print_summary(plan: Any, snapshot: Snapshot, console: Any, *, parent: str, tracking_uri: str,
                  storage: str, spec_arg: str) -> None:
    from rich.table import Table

    table = Table(title=f"sweep {plan.sweep_id}: {snapshot.done}/{snapshot.total} runs", title_justify="left",
                  show_edge=False, pad_edge=False)
    table.add_column("cell")
    if plan.trials:
        table.add_column("best tune", justify="right")
        table.add_column("pruned/failed", justify="right")
    if plan.seeds:
        table.add_column("confirm mean ± sd", justify="right")
        table.add_column("n", justify="right")
    best_lines = []
    for cell in snapshot.cells:
        row = [cell.cell.id]
        if plan.trials:
            best = cell.best
            if best is not None:
                shown = ", ".join(f"{k}={_fmt(v) if isinstance(v, float) else v}" for k, v in best.params.items())
                best_lines.append(f"  {cell.cell.id}: {shown} (trial {best.number})")
            pruned = sum(1 for v in cell.tune if v.done and v.outcome.state.name == "PRUNED")
            failed = sum(1 for v in cell.tune if v.done and v.outcome.state.name == "FAIL")
            row += [_fmt(best.value if best is not None and best.state.name == "COMPLETE" else None),
                    f"{pruned}/{failed}"]
        if plan.seeds:
            values = cell.confirm_values()
            row += [mean_sd(values), str(len(values))]
        table.add_row(*row)
    console.print(table)
    console.print(f"objective: {plan.objective} ({plan.direction})", markup=False, highlight=False)
    console.print(describe_repeats(plan), markup=False, highlight=False)
    if best_lines:
        console.print("best tuned values per cell:\n" + "\n".join(best_lines), markup=False, highlight=False)
    browse = tracking_uri if tracking_uri.startswith("http") else "make ui"
    console.print(f"runs: parent run {parent} of experiment '{plan.spec.name}' in {tracking_uri} (browse: {browse})",
                  markup=False, highlight=False)
    console.print(f"report: make report EXP={spec_arg}", markup=False, highlight=False)
    console.print(f"Optuna: studies '{plan.sweep_id}/<cell>/tune' and '.../confirm' in {storage} "
                  f"(browse: make dashboard EXP={spec_arg})", markup=False, highlight=False)
