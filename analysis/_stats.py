"""Statistics over repeated runs (seeds), on ``scipy.stats``: summaries with t intervals, differences
of means (paired t, Welch t, bootstrap, one-sample t) with Cohen's d and p-values, trend slopes
(pooled least squares or per-repeat slopes) with Spearman's rho, Holm adjustment, and the number of
repeats a t-test needs for a given power.

Every function takes plain sequences of floats and drops non-finite values (for paired data, the
pairs where either side is non-finite). Where the data are too few for a quantity it is NaN; only
invalid arguments (an unknown method or design, paired sequences of unequal length) raise.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
ALPHA = 0.05
POWER = 0.8

NAN = float("nan")
Values = Sequence[float] | np.ndarray

# scipy >= 1.15 seeds resampling with ``rng``; older releases call it ``random_state``.
_RNG_KEYWORD = "rng" if "rng" in inspect.signature(stats.bootstrap).parameters else "random_state"


def _clean(values: Values) -> np.ndarray:
    arr = np.asarray(values, dtype=float).ravel()
    return arr[np.isfinite(arr)]


def _clean_pairs(a: Values, b: Values, what: str = "paired data") -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if len(x) != len(y):
        raise ValueError(f"{what} needs sequences of equal length, but got {len(x)} and {len(y)}")
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep], y[keep]


def _mean(x: np.ndarray) -> float:
    return float(np.mean(x)) if len(x) else NAN


def _sd(x: np.ndarray) -> float:
    return float(np.std(x, ddof=1)) if len(x) >= 2 else NAN


def _ratio(effect: float, spread: float) -> float:
    """effect / spread, with inf (signed) for a zero spread and a non-zero effect, NaN for 0 / 0."""
    if math.isnan(effect) or math.isnan(spread):
        return NAN
    if spread == 0:
        return NAN if effect == 0 else math.copysign(math.inf, effect)
    return effect / spread


def _point_p(effect: float) -> float:
    """The p-value when the estimate has no sampling spread: certain unless the effect is 0 (0 / 0)."""
    return NAN if effect == 0 or math.isnan(effect) else 0.0


def _tail_p(distribution: np.ndarray) -> float:
    """Two-sided p of 0 from a bootstrap distribution: twice the smaller share on either side of 0."""
    dist = np.asarray(distribution, dtype=float)
    dist = dist[np.isfinite(dist)]
    if not len(dist):
        return NAN
    return float(min(1.0, 2 * min(np.mean(dist <= 0), np.mean(dist >= 0))))


def _rng_kwargs(seed: int) -> dict[str, Any]:
    return {_RNG_KEYWORD: np.random.default_rng(seed)}


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float


def summarize(values: Values, confidence: float = CONFIDENCE) -> Summary:
    """Mean, sample sd and the t interval of the mean (NaN interval when n < 2; a point when sd = 0)."""
    x = _clean(values)
    n, mean, sd = len(x), _mean(x), _sd(x)
    if n < 2:
        return Summary(n, mean, sd, NAN, NAN)
    if sd == 0:
        return Summary(n, mean, sd, mean, mean)
    low, high = stats.t.interval(confidence, n - 1, loc=mean, scale=sd / math.sqrt(n))
    return Summary(n, mean, sd, float(low), float(high))


@dataclass(frozen=True)
class Difference:
    """An effect (mean(a) - mean(b), or mean - value for one sample), its interval and p-value."""

    effect: float
    ci_low: float
    ci_high: float
    cohens_d: float
    n_a: int
    n_b: int
    method: str  # "paired", "welch", "paired bootstrap", "bootstrap", "one-sample"
    p_value: float  # two-sided p of effect == 0 (NaN when untestable)
    spread: float  # sd of paired differences, pooled sd (welch, bootstrap), or sd (one-sample)


def _pooled_sd(x: np.ndarray, y: np.ndarray) -> float:
    if len(x) < 2 or len(y) < 2:
        return NAN
    pooled = ((len(x) - 1) * np.var(x, ddof=1) + (len(y) - 1) * np.var(y, ddof=1)) / (len(x) + len(y) - 2)
    return math.sqrt(float(pooled))


def cohens_d(a: Values, b: Values) -> float:
    """(mean(a) - mean(b)) / pooled sd; inf with the sign of the difference when the pooled sd is 0,
    NaN when the means are also equal or either side has fewer than 2 values."""
    x, y = _clean(a), _clean(b)
    if len(x) < 2 or len(y) < 2:
        return NAN
    return _ratio(_mean(x) - _mean(y), _pooled_sd(x, y))


def _one_sample_t(d: np.ndarray, value: float, confidence: float, method: str, n_b: int) -> Difference:
    """t interval and test of mean(d) - value; shared by ``paired`` (d = a - b) and ``one_sample``."""
    n, sd = len(d), _sd(d)
    effect = _mean(d) - value
    if n < 2:
        return Difference(effect, NAN, NAN, NAN, n, n_b, method, NAN, sd)
    if sd == 0:
        return Difference(effect, effect, effect, _ratio(effect, sd), n, n_b, method, _point_p(effect), sd)
    res = stats.ttest_1samp(d, popmean=value)
    ci = res.confidence_interval(confidence_level=confidence)
    return Difference(effect, float(ci.low) - value, float(ci.high) - value, effect / sd, n, n_b, method,
                      float(res.pvalue), sd)


def _paired(a: Values, b: Values, confidence: float) -> Difference:
    x, y = _clean_pairs(a, b)
    d = _one_sample_t(x - y, 0.0, confidence, "paired", len(x))
    if len(x) >= 2 and d.spread > 0:  # the interval and p-value of ttest_rel itself
        res = stats.ttest_rel(x, y)
        ci = res.confidence_interval(confidence_level=confidence)
        d = Difference(d.effect, float(ci.low), float(ci.high), d.cohens_d, d.n_a, d.n_b, d.method,
                       float(res.pvalue), d.spread)
    return d


def paired(a: Values, b: Values, confidence: float = CONFIDENCE) -> Difference:
    """Paired t (``scipy.stats.ttest_rel``) for mean(a - b): a and b are matched element by element
    (same seed, same repeat); pairs with a non-finite side are dropped. cohens_d is d_z = mean / sd of
    the differences; n_a = n_b = pairs used. Sequences of unequal length raise ValueError."""
    return _paired(a, b, confidence)


def welch(a: Values, b: Values, confidence: float = CONFIDENCE) -> Difference:
    """Welch t (``scipy.stats.ttest_ind(equal_var=False)``) for mean(a) - mean(b); cohens_d and spread
    use the pooled sd."""
    x, y = _clean(a), _clean(b)
    effect = _mean(x) - _mean(y)
    if len(x) < 2 or len(y) < 2:
        return Difference(effect, NAN, NAN, NAN, len(x), len(y), "welch", NAN, NAN)
    pooled = _pooled_sd(x, y)
    d = _ratio(effect, pooled)
    if pooled == 0:
        return Difference(effect, effect, effect, d, len(x), len(y), "welch", _point_p(effect), pooled)
    res = stats.ttest_ind(x, y, equal_var=False)
    ci = res.confidence_interval(confidence_level=confidence)
    return Difference(effect, float(ci.low), float(ci.high), d, len(x), len(y), "welch", float(res.pvalue),
                      pooled)


def _mean_difference(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)


def bootstrap(a: Values, b: Values, confidence: float = CONFIDENCE, paired: bool = False,
              n_resamples: int = 10_000, seed: int = 0) -> Difference:
    """Percentile bootstrap (``scipy.stats.bootstrap``) of mean(a) - mean(b), reproducible for a given
    seed. Unpaired: each side is resampled on its own; cohens_d and spread use the pooled sd. Paired:
    the differences a - b are resampled; cohens_d is d_z and spread the sd of the differences. The
    p-value is twice the smaller share of the bootstrap distribution on either side of 0, capped at 1."""
    if paired:
        x, y = _clean_pairs(a, b)
        diffs = x - y
        method, n_a, n_b = "paired bootstrap", len(x), len(x)
        spread = _sd(diffs)
        effect = _mean(diffs)
        data: tuple[np.ndarray, ...] = (diffs,)
        statistic: Any = np.mean
    else:
        x, y = _clean(a), _clean(b)
        method, n_a, n_b = "bootstrap", len(x), len(y)
        spread = _pooled_sd(x, y)
        effect = _mean(x) - _mean(y)
        data, statistic = (x, y), _mean_difference
    if min(n_a, n_b) < 2:
        return Difference(effect, NAN, NAN, NAN, n_a, n_b, method, NAN, NAN)
    d = _ratio(effect, spread)
    if spread == 0:
        return Difference(effect, effect, effect, d, n_a, n_b, method, _point_p(effect), spread)
    res = stats.bootstrap(data, statistic, n_resamples=n_resamples, confidence_level=confidence,
                          method="percentile", vectorized=True, **_rng_kwargs(seed))
    ci = res.confidence_interval
    return Difference(effect, float(ci.low), float(ci.high), d, n_a, n_b, method,
                      _tail_p(res.bootstrap_distribution), spread)


def difference(a: Values, b: Values, method: str = "welch", confidence: float = CONFIDENCE,
               paired: bool = False) -> Difference:
    """mean(a) - mean(b) by ``method``: "welch" (the paired t when ``paired``) or "bootstrap"
    (resampling pairs when ``paired``)."""
    if method == "welch":
        return _paired(a, b, confidence) if paired else welch(a, b, confidence)
    if method == "bootstrap":
        return bootstrap(a, b, confidence, paired=paired)
    raise ValueError(f"method must be 'welch' or 'bootstrap', but got {method!r}")


def one_sample(values: Values, value: float = 0.0, confidence: float = CONFIDENCE) -> Difference:
    """One-sample t (``scipy.stats.ttest_1samp``) of mean - value; cohens_d = (mean - value) / sd;
    n_b = 0."""
    return _one_sample_t(_clean(values), float(value), confidence, "one-sample", 0)


@dataclass(frozen=True)
class Slope:
    """Least-squares slope of y on x, its interval and p-value, and Spearman's rho over the points."""

    slope: float
    ci_low: float
    ci_high: float
    rho: float
    rho_p: float
    n: int  # points used
    method: str  # "t", "bootstrap", "paired slopes"
    p_value: float  # two-sided p of slope == 0
    spread: float  # sd of the per-repeat slopes ("paired slopes"), else the slope's standard error
    n_units: int  # runs per x level (the fewest) for "t"/"bootstrap"; repeats for "paired slopes"


