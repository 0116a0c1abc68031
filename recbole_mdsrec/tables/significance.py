"""Per-user significance of one entry against another, corrected for many comparisons.

A run scores every test user, so a comparison has one paired observation per user, as
information retrieval tests per query. For a reference entry R and another entry O on one
metric:

- ``R_su``, ``O_su``: user u's value in the run of seed s (users matched by token);
- **per-user test** (the verdict's): ``x_u = mean_s R_su``, ``y_u = mean_s O_su`` over each
  entry's seeds, paired t-test over users (``scipy.stats.ttest_rel``); the effect is the mean
  difference ``mean_u (x_u − y_u)`` with a 95% percentile bootstrap interval over users
  (``scipy.stats.bootstrap``, 1,999 resamples, seeded; BCa's jackknife is quadratic in the
  users, minutes per cell at 17k users, and for a mean over thousands of users the two agree);
- **seed-aware test** (second column): a paired permutation test over the (seed, user) pairs of
  the seeds both ran, whose statistic is the mean over seeds of each seed's mean difference:
  the seed is a factor, each seed's pairs are exchanged only among themselves (a sign flip of
  each pair's difference). Exact over all ``2^n`` flips where ``2^n`` <= 9,999, else 9,999
  random flips, seeded, p = (1 + as extreme) / (1 + flips), as ``scipy.stats.permutation_test``
  computes it; written out here because scipy's generic resampler took 80 s for 51k pairs
  where this takes seconds;
- **Holm's correction** of each test's p-values across the entries compared with R
  (:func:`holm`), so that testing against eight baselines does not inflate the error rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np
from scipy import stats

RESAMPLES = 9999            # sign flips of the permutation test
BOOTSTRAP_RESAMPLES = 1999  # resamples of the bootstrap interval
SEED = 0
FLIP_BATCH = 256            # flips drawn at once: [FLIP_BATCH, pairs] float32 at a time
ALPHA = 0.05


@dataclass(frozen=True)
class PairedResult:
    users: int
    seeds: int                   # seeds both entries ran (the seed-aware test's strata)
    mean_difference: float       # reference − other, per-user means over seeds
    ci: tuple[float, float]      # 95% bootstrap interval of mean_difference
    p_user: float | None         # per-user paired t-test, uncorrected
    p_permutation: float | None  # seed-aware permutation test, uncorrected


def holm(pvalues: Mapping[str, float | None]) -> dict[str, float | None]:
    """Holm–Bonferroni adjusted p-values; None (no test) stays None and does not count."""
    tested = sorted((p, key) for key, p in pvalues.items() if p is not None)
    adjusted: dict[str, float | None] = {key: None for key in pvalues}
    running, m = 0.0, len(tested)
    for rank, (p, key) in enumerate(tested):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[key] = running
    return adjusted


def aligned(runs: Mapping[int, Mapping[str, np.ndarray]], metric: str, users: np.ndarray) -> np.ndarray:
    """``[seeds, users]``: each seed's values of ``metric`` for ``users`` (in that order)."""
    rows = []
    for seed in sorted(runs):
        position = {token: i for i, token in enumerate(runs[seed]["user"])}
        rows.append(runs[seed][metric][[position[token] for token in users]])
    return np.asarray(rows, dtype=np.float64)


def common_users(*entries: Mapping[int, Mapping[str, np.ndarray]]) -> np.ndarray:
    """The users every run of every entry scored, sorted."""
    sets = [set(run["user"].tolist()) for runs in entries for run in runs.values()]
    return np.array(sorted(set.intersection(*sets))) if sets else np.array([], dtype=str)


def _shared_values(reference: Mapping[int, Mapping[str, np.ndarray]], other: Mapping[int, Mapping[str, np.ndarray]],
                   metric: str) -> tuple[np.ndarray, np.ndarray] | None:
    """``[seeds, users]`` of each entry over the users both scored; None when they share none."""
    users = common_users(reference, other)
    if users.size == 0:
        return None
    return aligned(reference, metric, users), aligned(other, metric, users)


def per_user_test(reference: Mapping[int, Mapping[str, np.ndarray]], other: Mapping[int, Mapping[str, np.ndarray]],
                  metric: str) -> tuple[float, float | None] | None:
    """The per-user test alone (no interval, no permutations): the mean difference of the
    users' seed means and the paired t-test's p, uncorrected; None when no user is shared."""
    values = _shared_values(reference, other, metric)
    if values is None:
        return None
    x, y = values[0].mean(axis=0), values[1].mean(axis=0)
    return float((x - y).mean()), paired_t(x, y)


