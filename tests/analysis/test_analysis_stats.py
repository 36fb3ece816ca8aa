"""Statistics over seeds: intervals agree with scipy, degenerate inputs give NaN, not errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as st

from analysis._stats import bootstrap, cohens_d, difference, slope, summarize, welch


def test_summary_matches_the_t_interval() -> None:
    x = [1.0, 2.0, 4.0, 7.0]
    s = summarize(x)
    lo, hi = st.t.interval(0.95, len(x) - 1, loc=np.mean(x), scale=st.sem(x))
    assert (s.n, s.mean) == (4, 3.5)
    assert s.std == pytest.approx(np.std(x, ddof=1))
    assert (s.ci_low, s.ci_high) == (pytest.approx(lo), pytest.approx(hi))


def test_summary_of_few_or_non_finite_values() -> None:
    assert summarize([]).n == 0 and math.isnan(summarize([]).mean)
    one = summarize([3.0, float("nan"), float("inf")])
    assert one.n == 1 and one.mean == 3.0 and math.isnan(one.ci_low)


def test_welch_matches_scipy() -> None:
    a = [0.91, 0.93, 0.92, 0.95, 0.90]
    b = [0.85, 0.88, 0.80]
    d = welch(a, b)
    res = st.ttest_ind(a, b, equal_var=False)
    ci = res.confidence_interval(0.95)
    assert d.effect == pytest.approx(np.mean(a) - np.mean(b))
    assert (d.ci_low, d.ci_high) == (pytest.approx(ci.low), pytest.approx(ci.high))
    assert d.cohens_d > 0 and (d.n_a, d.n_b) == (5, 3)


def test_welch_with_no_spread_is_a_point_interval() -> None:
    d = welch([1.0, 1.0], [0.5, 0.5])
    assert (d.effect, d.ci_low, d.ci_high) == (0.5, 0.5, 0.5)
    assert cohens_d([1.0, 1.0], [0.5, 0.5]) == math.inf


def test_too_few_values_give_no_interval() -> None:
    for method in ("welch", "bootstrap"):
        d = difference([1.0], [0.0, 0.1], method)
        assert d.effect == pytest.approx(0.95) and math.isnan(d.ci_low) and math.isnan(d.ci_high)


def test_bootstrap_is_reproducible_and_close_to_welch() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(1.0, 0.2, 30), rng.normal(0.8, 0.2, 30)
    one, two = bootstrap(a, b), bootstrap(a, b)
    w = welch(a, b)
    assert (one.ci_low, one.ci_high) == (two.ci_low, two.ci_high)
    assert one.ci_low == pytest.approx(w.ci_low, abs=0.05) and one.ci_high == pytest.approx(w.ci_high, abs=0.05)


def test_difference_refuses_an_unknown_method() -> None:
    with pytest.raises(ValueError, match="welch"):
        difference([1, 2], [1, 2], "anova")


def test_slope_matches_linregress_and_reports_spearman() -> None:
    x = np.repeat([1.0, 2.0, 3.0, 4.0], 3)
    y = 0.5 * x + np.tile([0.0, 0.1, -0.1], 4)
    fit = slope(x, y)
    ref = st.linregress(x, y)
    half = st.t.ppf(0.975, len(x) - 2) * ref.stderr
    assert fit.slope == pytest.approx(ref.slope)
    assert (fit.ci_low, fit.ci_high) == (pytest.approx(ref.slope - half), pytest.approx(ref.slope + half))
    assert fit.rho > 0.9
    boot = slope(x, y, "bootstrap")
    assert boot.ci_low < ref.slope < boot.ci_high


def test_slope_needs_two_x_values() -> None:
    fit = slope([1.0, 1.0, 1.0], [0.1, 0.2, 0.3])
    assert math.isnan(fit.ci_low)


@pytest.mark.parametrize("seed", range(6))
def test_spearman_matches_scipy_with_and_without_ties(seed: int) -> None:
    from analysis._stats import ranks, spearman

    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 40))
    x = rng.integers(0, 5, n).astype(float) if seed % 2 else rng.normal(size=n)  # odd seeds: many ties
    y = 0.3 * x + rng.normal(size=n)
    ref = st.spearmanr(x, y)
    rho, p = spearman(x, y)
    assert rho == pytest.approx(ref.statistic, abs=1e-12) and p == pytest.approx(ref.pvalue, rel=1e-9)
    np.testing.assert_allclose(ranks(x), st.rankdata(x))


def test_spearman_of_constant_or_perfect_data() -> None:
    from analysis._stats import spearman

    assert all(math.isnan(v) for v in spearman(np.ones(5), np.arange(5.0)))
    assert spearman(np.arange(5.0), -np.arange(5.0)) == (-1.0, 0.0)


@pytest.mark.parametrize(("p", "df"), [(0.975, 1), (0.975, 2.5), (0.95, 30), (0.5, 4), (0.025, 7)])
def test_t_quantile_matches_scipy(p: float, df: float) -> None:
    from analysis._stats import t_quantile

    assert t_quantile(p, df) == pytest.approx(st.t.ppf(p, df), rel=1e-12)
