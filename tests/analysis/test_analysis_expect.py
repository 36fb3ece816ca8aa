"""Claims on constructed run data: every verdict, both kinds, the rules on seeds and sides."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from analysis_testkit import runs_table, seeds

from analysis._expect import evaluate_claims, trend_axis, verdict
from nnlab.spec import Spec


def _spec(expect: list[dict[str, Any]], grid: dict[str, list[Any]] | None = None, **sweep: Any) -> Spec:
    grid = grid or {"model.residual": [False, True], "model.depth": [2, 4, 8, 16]}
    return Spec.from_dict({"name": "t", "data": {"dataset": "moons"}, "model": {"width": 8},
                           "sweep": {"grid": grid, "seeds": 3, **sweep}, "expect": expect})


RESIDUAL = {"compare": {"metric": "val_accuracy", "better": {"model.residual": True},
                        "than": {"model.residual": False}, "where": {"model.depth": 16}}}


def _compare_runs(better: list[float], than: list[float]) -> Any:
    rows = seeds({"model.residual": True, "model.depth": 16}, "val_accuracy", better)
    rows += seeds({"model.residual": False, "model.depth": 16}, "val_accuracy", than)
    # other depths do not count (where: depth 16)
    rows += seeds({"model.residual": False, "model.depth": 2}, "val_accuracy", [0.99, 0.99, 0.99])
    return runs_table(rows)


@pytest.mark.parametrize(("better", "than", "expected"), [
    ([0.90, 0.91, 0.92], [0.80, 0.81, 0.79], "supported"),
    ([0.70, 0.71, 0.72], [0.80, 0.81, 0.79], "contradicted"),
    ([0.80, 0.85, 0.75], [0.80, 0.84, 0.77], "inconclusive"),
], ids=["supported", "contradicted", "spans-zero"])
def test_compare_verdicts(better: list[float], than: list[float], expected: str) -> None:
    claims = evaluate_claims(_compare_runs(better, than), _spec([RESIDUAL]), study="t")
    row = claims.iloc[0]
    assert row["verdict"] == expected
    assert row["effect"] == pytest.approx(sum(better) / 3 - sum(than) / 3)
    assert (row["n_better"], row["n_than"]) == (3, 3)
    assert row["ci_low"] <= row["effect"] <= row["ci_high"]
    assert row["claim"] == "residual=yes beats residual=no on val_accuracy where depth=16"


def test_lower_is_better_for_losses() -> None:
    spec = _spec([{"compare": {"metric": "val_loss", "better": {"model.residual": True},
                               "than": {"model.residual": False}}}])
    rows = seeds({"model.residual": True, "model.depth": 2}, "val_loss", [0.20, 0.21, 0.22])
    rows += seeds({"model.residual": False, "model.depth": 2}, "val_loss", [0.40, 0.41, 0.39])
    row = evaluate_claims(runs_table(rows), spec).iloc[0]
    assert row["effect"] < 0 and row["verdict"] == "supported" and "lower is better" in row["reason"]


def test_higher_is_better_override_flips_the_side() -> None:
    spec = _spec([{"compare": {"metric": "val_loss", "better": {"model.residual": True},
                               "than": {"model.residual": False}, "higher_is_better": True}}])
    rows = seeds({"model.residual": True, "model.depth": 2}, "val_loss", [0.20, 0.21, 0.22])
    rows += seeds({"model.residual": False, "model.depth": 2}, "val_loss", [0.40, 0.41, 0.39])
    assert evaluate_claims(runs_table(rows), spec).iloc[0]["verdict"] == "contradicted"


def test_one_seed_is_too_few() -> None:
    claims = evaluate_claims(_compare_runs([0.95], [0.5, 0.51, 0.52]), _spec([RESIDUAL]))
    row = claims.iloc[0]
    assert row["verdict"] == "inconclusive" and "too few seeds" in row["reason"]
    assert math.isnan(row["ci_low"])


def test_diverged_runs_count_at_chance_so_a_diverging_arm_is_never_supported() -> None:
    # dropping the two diverged runs would leave 0.95-0.97 against 0.79-0.82: supported
    rows = seeds({"model.residual": True, "model.depth": 16}, "val_accuracy", [0.95, 0.96, 0.97])
    lost = seeds({"model.residual": True, "model.depth": 16}, "val_accuracy", [float("nan")] * 2, status="diverged")
    for i, r in enumerate(lost):
        r["seed_index"] = 3 + i
    rows += lost + seeds({"model.residual": False, "model.depth": 16}, "val_accuracy", [0.80, 0.81, 0.79, 0.80, 0.82])
    for r in rows:
        r["chance_accuracy"] = 0.1
    row = evaluate_claims(runs_table(rows), _spec([RESIDUAL])).iloc[0]
    assert row["n_better"] == 5 and row["n_lost"] == 2
    assert row["better_mean"] == pytest.approx((0.95 + 0.96 + 0.97 + 0.1 + 0.1) / 5)
    assert row["verdict"] != "supported"


def test_a_failed_run_of_a_loss_counts_at_the_worst_loss_of_the_study() -> None:
    spec = _spec([{"compare": {"metric": "test_loss", "better": {"model.residual": True},
                               "than": {"model.residual": False}}}])
    rows = seeds({"model.residual": True, "model.depth": 2}, "test_loss", [0.20, 0.21, float("nan")])
    rows[2]["status"] = "failed"
    rows += seeds({"model.residual": False, "model.depth": 2}, "test_loss", [0.40, 0.41, 0.90])
    row = evaluate_claims(runs_table(rows), spec).iloc[0]
    assert row["better_mean"] == pytest.approx((0.20 + 0.21 + 0.90) / 3)


def test_without_confirm_runs_every_claim_is_inconclusive() -> None:
    spec = _spec([RESIDUAL], tune={"train.learning_rate": {"low": 1e-4, "high": 1e-1, "log": True}}, trials=4,
                 seeds=0)
    rows = seeds({"model.residual": True, "model.depth": 16}, "val_accuracy", [0.9, 0.91, 0.92], phase="tune")
    rows += seeds({"model.residual": False, "model.depth": 16}, "val_accuracy", [0.5, 0.51, 0.52], phase="tune")
    for r in rows:
        r["val_loss"] = 1 - r["val_accuracy"]
    row = evaluate_claims(runs_table(rows), spec).iloc[0]
    assert row["verdict"] == "inconclusive" and row["basis"] == "best tune"
    assert "no confirm runs" in row["reason"]
    assert (row["n_better"], row["n_than"]) == (1, 1)  # the best tune run of each cell


def _trend_runs(per_depth: dict[int, list[float]], metric: str = "val_loss") -> Any:
    rows = []
    for depth, values in per_depth.items():
        rows += seeds({"model.residual": False, "model.depth": depth}, metric, values)
        rows += seeds({"model.residual": True, "model.depth": depth}, metric, [0.2, 0.2, 0.2])
    return runs_table(rows)


@pytest.mark.parametrize(("should", "expected"), [("increase", "supported"), ("decrease", "contradicted")])
def test_trend_claim_in_both_directions(should: str, expected: str) -> None:
    spec = _spec([{"trend": {"metric": "val_loss", "along": "model.depth", "should": should,
                             "where": {"model.residual": False}}}])
    runs = _trend_runs({2: [0.30, 0.31, 0.29], 4: [0.40, 0.41, 0.39], 8: [0.62, 0.60, 0.61],
                        16: [1.0, 1.02, 0.98]})
    row = evaluate_claims(runs, spec).iloc[0]
    assert row["verdict"] == expected
    assert row["effect"] > 0 and row["ci_low"] > 0  # the slope, per unit of depth (2..16 spans < 1 decade)
    assert row["rho"] == pytest.approx(1.0, abs=0.05)
    assert (row["than_mean"], row["better_mean"]) == (pytest.approx(0.30), pytest.approx(1.0))
    assert "per unit of depth" in row["reason"]


def test_decreasing_trend_is_supported_and_flat_is_inconclusive() -> None:
    spec = _spec([{"trend": {"metric": "val_loss", "along": "model.depth", "should": "decrease",
                             "where": {"model.residual": False}}}])
    down = _trend_runs({2: [0.9, 0.91, 0.89], 4: [0.7, 0.71, 0.69], 8: [0.5, 0.52, 0.49], 16: [0.3, 0.31, 0.29]})
    assert evaluate_claims(down, spec).iloc[0]["verdict"] == "supported"
    flat = _trend_runs({2: [0.5, 0.6, 0.4], 4: [0.5, 0.4, 0.6], 8: [0.55, 0.45, 0.5], 16: [0.5, 0.6, 0.4]})
    row = evaluate_claims(flat, spec).iloc[0]
    assert row["verdict"] == "inconclusive" and "not < 0.05" in row["reason"]


def test_trend_with_one_seed_per_value_is_too_few() -> None:
    spec = _spec([{"trend": {"metric": "val_loss", "along": "model.depth", "should": "increase"}}],
                 grid={"model.depth": [2, 4, 8]})
    rows = []
    for depth, v in ((2, 0.1), (4, 0.2), (8, 0.3)):
        rows += seeds({"model.depth": depth}, "val_loss", [v])
    row = evaluate_claims(runs_table(rows), spec).iloc[0]
    assert row["verdict"] == "inconclusive" and "too few seeds" in row["reason"]


def test_trend_axis_is_log_when_values_span_decades() -> None:
    pos, scale = trend_axis([100, 1000, 10000])
    assert scale == "log10" and pos[1000] == pytest.approx(3.0)
    assert trend_axis([2, 4, 8])[1] == "linear"
    pos, scale = trend_axis([None, 0.1, 0.5], grid=[0.1, 0.5, None])
    assert scale == "order" and pos == {0.1: 0.0, 0.5: 1.0, None: 2.0}


def test_trend_along_a_log_spaced_key() -> None:
    spec = _spec([{"trend": {"metric": "gap_accuracy", "along": "data.train_size", "should": "decrease"}}],
                 grid={"data.train_size": [50, 500, 5000]})
    rows = []
    for size, gap in ((50, 0.3), (500, 0.2), (5000, 0.1)):
        rows += seeds({"data.train_size": size}, "gap_accuracy", [gap, gap + 0.01, gap - 0.01])
    row = evaluate_claims(runs_table(rows), spec).iloc[0]
    assert row["verdict"] == "supported"
    assert row["effect"] == pytest.approx(-0.1)  # per decade
    assert "per decade of train_size" in row["reason"]


@pytest.mark.parametrize(("lo", "hi", "sign", "expected"), [
    (0.1, 0.2, 1, "supported"), (-0.2, -0.1, 1, "contradicted"), (-0.1, 0.1, 1, "inconclusive"),
    (0.0, 0.1, 1, "inconclusive"), (-0.2, -0.1, -1, "supported"), (float("nan"), 1.0, 1, "inconclusive"),
])
def test_verdict_rule(lo: float, hi: float, sign: int, expected: str) -> None:
    assert verdict(lo, hi, sign)[0] == expected


# ------------------------------------------------------------------------------------------------
# paired designs, Holm, bound, peak, requires, the optimistic mark, what it would take


def _offsets(cell: dict[str, Any], metric: str, base: float, shift: list[float]) -> list[dict[str, Any]]:
    return seeds(cell, metric, [base + s for s in shift])


def test_paired_repeats_beat_welch_when_repeats_share_their_data() -> None:
    # repeat k draws data k: a large shared offset per repeat, a small consistent effect
    shift = [0.00, 0.08, -0.07, 0.15, -0.12]
    rows = _offsets({"model.residual": True, "model.depth": 16}, "val_accuracy", 0.82, shift)
    rows += _offsets({"model.residual": False, "model.depth": 16}, "val_accuracy", 0.80, [s + d for s, d in
                     zip(shift, [0.004, -0.003, 0.002, -0.002, 0.001], strict=True)])
    row = evaluate_claims(runs_table(rows), _spec([RESIDUAL])).iloc[0]
    assert row["method"] == "paired" and row["verdict"] == "supported"
    # the same numbers without shared repeats (repeat ids differ between arms): Welch, not decisive
    for i, r in enumerate(rows[5:]):
        r["seed_index"] = 10 + i
    row = evaluate_claims(runs_table(rows), _spec([RESIDUAL])).iloc[0]
    assert row["method"] == "welch" and row["verdict"] == "inconclusive"
    assert row["repeats_needed"] > 5 and "repeats" in row["reason"]


def test_a_paired_trend_uses_per_repeat_slopes() -> None:
    spec = _spec([{"trend": {"metric": "val_loss", "along": "model.depth", "should": "increase",
                             "where": {"model.residual": False}}}])
    shift = [0.0, 0.3, -0.25]
    per = {d: [0.01 * d + s + 0.001 * ((d * (i + 1)) % 3) for i, s in enumerate(shift)] for d in (2, 4, 8, 16)}
    row = evaluate_claims(_trend_runs(per), spec).iloc[0]
    assert row["method"] == "paired slopes" and row["verdict"] == "supported"
    assert row["effect"] == pytest.approx(0.01, abs=0.001)


def test_holm_decides_while_raw_intervals_stay() -> None:
    claims = [{"compare": {"name": f"c{d}", "metric": "val_accuracy", "better": {"model.residual": True},
                           "than": {"model.residual": False}, "where": {"model.depth": d}}} for d in (2, 4, 8)]
    rows = []
    for d in (2, 4, 8):
        rows += seeds({"model.residual": True, "model.depth": d}, "val_accuracy", [0.81, 0.845, 0.835, 0.85])
        rows += seeds({"model.residual": False, "model.depth": d}, "val_accuracy", [0.79, 0.80, 0.82, 0.81])
    out = evaluate_claims(runs_table(rows), _spec(claims))
    from analysis._stats import holm

    assert list(out["p_adjusted"]) == pytest.approx(list(holm(out["p_value"].to_numpy())))
    assert (out["p_value"] < 0.05).all() and (out["p_adjusted"] >= 0.05).all()
    assert (out["ci_low"] > 0).all()  # each raw interval clears zero...
    assert set(out["verdict"]) == {"inconclusive"}  # ...but three such claims together are not decisive


def _bound_spec() -> Spec:
    return _spec([{"bound": {"metric": "grad_norm/hidden_01", "below": 1.0e-3, "where": {"model.residual": False}}}])


def test_a_bound_fails_when_one_cells_interval_reaches_it() -> None:
    rows = seeds({"model.residual": False, "model.depth": 2}, "grad_norm/hidden_01", [8e-4, 8.1e-4, 7.9e-4])
    # a larger margin on average, but an interval that reaches past the bound
    rows += seeds({"model.residual": False, "model.depth": 4}, "grad_norm/hidden_01", [1e-5, 1e-5, 1.4e-3])
    row = evaluate_claims(runs_table(rows), _bound_spec()).iloc[0]
    assert row["verdict"] != "supported"
    assert row["ci_high"] > 0 > row["ci_low"]  # the shown cell is the one whose interval reaches the bound
    tight = seeds({"model.residual": False, "model.depth": 2}, "grad_norm/hidden_01", [8e-4, 8.1e-4, 7.9e-4])
    tight += seeds({"model.residual": False, "model.depth": 4}, "grad_norm/hidden_01", [1e-5, 1.1e-5, 0.9e-5])
    assert evaluate_claims(runs_table(tight), _bound_spec()).iloc[0]["verdict"] == "supported"


def test_a_bound_with_a_cell_outside_is_contradicted() -> None:
    rows = seeds({"model.residual": False, "model.depth": 2}, "grad_norm/hidden_01", [1e-5, 1.1e-5, 0.9e-5])
    rows += seeds({"model.residual": False, "model.depth": 4}, "grad_norm/hidden_01", [0.5, 0.51, 0.49])
    assert evaluate_claims(runs_table(rows), _bound_spec()).iloc[0]["verdict"] == "contradicted"


PEAK = {"peak": {"metric": "test_loss", "along": "model.depth", "should": "max", "where": {"model.residual": False}}}


@pytest.mark.parametrize(("means", "expected"), [
    ({2: 0.5, 4: 0.9, 8: 0.6, 16: 0.4}, "supported"),
    ({2: 0.3, 4: 0.5, 8: 0.7, 16: 0.9}, "contradicted"),
    ({2: 0.5, 4: 0.52, 8: 0.5, 16: 0.5}, "inconclusive"),
], ids=["interior-max", "monotone", "flat"])
def test_peak(means: dict[int, float], expected: str) -> None:
    rng = np.random.default_rng(3)
    rows = []
    for depth, m in means.items():
        rows += seeds({"model.residual": False, "model.depth": depth}, "test_loss", list(m + rng.normal(0, 0.02, 3)))
    row = evaluate_claims(runs_table(rows), _spec([PEAK])).iloc[0]
    assert row["verdict"] == expected
    if expected == "supported":  # depth 4 beats the nearer end (depth 2, 0.5) by about 0.4
        assert row["effect"] == pytest.approx(0.4, abs=0.06) and "(4)" in row["reason"]


def test_a_gate_that_fails_voids_the_claim_and_names_why() -> None:
    gate = {"kind": "bound", "metric": "test_accuracy", "above": 0.5}
    claim = {"compare": {**RESIDUAL["compare"], "requires": [gate]}}
    rows = seeds({"model.residual": True, "model.depth": 16}, "val_accuracy", [0.15, 0.16, 0.17])
    rows += seeds({"model.residual": False, "model.depth": 16}, "val_accuracy", [0.10, 0.11, 0.09])
    for r in rows:
        r["test_accuracy"] = r["val_accuracy"]
    row = evaluate_claims(runs_table(rows), _spec([claim])).iloc[0]
    assert row["verdict"] == "void" and "test_accuracy stays above 0.5" in row["reason"]
    for r in rows:
        r["test_accuracy"] = 0.9 + 0.01 * r["seed_index"]
    assert evaluate_claims(runs_table(rows), _spec([claim])).iloc[0]["verdict"] == "supported"


def test_a_claim_requiring_an_unsupported_claim_is_void() -> None:
    learned = {"bound": {"name": "learned", "metric": "test_accuracy", "above": 0.5}}
    claim = {"compare": {**RESIDUAL["compare"], "requires": ["learned"]}}
    rows = seeds({"model.residual": True, "model.depth": 16}, "val_accuracy", [0.15, 0.16, 0.17])
    rows += seeds({"model.residual": False, "model.depth": 16}, "val_accuracy", [0.10, 0.11, 0.09])
    for r in rows:
        r["test_accuracy"] = 0.12
    out = evaluate_claims(runs_table(rows), _spec([learned, claim]))
    assert list(out["verdict"]) == ["contradicted", "void"]
    assert "requires 'learned', which is contradicted" in out.iloc[1]["reason"]


def test_requires_names_must_exist_and_not_loop() -> None:
    from nnlab.errors import SpecError

    with pytest.raises(SpecError, match="names no claim of this spec: 'nope'"):
        _spec([{"compare": {**RESIDUAL["compare"], "requires": ["nope"]}}])
    a = {"compare": {**RESIDUAL["compare"], "name": "a", "requires": ["b"]}}
    b = {"compare": {**RESIDUAL["compare"], "name": "b", "requires": ["a"]}}
    with pytest.raises(SpecError, match="cycle"):
        _spec([a, b])


def test_a_peak_needs_three_grid_values() -> None:
    from nnlab.errors import SpecError

    with pytest.raises(SpecError, match="at least 3 values for a peak"):
        _spec([PEAK], grid={"model.residual": [False, True], "model.depth": [2, 4]})


def test_claims_on_the_tuned_split_are_marked_optimistic() -> None:
    tune = {"train.learning_rate": {"low": 1e-4, "high": 1e-1, "log": True}}
    test_claim = {"compare": {**RESIDUAL["compare"], "metric": "test_accuracy"}}
    spec = _spec([RESIDUAL, test_claim], tune=tune, trials=2)
    rows = seeds({"model.residual": True, "model.depth": 16}, "val_accuracy", [0.9, 0.91, 0.92])
    rows += seeds({"model.residual": False, "model.depth": 16}, "val_accuracy", [0.8, 0.81, 0.79])
    for r in rows:
        r["test_accuracy"] = r["val_accuracy"]
    out = evaluate_claims(runs_table(rows), spec)
    assert list(out["note"]) == ["selected on this split: optimistic", ""]
    untuned = evaluate_claims(runs_table(rows), _spec([RESIDUAL]))
    assert untuned.iloc[0]["note"] == ""


def test_cell_intervals_stay_inside_the_metrics_range() -> None:
    from analysis._cells import cell_table

    spec = _spec([], grid={"model.depth": [2, 4]})
    rows = seeds({"model.depth": 2}, "val_loss", [0.05, 2.7])  # a t interval of two values reaches below 0
    rows += seeds({"model.depth": 4}, "val_accuracy", [0.99, 0.5])
    table = cell_table(runs_table(rows), spec).set_index("model.depth")
    assert table.loc[2, "val_loss_ci_low"] == 0.0 and table.loc[2, "val_loss_ci_high"] > 2.7
    assert table.loc[4, "val_accuracy_ci_high"] == 1.0 and table.loc[4, "val_accuracy_ci_low"] == 0.0


def test_a_bound_is_shown_as_the_measured_value_against_the_bound() -> None:
    from analysis._render import effect_text

    rows = seeds({"model.residual": False, "model.depth": 2}, "grad_norm/hidden_01", [1e-5, 1.2e-5, 0.8e-5])
    row = evaluate_claims(runs_table(rows), _bound_spec()).iloc[0]
    text = effect_text(row)
    assert text.startswith("1.000e-05 [") and text.endswith("vs < 0.001")
