"""``nnlab report``: the report of one or more studies, read from MLflow (never re-trains).

Only the standard library is imported at module level, so ``nnlab --help`` stays instant.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

EXIT_OK, EXIT_CONTRADICTED = 0, 1


def add_parsers(subparsers: Any, command: Callable[[str], Callable[[Any], Any]]) -> None:
    p = subparsers.add_parser(
        "report", help="write a study's report (HTML, Markdown, cells.csv) from its runs; never re-trains",
        description="Read the runs of the newest sweep of each study from MLflow and write report.html "
                    "(self-contained), report.md and cells.csv; also log them on each sweep's parent run. "
                    "The report opens with the study's claims (expect:) and their verdicts.")
    p.add_argument("studies", nargs="+", metavar="NAME|SPEC",
                   help="study names (experiments/NAME.yaml, or a study in the store) or spec files; several "
                        "give one combined report")
    p.add_argument("--out", metavar="DIR", help="output folder (default: reports/NAME/, or reports/NAME1+NAME2/)")
    p.add_argument("--check", action="store_true", help="exit 1 when any claim is contradicted")
    p.add_argument("--profile", help="read the sweep run under this profile (NAME@PROFILE); default: the newest "
                                     "sweep of the study, whatever its profile")
    p.add_argument("--ci", choices=("welch", "bootstrap"), default="welch",
                   help="how claims' 95%% intervals are computed (default: welch)")
    p.add_argument("--no-log", action="store_true", help="do not log the report files on the sweep's parent run")
    p.add_argument("--tracking-uri", help="MLflow tracking server or database URI (default: the embedded store in "
                                          "$NNLAB_STORE, ./.nnlab)")
    command("report")(run_report)


def run_report(args: argparse.Namespace) -> int:
    from analysis._report import build_report

    report = build_report(args.studies, out=args.out, profile=args.profile, tracking_uri=args.tracking_uri,
                          method=args.ci, log_artifacts=not args.no_log)
    print_summary(report)
    bad = report.contradicted
    if args.check and not bad.empty:
        names = "; ".join(f"{row.study}: {row.claim}" for row in bad.itertuples())
        print(f"check failed: {len(bad)} claim(s) contradicted: {names}")
        return EXIT_CONTRADICTED
    return EXIT_OK


def print_summary(report: Any) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from analysis._render import effect_text, fmt

    console = Console()
    colours = {"supported": "green", "contradicted": "red", "inconclusive": "yellow", "void": "bright_black"}
    multi = len(report.studies) > 1
    if report.claims.empty:
        console.print("no claims (add expect: to a spec to check a result)")
    else:
        table = Table(title="claims")
        if multi:
            table.add_column("study")
        for col in ("claim", "verdict", "effect [95% CI]", "n", "p (Holm)", "why"):
            table.add_column(col, justify="right" if col == "n" else "left")
        for row in report.claims.itertuples():
            cells = [escape(str(row.study))] if multi else []
            colour = colours.get(row.verdict, "white")
            claim = str(row.claim) + (f" [{row.note}]" if row.note else "")
            cells += [escape(claim), f"[{colour}]{row.verdict}[/{colour}]",
                      escape(effect_text(row._asdict())),
                      f"{fmt(row.n_better)}/{fmt(row.n_than)}", fmt(row.p_adjusted, 2),
                      escape(str(row.reason).split(";")[0])]
            table.add_row(*cells)
        console.print(table)
    for study in report.studies:
        console.print(escape(f"{study.name}: {study.source}"))
    for note in report.problems:
        console.print(f"[yellow]note:[/yellow] {escape(note)}")
    out = report.out_dir
    console.print(escape(f"report: {out / 'report.html'}  ({len(report.figures)} figures; also report.md, cells.csv)"))
    if report.logged_to:
        console.print(f"logged under report/ on run(s) {', '.join(report.logged_to)}")
