"""Claims on constructed run data: every verdict, both kinds, the rules on seeds and sides."""

from __future__ import annotations

import math
from typing import Any

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


def test_failed_and_diverged_runs_are_not_evidence() -> None:
    rows = seeds({"model.residual": True, "model.depth": 16}, "val_accuracy", [0.9, 0.91, 0.92])
    rows += seeds({"model.residual": False, "model.depth": 16}, "val_accuracy", [0.8], status="completed")
    rows += seeds({"model.residual": False, "model.depth": 16}, "val_accuracy", [0.1, 0.1], status="diverged")
    row = evaluate_claims(runs_table(rows), _spec([RESIDUAL])).iloc[0]
    assert (row["n_than"], row["verdict"]) == (1, "inconclusive")


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
    assert row["verdict"] == "inconclusive" and "spans zero" in row["reason"]


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
