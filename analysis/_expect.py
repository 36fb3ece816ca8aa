"""Expectations (``expect:`` in a spec) evaluated on the evidence runs: effect, 95% CI, p, verdict.

The rules (docs/statistics.md gives them with a worked example):

- **Evidence** is every finished confirm run; diverged and failed ones count against their cell
  (``analysis._cells.IMPUTE_RULE``, with the side that hurts the claim for a bound). Fewer than 2 runs
  on a side, or no confirm runs at all (``seeds: 0``), leave a claim untested: **inconclusive**.
- **Paired when the design is.** Repeat k of every cell shares its seed values (``sweep.seed_keys``),
  so compare takes the per-repeat differences (paired t) when both arms hold the same repeats, and
  trend the per-repeat slopes; otherwise Welch's t and the pooled least-squares slope. The method is
  named on every claim.
- **Holm decides.** Each tested claim has a two-sided p-value; Holm's step-down correction over the
  tested claims of one report sets the verdict: adjusted p < 0.05 with the effect on the claimed side
  is **supported**, on the other side **contradicted**, anything else **inconclusive**. The raw 95%
  intervals are still shown.
- **bound**: every selected cell's mean must lie inside, each cell tested against the bound; the
  claim's p is the largest of the cells' (all must hold), so one cell whose interval reaches the
  bound keeps it from being supported. **peak**: some interior value of ``along`` beats both ends; its
  p is the larger of its two comparisons times the number of interior values (the best one is picked
  after seeing the data).
- **requires**: a claim whose requirement (another claim by name, or an inline bound that gates it,
  e.g. "the models learned the task") is not supported is **void**, with the reason.
- **What it would take**: an inconclusive compare or trend states how many repeats would make the
  observed effect decisive at the observed spread (t-test power 0.8 at 0.05 / the number of tested
  claims).
- A claim on a ``val_*`` metric of a tuned sweep is marked: the cells were selected on that split,
  so its numbers are optimistic; ``test_*`` metrics are the recommended form.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from analysis._cells import BEST_TUNE, CONFIRM, LOST, impute, raw_evidence
from analysis._labels import is_missing, is_number, py, series_label, short_key, spans_decades, value_label
from analysis._runs import PARAM, grid_values, mask_where, same_value
from analysis._stats import (
    ALPHA,
    Difference,
    difference,
    holm,
    one_sample,
    paired_slopes,
    repeats_needed,
    slope,
    summarize,
)

SUPPORTED, CONTRADICTED, INCONCLUSIVE, VOID = "supported", "contradicted", "inconclusive", "void"
VERDICTS = (SUPPORTED, CONTRADICTED, INCONCLUSIVE, VOID)
OPTIMISTIC = "selected on this split: optimistic"
CLAIM_COLUMNS = ["study", "claim", "claim_name", "kind", "metric", "better_mean", "than_mean", "effect", "ci_low",
                 "ci_high", "n_better", "n_than", "n_lost", "cohens_d", "rho", "p_value", "p_adjusted", "direction",
                 "spread", "design", "repeats_needed", "verdict", "reason", "detail", "basis", "method", "requires",
                 "gate", "note"]


def claim_text(claim: Any) -> str:
    """A claim as a sentence, unless it has a name."""
    if claim.name:
        return str(claim.name)
    return _describe(claim)


def _describe(claim: Any) -> str:
    where = f" where {series_label(claim.where)}" if claim.where else ""
    if claim.kind == "compare":
        return f"{series_label(claim.better)} beats {series_label(claim.than)} on {claim.metric}{where}"
    if claim.kind == "bound":
        parts = [f"above {claim.above:g}" if claim.above is not None else "",
                 f"below {claim.below:g}" if claim.below is not None else ""]
        return f"{claim.metric} stays {' and '.join(p for p in parts if p)}{where}"
    if claim.kind == "peak":
        extreme = "maximum" if claim.should == "max" else "minimum"
        return f"{claim.metric} has an interior {extreme} along {short_key(claim.along)}{where}"
    return f"{claim.metric} should {claim.should} along {short_key(claim.along)}{where}"


def verdict(lo: float, hi: float, sign: int) -> tuple[str, str]:
    """The verdict of a raw interval [lo, hi] for a claimed sign (+1: above zero, -1: below)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return INCONCLUSIVE, "no interval"
    a, b = sign * lo, sign * hi
    if min(a, b) > 0:
        return SUPPORTED, "interval on the claimed side of zero"
    if max(a, b) < 0:
        return CONTRADICTED, "interval on the opposite side of zero"
    return INCONCLUSIVE, "interval spans zero"


