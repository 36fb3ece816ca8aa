"""Building a report: read each study's runs, evaluate its claims, compute its cells and run its
generators, then write ``report.html``, ``report.md``, ``cells.csv`` (and ``figures/``) and log the
three files on each study's sweep parent run under ``report/``.
"""

from __future__ import annotations

import datetime as _dt
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis import Figure, load_generators
from analysis._cells import (
    BEST_TUNE,
    CONFIRM,
    IMPUTE_RULE,
    LOST,
    cell_table,
    cell_values,
    evidence,
    grid_keys,
    objective_info,
    tune_keys,
)
from analysis._expect import CLAIM_COLUMNS, decide, evaluate_claims
from analysis._labels import metric_label, series_label
from analysis._plots import to_png
from analysis._render import cells_view, figure_file, to_html, to_markdown
from analysis._runs import PARAM, RunReader, StudyRuns, load_spec, select_runs, sweep_profile

ALWAYS = "compare"
ARTIFACT_DIR = "report"
REPORT_FILES = ("report.html", "report.md", "cells.csv")


@dataclass
class StudyReport:
    study: StudyRuns
    claims: pd.DataFrame
    cells: pd.DataFrame
    cells_view: pd.DataFrame
    evidence_note: str
    sections: list[tuple[str, list[Figure]]] = field(default_factory=list)
    frames: dict[str, dict[str, pd.DataFrame]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.study.name

    @property
    def source(self) -> str:
        return self.study.source

    @property
    def description(self) -> str:
        return str(getattr(self.study.spec, "description", "") or "").strip()

    @property
    def figures(self) -> list[Figure]:
        return [f for _, figs in self.sections for f in figs]


@dataclass
class Report:
    title: str
    tracking_uri: str
    created: str
    method: str
    studies: list[StudyReport]
    claims: pd.DataFrame
    cells: pd.DataFrame
    combined: list[Figure] = field(default_factory=list)
    combined_frame: pd.DataFrame | None = None
    problems: list[str] = field(default_factory=list)
    out_dir: Path | None = None
    logged_to: list[str] = field(default_factory=list)

    @property
    def figures(self) -> list[Figure]:
        return [*self.combined, *(f for s in self.studies for f in s.figures)]

    @property
    def contradicted(self) -> pd.DataFrame:
        return self.claims[self.claims["verdict"] == "contradicted"]


def default_out_dir(names: Sequence[str]) -> Path:
    return Path("reports") / "+".join(names)


def generator_names(spec: Any) -> list[str]:
    """``compare`` first, then the spec's ``report:`` list in its order."""
    return list(dict.fromkeys([ALWAYS, *spec.report]))


def study_report(study: StudyRuns, reader: RunReader | None, *, method: str = "welch",
                 problems: list[str] | None = None) -> StudyReport:
    """Claims, cells and every generator of one study (``reader`` None: no histories)."""
    spec, runs = study.spec, study.runs
    problems = problems if problems is not None else []
    claims = evaluate_claims(runs, spec, study=study.name, method=method)
    cells = cell_table(runs, spec, study=study.name)
    objective, _ = objective_info(spec)
    ev, basis = evidence(runs, spec)
    lost = int(ev["status"].isin(LOST).sum()) if "status" in ev else 0
    kind = {CONFIRM: "confirm", BEST_TUNE: "best tune"}.get(basis, "single")
    note = {BEST_TUNE: "no confirm runs (seeds: 0): cell statistics use the best tune run per cell and every "
                       "claim is inconclusive"}.get(
        basis, f"claims and cell statistics use the {len(ev)} finished {kind} runs, {lost} of them diverged or "
               f"failed and counted against their cell ({IMPUTE_RULE})")
    if basis == CONFIRM:
        note += "; " + repeats_note(ev)
    devices = sorted({str(d) for d in ev["device"].dropna()}) if "device" in ev else []
    if len(devices) > 1:  # float results and timings differ between devices: the arms may not compare
        problems.append(f"{study.name}: its runs ran on different devices ({', '.join(devices)}); results of "
                        "one setting can differ between them, so compare arms run on one device")
        print(f"warning: {problems[-1]}", file=sys.stderr)
    counts = runs["status"].value_counts()
    note += " (runs: " + ", ".join(f"{int(n)} {s}" for s, n in counts.items()) + ")"
    report = StudyReport(study=study, claims=claims, cells=cells,
                         cells_view=cells_view(cells, grid_keys(spec), objective, tune_keys(spec)),
                         evidence_note=note)
    registry = load_generators()
    history = epoch_history(reader.history, runs) if reader is not None else None
    for name in generator_names(spec):
        gen = registry.get(name)
        try:
            frames = gen.compute(runs, spec, history)
            figs = gen.draw(frames)
        except Exception as exc:  # noqa: BLE001 - one generator failing must not lose the others
            detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
            problems.append(f"{study.name}: the {name} section could not be drawn ({detail})")
            print(f"warning: {problems[-1]}", file=sys.stderr)
            frames, figs = {}, []
        prefix = f"{study.name}__" if study.name else ""
        figs = [Figure(prefix + f.name, f.title, f.caption, f.png) for f in figs]
        report.frames[name] = frames
        report.sections.append((gen.title, figs))
    return report


def epoch_history(history: Any, runs: pd.DataFrame) -> Any:
    """``history`` less each run's final point: a run logs its kept model's values one step past its last
    epoch (step = ``epochs_trained``), which is no epoch of a learning curve."""
    limits = dict(zip(runs["run_id"], runs["epochs_trained"], strict=True)) if "epochs_trained" in runs else {}

    def read(run_ids: Sequence[str], keys: Sequence[str]) -> pd.DataFrame:
        hist = history(run_ids, keys)
        if hist.empty or not limits:
            return hist
        limit = pd.to_numeric(hist["run_id"].map(limits), errors="coerce")
        return hist[limit.isna() | (hist["step"] < limit)].reset_index(drop=True)

    return read


def repeats_note(ev: pd.DataFrame) -> str:
    """What the repeats varied, read from the runs: a seed key that kept one value in every repeat of a
    cell is named, since the intervals then say nothing about what it draws."""
    varied, fixed = [], []
    for key in ("train.seed", "data.seed"):
        col = PARAM + key
        if col not in ev.columns or ev.empty:
            continue
        per_cell = ev.groupby("cell", sort=False)[col].nunique(dropna=False)
        (varied if (per_cell > 1).any() else fixed).append(key)
    text = f"repeats varied {', '.join(varied) or 'no seed'}"
    if "data.seed" in fixed:
        text += (" but not data.seed: every repeat of a cell shares one split, subset and data draw, so the "
                 "intervals cover the initialization only")
    return text


# ------------------------------------------------------------------------------------------------
# across studies


def across_studies(reports: list[StudyReport], top: int = 5) -> pd.DataFrame:
    """The best ``top`` cells of each study by its objective: mean and 95% CI over the evidence runs."""
    rows = []
    for rep in reports:
        spec = rep.study.spec
        objective, maximize = objective_info(spec)
        col = f"{objective}_mean"
        if rep.cells.empty or col not in rep.cells:
            continue
        labels = {c: series_label(v) for c, v in cell_values(rep.study.runs, grid_keys(spec)).items()}
        best = rep.cells.dropna(subset=[col]).sort_values(col, ascending=not maximize).head(top)
        for rank, (_, c) in enumerate(best.iterrows(), start=1):
            rows.append({"study": rep.name, "objective": objective, "maximize": maximize, "rank": rank,
                         "cell": c["cell"], "label": labels.get(c["cell"], c["cell"]), "mean": c[col],
                         "ci_low": c[f"{objective}_ci_low"], "ci_high": c[f"{objective}_ci_high"], "n": c["n"]})
    return pd.DataFrame(rows, columns=["study", "objective", "maximize", "rank", "cell", "label", "mean", "ci_low",
                                       "ci_high", "n"])


def draw_across(frame: pd.DataFrame) -> list[Figure]:
    from analysis._plots import COLORS, new_figure, style

    figs = []
    for objective, part in frame.groupby("objective", sort=False):
        studies = list(dict.fromkeys(part["study"]))
        if len(studies) < 2:
            continue
        fig, axes = new_figure(size=(7.6, 1.3 + 0.34 * len(part)))
        ax = axes[0][0]
        ys = np.arange(len(part))[::-1]
        colors = [COLORS[studies.index(s) % len(COLORS)] for s in part["study"]]
        mean = part["mean"].to_numpy(dtype=float)
        err = np.vstack([np.nan_to_num(mean - part["ci_low"].to_numpy(dtype=float)),
                         np.nan_to_num(part["ci_high"].to_numpy(dtype=float) - mean)])
        for y, m, e0, e1, c in zip(ys, mean, err[0], err[1], colors, strict=True):
            ax.errorbar([m], [y], xerr=[[max(e0, 0)], [max(e1, 0)]], fmt="o", color=c, capsize=3)
        ax.set_yticks(ys, [f"{s}: {lbl}" for s, lbl in zip(part["study"], part["label"], strict=True)], fontsize=8)
        ax.set_xlabel(metric_label(str(objective)))
        style(ax)
        maximize = bool(part["maximize"].iloc[0])
        title = f"Best cells of each study by {objective}"
        ax.set_title(title)
        figs.append(Figure(f"across_{objective}", title, f"The best cells of each study (mean {objective} with 95% "
                           f"CIs over their confirm seeds; {'higher' if maximize else 'lower'} is better): studies "
                           "compared on one axis.", to_png(fig)))
    return figs


# ------------------------------------------------------------------------------------------------
# the whole report


def load_studies(names: Sequence[str], reader: RunReader, profile: str | None = None) -> list[StudyRuns]:
    from nnlab.spec import Spec

    studies: list[StudyRuns] = []
    for arg in dict.fromkeys(names):
        spec = load_spec(arg, profile, reader)
        study = select_runs(spec, reader, profile)
        found = sweep_profile(study.sweep_id)
        if profile is None and found and found in getattr(spec, "profiles", {}):
            # the newest sweep ran under a profile: read the spec the way it ran
            study.spec = Spec.from_yaml(spec.source, (), found) if Path(spec.source).exists() else spec
        if any(s.name == study.name for s in studies):
            continue
        studies.append(study)
    return studies


def compute_report(studies: list[StudyRuns], reader: RunReader | None, *, method: str = "welch",
                   tracking_uri: str = "") -> Report:
    problems: list[str] = []
    reports = [study_report(s, reader, method=method, problems=problems) for s in studies]
    claims = pd.concat([r.claims for r in reports], ignore_index=True) if reports else pd.DataFrame(
        columns=CLAIM_COLUMNS)
    if len(reports) > 1:  # Holm over every claim of the report, not study by study
        claims = decide(claims)
        for rep in reports:
            rep.claims = claims[claims["study"] == rep.name].reset_index(drop=True)
    cells = pd.concat([r.cells for r in reports], ignore_index=True) if reports else pd.DataFrame()
    title = "nnlab report: " + " + ".join(s.name for s in studies)
    report = Report(title=title, tracking_uri=tracking_uri or (reader.uri if reader else ""),
                    created=_dt.datetime.now().strftime("%Y-%m-%d %H:%M"), method=method, studies=reports,
                    claims=claims, cells=cells, problems=problems)
    if len(reports) > 1:
        report.combined_frame = across_studies(reports)
        report.combined = draw_across(report.combined_frame)
    return report


def write_report(report: Report, out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = out_dir / "figures"
    figures.mkdir(exist_ok=True)
    for fig in report.figures:
        (out_dir / figure_file(fig)).write_bytes(fig.png)
    files = {"report.html": out_dir / "report.html", "report.md": out_dir / "report.md",
             "cells.csv": out_dir / "cells.csv"}
    files["report.html"].write_text(to_html(report), encoding="utf-8")
    files["report.md"].write_text(to_markdown(report), encoding="utf-8")
    report.cells.to_csv(files["cells.csv"], index=False)
    report.out_dir = out_dir
    return files


def log_report(report: Report, files: dict[str, Path], store: Any) -> list[str]:
    """Log the report files on each study's sweep parent run, and make the run's description (what the
    MLflow UI shows on its page) the study's description and its claims table; returns the run ids."""
    from analysis._render import _md_table, claims_view
    from nnlab.tracking._mlflow import Tracker
    from nnlab.tracking._tags import RUN_TAG_LIMIT

    def note(study: StudyReport) -> str:
        head = [study.description, "", f"## Claims ({report.created})", ""] if study.description else [
            f"## Claims ({report.created})", ""]
        tail = ["", f"Full report: artifacts `{ARTIFACT_DIR}/` of this run. Rules: docs/statistics.md."]
        if study.claims.empty:
            return "\n".join([*head, "No claims: the spec has no `expect:`.", *tail])
        view = claims_view(study.claims, with_study=False)
        for dropped in ([], ["why"], ["why", "method", "means"]):  # the UI keeps at most RUN_TAG_LIMIT
            text = "\n".join([*head, _md_table(view.drop(columns=dropped)), *tail])
            if len(text) <= RUN_TAG_LIMIT:
                return text
        return text[:RUN_TAG_LIMIT - 40] + "\n\n(cut: see report.md)"

    studies = [s for s in report.studies if s.study.parent_run_id]
    if not studies:
        return []
    tracker = Tracker(store)
    for study in studies:
        tracker.set_note(str(study.study.parent_run_id), note(study))
    for run_id in dict.fromkeys(s.study.parent_run_id for s in studies):
        for name in REPORT_FILES:
            tracker.log_artifact(run_id, files[name], ARTIFACT_DIR)
    report.logged_to = list(dict.fromkeys(str(s.study.parent_run_id) for s in studies))
    return report.logged_to


def build_report(names: Sequence[str], *, out: str | Path | None = None, profile: str | None = None,
                 tracking_uri: str | None = None, method: str = "welch", log_artifacts: bool = True) -> Report:
    """Read, compute, write and log the report of one or more studies (names, spec files)."""
    from nnlab.tracking import resolve_store

    store = resolve_store(tracking_uri)
    reader = RunReader(store)
    studies = load_studies(names, reader, profile)
    report = compute_report(studies, reader, method=method, tracking_uri=store.tracking_uri)
    out_dir = Path(out) if out else default_out_dir([s.name for s in studies])
    files = write_report(report, out_dir)
    if log_artifacts:
        log_report(report, files, store)
    return report
