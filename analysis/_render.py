"""Rendering a computed report: one self-contained HTML file (figures embedded as base64 PNG) and a
Markdown file with the same tables whose figures sit next to it in ``figures/``.

Both open with the claims table; then where the runs came from, then each study's sections.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from analysis import Figure
from analysis._labels import is_missing, py, short_key, value_label

if TYPE_CHECKING:
    from analysis._report import Report

CLAIMS_NOTE = ("Effect with its raw 95% interval over the confirm repeats: compare, mean(better) - mean(than) "
               "(paired by repeat where both arms hold the same repeats); trend, the slope along the key (the mean "
               "of per-repeat slopes where paired); bound, the margin of the cell closest to breaking it (positive "
               "= inside); peak, how far the best interior value beats the nearer end. Means: better / than, last / "
               "first value along the key, closest cell / bound, or interior / end. n: runs on each side; lost: "
               "diverged or failed runs, counted against their cell. p: two-sided, and Holm-adjusted over the "
               "report's tested claims, which decides the verdict: supported (adjusted p < 0.05, effect on the "
               "claimed side), contradicted (on the other side), inconclusive (not decisive, or fewer than 2 "
               "repeats; 'repeats' says how many would settle the observed effect), void (a requirement did not "
               "hold). Rules: docs/statistics.md.")
VERDICT_COLOURS = {"supported": "#1a7f37", "contradicted": "#cf222e", "inconclusive": "#9a6700", "void": "#59636e"}
CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#1f2328;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:1px solid #d0d7de;padding-bottom:.2em;margin-top:1.8em}
table{border-collapse:collapse;margin:.6em 0;font-size:.86em}th,td{border:1px solid #d0d7de;padding:.25em .55em;
text-align:left;vertical-align:top}th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
.verdict{font-weight:600}.muted{color:#59636e;font-size:.9em}
figure{margin:1.2em 0;padding:0}figure img{max-width:100%;border:1px solid #eaeef2}
figcaption{font-size:.9em;color:#424a53;margin-top:.3em}
.scroll{overflow-x:auto}
"""


def fmt(value: Any, digits: int = 4) -> str:
    """Numbers with a few significant digits; NaN and None as a dash."""
    value = py(value)
    if is_missing(value):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isinf(value):
            return "∞" if value > 0 else "-∞"
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
            return f"{value:.{digits - 1}e}"
        return f"{value:.{digits}g}"
    if isinstance(value, tuple):
        return value_label(value)
    return str(value)


def effect_text(c: Any) -> str:
    """The effect with its interval; a bound shows the measured mean and its interval against the bound."""
    if c["kind"] == "bound" and not is_missing(c["better_mean"]) and not is_missing(c["than_mean"]):
        mean, bound, margin = float(c["better_mean"]), float(c["than_mean"]), float(c["effect"])
        above = (mean - bound) * margin > 0 if mean != bound else True
        lo, hi = ((bound + c["ci_low"], bound + c["ci_high"]) if above
                  else (bound - c["ci_high"], bound - c["ci_low"]))
        return f"{fmt(mean)} [{fmt(lo)}, {fmt(hi)}] vs {'>' if above else '<'} {fmt(bound)}"
    return f"{fmt(c['effect'])} [{fmt(c['ci_low'])}, {fmt(c['ci_high'])}]"


def claims_view(claims: pd.DataFrame, with_study: bool) -> pd.DataFrame:
    """The claims table as shown: effect with its interval, p raw and adjusted, n per side, verdict, reason."""
    rows = []
    for _, c in claims.iterrows():
        row = {}
        if with_study:
            row["study"] = c["study"]
        note = c.get("note") or ""
        row.update({
            "claim": c["claim"] + (f" [{note}]" if note else ""),
            "verdict": c["verdict"],
            "effect [95% CI]": effect_text(c),
            "means": f"{fmt(c['better_mean'])} / {fmt(c['than_mean'])}",
            "n (lost)": f"{fmt(c['n_better'])} / {fmt(c['n_than'])} ({fmt(c.get('n_lost'))})",
            "p (Holm)": f"{fmt(c.get('p_value'), 2)} ({fmt(c.get('p_adjusted'), 2)})",
            "method": c.get("method") or "–",
            "repeats": fmt(c.get("repeats_needed")),
            "why": c["reason"],
        })
        rows.append(row)
    return pd.DataFrame(rows)


def cells_view(cells: pd.DataFrame, grid: Sequence[str], objective: str, tune: Sequence[str]) -> pd.DataFrame:
    """The per-cell table as shown in the report (cells.csv has every column)."""
    rows = []
    for _, c in cells.iterrows():
        row: dict[str, Any] = {short_key(k): fmt(c.get(k)) for k in grid}
        row["runs"] = fmt(c.get("n_runs"))
        row["evidence: completed / diverged / failed"] = " / ".join(
            fmt(c.get(f"evidence_{s}")) for s in ("completed", "diverged", "failed"))
        row[f"{objective} [95% CI]"] = (f"{fmt(c.get(f'{objective}_mean'))} [{fmt(c.get(f'{objective}_ci_low'))}, "
                                        f"{fmt(c.get(f'{objective}_ci_high'))}]")
        for gap in ("gap_loss", "gap_accuracy"):
            if f"{gap}_mean" in c:
                row[gap] = fmt(c.get(f"{gap}_mean"))
        for key in tune:
            if f"best_tune:{key}" in c:
                row[f"best {short_key(key)}"] = fmt(c.get(f"best_tune:{key}"), 3)
        rows.append(row)
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------------
# HTML