def _row(study: str, claim: Any, basis: str, method: str, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {c: float("nan") for c in CLAIM_COLUMNS}
    row.update(study=study, claim=claim_text(claim), claim_name=claim.name or "", kind=claim.kind,
               metric=claim.metric, basis=basis, method=method, requires=[r for r in claim.requires
                                                                          if isinstance(r, str)],
               gate="", note="", design="", reason="", detail="", direction=0, n_lost=0)
    row.update(values)
    return row


def _claimed_higher(claim: Any) -> bool:
    from nnlab.spec import higher_is_better

    hib = getattr(claim, "higher_is_better", None)
    return bool(hib) if hib is not None else higher_is_better(claim.metric)


# ------------------------------------------------------------------------------------------------
# repeats: what pairs two arms


def repeat_ids(runs: pd.DataFrame, spec: Any) -> pd.Series:
    """Each run's repeat: the values of the sweep's seed keys where the runs logged them all, else the
    repeat index (``nnlab.seed_index``). Repeat k of every cell shares them."""
    keys = [PARAM + k for k in getattr(spec.sweep, "seed_keys", ["train.seed"])]
    if keys and all(k in runs.columns for k in keys) and not runs[keys].isna().any().any():
        return pd.Series([tuple(py(v) for v in row) for row in runs[keys].itertuples(index=False)],
                         index=runs.index, dtype=object)
    if "seed_index" in runs.columns:
        return runs["seed_index"].map(lambda v: None if is_missing(v) else int(v))
    return pd.Series(None, index=runs.index, dtype=object)


def _by_repeat(values: pd.Series, reps: pd.Series) -> dict[Any, float] | None:
    """Mean value per repeat (an arm spanning several cells is averaged within each repeat)."""
    if reps.isna().any() or not len(reps):
        return None
    frame = pd.DataFrame({"v": values.to_numpy(dtype=float), "r": list(reps)})
    return {r: float(part["v"].mean()) for r, part in frame.groupby("r", sort=True)}


def _paired_arrays(a: pd.Series, ra: pd.Series, b: pd.Series, rb: pd.Series) -> tuple[np.ndarray, np.ndarray] | None:
    """The two arms aligned by repeat when both hold the same repeats (at least 2), else None."""
    ma, mb = _by_repeat(a, ra), _by_repeat(b, rb)
    if ma is None or mb is None or set(ma) != set(mb) or len(ma) < 2:
        return None
    order = sorted(ma, key=repr)
    return np.array([ma[r] for r in order]), np.array([mb[r] for r in order])


def _compare_arms(a: pd.Series, ra: pd.Series, b: pd.Series, rb: pd.Series, method: str,
                  basis: str) -> Difference:
    pairs = _paired_arrays(a, ra, b, rb) if basis == CONFIRM else None
    if pairs is not None:
        return difference(pairs[0], pairs[1], method, paired=True)
    return difference(a.to_numpy(dtype=float), b.to_numpy(dtype=float), method)


def _finite_count(values: pd.Series) -> int:
    arr = values.to_numpy(dtype=float)
    return int(np.isfinite(arr).sum())


# ------------------------------------------------------------------------------------------------
# the four kinds: raw statistics, a p-value and the side the effect fell on


def evaluate_compare(claim: Any, ev: pd.DataFrame, basis: str, *, study: str = "", method: str = "welch",
                     runs: pd.DataFrame | None = None, spec: Any = None) -> dict[str, Any]:
    runs = ev if runs is None else runs
    where = dict(claim.where)
    hib = _claimed_higher(claim)
    A = ev[mask_where(ev, {**where, **claim.better})]
    B = ev[mask_where(ev, {**where, **claim.than})]
    a, b = impute(A, runs, claim.metric, not hib), impute(B, runs, claim.metric, not hib)
    reps = repeat_ids(ev, spec) if spec is not None else pd.Series(None, index=ev.index, dtype=object)
    diff = _compare_arms(a, reps[A.index], b, reps[B.index], method, basis)
    na, nb = _finite_count(a), _finite_count(b)
    sign = 1 if hib else -1
    out = dict(better_mean=float(np.nanmean(a)) if na else float("nan"),
               than_mean=float(np.nanmean(b)) if nb else float("nan"), effect=diff.effect, ci_low=diff.ci_low,
               ci_high=diff.ci_high, n_better=na, n_than=nb, cohens_d=diff.cohens_d, spread=diff.spread,
               n_lost=int(A["status"].isin(LOST).sum() + B["status"].isin(LOST).sum()),
               design="paired" if diff.method.startswith("paired") else "two_sample")
    side = f"{'higher' if hib else 'lower'} is better"
    if basis == BEST_TUNE:
        return _row(study, claim, basis, diff.method, detail=f"no confirm runs (seeds: 0); {side}", **out)
    if na < 2 or nb < 2:
        return _row(study, claim, basis, diff.method, detail=f"too few seeds (n={na} vs {nb}); {side}", **out)
    direction = int(np.sign(diff.effect) * sign) if math.isfinite(diff.effect) else 0
    return _row(study, claim, basis, diff.method, p_value=diff.p_value, direction=direction, detail=side, **out)


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


def _along(claim: Any, ev: pd.DataFrame, runs: pd.DataFrame, spec: Any, grid: list[Any] | None,
           worse_high: bool) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, pd.Series, list[Any], dict[Any, float], str]:
    """The selected runs along ``claim.along``: (runs, x positions, imputed y, repeats, levels in order,
    positions, scale)."""
    col = PARAM + claim.along
    sub = ev[mask_where(ev, dict(claim.where))]
    if col not in sub.columns or claim.metric not in sub.columns:
        sub = sub.iloc[0:0]
    y = impute(sub, runs, claim.metric, worse_high) if not sub.empty else pd.Series([], dtype=float)
    keep = np.isfinite(y.to_numpy(dtype=float)) if len(y) else np.array([], dtype=bool)
    sub, y = sub[keep], y[keep]
    raw = [py(v) for v in sub[col]] if not sub.empty else []
    levels = list(dict.fromkeys(None if is_missing(v) else v for v in raw))
    pos, scale = trend_axis(levels, grid)
    x = np.array([pos[None if is_missing(v) else v] for v in raw], dtype=float)
    reps = repeat_ids(sub, spec) if spec is not None and not sub.empty else pd.Series(None, index=sub.index,
                                                                                      dtype=object)
    ordered = sorted(levels, key=lambda lv: pos[lv])
    return sub, x, y.to_numpy(dtype=float), reps, ordered, pos, scale


