"""Expectations (``expect:`` in a spec) evaluated on the evidence runs: effect, 95% CI, verdict.

Verdict rules, the same for both kinds:

- fewer than 2 runs on either side (compare), or fewer than 2 values along the key or fewer than 2
  runs at some value (trend): **inconclusive** (too few seeds);
- no confirm runs (``seeds: 0``; evidence is the best tune run per cell): **inconclusive**;
- the interval lies entirely on the claimed side of zero: **supported**;
- entirely on the other side: **contradicted**;
- otherwise (it spans or touches zero): **inconclusive**.

compare: effect = mean(better) - mean(than) in the metric's units; the claimed side is > 0 when
higher is better (accuracy-like metrics, or ``higher_is_better: true``), < 0 otherwise. trend: the
least-squares slope of the metric on the key's values (log10 of them when they are positive and span
more than a decade; the grid's order when they are not numbers), its t interval (or a bootstrap
over seeds), and Spearman's rho. bound: in every selected cell the metric's mean should lie above
and/or below a value; the effect is the smallest margin over cells (mean - above, below - mean;
positive inside the bound) with the t interval of that cell's mean; supported when every cell's
interval lies inside, contradicted when some cell's lies entirely outside.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from analysis._base import is_missing, is_number, py, series_label, short_key, spans_decades, value_label
from analysis._cells import BEST_TUNE, evidence
from analysis._runs import PARAM, grid_values, mask_where, same_value
from analysis._stats import difference, slope, summarize

SUPPORTED, CONTRADICTED, INCONCLUSIVE = "supported", "contradicted", "inconclusive"
CLAIM_COLUMNS = ["study", "claim", "kind", "metric", "better_mean", "than_mean", "effect", "ci_low", "ci_high",
                 "n_better", "n_than", "cohens_d", "rho", "verdict", "reason", "basis", "method"]


def claim_text(claim: Any) -> str:
    """A claim as a sentence, unless it has a name."""
    if claim.name:
        return str(claim.name)
    where = f" where {series_label(claim.where)}" if claim.where else ""
    if claim.kind == "compare":
        return f"{series_label(claim.better)} beats {series_label(claim.than)} on {claim.metric}{where}"
    if claim.kind == "bound":
        parts = [f"above {claim.above:g}" if claim.above is not None else "",
                 f"below {claim.below:g}" if claim.below is not None else ""]
        return f"{claim.metric} stays {' and '.join(p for p in parts if p)}{where}"
    return f"{claim.metric} should {claim.should} along {short_key(claim.along)}{where}"


def verdict(lo: float, hi: float, sign: int) -> tuple[str, str]:
    """The verdict of an interval [lo, hi] for a claimed sign (+1: above zero, -1: below)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return INCONCLUSIVE, "no interval"
    a, b = sign * lo, sign * hi
    if min(a, b) > 0:
        return SUPPORTED, "interval on the claimed side of zero"
    if max(a, b) < 0:
        return CONTRADICTED, "interval on the opposite side of zero"
    return INCONCLUSIVE, "interval spans zero"


def _values(runs: pd.DataFrame, metric: str) -> np.ndarray:
    if metric not in runs.columns:
        return np.array([], dtype=float)
    arr = runs[metric].astype(float).to_numpy()
    return arr[np.isfinite(arr)]