def _ols_slope(x: np.ndarray, y: np.ndarray) -> float:
    xc = x - x.mean()
    sxx = float(np.sum(xc * xc))
    return NAN if sxx == 0 else float(np.sum(xc * (y - y.mean())) / sxx)


def _spearman(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    if len(x) < 3 or np.all(x == x[0]) or np.all(y == y[0]):
        return NAN, NAN
    res = stats.spearmanr(x, y)
    return float(res.statistic), float(res.pvalue)


def _min_runs(x: np.ndarray) -> int:
    return int(np.unique(x, return_counts=True)[1].min()) if len(x) else 0


def _bootstrap_slope(x: np.ndarray, y: np.ndarray, confidence: float, n_resamples: int,
                     seed: int) -> tuple[float, float, float]:
    """Percentile interval and p of the slope, resampling the runs within each x level (the x design
    stays fixed); NaN unless every level has at least 2 runs."""
    levels, counts = np.unique(x, return_counts=True)
    if counts.min() < 2:
        return NAN, NAN, NAN
    # With x and the number of runs per level fixed, the OLS slope is sum_k (x_k - xbar) * sum(y_k) / Sxx.
    weights = (levels - np.mean(x)) / float(np.sum((x - np.mean(x)) ** 2))
    samples = tuple(y[x == level] for level in levels)

    def statistic(*ys: np.ndarray, axis: int = -1) -> np.ndarray:
        return sum(w * np.sum(yk, axis=axis) for w, yk in zip(weights, ys, strict=True))

    res = stats.bootstrap(samples, statistic, n_resamples=n_resamples, confidence_level=confidence,
                          method="percentile", vectorized=True, **_rng_kwargs(seed))
    ci = res.confidence_interval
    return float(ci.low), float(ci.high), _tail_p(res.bootstrap_distribution)


def slope(x: Values, y: Values, method: str = "t", confidence: float = CONFIDENCE, n_resamples: int = 10_000,
          seed: int = 0) -> Slope:
    """Least-squares slope of y on x (``scipy.stats.linregress``) with a t interval on n - 2 degrees of
    freedom (``method="t"``; "welch" is accepted as an alias), or a percentile bootstrap that resamples
    runs within each x level (``method="bootstrap"``; needs 2 or more runs at every level). rho and
    rho_p are Spearman's (``scipy.stats.spearmanr``), NaN when either side is constant."""
    if method == "welch":
        method = "t"
    if method not in ("t", "bootstrap"):
        raise ValueError(f"method must be 't' (alias 'welch') or 'bootstrap', but got {method!r}")
    xa, ya = _clean_pairs(x, y, "slope")
    n, n_units = len(xa), _min_runs(xa)
    distinct = len(np.unique(xa))
    b = _ols_slope(xa, ya) if distinct >= 2 else NAN
    rho, rho_p = _spearman(xa, ya)
    if n < 3 or distinct < 2:
        return Slope(b, NAN, NAN, rho, rho_p, n, method, NAN, NAN, n_units)
    if np.all(ya == ya[0]):  # linregress gives NaN here; the fit is exact
        se, low, high, p = 0.0, b, b, _point_p(b)
    else:
        fit = stats.linregress(xa, ya)
        b, se = float(fit.slope), float(fit.stderr)
        if se == 0:
            low, high, p = b, b, _point_p(b)
        else:
            half = float(stats.t.ppf(0.5 + confidence / 2, n - 2)) * se
            low, high, p = b - half, b + half, float(fit.pvalue)
    if method == "bootstrap":
        low, high, p = _bootstrap_slope(xa, ya, confidence, n_resamples, seed)
    return Slope(b, low, high, rho, rho_p, n, method, p, se, n_units)


def paired_slopes(x: Values, y: Values, groups: Sequence[Hashable] | np.ndarray,
                  confidence: float = CONFIDENCE) -> Slope:
    """The trend as repeats see it: one OLS slope per group (a repeat index shared across x levels;
    groups with fewer than 2 distinct x are left out), then a one-sample t (``scipy.stats.ttest_1samp``)
    on those slopes, which gives the slope (their mean), its interval and p. Offsets shared within a
    repeat cancel. rho and rho_p are Spearman's over all points; n counts the points, n_units the
    slopes."""
    xa, ya = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    ga = np.asarray(groups, dtype=object).ravel()
    if not len(xa) == len(ya) == len(ga):
        raise ValueError(f"paired_slopes needs x, y and groups of equal length, but got "
                         f"{len(xa)}, {len(ya)} and {len(ga)}")
    keep = np.isfinite(xa) & np.isfinite(ya) & np.array([not _is_missing(g) for g in ga], dtype=bool)
    xa, ya, ga = xa[keep], ya[keep], ga[keep]
    rho, rho_p = _spearman(xa, ya)
    members: dict[Hashable, list[int]] = {}
    for i, g in enumerate(ga):
        members.setdefault(g, []).append(i)
    slopes = np.array([_ols_slope(xa[idx], ya[idx]) for idx in map(np.asarray, members.values())
                       if len(np.unique(xa[idx])) >= 2])
    d = _one_sample_t(slopes, 0.0, confidence, "paired slopes", 0)
    return Slope(d.effect, d.ci_low, d.ci_high, rho, rho_p, len(xa), "paired slopes", d.p_value, d.spread,
                 len(slopes))


def _is_missing(g: object) -> bool:
    return g is None or (isinstance(g, float | np.floating) and not math.isfinite(g))


def holm(p_values: Values) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values in input order: monotone in the sorted p and capped at 1. NaN
    (and other non-finite) entries stay NaN and do not count in the family size."""
    p = np.asarray(p_values, dtype=float).ravel()
    out = np.full(p.shape, NAN)
    valid = np.flatnonzero(np.isfinite(p))
    m = len(valid)
    if not m:
        return out
    order = valid[np.argsort(p[valid], kind="mergesort")]
    scaled = p[order] * (m - np.arange(m))
    out[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return out


_DESIGNS = ("paired", "two_sample", "one_sample")


def _power(n: int, d: float, design: str, alpha: float) -> float:
    """Power of the two-sided t-test with n per arm (two_sample) or n observations / pairs."""
    if design == "two_sample":
        df, ncp = 2 * n - 2, d * math.sqrt(n / 2)
    else:
        df, ncp = n - 1, d * math.sqrt(n)
    crit = float(stats.t.ppf(1 - alpha / 2, df))
    # P(T > crit) + P(T < -crit); the lower tail as sf(crit, df, -ncp), which stays finite where
    # cdf(-crit, df, ncp) underflows to NaN.
    upper, lower = (float(stats.nct.sf(crit, df, sign * ncp)) for sign in (1, -1))
    return float(np.nan_to_num(upper, nan=0.0) + np.nan_to_num(lower, nan=0.0))


def repeats_needed(effect: float, spread: float, design: str = "paired", alpha: float = ALPHA,
                   power: float = POWER, max_n: int = 10_000) -> int | None:
    """The smallest n (per arm for "two_sample", pairs for "paired", observations for "one_sample") at
    which a two-sided t-test at level alpha detects ``effect`` with at least ``power``, given the sd
    ``spread``; exact, with the noncentral t. None when the effect is 0 or not finite, the spread not
    finite and positive, or n would exceed max_n."""
    if design not in _DESIGNS:
        raise ValueError(f"design must be one of {', '.join(map(repr, _DESIGNS))}, but got {design!r}")
    if not (math.isfinite(effect) and effect != 0 and math.isfinite(spread) and spread > 0):
        return None
    d = abs(effect) / spread
    max_n = int(max_n)
    low, high = 2, 2
    while _power(high, d, design, alpha) < power:  # power grows with n: double, then bisect
        if high >= max_n:
            return None
        low, high = high + 1, min(2 * high, max_n)
    while low < high:
        mid = (low + high) // 2
        if _power(mid, d, design, alpha) >= power:
            high = mid
        else:
            low = mid + 1
    return low
