"""Showing a sweep: a live table per cell with an overall bar on a terminal, one line per finished
run otherwise, and the summary at the end. Data comes from ``Ledger.snapshot()``; nothing here
reads a store.
"""

from __future__ import annotations

import math
import statistics
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


def cell_table(plan: Any, snapshot: Snapshot, title: str | None = None) -> Any:
    from rich.table import Table

    table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    table.add_column("cell")
    if plan.trials:
        table.add_column("tune", justify="right")
        table.add_column(f"best {plan.objective}", justify="right")
    if plan.seeds:
        table.add_column("confirm", justify="right")
        table.add_column(f"{plan.objective} (mean ± sd)", justify="right")
    table.add_column("state")
    for cell in snapshot.cells:
        row = [cell.cell.id]
        if plan.trials:
            best = cell.best
            row += [f"{cell.tune_done}/{len(cell.tune)}",
                    _fmt(best.value if best is not None and best.state.name == "COMPLETE" else None)]
        if plan.seeds:
            row += [f"{cell.confirm_done}/{len(cell.confirm)}", mean_sd(cell.confirm_values())]
        row.append(_state(cell))
        table.add_row(*row)
    return table


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

    def update(self, snapshot: Snapshot) -> None:
        self._mark(snapshot, show=True)

    def stop(self) -> None:
        return None

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
    """A table per cell and an overall bar with ETA, redrawn in place."""

    def __init__(self, plan: Any, console: Any) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.plan = plan
        self.console = console
        self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TextColumn("runs"), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                             TextColumn("{task.fields[note]}"), console=console)
        self._task: Any = None
        self._live: Any = None

    def _render(self, snapshot: Snapshot) -> Any:
        from rich.console import Group

        return Group(cell_table(self.plan, snapshot, title=f"sweep {self.plan.sweep_id}"), self._bar)

    def start(self, snapshot: Snapshot) -> None:
        from rich.live import Live

        self.console.print(describe_repeats(self.plan), markup=False, highlight=False)
        self._task = self._bar.add_task("all cells", total=snapshot.total, completed=snapshot.done,
                                        note=self._note(snapshot))
        self._live = Live(self._render(snapshot), console=self.console, refresh_per_second=4, transient=False)
        self._live.start()

    def update(self, snapshot: Snapshot) -> None:
        self._bar.update(self._task, completed=snapshot.done, note=self._note(snapshot))
        if self._live is not None:
            self._live.update(self._render(snapshot))

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
            if not self.console.is_terminal:
                self.console.line()  # the last frame ends without a newline in files

    @staticmethod
    def _note(snapshot: Snapshot) -> str:
        return f"({snapshot.running} running)" if snapshot.running else ""


def make_display(plan: Any, console: Any, mode: str) -> LineDisplay | LiveDisplay:
    live = mode == "live" or (mode == "auto" and console.is_terminal)
    return LiveDisplay(plan, console) if live else LineDisplay(plan, console)


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
    console.print(f"Optuna: studies '{plan.sweep_id}/<cell>/tune' and '.../confirm' in {storage}", markup=False,
                  highlight=False)