def _html_table(frame: pd.DataFrame, verdict_col: str | None = None) -> str:
    if frame.empty:
        return "<p class='muted'>(none)</p>"
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = []
    for _, row in frame.iterrows():
        cells = []
        for col in frame.columns:
            text = html.escape(str(row[col]))
            if col == verdict_col:
                colour = VERDICT_COLOURS.get(str(row[col]), "#1f2328")
                cells.append(f"<td class='verdict' style='color:{colour}'>{text}</td>")
            else:
                num = text[:1].isdigit() or text[:1] == "-" or text == "–"
                cells.append(f"<td class='num'>{text}</td>" if num else f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<div class='scroll'><table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"


def _html_figure(fig: Figure) -> str:
    data = base64.b64encode(fig.png).decode("ascii")
    return (f"<figure id='{html.escape(fig.name)}'><img src='data:image/png;base64,{data}' "
            f"alt='{html.escape(fig.title)}'><figcaption><b>{html.escape(fig.title)}.</b> "
            f"{html.escape(fig.caption)}</figcaption></figure>")


def to_html(report: Report) -> str:
    multi = len(report.studies) > 1
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(report.title)}"
             f"</title><style>{CSS}</style></head><body>",
             f"<h1>{html.escape(report.title)}</h1>",
             f"<p class='muted'>Generated {html.escape(report.created)} from {html.escape(report.tracking_uri)}. "
             "Nothing was re-trained: every number comes from the runs in the store.</p>",
             "<h2 id='claims'>Claims</h2>", _claims_html(report, multi),
             "<h2 id='runs'>Runs</h2><ul>"]
    for s in report.studies:
        parts.append(f"<li><b>{html.escape(s.name)}</b>: {html.escape(s.source)}; {html.escape(s.evidence_note)}</li>")
    parts.append("</ul>")
    for note in report.problems:
        parts.append(f"<p class='muted'>Note: {html.escape(note)}</p>")
    if report.combined:
        parts.append("<h2 id='across'>Across studies</h2>")
        parts.extend(_html_figure(f) for f in report.combined)
    for s in report.studies:
        parts.append(f"<h2 id='study-{html.escape(s.name)}'>{'Study ' if multi else ''}{html.escape(s.name)}</h2>")
        if s.description:
            parts.append(f"<p>{html.escape(s.description)}</p>")
        for title, figs in s.sections:
            parts.append(f"<h3>{html.escape(title)}</h3>")
            if not figs:
                parts.append("<p class='muted'>Nothing to draw: the sweep does not vary what this section needs.</p>")
            parts.extend(_html_figure(f) for f in figs)
        parts.append("<h3>Cells</h3>")
        parts.append(_html_table(s.cells_view))
        parts.append("<p class='muted'>Every statistic of every cell is in cells.csv.</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _claims_html(report: Report, multi: bool) -> str:
    if report.claims.empty:
        return "<p class='muted'>No claims: add <code>expect:</code> to a spec to turn the study into a checkable claim.</p>"
    counts = report.claims["verdict"].value_counts()
    summary = ", ".join(f"{int(counts.get(v, 0))} {v}" for v in ("supported", "contradicted", "inconclusive", "void"))
    return (f"<p>{html.escape(summary)}. {html.escape(CLAIMS_NOTE)} Intervals: {html.escape(report.method)}.</p>"
            + _html_table(claims_view(report.claims, multi), verdict_col="verdict"))


# ------------------------------------------------------------------------------------------------
# Markdown


def _md_table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "_(none)_\n"

    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(c) for c in frame.columns) + " |",
             "| " + " | ".join("---" for _ in frame.columns) + " |"]
    lines += ["| " + " | ".join(cell(row[c]) for c in frame.columns) + " |" for _, row in frame.iterrows()]
    return "\n".join(lines) + "\n"


def figure_file(fig: Figure) -> str:
    return f"figures/{fig.name}.png"


def to_markdown(report: Report) -> str:
    multi = len(report.studies) > 1
    out = [f"# {report.title}", "",
           f"Generated {report.created} from `{report.tracking_uri}`. Nothing was re-trained.", "", "## Claims", ""]
    if report.claims.empty:
        out += ["No claims: add `expect:` to a spec to turn the study into a checkable claim.", ""]
    else:
        out += [_md_table(claims_view(report.claims, multi)), CLAIMS_NOTE, ""]
    out += ["## Runs", ""]
    out += [f"- **{s.name}**: {s.source}; {s.evidence_note}" for s in report.studies]
    out += [f"- Note: {note}" for note in report.problems]
    out.append("")

    def figs(items: list[Figure]) -> list[str]:
        lines = []
        for f in items:
            lines += [f"![{f.title}]({figure_file(f)})", "", f"*{f.title}.* {f.caption}", ""]
        return lines

    if report.combined:
        out += ["## Across studies", ""] + figs(report.combined)
    for s in report.studies:
        out += [f"## {'Study ' if multi else ''}{s.name}", ""]
        if s.description:
            out += [s.description, ""]
        for title, items in s.sections:
            out += [f"### {title}", ""]
            out += figs(items) if items else ["_Nothing to draw: the sweep does not vary what this section needs._", ""]
        out += ["### Cells", "", _md_table(s.cells_view), "Every statistic of every cell is in cells.csv.", ""]
    return "\n".join(out)