def _paired_design(x: np.ndarray, reps: pd.Series, levels: list[Any], pos: dict[Any, float]) -> bool:
    """Every level holds the same repeats, once each, and there are at least 2 of them."""
    if reps.isna().any() or not len(reps):
        return False
    sets = []
    for lv in levels:
        these = [r for r, xv in zip(reps, x, strict=True) if xv == pos[lv]]
        if len(these) != len(set(these)):
            return False
        sets.append(set(these))
    return bool(sets) and all(s == sets[0] for s in sets) and len(sets[0]) >= 2


def evaluate_trend(claim: Any, ev: pd.DataFrame, basis: str, *, study: str = "", grid: list[Any] | None = None,
                   method: str = "welch", runs: pd.DataFrame | None = None, spec: Any = None) -> dict[str, Any]:
    runs = ev if runs is None else runs
    increase = claim.should == "increase"
    sub, x, y, reps, ordered, pos, scale = _along(claim, ev, runs, spec, grid, worse_high=increase)
    counts = {lv: int(np.sum(x == pos[lv])) for lv in ordered}
    paired = basis == CONFIRM and method != "bootstrap" and _paired_design(x, reps, ordered, pos)
    if paired:
        codes = {r: i for i, r in enumerate(dict.fromkeys(reps))}
        fit = paired_slopes(x, y, np.array([codes[r] for r in reps]))
    else:
        fit = slope(x, y, "bootstrap" if method == "bootstrap" else "t")
    first, last = (ordered[0], ordered[-1]) if ordered else (None, None)
    mean_at = {lv: float(np.mean(y[x == pos[lv]])) for lv in ordered}
    out = dict(better_mean=mean_at.get(last, float("nan")), than_mean=mean_at.get(first, float("nan")),
               effect=fit.slope, ci_low=fit.ci_low, ci_high=fit.ci_high, n_better=counts.get(last, 0),
               n_than=counts.get(first, 0), rho=fit.rho, spread=fit.spread,
               n_lost=int(sub["status"].isin(LOST).sum()) if "status" in sub else 0,
               design="paired slopes" if paired else "slope")
    unit = {"log10": f"per decade of {short_key(claim.along)}", "linear": f"per unit of {short_key(claim.along)}",
            "order": "per grid step"}[scale]
    tail = f"slope {unit}; first/last means at {value_label(first)} / {value_label(last)}"
    if basis == BEST_TUNE:
        return _row(study, claim, basis, fit.method, detail=f"no confirm runs (seeds: 0); {tail}", **out)
    if len(ordered) < 2 or min(counts.values(), default=0) < 2:
        runs_per = ", ".join(f"{value_label(lv)}: {counts[lv]}" for lv in ordered) or "none"
        return _row(study, claim, basis, fit.method, detail=f"too few seeds ({len(ordered)} values of "
                    f"{short_key(claim.along)}, runs per value: {runs_per}); {tail}", **out)
    sign = 1 if increase else -1
    direction = int(np.sign(fit.slope) * sign) if math.isfinite(fit.slope) else 0
    return _row(study, claim, basis, fit.method, p_value=fit.p_value, direction=direction, detail=tail, **out)


