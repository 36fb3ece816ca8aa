"""Statistics over seeds: mean, std, n and a 95% CI; differences of means (Welch t or bootstrap) with
Cohen's d; the slope of a trend with its CI; Spearman's rho.

Every function takes plain sequences of floats, drops NaN and infinite values, and returns NaN where
the data are too few (n < 2) rather than raising.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special  # t quantiles and tails; scipy.stats itself costs ~1 s more to import

CONFIDENCE = 0.95
N_BOOTSTRAP = 10_000
NAN = float("nan")


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom."""
    return float(special.stdtrit(df, p))


def ranks(x: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties given their average rank."""
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    starts = np.flatnonzero(np.r_[True, sorted_x[1:] != sorted_x[:-1]])
    ends = np.r_[starts[1:], len(x)]
    average = (starts + ends + 1) / 2.0  # ranks starts+1 .. ends, averaged
    out = np.empty(len(x))
    out[order] = np.repeat(average, ends - starts)
    return out


def spearman(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Spearman's rho (Pearson's r of the ranks) and its two-sided p-value from the t distribution
    with n - 2 degrees of freedom; NaN when either side is constant or n < 3."""
    n = len(x)
    if n < 3:
        return NAN, NAN
    rx, ry = ranks(np.asarray(x, dtype=float)), ranks(np.asarray(y, dtype=float))
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denom = math.sqrt(float(np.sum(rx * rx) * np.sum(ry * ry)))
    if denom == 0:
        return NAN, NAN
    rho = max(-1.0, min(1.0, float(np.sum(rx * ry)) / denom))
    if abs(rho) == 1.0:
        return rho, 0.0
    t = rho * math.sqrt((n - 2) / ((1.0 - rho) * (1.0 + rho)))
    return rho, float(2 * special.stdtr(n - 2, -abs(t)))


def clean(values: Sequence[float] | np.ndarray) -> np.ndarray:
    arr = np.asarray(values, dtype=float).ravel()
    return arr[np.isfinite(arr)]


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float


def summarize(values: Sequence[float] | np.ndarray, confidence: float = CONFIDENCE) -> Summary:
    """Mean, sample std and the t-interval of the mean (NaN interval when n < 2)."""
    x = clean(values)
    n = len(x)
    if n == 0:
        return Summary(0, NAN, NAN, NAN, NAN)
    mean = float(np.mean(x))
    if n < 2:
        return Summary(1, mean, NAN, NAN, NAN)
    std = float(np.std(x, ddof=1))
    half = float(t_quantile(0.5 + confidence / 2, n - 1)) * std / math.sqrt(n)
    return Summary(n, mean, std, mean - half, mean + half)


@dataclass(frozen=True)
class Difference:
    """mean(a) - mean(b), its confidence interval, and Cohen's d."""

    effect: float
    ci_low: float
    ci_high: float
    cohens_d: float
    n_a: int
    n_b: int
    method: str


def cohens_d(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Difference of means over the pooled standard deviation (NaN when either side has n < 2)."""
    x, y = clean(a), clean(b)
    if len(x) < 2 or len(y) < 2:
        return NAN
    pooled = ((len(x) - 1) * np.var(x, ddof=1) + (len(y) - 1) * np.var(y, ddof=1)) / (len(x) + len(y) - 2)
    diff = float(np.mean(x) - np.mean(y))
    if pooled <= 0:
        return NAN if diff == 0 else math.copysign(math.inf, diff)
    return diff / math.sqrt(float(pooled))


def welch(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray,
          confidence: float = CONFIDENCE) -> Difference:
    """Welch's t interval for mean(a) - mean(b) (unequal variances)."""
    x, y = clean(a), clean(b)
    if len(x) < 2 or len(y) < 2:
        effect = float(np.mean(x) - np.mean(y)) if len(x) and len(y) else NAN
        return Difference(effect, NAN, NAN, NAN, len(x), len(y), "welch")
    va, vb = np.var(x, ddof=1) / len(x), np.var(y, ddof=1) / len(y)
    effect = float(np.mean(x) - np.mean(y))
    se = math.sqrt(float(va + vb))
    if se == 0:
        return Difference(effect, effect, effect, cohens_d(x, y), len(x), len(y), "welch")
    df = float((va + vb) ** 2 / (va**2 / (len(x) - 1) + vb**2 / (len(y) - 1)))
    half = float(t_quantile(0.5 + confidence / 2, df)) * se
    return Difference(effect, effect - half, effect + half, cohens_d(x, y), len(x), len(y), "welch")


def bootstrap(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray,
              confidence: float = CONFIDENCE, n_boot: int = N_BOOTSTRAP, seed: int = 0) -> Difference:
    """Percentile bootstrap interval for mean(a) - mean(b), resampling each side with replacement."""
    x, y = clean(a), clean(b)
    if len(x) < 2 or len(y) < 2:
        effect = float(np.mean(x) - np.mean(y)) if len(x) and len(y) else NAN
        return Difference(effect, NAN, NAN, NAN, len(x), len(y), "bootstrap")
    rng = np.random.default_rng(seed)
    ma = x[rng.integers(0, len(x), size=(n_boot, len(x)))].mean(axis=1)
    mb = y[rng.integers(0, len(y), size=(n_boot, len(y)))].mean(axis=1)
    diffs = ma - mb
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(diffs, [alpha, 1 - alpha])
    return Difference(float(np.mean(x) - np.mean(y)), float(lo), float(hi), cohens_d(x, y), len(x), len(y),
                      "bootstrap")


def difference(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, method: str = "welch",
               confidence: float = CONFIDENCE) -> Difference:
    if method == "welch":
        return welch(a, b, confidence)
    if method == "bootstrap":
        return bootstrap(a, b, confidence)
    raise ValueError(f"method must be 'welch' or 'bootstrap', but got {method!r}")


@dataclass(frozen=True)
class Slope:
    """Least-squares slope of y on x, its confidence interval, and Spearman's rho."""

    slope: float
    ci_low: float
    ci_high: float
    rho: float
    rho_p: float
    n: int
    method: str


def _ols_slope(x: np.ndarray, y: np.ndarray) -> float:
    xc = x - x.mean()
    denom = float(np.sum(xc * xc))
    return NAN if denom == 0 else float(np.sum(xc * (y - y.mean())) / denom)


def slope(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray, method: str = "welch",
          confidence: float = CONFIDENCE, n_boot: int = N_BOOTSTRAP, seed: int = 0) -> Slope:
    """The slope of y on x with a t interval (``method='welch'``: the t family) or a bootstrap that
    resamples runs within each x level (seeds), keeping the design fixed."""
    xa, ya = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    keep = np.isfinite(xa) & np.isfinite(ya)
    xa, ya = xa[keep], ya[keep]
    n = len(xa)
    if n < 3 or len(np.unique(xa)) < 2:
        return Slope(_ols_slope(xa, ya) if n >= 2 else NAN, NAN, NAN, NAN, NAN, n, method)
    b = _ols_slope(xa, ya)
    if len(np.unique(ya)) > 1:
        rho, rho_p = spearman(xa, ya)
    else:
        rho, rho_p = NAN, NAN
    alpha = (1 - confidence) / 2
    if method == "bootstrap":
        rng = np.random.default_rng(seed)
        levels = [np.flatnonzero(xa == v) for v in np.unique(xa)]
        draws = np.empty(n_boot)
        for i in range(n_boot):
            idx = np.concatenate([lv[rng.integers(0, len(lv), len(lv))] for lv in levels])
            draws[i] = _ols_slope(xa[idx], ya[idx])
        lo, hi = np.quantile(draws, [alpha, 1 - alpha])
        return Slope(b, float(lo), float(hi), rho, rho_p, n, method)
    resid = ya - (ya.mean() + b * (xa - xa.mean()))
    sxx = float(np.sum((xa - xa.mean()) ** 2))
    s2 = float(np.sum(resid**2)) / (n - 2)
    se = math.sqrt(s2 / sxx)
    half = float(t_quantile(1 - alpha, n - 2)) * se
    return Slope(b, b - half, b + half, rho, rho_p, n, "t")
