"""``python -m bench [--only 1,2,...] [--repeats N] [--quick] [--out bench/results.md]``.

Runs the goals in order (each in its own child processes), prints the table and writes the
results file. A goal that cannot be measured (a command failed) is reported as such and the
others still run.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from bench._harness import BENCH, WORK, BenchError, Ctx, Row, loadavg, print_table, write_results

GOALS = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14")
LEVER_ONLY = ("threads and oneDNN", "pruner replay")  # steps that add levers, no goal rows


def _steps(quick: bool, skip_levers: bool) -> list[tuple[set[str], str, Callable[[Ctx], None]]]:
    """(goals covered, label, measure) in running order: the cheapest first."""
    from bench import _inproc, _memory, _process, _pruning, _reports, _reuse, _search, _sweeps

    epochs = 3 if quick else 15
    return [
        ({"9"}, "start-up", _process.measure_help),
        ({"1"}, "in-process overhead", lambda ctx: _inproc.measure_overhead(ctx, epochs, levers=not skip_levers)),
        ({"6"}, "tracking cost", lambda ctx: _inproc.measure_logging(ctx, epochs)),
        ({"2"}, "whole process", lambda ctx: _process.measure_run(ctx, epochs)),
        ({"2"}, "threads and oneDNN", lambda ctx: _process.measure_threads(ctx, epochs)),
        ({"7"}, "memory", _memory.measure_memory),
        ({"11"}, "kept models: set-up", _reuse.measure_setup),
        ({"12"}, "kept models: memory", _reuse.measure_memory),
        ({"8"}, "report", _reports.measure_report),
        ({"3", "4", "5"}, "sweeps", _sweeps.measure_sweeps),
        ({"4"}, "pruner replay", _pruning.measure_pruning),
        ({"13"}, "search quality", _search.measure_search),
        ({"10"}, "kept models and cohorts: the depth study", _reuse.measure_sweep),
        ({"14"}, "cohorts: the confirm phase", _reuse.measure_confirm),
    ]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description="nnlab's benchmark suite: goals as "
                                     "ratios and counts measured side by side in one run.")
    parser.add_argument("--only", help=f"comma-separated goals to run (default: all of {','.join(GOALS)})")
    parser.add_argument("--repeats", type=int, default=5, help="rounds of each alternation (default 5; sweeps and "
                        "reports use at most 3)")
    parser.add_argument("--quick", action="store_true", help="smoke-sized: few epochs, trials and runs; "
                        "proves the code runs, measures nothing the goals mean")
    parser.add_argument("--out", default=str(BENCH / "results.md"), help="results file (default bench/results.md)")
    parser.add_argument("--work", help="scratch folder (default bench/.work/full, or bench/.work/quick)")
    parser.add_argument("--skip-levers", action="store_true", help="leave out the lever-only steps (threads and "
                        "oneDNN, pruner replay)")
    args = parser.parse_args(argv)
    only = set(GOALS) if not args.only else {g.strip() for g in args.only.split(",") if g.strip()}
    unknown = only - set(GOALS)
    if unknown:
        parser.error(f"--only takes goals {','.join(GOALS)}, but got {','.join(sorted(unknown))}")
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, but got {args.repeats}")
    args.goals = only
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    started = time.time()
    load_before = loadavg()
    work = Path(args.work) if args.work else WORK / ("quick" if args.quick else "full")
    ctx = Ctx(repeats=args.repeats, quick=args.quick, work=work.resolve())
    ctx.work.mkdir(parents=True, exist_ok=True)
    for goals, label, measure in _steps(args.quick, args.skip_levers):
        if not goals & args.goals or (args.skip_levers and label in LEVER_ONLY):
            continue
        ctx.log(f"--- {label}")
        before = len(ctx.rows)
        try:
            measure(ctx)
        except (BenchError, OSError, ValueError, KeyError) as exc:
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            ctx.log(f"{label} failed: {detail}")
            traceback.print_exc(file=sys.stderr)
            if len(ctx.rows) == before and label not in LEVER_ONLY:
                for goal in sorted(goals & args.goals):
                    ctx.rows.append(Row(goal, f"{label} (not measured)", None, "failed", "-", None, detail[:300]))
            ctx.notes.append(f"{label}: {detail[:300]}")
    ctx.rows.sort(key=lambda r: (int("".join(c for c in r.goal if c.isdigit())), r.goal))
    print_table(ctx.rows, ctx.levers)
    write_results(Path(args.out), ctx, started, argv, load_before)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