def _cell_margins(claim: Any, ev: pd.DataFrame, runs: pd.DataFrame) -> list[dict[str, Any]]:
    """Per selected cell and bound: the margin of the mean (positive inside), its 95% interval, and the
    two-sided p of mean == bound; diverged and failed runs on the side that breaks the bound."""
    sub = ev[mask_where(ev, dict(claim.where))]
    worse_high = claim.below is not None  # a run lost from a cell counts against staying below (or above)
    out = []
    for cell, part in sub.groupby("cell", sort=False):
        values = impute(part, runs, claim.metric, worse_high).to_numpy(dtype=float)
        s = summarize(values)
        if s.n == 0:
            continue
        for bound, sign in ((claim.above, 1.0), (claim.below, -1.0)):
            if bound is None:
                continue
            test = one_sample(values, bound)
            margin = sign * (s.mean - bound)
            lo, hi = sign * (s.ci_low - bound), sign * (s.ci_high - bound)
            p = test.p_value
            if s.n >= 2 and not math.isfinite(p):  # no spread: the mean is the interval
                p = 0.0 if margin != 0 else 1.0
            out.append(dict(margin=margin, lo=min(lo, hi), hi=max(lo, hi), n=s.n, cell=str(cell), mean=s.mean,
                            bound=bound, p=p, lost=int(part["status"].isin(LOST).sum())))
    return out


