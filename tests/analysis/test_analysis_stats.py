"""Statistics over seeds: published reference values (R's sleep data, Holm, power.t.test), the paired
designs beating the pooled ones when repeats share offsets, and NaN rather than errors on degenerate
inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as st

from analysis._stats import (
    ALPHA,
    CONFIDENCE,
    POWER,
    Difference,
    Slope,
    Summary,
    bootstrap,
    cohens_d,
    difference,
    holm,
    one_sample,
    paired,
    paired_slopes,
    repeats_needed,
    slope,
    summarize,
    welch,
)

NAN = float("nan")

# R: datasets::sleep, extra for group 1 and group 2 (the same ten patients).
SLEEP_1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
SLEEP_2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]


def _all_nan(*values: float) -> bool:
    return all(math.isnan(v) for v in values)


def test_constants() -> None:
    assert (CONFIDENCE, ALPHA, POWER) == (0.95, 0.05, 0.8)


def test_summary_is_the_t_interval_of_the_mean() -> None:
    # mean 3.5, sd sqrt(7), n 4; t(0.975, 3) = 3.182446 (tables): half-width 3.182446 * sqrt(7) / 2
    s = summarize([1.0, 2.0, 4.0, 7.0])
    assert isinstance(s, Summary)
    assert (s.n, s.mean) == (4, 3.5)
    assert s.std == pytest.approx(math.sqrt(7.0))
    half = 3.182446 * math.sqrt(7.0) / 2
    assert (s.ci_low, s.ci_high) == (pytest.approx(3.5 - half, abs=1e-5), pytest.approx(3.5 + half, abs=1e-5))
    narrow = summarize([1.0, 2.0, 4.0, 7.0], confidence=0.5)
    assert s.ci_low < narrow.ci_low < narrow.ci_high < s.ci_high


@pytest.mark.filterwarnings("error")  # not even a warning
def test_summary_of_few_constant_or_non_finite_values() -> None:
    empty = summarize([])
    assert empty.n == 0 and _all_nan(empty.mean, empty.std, empty.ci_low, empty.ci_high)
    one = summarize([3.0, NAN, math.inf, -math.inf])
    assert (one.n, one.mean) == (1, 3.0) and _all_nan(one.std, one.ci_low, one.ci_high)
    flat = summarize([2.0, 2.0, 2.0])
    assert (flat.n, flat.std, flat.ci_low, flat.ci_high) == (3, 0.0, 2.0, 2.0)


def test_paired_t_on_the_sleep_data() -> None:
    # R: t.test(extra ~ group, data = sleep, paired = TRUE)
    d = paired(SLEEP_1, SLEEP_2)
    assert isinstance(d, Difference) and d.method == "paired"
    assert d.effect == pytest.approx(-1.58)
    assert (d.ci_low, d.ci_high) == (pytest.approx(-2.4598858, abs=1e-6), pytest.approx(-0.7001142, abs=1e-6))
    assert d.p_value == pytest.approx(0.002833, abs=1e-6)
    diffs = np.subtract(SLEEP_1, SLEEP_2)
    assert d.spread == pytest.approx(np.std(diffs, ddof=1))
    assert d.cohens_d == pytest.approx(-1.58 / np.std(diffs, ddof=1))  # d_z
    assert (d.n_a, d.n_b) == (10, 10)


def test_welch_t_on_the_sleep_data() -> None:
    # R: t.test(extra ~ group, data = sleep)
    d = welch(SLEEP_1, SLEEP_2)
    assert d.method == "welch"
    assert d.effect == pytest.approx(-1.58)
    assert (d.ci_low, d.ci_high) == (pytest.approx(-3.3654832, abs=1e-6), pytest.approx(0.2054832, abs=1e-6))
    assert d.p_value == pytest.approx(0.07939, abs=1e-5)
    pooled = math.sqrt((np.var(SLEEP_1, ddof=1) + np.var(SLEEP_2, ddof=1)) / 2)  # equal n
    assert d.spread == pytest.approx(pooled)
    assert d.cohens_d == pytest.approx(-1.58 / pooled) == cohens_d(SLEEP_1, SLEEP_2)


def test_one_sample_t_on_the_sleep_data() -> None:
    # R: t.test(sleep$extra[1:10], mu = 0): mean 0.75, CI -0.5297804 2.0297804, p = 0.2176
    d = one_sample(SLEEP_1)
    assert (d.method, d.n_a, d.n_b) == ("one-sample", 10, 0)
    assert d.effect == pytest.approx(0.75)
    assert (d.ci_low, d.ci_high) == (pytest.approx(-0.5297804, abs=1e-6), pytest.approx(2.0297804, abs=1e-6))
    assert d.p_value == pytest.approx(0.2176, abs=1e-4)
    assert d.spread == pytest.approx(np.std(SLEEP_1, ddof=1))
    # Testing against another value shifts the effect and the interval, not the spread.
    shifted = one_sample(SLEEP_1, value=0.75)
    assert shifted.effect == pytest.approx(0.0) and shifted.p_value == pytest.approx(1.0)
    assert (shifted.ci_low, shifted.ci_high) == (pytest.approx(d.ci_low - 0.75), pytest.approx(d.ci_high - 0.75))
    assert shifted.spread == pytest.approx(d.spread)


def test_paired_difference_is_one_sample_of_the_differences() -> None:
    p = paired(SLEEP_1, SLEEP_2)
    o = one_sample(np.subtract(SLEEP_1, SLEEP_2))
    assert (p.ci_low, p.ci_high, p.p_value) == (pytest.approx(o.ci_low), pytest.approx(o.ci_high),
                                                pytest.approx(o.p_value))


def test_pairing_removes_shared_per_pair_offsets() -> None:
    rng = np.random.default_rng(3)
    offsets = rng.normal(0.0, 1.0, 8)  # e.g. one data split per seed, shared by both arms
    a = 0.80 + offsets + rng.normal(0.0, 0.01, 8)
    b = 0.75 + offsets + rng.normal(0.0, 0.01, 8)
    p, w = paired(a, b), welch(a, b)
    assert p.ci_high - p.ci_low < 0.1 * (w.ci_high - w.ci_low)
    assert p.ci_low > 0 and w.ci_low < 0 < w.ci_high
    assert p.p_value < 0.001 < 0.05 < w.p_value
    assert p.spread < 0.1 * w.spread
    assert difference(a, b, paired=True) == p and difference(a, b) == w


def test_paired_drops_pairs_with_a_non_finite_side() -> None:
    d = paired([1.0, NAN, 3.0, 5.0, 4.0], [0.5, 2.0, math.inf, 4.0, 2.0])
    assert (d.n_a, d.n_b) == (3, 3)
    assert d.effect == pytest.approx(np.mean([0.5, 1.0, 2.0]))


def test_paired_refuses_sequences_of_unequal_length() -> None:
    with pytest.raises(ValueError, match="equal length"):
        paired([1.0, 2.0, 3.0], [1.0, 2.0])


@pytest.mark.filterwarnings("error")  # not even a warning
def test_degenerate_differences_give_nan_not_errors() -> None:
    for d in (welch([1.0], [0.0, 0.1]), bootstrap([1.0], [0.0, 0.1]), paired([1.0], [0.0]),
              bootstrap([1.0, NAN], [0.0, 0.2], paired=True), one_sample([1.0, NAN])):
        assert d.effect == pytest.approx(1.0 if d.method != "welch" and d.method != "bootstrap" else 0.95)
        assert _all_nan(d.ci_low, d.ci_high, d.p_value, d.cohens_d, d.spread)
    for d in (welch([], [1.0, 2.0]), paired([], []), one_sample([NAN, math.inf])):
        assert _all_nan(d.effect, d.ci_low, d.ci_high, d.p_value)
    assert math.isnan(cohens_d([1.0], [1.0, 2.0]))


@pytest.mark.filterwarnings("error")  # not even a warning
def test_zero_spread_gives_a_point_interval() -> None:
    d = welch([1.0, 1.0], [0.5, 0.5])
    assert (d.effect, d.ci_low, d.ci_high, d.p_value, d.spread, d.cohens_d) == (0.5, 0.5, 0.5, 0.0, 0.0, math.inf)
    same = paired([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert (same.effect, same.ci_low, same.ci_high) == (0.0, 0.0, 0.0)
    assert _all_nan(same.p_value, same.cohens_d)
    assert cohens_d([0.5, 0.5], [1.0, 1.0]) == -math.inf
    assert math.isnan(cohens_d([1.0, 1.0], [1.0, 1.0]))


def test_bootstrap_is_reproducible_and_near_the_t_interval() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(1.0, 0.2, 30), rng.normal(0.8, 0.2, 30)
    one, two = bootstrap(a, b), bootstrap(a, b)
    assert one == two and one.method == "bootstrap"
    other_seed = bootstrap(a, b, seed=1)
    assert (other_seed.ci_low, other_seed.ci_high) != (one.ci_low, one.ci_high)
    w = welch(a, b)
    assert one.effect == pytest.approx(w.effect)
    assert one.ci_low == pytest.approx(w.ci_low, abs=0.02) and one.ci_high == pytest.approx(w.ci_high, abs=0.02)
    assert one.p_value < 0.01 and w.p_value < 0.01
    assert (one.spread, one.cohens_d) == (pytest.approx(w.spread), pytest.approx(w.cohens_d))


def test_paired_bootstrap_on_the_sleep_data() -> None:
    d = bootstrap(SLEEP_1, SLEEP_2, paired=True)
    t = paired(SLEEP_1, SLEEP_2)
    assert d.method == "paired bootstrap" and (d.n_a, d.n_b) == (10, 10)
    assert (d.effect, d.spread, d.cohens_d) == (pytest.approx(t.effect), pytest.approx(t.spread),
                                               pytest.approx(t.cohens_d))
    # With 10 pairs the percentile interval is about the normal one with the plug-in sd (ddof 0),
    # a little narrower than the t interval.
    half = 1.959964 * t.spread * math.sqrt(0.9 / 10)
    assert d.ci_low == pytest.approx(-1.58 - half, abs=0.15) and d.ci_high == pytest.approx(-1.58 + half, abs=0.15)
    assert t.ci_low < d.ci_low < d.ci_high < t.ci_high
    assert d.ci_high < 0 and d.p_value < 0.01
    assert difference(SLEEP_1, SLEEP_2, "bootstrap", paired=True) == d
    # Unpaired, the same data straddle 0 far more often.
    assert bootstrap(SLEEP_1, SLEEP_2).p_value > 10 * d.p_value


def test_bootstrap_p_value_of_no_difference_is_near_one() -> None:
    rng = np.random.default_rng(7)
    a = rng.normal(0.0, 1.0, 40)
    d = bootstrap(a, a[::-1].copy())
    assert d.effect == pytest.approx(0.0, abs=1e-12) and d.p_value > 0.9 and d.p_value <= 1.0


def test_difference_refuses_an_unknown_method() -> None:
    with pytest.raises(ValueError, match="'welch' or 'bootstrap'"):
        difference([1.0, 2.0], [1.0, 2.0], "anova")


def test_slope_matches_linregress_and_reports_spearman() -> None:
    x = np.repeat([1.0, 2.0, 3.0, 4.0], 3)
    y = 0.5 * x + np.tile([0.0, 0.1, -0.1], 4)
    fit = slope(x, y)
    ref = st.linregress(x, y)
    half = st.t.ppf(0.975, len(x) - 2) * ref.stderr
    assert isinstance(fit, Slope) and (fit.method, fit.n, fit.n_units) == ("t", 12, 3)
    assert fit.slope == pytest.approx(0.5)
    assert (fit.ci_low, fit.ci_high) == (pytest.approx(0.5 - half), pytest.approx(0.5 + half))
    assert fit.p_value == pytest.approx(ref.pvalue) and fit.spread == pytest.approx(ref.stderr)
    rho = st.spearmanr(x, y)
    assert (fit.rho, fit.rho_p) == (pytest.approx(rho.statistic), pytest.approx(rho.pvalue))
    assert slope(x, y, "welch") == fit  # the old name of the t method


def test_slope_bootstrap_resamples_within_x_levels() -> None:
    rng = np.random.default_rng(2)
    x = np.repeat([1.0, 2.0, 3.0, 4.0, 5.0], 6)
    y = 0.3 * x + rng.normal(0.0, 0.2, len(x))
    t, boot = slope(x, y), slope(x, y, "bootstrap")
    assert boot.method == "bootstrap" and boot.slope == t.slope and boot.n_units == 6
    assert boot.ci_low == pytest.approx(t.ci_low, abs=0.03) and boot.ci_high == pytest.approx(t.ci_high, abs=0.03)
    assert boot.p_value == 0.0 and boot == slope(x, y, "bootstrap")
    # One run at some x level: nothing to resample there, so no interval.
    lone = slope(np.r_[x, 6.0], np.r_[y, 1.8], "bootstrap")
    assert lone.n_units == 1 and _all_nan(lone.ci_low, lone.ci_high, lone.p_value)
    assert lone.slope == pytest.approx(st.linregress(np.r_[x, 6.0], np.r_[y, 1.8]).slope)


def test_slope_refuses_an_unknown_method() -> None:
    with pytest.raises(ValueError, match="bootstrap"):
        slope([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], "anova")


@pytest.mark.filterwarnings("error")  # not even a warning
def test_degenerate_slopes_give_nan_not_errors() -> None:
    same_x = slope([1.0, 1.0, 1.0], [0.1, 0.2, 0.3])
    assert _all_nan(same_x.slope, same_x.ci_low, same_x.ci_high, same_x.p_value, same_x.rho)
    two = slope([1.0, 2.0], [0.1, 0.3])
    assert two.slope == pytest.approx(0.2) and _all_nan(two.ci_low, two.ci_high, two.p_value, two.rho)
    flat = slope([1.0, 2.0, 3.0, NAN], [0.5, 0.5, 0.5, 1.0])
    assert (flat.n, flat.slope, flat.ci_low, flat.ci_high) == (3, 0.0, 0.0, 0.0)
    assert _all_nan(flat.rho, flat.rho_p, flat.p_value)
    assert slope([], []).n == 0
    for method in ("t", "bootstrap"):
        assert math.isnan(slope([1.0, 2.0, math.inf], [NAN, 1.0, 2.0], method).slope)


def test_paired_slopes_cancel_per_repeat_offsets() -> None:
    levels = np.array([1.0, 2.0, 3.0, 4.0])
    true_slopes, offsets = [0.49, 0.50, 0.51], [0.0, 3.0, -3.0]
    x = np.concatenate([levels] * 3)
    y = np.concatenate([o + s * levels for s, o in zip(true_slopes, offsets, strict=True)])
    groups = np.repeat([0, 1, 2], 4)
    fit = paired_slopes(x, y, groups)
    # one-sample t on [0.49, 0.50, 0.51]: sd 0.01, t(0.975, 2) = 4.302653
    half = 4.302653 * 0.01 / math.sqrt(3)
    assert (fit.method, fit.n, fit.n_units) == ("paired slopes", 12, 3)
    assert fit.slope == pytest.approx(0.5)
    assert (fit.ci_low, fit.ci_high) == (pytest.approx(0.5 - half, abs=1e-6), pytest.approx(0.5 + half, abs=1e-6))
    assert fit.spread == pytest.approx(0.01)
    assert fit.p_value == pytest.approx(st.ttest_1samp(true_slopes, 0.0).pvalue)
    rho = st.spearmanr(x, y)
    assert (fit.rho, fit.rho_p) == (pytest.approx(rho.statistic), pytest.approx(rho.pvalue))
    pooled = slope(x, y)
    assert pooled.slope == pytest.approx(0.5)
    assert pooled.ci_high - pooled.ci_low > 20 * (fit.ci_high - fit.ci_low)
    assert pooled.ci_low < 0 < pooled.ci_high


def test_paired_slopes_with_identical_repeats_is_a_point() -> None:
    x = np.tile([1.0, 2.0, 3.0], 3)
    y = 0.25 * x + np.repeat([0.0, 1.0, 2.0], 3)
    fit = paired_slopes(x, y, np.repeat(["a", "b", "c"], 3))
    assert fit.slope == pytest.approx(0.25)
    assert fit.ci_high - fit.ci_low < 1e-12 and fit.spread < 1e-12


def test_paired_slopes_leave_out_groups_without_a_trend_and_non_finite_points() -> None:
    x = [1.0, 2.0, 3.0, 1.0, 2.0, NAN, 2.0, 2.0, 1.0]
    y = [1.0, 2.0, 3.0, 0.0, 2.0, 9.0, 5.0, 6.0, 4.0]
    g = [0, 0, 0, 1, 1, 1, 2, 2, NAN]  # group 2 has a single x; the last point has no group
    fit = paired_slopes(x, y, g)
    assert fit.n_units == 2 and fit.n == 7
    assert fit.slope == pytest.approx(1.5)  # mean of slopes 1 and 2
    assert fit.spread == pytest.approx(np.std([1.0, 2.0], ddof=1))


@pytest.mark.filterwarnings("error")  # not even a warning
def test_paired_slopes_with_too_few_repeats_give_nan() -> None:
    one = paired_slopes([1.0, 2.0, 3.0], [1.0, 2.0, 3.5], [0, 0, 0])
    assert one.n_units == 1 and one.slope == pytest.approx(1.25)
    assert _all_nan(one.ci_low, one.ci_high, one.p_value, one.spread)
    none = paired_slopes([1.0, 1.0], [1.0, 2.0], [0, 1])
    assert none.n_units == 0 and _all_nan(none.slope, none.ci_low, none.rho)


@pytest.mark.filterwarnings("error")  # not even a warning
def test_holm_adjustment() -> None:
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    # NaN stays NaN and is not part of the family: m = 4, not 5.
    out = holm([0.01, NAN, 0.04, 0.03, 0.005])
    assert math.isnan(out[1])
    np.testing.assert_allclose(out[[0, 2, 3, 4]], [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(holm([0.5, 0.3]), [0.6, 0.6])  # monotone: 0.5 * 1 is raised to 0.6
    np.testing.assert_allclose(holm([0.9, 0.6, 0.02]), [1.0, 1.0, 0.06])
    assert holm([]).shape == (0,) and _all_nan(*holm([NAN, NAN]))


@pytest.mark.parametrize(("design", "expected"), [("paired", 10), ("one_sample", 10), ("two_sample", 17)])
def test_repeats_needed_matches_power_t_test(design: str, expected: int) -> None:
    # R: power.t.test(delta = 1, sd = 1, power = 0.8, type = ...)$n = 9.94 (paired), 16.71 (two.sample)
    assert repeats_needed(1.0, 1.0, design) == expected
    assert repeats_needed(-2.0, 2.0, design) == expected  # only |effect| / spread matters


def test_repeats_needed_for_a_small_effect() -> None:
    # R: power.t.test(delta = 0.1, sd = 1, power = 0.8, type = "paired")$n = 786.8
    assert repeats_needed(0.1, 1.0) == 787
    assert repeats_needed(0.1, 1.0, power=0.9) > 787
    assert repeats_needed(0.1, 1.0, alpha=0.01) > 787


def test_repeats_needed_when_there_is_no_answer() -> None:
    for effect, spread in ((0.0, 1.0), (NAN, 1.0), (math.inf, 1.0), (1.0, 0.0), (1.0, -1.0), (1.0, NAN)):
        assert repeats_needed(effect, spread) is None
    assert repeats_needed(0.01, 1.0) is None  # would need about 78,500
    assert repeats_needed(1.0, 1.0, max_n=9) is None and repeats_needed(1.0, 1.0, max_n=10) == 10
    with pytest.raises(ValueError, match="two_sample"):
        repeats_needed(1.0, 1.0, "anova")