def _row(study: str, claim: Any, basis: str, method: str, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {c: float("nan") for c in CLAIM_COLUMNS}
    row.update(study=study, claim=claim_text(claim), kind=claim.kind, metric=claim.metric, basis=basis,
               method=method)
    row.update(values)
    return row


def evaluate_compare(claim: Any, runs: pd.DataFrame, basis: str, *, study: str = "",
                     method: str = "welch") -> dict[str, Any]:
    from nnlab.spec import higher_is_better

    where = dict(claim.where)
    a = _values(runs[mask_where(runs, {**where, **claim.better})], claim.metric)
    b = _values(runs[mask_where(runs, {**where, **claim.than})], claim.metric)
    hib = claim.higher_is_better if claim.higher_is_better is not None else higher_is_better(claim.metric)
    diff = difference(a, b, method)
    out = dict(better_mean=float(np.mean(a)) if len(a) else float("nan"),
               than_mean=float(np.mean(b)) if len(b) else float("nan"), effect=diff.effect,
               ci_low=diff.ci_low, ci_high=diff.ci_high, n_better=len(a), n_than=len(b),
               cohens_d=diff.cohens_d)
    if basis == BEST_TUNE:
        v, reason = INCONCLUSIVE, "no confirm runs (seeds: 0)"
    elif len(a) < 2 or len(b) < 2:
        v, reason = INCONCLUSIVE, f"too few seeds (n={len(a)} vs {len(b)})"
    else:
        v, reason = verdict(diff.ci_low, diff.ci_high, 1 if hib else -1)
        reason += f"; {'higher' if hib else 'lower'} is better"
    return _row(study, claim, basis, diff.method, verdict=v, reason=reason, **out)


def trend_axis(values: list[Any], grid: list[Any] | None = None) -> tuple[dict[Any, float], str]:
    """Grid values -> x positions, and how: 'log10' (positive, spanning > 1 decade), 'linear', or
    'order' (the grid's order, for values that are not all numbers)."""
    vals = [py(v) for v in values]
    if vals and all(is_number(v) for v in vals):
        if spans_decades(vals, 1.0):
            return {v: math.log10(float(v)) for v in vals}, "log10"
        return {v: float(v) for v in vals}, "linear"
    order = [py(v) for v in (grid or [])] or vals
    pos: dict[Any, float] = {}
    for v in vals:
        idx = next((i for i, g in enumerate(order) if same_value(g, v) or (is_missing(g) and is_missing(v))),
                   len(order))
        pos[None if is_missing(v) else v] = float(idx)
    return pos, "order"


def evaluate_trend(claim: Any, runs: pd.DataFrame, basis: str, *, study: str = "", grid: list[Any] | None = None,
                   method: str = "welch") -> dict[str, Any]:
    col = PARAM + claim.along
    sub = runs[mask_where(runs, dict(claim.where))]
    if col not in sub.columns or claim.metric not in sub.columns:
        sub = sub.iloc[0:0]
    sub = sub[np.isfinite(sub[claim.metric].astype(float))] if not sub.empty else sub
    raw = [py(v) for v in sub[col]] if not sub.empty else []
    levels = list(dict.fromkeys(None if is_missing(v) else v for v in raw))
    pos, scale = trend_axis(levels, grid)
    x = np.array([pos[None if is_missing(v) else v] for v in raw], dtype=float)
    y = sub[claim.metric].astype(float).to_numpy() if not sub.empty else np.array([])
    counts = {lv: int(np.sum(x == pos[lv])) for lv in levels}
    fit = slope(x, y, "bootstrap" if method == "bootstrap" else "welch")
    ordered = sorted(levels, key=lambda lv: pos[lv])
    first, last = (ordered[0], ordered[-1]) if ordered else (None, None)
    mean_at = {lv: float(np.mean(y[x == pos[lv]])) for lv in levels}
    out = dict(better_mean=mean_at.get(last, float("nan")) if ordered else float("nan"),
               than_mean=mean_at.get(first, float("nan")) if ordered else float("nan"), effect=fit.slope,
               ci_low=fit.ci_low, ci_high=fit.ci_high, n_better=counts.get(last, 0) if ordered else 0,
               n_than=counts.get(first, 0) if ordered else 0, rho=fit.rho)
    unit = {"log10": f"per decade of {short_key(claim.along)}", "linear": f"per unit of {short_key(claim.along)}",
            "order": "per grid step"}[scale]
    if basis == BEST_TUNE:
        v, reason = INCONCLUSIVE, "no confirm runs (seeds: 0)"
    elif len(levels) < 2 or min(counts.values(), default=0) < 2:
        v, reason = INCONCLUSIVE, (f"too few seeds ({len(levels)} values of {short_key(claim.along)}, runs per "
                                   f"value: {', '.join(f'{value_label(lv)}: {counts[lv]}' for lv in ordered) or 'none'})")
    else:
        v, reason = verdict(fit.ci_low, fit.ci_high, 1 if claim.should == "increase" else -1)
    reason += f"; slope {unit}; first/last means at {value_label(first)} / {value_label(last)}"
    return _row(study, claim, basis, fit.method, verdict=v, reason=reason, **out)


def evaluate_bound(claim: Any, runs: pd.DataFrame, basis: str, *, study: str = "") -> dict[str, Any]:
    sub = runs[mask_where(runs, dict(claim.where))]
    margins = []  # (margin of the cell's mean, CI low, CI high, n, cell, mean)
    for cell, part in sub.groupby("cell", sort=False):
        s = summarize(_values(part, claim.metric))
        if s.n == 0:
            continue
        for bound, sign in ((claim.above, 1.0), (claim.below, -1.0)):
            if bound is None:
                continue
            lo, hi = sign * (s.ci_low - bound), sign * (s.ci_high - bound)
            margins.append((sign * (s.mean - bound), min(lo, hi), max(lo, hi), s.n, str(cell), s.mean))
    if not margins:
        return _row(study, claim, basis, "t", verdict=INCONCLUSIVE, reason="no runs in the selected cells",
                    n_better=0, n_than=0)
    worst = min(margins, key=lambda m: m[0])
    out = dict(better_mean=worst[5], than_mean=float(claim.above if claim.above is not None else claim.below),
               effect=worst[0], ci_low=worst[1], ci_high=worst[2], n_better=worst[3], n_than=len(margins))
    outside = [m for m in margins if math.isfinite(m[2]) and m[2] < 0]
    if basis == BEST_TUNE:
        v, reason = INCONCLUSIVE, "no confirm runs (seeds: 0)"
    elif outside:
        worst = min(outside, key=lambda m: m[2])
        out.update(better_mean=worst[5], effect=worst[0], ci_low=worst[1], ci_high=worst[2], n_better=worst[3])
        v, reason = CONTRADICTED, f"interval outside the bound in {len(outside)} cell(s)"
    elif min(m[3] for m in margins) < 2:
        v, reason = INCONCLUSIVE, f"too few seeds (n={min(m[3] for m in margins)} in some cell)"
    else:
        v, reason = verdict(worst[1], worst[2], 1)
        if v == SUPPORTED:
            reason = f"interval inside the bound in all {len(margins)} cell(s)"
    reason += f"; effect: margin of the closest cell, {worst[4]} (positive = inside)"
    return _row(study, claim, basis, "t", verdict=v, reason=reason, **out)


def evaluate_claims(runs: pd.DataFrame, spec: Any, *, study: str = "", method: str = "welch") -> pd.DataFrame:
    """Every claim of ``spec.expect`` on the study's evidence runs: one row per claim (CLAIM_COLUMNS)."""
    ev, basis = evidence(runs, spec)
    rows = []
    for claim in spec.expect:
        if claim.kind == "compare":
            rows.append(evaluate_compare(claim, ev, basis, study=study, method=method))
        elif claim.kind == "trend":
            rows.append(evaluate_trend(claim, ev, basis, study=study, grid=grid_values(spec, claim.along),
                                       method=method))
        elif claim.kind == "bound":
            rows.append(evaluate_bound(claim, ev, basis, study=study))
        else:  # a kind this version does not know: say so rather than guess
            rows.append(_row(study, claim, basis, "", verdict=INCONCLUSIVE,
                             reason=f"claims of kind {claim.kind!r} are not evaluated by this report"))
    return pd.DataFrame(rows, columns=CLAIM_COLUMNS)