def evaluate_bound(claim: Any, ev: pd.DataFrame, basis: str, *, study: str = "",
                   runs: pd.DataFrame | None = None) -> dict[str, Any]:
    runs = ev if runs is None else runs
    margins = _cell_margins(claim, ev, runs)
    if not margins:
        return _row(study, claim, basis, "one-sample t", detail="no runs in the selected cells", n_better=0,
                    n_than=0)
    worst = min(margins, key=lambda m: (m["lo"] if math.isfinite(m["lo"]) else m["margin"]))
    out = dict(better_mean=worst["mean"], than_mean=float(worst["bound"]), effect=worst["margin"],
               ci_low=worst["lo"], ci_high=worst["hi"], n_better=worst["n"], n_than=len(margins),
               n_lost=sum(m["lost"] for m in margins), design="bound")
    tail = (f"effect: margin of the cell closest to breaking the bound, {worst['cell']} (positive = inside); "
            f"{len(margins)} cell(s)")
    if basis == BEST_TUNE:
        return _row(study, claim, basis, "one-sample t", detail=f"no confirm runs (seeds: 0); {tail}", **out)
    if min(m["n"] for m in margins) < 2:
        return _row(study, claim, basis, "one-sample t", detail=f"too few seeds (n={min(m['n'] for m in margins)} "
                    f"in some cell); {tail}", **out)
    outside = [m for m in margins if m["margin"] < 0]
    if outside:  # contradicted needs one cell clearly outside; any of them may be it
        direction, p = -1, min(1.0, min(m["p"] for m in outside) * len(margins))
        worst = min(outside, key=lambda m: m["hi"])
        out.update(better_mean=worst["mean"], than_mean=float(worst["bound"]), effect=worst["margin"],
                   ci_low=worst["lo"], ci_high=worst["hi"], n_better=worst["n"])
        tail = f"{len(outside)} of {len(margins)} cell(s) with the mean outside; worst: {worst['cell']}"
    else:  # supported needs every cell clearly inside
        direction, p = 1, max(m["p"] for m in margins)
    return _row(study, claim, basis, "one-sample t", p_value=p, direction=direction, detail=tail, **out)


