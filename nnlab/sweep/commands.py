"""CLI: ``nnlab sweep`` and ``nnlab plan``. Only argparse at import; everything else in the handlers."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from nnlab.errors import SpecError

Handler = Callable[[argparse.Namespace], int]


def _workers(text: str) -> int | str:
    if text == "auto":
        return text
    if text.isdigit() and int(text) >= 1:
        return int(text)
    raise argparse.ArgumentTypeError(f"must be an integer >= 1 or 'auto', but got {text!r}")


def _positive(text: str) -> int:
    if text.isdigit() and int(text) >= 1:
        return int(text)
    raise argparse.ArgumentTypeError(f"must be an integer >= 1, but got {text!r}")


def _split(items: list[str]) -> tuple[str, list[str]]:
    specs = [i for i in items if "=" not in i]
    overrides = [i for i in items if "=" in i]
    if len(specs) != 1:
        raise SpecError(f"takes exactly one spec, but got {len(specs)}: {' '.join(specs) or '(none)'}",
                        file="<command line>", line=1)
    return specs[0], overrides


def add_parsers(subparsers: Any, command: Callable[[str], Callable[[Handler], Handler]]) -> None:
    p = subparsers.add_parser(
        "sweep", help="run a spec's sweep: grid cells x tuned trials x confirm seeds (resumable)",
        description="Run every cell of sweep.grid: sweep.trials Optuna trials over sweep.tune, then sweep.seeds "
                    "confirm runs of the best setting. Running the same command again resumes.")
    p.add_argument("items", nargs="+", metavar="SPEC [KEY=VALUE ...]")
    p.add_argument("--profile", help="a named profile of the spec, e.g. quick (a separate sweep)")
    p.add_argument("--workers", type=_workers, help="worker processes (default: sweep.workers); 'auto' = one "
                   "per visible GPU, or min(CPU cores, 4) without GPUs")
    p.add_argument("--storage", help="Optuna storage shared by machines, e.g. postgresql://user@host/db "
                   "(default: optuna.journal in $NNLAB_STORE)")
    p.add_argument("--tracking-uri", help="MLflow tracking server or database URI (default: the embedded "
                   "store in $NNLAB_STORE, ./.nnlab)")
    p.add_argument("--restart", action="store_true", help="discard this sweep's Optuna studies and start over "
                   "(old runs stay in MLflow, tagged nnlab.superseded)")
    p.add_argument("--recycle", type=_positive, default=100, metavar="N",
                   help="replace each worker process after N runs (default 100)")
    p.add_argument("--progress", choices=("auto", "live", "lines"), default="auto",
                   help="live table (terminal) or one line per run (default: live on a terminal)")
    command("sweep")(_sweep)

    p = subparsers.add_parser("plan", help="print a sweep's cells, runs and a time estimate; runs nothing",
                              description="Print what `nnlab sweep` would run. Writes nothing to any store.")
    p.add_argument("items", nargs="+", metavar="SPEC [KEY=VALUE ...]")
    p.add_argument("--profile", help="a named profile of the spec, e.g. quick")
    p.add_argument("--workers", type=_workers, help="workers to estimate for (default: sweep.workers)")
    p.add_argument("--no-estimate", action="store_true", help="skip the timed trial run")
    command("plan")(_plan)


def _sweep(args: argparse.Namespace) -> int:
    from nnlab.sweep._coordinator import SweepOptions, run_sweep

    spec, overrides = _split(args.items)
    return run_sweep(SweepOptions(spec=spec, overrides=overrides, profile=args.profile, workers=args.workers,
                                  storage=args.storage, tracking_uri=args.tracking_uri, restart=args.restart,
                                  recycle=args.recycle, progress=args.progress))


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


def _plan(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from nnlab.spec import Spec
    from nnlab.sweep._coordinator import resolve_workers, threads_per_worker, visible_gpus
    from nnlab.sweep._plan import build_plan, format_duration, measure
    from nnlab.sweep._progress import describe_repeats
    from nnlab.sweep._pruners import describe_pruner

    spec_arg, overrides = _split(args.items)
    spec = Spec.from_yaml(spec_arg, overrides, args.profile)
    plan = build_plan(spec, args.profile)
    console = Console(highlight=False, soft_wrap=True)
    if not console.is_terminal:
        console = Console(highlight=False, soft_wrap=True, width=160)  # whole table rows in files and pipes
    sweep = spec.sweep
    console.print(f"[bold]{plan.sweep_id}[/bold] ({spec.source}): {len(plan.cells)} cells x ({plan.trials} trials "
                  f"+ {plan.seeds} seeds) = [bold]{plan.total_runs} runs[/bold]")
    table = Table(show_edge=False, pad_edge=False)
    table.add_column("#", justify="right")
    table.add_column("cell")
    for key in sweep.grid:
        table.add_column(key)
    for i, cell in enumerate(plan.cells, start=1):
        table.add_row(str(i), cell.id, *[_show(cell.factors.get(key)) for key in sweep.grid])
    console.print(table)
    epochs = spec.train.epochs
    if plan.tuned:
        console.print(f"tune per cell: {plan.trials} trials, sampler {sweep.sampler}, pruner "
                      f"{describe_pruner(sweep.pruner, plan.trials, epochs)}")
        for dim in plan.dims:
            console.print(f"  {dim.key}: {dim.describe()}")
    console.print(describe_repeats(plan), markup=False)
    console.print(f"objective: {plan.objective} ({plan.direction}); {epochs} epochs per run")
    workers = resolve_workers(args.workers, sweep.workers, visible_gpus())
    workers = max(1, min(workers, plan.total_runs))
    if not args.no_estimate:
        import os

        os.environ["NNLAB_THREADS"] = str(threads_per_worker(workers))  # time runs as a worker will run them
        est = measure(plan)
        total = est.total_s(plan.total_runs, workers)
        shown = ", ".join(f"{cell} {seconds:.1f} s for {n} epochs" for cell, seconds, n in est.measured)
        console.print(f"estimate: about {format_duration(total)} with {workers} worker"
                      f"{'s' if workers > 1 else ''} x {threads_per_worker(workers)} "
                      f"thread{'s' if threads_per_worker(workers) > 1 else ''} "
                      f"(~{est.per_run_s:.1f} s per full run, extrapolated from short timed runs here: {shown}). "
                      "A rough guide: pruning shortens it, more workers than cores do not help.")
    console.print("nothing was run or written; start it with: nnlab sweep " + " ".join([spec_arg, *overrides]) +
                  (f" --profile {args.profile}" if args.profile else ""))
    return 0