def compare(reference: Mapping[int, Mapping[str, np.ndarray]], other: Mapping[int, Mapping[str, np.ndarray]],
            metric: str) -> PairedResult | None:
    """``reference`` and ``other``: seed -> that run's per-user arrays (``"user"`` and metrics).
    None when they share no user."""
    values = _shared_values(reference, other, metric)
    if values is None:
        return None
    ref_values, other_values = values  # [seeds, users]
    x, y = ref_values.mean(axis=0), other_values.mean(axis=0)
    difference = x - y
    shared = sorted(set(reference) & set(other))
    ref_rows = [sorted(reference).index(s) for s in shared]
    other_rows = [sorted(other).index(s) for s in shared]
    return PairedResult(
        users=int(ref_values.shape[1]),
        seeds=len(shared),
        mean_difference=float(difference.mean()),
        ci=bootstrap_ci(difference),
        p_user=paired_t(x, y),
        p_permutation=seed_permutation_p(ref_values[ref_rows], other_values[other_rows]),
    )


def _constant(values: np.ndarray) -> bool:
    return values.size == 0 or float(np.ptp(values)) <= 1e-12


def paired_t(x: np.ndarray, y: np.ndarray) -> float | None:
    """Two-sided p of the paired t-test; None where every difference is equal (undefined)."""
    if x.size < 2 or _constant(x - y):
        return None
    p = float(stats.ttest_rel(x, y).pvalue)
    return None if math.isnan(p) else p


def bootstrap_ci(difference: np.ndarray) -> tuple[float, float]:
    """95% percentile interval of the mean of ``difference`` (users resampled)."""
    if _constant(difference):
        value = float(difference.mean()) if difference.size else math.nan
        return value, value
    result = stats.bootstrap((difference,), np.mean, n_resamples=BOOTSTRAP_RESAMPLES, confidence_level=0.95,
                             method="percentile", random_state=np.random.default_rng(SEED))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def seed_permutation_p(reference: np.ndarray, other: np.ndarray) -> float | None:
    """Two-sided p of the paired permutation test over the ``[seeds, users]`` pairs (see the
    module docstring); None without pairs or where every difference is equal."""
    difference = (np.asarray(reference, dtype=np.float64) - np.asarray(other, dtype=np.float64)).ravel()
    if difference.size == 0 or _constant(difference):
        return None
    observed = abs(difference.sum())
    tolerance = 1e-9 * max(1.0, float(np.abs(difference).sum()))  # flips that tie the observed count as extreme
    n = difference.size
    if 2**n <= RESAMPLES:  # every flip: the exact p
        flips = ((np.arange(2**n)[:, None] >> np.arange(n)) & 1) * -2 + 1
        return float(np.mean(np.abs(flips @ difference) >= observed - tolerance))
    rng = np.random.default_rng(SEED)
    extreme, d, total = 0, difference.astype(np.float32), float(difference.sum())
    for start in range(0, RESAMPLES, FLIP_BATCH):
        rows = min(FLIP_BATCH, RESAMPLES - start)
        # one random bit per pair: flipped pairs count twice against the sum
        bits = np.unpackbits(np.frombuffer(rng.bytes(rows * -(-n // 8)), dtype=np.uint8).reshape(rows, -1),
                             axis=1, count=n)
        extreme += int((np.abs(total - 2 * (bits.astype(np.float32) @ d)) >= observed - tolerance).sum())
    return (1 + extreme) / (1 + RESAMPLES)


def format_p(p: float | None) -> str:
    """A p-value as the tables show it: ``p=0.0123``, ``p<0.0001``, or ``n/a`` (no test)."""
    if p is None:
        return "n/a"
    return "p<0.0001" if p < 1e-4 else f"p={p:.4f}"


def verdict(result: PairedResult | None, p_corrected: float | None) -> str:
    """'better', 'worse' or 'no difference' of the reference, from the corrected per-user p."""
    return direction(None if result is None else result.mean_difference, p_corrected)


def direction(mean_difference: float | None, p_corrected: float | None) -> str:
    """'better', 'worse' or 'no difference', from a mean difference and its corrected p."""
    if mean_difference is None or p_corrected is None or p_corrected >= ALPHA:
        return "no difference"
    return "better" if mean_difference > 0 else "worse"


def verdict_phrases(verdicts: Mapping[str, list[str]], not_counted: str) -> list[str]:
    """The parts of one metric's verdict sentence (``verdicts``: better / worse / no difference /
    not counted -> labels); ``not_counted`` words the last, with ``{labels}`` for the labels."""
    parts = [f"better than {', '.join(verdicts['better'])}" if verdicts["better"] else "",
             f"worse than {', '.join(verdicts['worse'])}" if verdicts["worse"] else "",
             f"no significant difference from {', '.join(verdicts['no difference'])}" if verdicts["no difference"] else "",
             not_counted.format(labels=", ".join(verdicts["not counted"])) if verdicts["not counted"] else ""]
    return [part for part in parts if part]