def evaluate_peak(claim: Any, ev: pd.DataFrame, basis: str, *, study: str = "", grid: list[Any] | None = None,
                  method: str = "welch", runs: pd.DataFrame | None = None, spec: Any = None) -> dict[str, Any]:
    runs = ev if runs is None else runs
    sign = 1 if claim.should == "max" else -1
    sub, x, y, reps, ordered, pos, _ = _along(claim, ev, runs, spec, grid, worse_high=sign < 0)
    ys = pd.Series(y, index=sub.index)
    counts = {lv: int(np.sum(x == pos[lv])) for lv in ordered}
    n_lost = int(sub["status"].isin(LOST).sum()) if "status" in sub else 0
    base = dict(n_lost=n_lost, design="peak")
    if len(ordered) < 3:
        return _row(study, claim, basis, method, detail=f"needs at least 3 values of {short_key(claim.along)} "
                    f"with runs, got {len(ordered)}", **base)
    first, last = ordered[0], ordered[-1]

    def arm(lv: Any) -> tuple[pd.Series, pd.Series]:
        m = x == pos[lv]
        return ys[m], reps[m]

    rows = []
    for lv in ordered[1:-1]:
        yl, rl = arm(lv)
        d1 = _compare_arms(yl, rl, *arm(first), method, basis)
        d2 = _compare_arms(yl, rl, *arm(last), method, basis)
        near = d1 if sign * d1.effect <= sign * d2.effect else d2
        rows.append(dict(level=lv, d1=d1, d2=d2, near=near, margin=sign * near.effect))
    best = max(rows, key=lambda r: r["margin"] if math.isfinite(r["margin"]) else -math.inf)
    near = best["near"]
    lo, hi = sorted((sign * near.ci_low, sign * near.ci_high))
    out = dict(better_mean=float(np.mean(y[x == pos[best["level"]]])),
               than_mean=float(np.mean(y[x == pos[first if near is best["d1"] else last]])),
               effect=best["margin"], ci_low=lo, ci_high=hi, n_better=counts[best["level"]],
               n_than=min(counts[first], counts[last]), spread=near.spread, **base)
    tail = (f"effect: how far the best interior value ({value_label(best['level'])}) beats the nearer end "
            f"({'higher' if sign > 0 else 'lower'} is the claimed side); {len(rows)} interior value(s)")
    if basis == BEST_TUNE:
        return _row(study, claim, basis, near.method, detail=f"no confirm runs (seeds: 0); {tail}", **out)
    if min(counts.values()) < 2:
        return _row(study, claim, basis, near.method, detail=f"too few seeds (runs per value: "
                    f"{', '.join(f'{value_label(lv)}: {counts[lv]}' for lv in ordered)}); {tail}", **out)
    if best["margin"] > 0:  # the best interior value beats both ends: both comparisons must hold
        direction = 1
        p = min(1.0, max(best["d1"].p_value, best["d2"].p_value) * len(rows))
    else:  # no interior value beats both ends: contradicted when every one is clearly beaten by an end
        direction = -1
        per_level = []
        for r in rows:
            beaten = [d.p_value for d in (r["d1"], r["d2"]) if sign * d.effect < 0]
            per_level.append(min(1.0, 2 * min(beaten)) if beaten else 1.0)
        p = max(per_level)
    return _row(study, claim, basis, near.method, p_value=p, direction=direction, detail=tail, **out)


def _gate(req: Any, ev: pd.DataFrame, runs: pd.DataFrame) -> str:
    """'' when an inline bound requirement holds (every selected cell's 95% interval inside), else why not."""
    margins = _cell_margins(req, ev, runs)
    text = _describe(req)
    if not margins:
        return f"requires {text}: no runs in the selected cells"
    if min(m["n"] for m in margins) < 2:
        return f"requires {text}: too few runs to tell"
    failing = [m for m in margins if not m["lo"] > 0]
    if failing:
        m = min(failing, key=lambda m: m["lo"])
        return (f"requires {text}, which does not hold in {len(failing)} of {len(margins)} cell(s) "
                f"(e.g. {m['cell']}: mean {m['mean']:.4g})")
    return ""


# ------------------------------------------------------------------------------------------------
# evaluation and decision


def evaluate_claims(runs: pd.DataFrame, spec: Any, *, study: str = "", method: str = "welch") -> pd.DataFrame:
    """Every claim of ``spec.expect`` on the study's evidence runs: one row per claim (CLAIM_COLUMNS),
    decided with Holm's correction over this study's claims (``decide`` again over a whole report)."""
    ev, basis = raw_evidence(runs, spec)
    tuned = bool(spec.sweep.tune) and spec.sweep.trials > 0
    rows = []
    for claim in spec.expect:
        if claim.kind == "compare":
            row = evaluate_compare(claim, ev, basis, study=study, method=method, runs=runs, spec=spec)
        elif claim.kind == "trend":
            row = evaluate_trend(claim, ev, basis, study=study, grid=grid_values(spec, claim.along),
                                 method=method, runs=runs, spec=spec)
        elif claim.kind == "bound":
            row = evaluate_bound(claim, ev, basis, study=study, runs=runs)
        elif claim.kind == "peak":
            row = evaluate_peak(claim, ev, basis, study=study, grid=grid_values(spec, claim.along),
                                method=method, runs=runs, spec=spec)
        else:  # a kind this version does not know: say so rather than guess
            row = _row(study, claim, basis, "", detail=f"claims of kind {claim.kind!r} are not evaluated by "
                       "this report")
        gates = [_gate(r, ev, runs) for r in claim.requires if not isinstance(r, str)]
        row["gate"] = "; ".join(g for g in gates if g)
        if tuned and str(claim.metric).startswith("val_") and basis != BEST_TUNE:
            row["note"] = OPTIMISTIC
        rows.append(row)
    return decide(pd.DataFrame(rows, columns=CLAIM_COLUMNS))


