"""Summaries over seeds: mean and sample standard deviation, best and second best, the
relative improvement of one model over another, and paired t-tests by seed."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

DECIMALS = 4  # as shown in the tables: ranks are decided on what the reader sees


def mean_std(values) -> tuple[float, float | None]:
    """Mean and sample standard deviation (ddof=1); no deviation from a single value."""
    array = np.asarray(list(values), dtype=float)
    if array.size == 0:
        return math.nan, None
    return float(array.mean()), float(array.std(ddof=1)) if array.size > 1 else None


def rank_marks(means: dict[str, float]) -> dict[str, str]:
    """'best' / 'second' / '' per label; equal shown values share a mark."""
    shown = {label: round(value, DECIMALS) for label, value in means.items() if not math.isnan(value)}
    levels = sorted(set(shown.values()), reverse=True)
    marks = {label: "" for label in means}
    for label, value in shown.items():
        if value == levels[0]:
            marks[label] = "best"
        elif len(levels) > 1 and value == levels[1]:
            marks[label] = "second"
    return marks


def relative_improvement(value: float, over: float) -> float | None:
    """(value − over) / over in percent; undefined over a zero."""
    if over == 0 or math.isnan(over) or math.isnan(value):
        return None
    return (value - over) / over * 100.0


def paired_ttest(a: dict[int, float], b: dict[int, float]) -> tuple[float | None, int]:
    """Two-sided p-value of ``scipy.stats.ttest_rel`` over the seeds both have, and how
    many pairs that is; None with fewer than two pairs or when every difference is equal
    (the test is undefined there)."""
    seeds = sorted(set(a) & set(b))
    if len(seeds) < 2:
        return None, len(seeds)
    x, y = np.array([a[s] for s in seeds]), np.array([b[s] for s in seeds])
    if np.ptp(x - y) <= 1e-12 * max(1.0, float(np.abs(x - y).max())):  # scipy's answer there is rounding noise
        return None, len(seeds)
    p = float(stats.ttest_rel(x, y).pvalue)
    return (None if math.isnan(p) else p), len(seeds)
