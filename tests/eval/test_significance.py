"""Paired significance tests: exactness on small cases, determinism, scipy agreement, Holm."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from eval.significance import compare_systems, holm, paired_t_test, randomization_test


def exact_sign_flip_p(a: list[float], b: list[float]) -> float:
    d = np.asarray(b) - np.asarray(a)
    observed = abs(d.mean())
    flips = [abs((np.asarray(s) * d).mean()) for s in itertools.product((-1, 1), repeat=len(d))]
    return sum(f >= observed - 1e-12 for f in flips) / len(flips)


def test_randomization_close_to_exact_enumeration() -> None:
    rng = np.random.default_rng(7)
    a = rng.uniform(0, 1, 12).tolist()
    b = (np.asarray(a) + rng.normal(0.15, 0.2, 12)).tolist()
    exact = exact_sign_flip_p(a, b)
    approx = randomization_test(a, b, n_resamples=20_000, seed=1)
    assert approx == pytest.approx(exact, abs=0.01)


def test_randomization_is_seeded_and_symmetric() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.uniform(size=50).tolist(), rng.uniform(size=50).tolist()
    assert randomization_test(a, b, seed=5) == randomization_test(a, b, seed=5)
    assert randomization_test(a, b, seed=5) == randomization_test(b, a, seed=5)


def test_identical_systems_and_degenerate_inputs() -> None:
    x = [0.1, 0.5, 0.9]
    assert randomization_test(x, x) == 1.0
    assert paired_t_test(x, x) == 1.0
    assert math.isnan(randomization_test([], []))
    assert math.isnan(paired_t_test([0.2], [0.4]))
    assert paired_t_test([0.0, 0.0], [1.0, 1.0]) == 0.0  # constant shift: infinite t
    with pytest.raises(ValueError, match="equal length"):
        randomization_test([1.0], [1.0, 2.0])


def test_clear_difference_is_significant() -> None:
    a = [0.2] * 40 + [0.3] * 40
    b = [x + 0.1 for x in a[:70]] + a[70:]
    p = randomization_test(a, b, n_resamples=5000)
    assert p < 0.001
    assert p >= 1 / 5001  # never exactly 0


def test_t_test_matches_scipy() -> None:
    rng = np.random.default_rng(11)
    a, b = rng.uniform(size=30), rng.uniform(size=30)
    assert paired_t_test(a.tolist(), b.tolist()) == pytest.approx(stats.ttest_rel(b, a).pvalue)


def test_holm() -> None:
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, float("nan"), 0.01]) [0] == pytest.approx(0.5)
    assert math.isnan(holm([0.5, float("nan")])[1])
    assert holm([]) == []


def test_compare_systems_pairs_counts_and_inputs_untouched() -> None:
    per_query = {
        "bm25": {"q1": {"ndcg@10": 0.2}, "q2": {"ndcg@10": 0.5}, "q3": {"ndcg@10": 0.0}},
        "dense": {"q1": {"ndcg@10": 0.4}, "q2": {"ndcg@10": 0.5}, "q3": {"ndcg@10": 0.1}},
        "hybrid": {"q1": {"ndcg@10": 0.1}, "q2": {"ndcg@10": 0.6}, "q3": {"ndcg@10": 0.3}},
    }
    snapshot = repr(per_query)
    results = compare_systems(per_query, n_resamples=200)
    assert [(r.a, r.b) for r in results] == [("bm25", "dense"), ("bm25", "hybrid"), ("dense", "hybrid")]
    first = results[0]
    assert (first.wins, first.ties, first.losses, first.n) == (2, 1, 0, 3)
    assert first.mean_diff == pytest.approx(0.1)
    assert all(r.p_randomization_holm >= r.p_randomization for r in results)
    assert repr(per_query) == snapshot