def _testable(claims: pd.DataFrame) -> pd.Series:
    p = pd.to_numeric(claims["p_value"], errors="coerce")
    return np.isfinite(p) & (claims["gate"].fillna("") == "")


def decide(claims: pd.DataFrame, alpha: float = ALPHA) -> pd.DataFrame:
    """Verdicts from raw claim rows: gates first (void), then Holm over the tested claims, then
    requirements by name (void unless the named claim is supported), then what it would take."""
    out = claims.copy()
    if out.empty:
        return out
    testable = _testable(out)
    adjusted = np.full(len(out), np.nan)
    if testable.any():
        adjusted[testable.to_numpy()] = holm(out.loc[testable, "p_value"].astype(float).to_numpy())
    out["p_adjusted"] = adjusted
    m = int(testable.sum())
    verdicts, reasons, needed = [], [], []
    for i, (_, row) in enumerate(out.iterrows()):
        n_needed = float("nan")
        if row["gate"]:
            v, why = VOID, str(row["gate"])
        elif not testable.iloc[i]:
            v, why = INCONCLUSIVE, ""
        else:
            p = adjusted[i]
            if p < alpha and row["direction"] > 0:
                v, why = SUPPORTED, f"Holm-adjusted p = {p:.2g} < {alpha:g}"
            elif p < alpha and row["direction"] < 0:
                v, why = CONTRADICTED, f"Holm-adjusted p = {p:.2g} < {alpha:g}, effect on the other side"
            else:
                v, why = INCONCLUSIVE, f"Holm-adjusted p = {p:.2g} (not < {alpha:g})"
                n_needed = _needed(row, alpha / max(1, m))
                if math.isfinite(n_needed):
                    unit = {"two_sample": " per arm", "slope": " per value", "paired": " (pairs)"}.get(
                        str(row["design"]), "")
                    why += (f"; about {int(n_needed)} repeats{unit} would make this effect decisive at the "
                            f"observed spread (power 0.8, alpha {alpha / max(1, m):.2g})")
        verdicts.append(v)
        reasons.append("; ".join(t for t in (why, str(row["detail"] or "")) if t))
        needed.append(n_needed)
    out["verdict"], out["reason"], out["repeats_needed"] = verdicts, reasons, needed
    _void_by_name(out)
    return out


def _needed(row: pd.Series, alpha: float) -> float:
    if row["kind"] not in ("compare", "trend"):
        return float("nan")
    design = {"paired": "paired", "two_sample": "two_sample"}.get(str(row["design"]), "one_sample")
    spread = float(row["spread"])
    n = repeats_needed(float(row["effect"]), spread, design=design, alpha=alpha)
    return float(n) if n is not None else float("nan")


def _void_by_name(out: pd.DataFrame) -> None:
    """A claim whose named requirement is not supported is void (in dependency order: a void
    requirement voids its dependents)."""
    changed = True
    while changed:
        changed = False
        for idx, row in out.iterrows():
            if row["verdict"] == VOID or not row["requires"]:
                continue
            same = out[out["study"] == row["study"]]
            for name in row["requires"]:
                found = same[same["claim_name"] == name]
                req = str(found["verdict"].iloc[0]) if len(found) else "missing"
                if req != SUPPORTED:
                    out.at[idx, "verdict"] = VOID
                    out.at[idx, "reason"] = f"requires {name!r}, which is {req}; {row['detail']}"
                    changed = True
                    break
