"""Paired significance tests between systems scored on the same queries.

* :func:`randomization_test` — two-sided paired randomisation (sign-flip permutation) test on the
  mean difference, seeded so reports are reproducible; ``p = (hits + 1) / (n_resamples + 1)``.
* :func:`paired_t_test` — scipy's ``ttest_rel`` (two-sided).
* :func:`holm` — Holm–Bonferroni adjustment when several pairs are compared at once.
* :func:`compare_systems` runs both tests for every pair of systems on one metric.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class PairedComparison:
    """``b`` against ``a`` on one metric; ``mean_diff = mean(b - a)``, wins are queries where b > a."""

    a: str
    b: str
    metric: str
    n: int
    mean_a: float
    mean_b: float
    mean_diff: float
    wins: int
    ties: int
    losses: int
    p_randomization: float
    p_ttest: float
    p_randomization_holm: float = math.nan

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _paired(a: Sequence[float], b: Sequence[float]) -> np.ndarray:
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"paired scores need two 1-D sequences of equal length, got {x.shape} and {y.shape}")
    return y - x


def randomization_test(
    a: Sequence[float], b: Sequence[float], *, n_resamples: int = 10_000, seed: int = 0
) -> float:
    """Two-sided p-value that ``mean(b - a)`` differs from 0 by random sign flips of the differences.

    Identical systems (all differences 0) give 1.0; fewer than one pair gives ``nan``.
    """
    diffs = _paired(a, b)
    if diffs.size == 0:
        return math.nan
    observed = abs(diffs.mean())
    if not np.any(diffs):
        return 1.0
    rng = np.random.default_rng(seed)
    hits = 0
    batch = max(1, min(n_resamples, 2_000_000 // diffs.size))
    done = 0
    tolerance = 1e-12 * max(1.0, observed)
    while done < n_resamples:
        size = min(batch, n_resamples - done)
        signs = rng.integers(0, 2, size=(size, diffs.size), dtype=np.int8) * 2 - 1
        means = np.abs(signs @ diffs) / diffs.size
        hits += int(np.count_nonzero(means >= observed - tolerance))
        done += size
    return (hits + 1) / (n_resamples + 1)


def paired_t_test(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided paired t-test p-value; 1.0 when all differences are 0, ``nan`` with fewer than 2 pairs."""
    diffs = _paired(a, b)
    if diffs.size < 2:
        return math.nan
    if not np.any(diffs):
        return 1.0
    if np.all(diffs == diffs[0]):
        return 0.0  # a constant non-zero shift: the t statistic is infinite
    from scipy import stats

    return float(stats.ttest_rel(b, a).pvalue)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values, in the input order (``nan`` entries stay ``nan``)."""
    indexed = [(p, i) for i, p in enumerate(p_values) if not math.isnan(p)]
    indexed.sort()
    m = len(indexed)
    adjusted = [math.nan] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(indexed):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def compare_systems(
    per_query: Mapping[str, Mapping[str, Mapping[str, float]]],
    *,
    metric: str = "ndcg@10",
    n_resamples: int = 10_000,
    seed: int = 0,
) -> list[PairedComparison]:
    """Every pair ``(a, b)`` of systems (in the given order) on the queries both scored.

    ``per_query[system][qid][metric]``. Randomisation p-values are also Holm-adjusted over the pairs.
    """
    results: list[PairedComparison] = []
    for a, b in itertools.combinations(list(per_query), 2):
        qids = sorted(set(per_query[a]) & set(per_query[b]))
        xa = [per_query[a][q][metric] for q in qids]
        xb = [per_query[b][q][metric] for q in qids]
        diffs = _paired(xa, xb)
        results.append(
            PairedComparison(
                a=a,
                b=b,
                metric=metric,
                n=len(qids),
                mean_a=math.fsum(xa) / len(qids) if qids else math.nan,
                mean_b=math.fsum(xb) / len(qids) if qids else math.nan,
                mean_diff=float(diffs.mean()) if qids else math.nan,
                wins=int(np.count_nonzero(diffs > 0)),
                ties=int(np.count_nonzero(diffs == 0)),
                losses=int(np.count_nonzero(diffs < 0)),
                p_randomization=randomization_test(xa, xb, n_resamples=n_resamples, seed=seed),
                p_ttest=paired_t_test(xa, xb),
            )
        )
    adjusted = holm([r.p_randomization for r in results])
    return [
        PairedComparison(**{**r.to_dict(), "p_randomization_holm": p}) for r, p in zip(results, adjusted, strict=True)
    ]
