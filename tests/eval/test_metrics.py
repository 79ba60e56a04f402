"""Metrics: every edge case decided, and equal to pytrec_eval (trec_eval) on fixtures and random runs."""

from __future__ import annotations

import copy
import math
import random

import pytest

from eval.metrics import (
    METRIC_NAMES,
    METRICS,
    dedupe,
    evaluate_rankings,
    hit_rate_at_k,
    map_at_k,
    mean_scores,
    mrr_at_k,
    ndcg_at_k,
    parse_metric_key,
    precision_at_k,
    rank_run,
    recall_at_k,
)

pytrec_eval = pytest.importorskip("pytrec_eval")

KS = (1, 3, 5, 10, 100)
TREC_NAMES = {"ndcg": "ndcg_cut", "recall": "recall", "precision": "P", "map": "map_cut", "hit_rate": "success"}


def trec_scores(rankings: dict[str, list[str]], qrels: dict[str, dict[str, int]], ks=KS) -> dict[str, dict[str, float]]:
    """pytrec_eval on our rankings, fed strictly decreasing scores so both sides see the same order.

    MRR@k has no trec_eval cut-off measure: ``recip_rank`` on the ranking cut at k.
    """
    cut = ",".join(map(str, ks))
    measures = {f"{trec}.{cut}" for trec in TREC_NAMES.values()}
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, measures)
    run = {q: {d: float(len(r) - i) for i, d in enumerate(dedupe(r))} for q, r in rankings.items()}
    # trec_eval skips judged queries absent from the run; ours score them 0 (trec_eval -c).
    out: dict[str, dict[str, float]] = {q: {} for q in qrels}
    for q, scores in evaluator.evaluate({q: r for q, r in run.items() if r}).items():
        for ours, trec in TREC_NAMES.items():
            for k in ks:
                out[q][f"{ours}@{k}"] = scores[f"{trec}_{k}"]
    rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"})
    for k in ks:
        cut_run = {q: dict(sorted(r.items(), key=lambda x: -x[1])[:k]) for q, r in run.items() if r}
        for q, scores in rr.evaluate(cut_run).items():
            out[q][f"mrr@{k}"] = scores["recip_rank"]
    for q in out:
        for name in METRIC_NAMES:
            for k in ks:
                out[q].setdefault(f"{name}@{k}", 0.0)
    return out


def assert_close(ours: dict[str, dict[str, float]], ref: dict[str, dict[str, float]]) -> None:
    assert ours.keys() == ref.keys()
    for q in ours:
        for key, value in ours[q].items():
            assert value == pytest.approx(ref[q][key], abs=1e-12), (q, key, value, ref[q][key])


# ---- hand-computed cases ------------------------------------------------------------------------


def test_ndcg_graded_matches_formula() -> None:
    qrels = {"a": 2, "b": 1, "c": 0}
    ranking = ["c", "a", "d", "b"]
    dcg = 2 / math.log2(3) + 1 / math.log2(5)
    idcg = 2 / math.log2(2) + 1 / math.log2(3)
    assert ndcg_at_k(ranking, qrels, 10) == pytest.approx(dcg / idcg)
    assert ndcg_at_k(ranking, qrels, 1) == 0.0
    assert ndcg_at_k(["a", "b"], qrels, 2) == pytest.approx(1.0)


def test_recall_precision_mrr_map_hit() -> None:
    qrels = {"a": 1, "b": 1, "x": 0}
    ranking = ["x", "a", "z", "b"]
    assert recall_at_k(ranking, qrels, 2) == 0.5
    assert recall_at_k(ranking, qrels, 4) == 1.0
    assert precision_at_k(ranking, qrels, 4) == 0.5
    assert precision_at_k(ranking, qrels, 10) == 0.2  # divides by k, as trec_eval
    assert mrr_at_k(ranking, qrels, 1) == 0.0
    assert mrr_at_k(ranking, qrels, 2) == 0.5
    assert map_at_k(ranking, qrels, 4) == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert map_at_k(ranking, qrels, 2) == pytest.approx((1 / 2) / 2)  # divided by all relevant
    assert hit_rate_at_k(ranking, qrels, 1) == 0.0
    assert hit_rate_at_k(ranking, qrels, 2) == 1.0


def test_duplicates_credited_once() -> None:
    qrels = {"a": 1, "b": 1}
    assert precision_at_k(["a", "a", "a"], qrels, 3) == pytest.approx(1 / 3)
    assert recall_at_k(["a", "a"], qrels, 2) == 0.5
    # the repeat is dropped, so "b" moves up into the top 2
    assert recall_at_k(["a", "a", "b"], qrels, 2) == 1.0
    assert ndcg_at_k(["a", "a", "b"], qrels, 2) == pytest.approx(1.0)
    assert map_at_k(["a", "a", "b"], qrels, 3) == pytest.approx(1.0)


@pytest.mark.parametrize("name", METRIC_NAMES)
def test_empty_ranking_scores_zero(name) -> None:
    assert METRICS[name]([], {"a": 1}, 10) == 0.0


@pytest.mark.parametrize("name", METRIC_NAMES)
def test_no_relevant_document_scores_zero(name) -> None:
    # trec_eval also reports 0 for such a query (and counts it in the mean); see the pytrec test below
    assert METRICS[name](["a", "b"], {"a": 0, "b": 0}, 10) == 0.0
    assert METRICS[name](["a", "b"], {}, 10) == 0.0


@pytest.mark.parametrize("name", METRIC_NAMES)
@pytest.mark.parametrize("k", [0, -1, 1.5, True])
def test_bad_k_rejected(name, k) -> None:
    with pytest.raises(ValueError, match="cut-off k"):
        METRICS[name](["a"], {"a": 1}, k)


def test_negative_grades_count_as_zero_gain() -> None:
    qrels = {"z": -1, "w": 1}
    assert ndcg_at_k(["z", "w"], qrels, 3) == pytest.approx(1 / math.log2(3))
    assert recall_at_k(["z"], qrels, 3) == 0.0


def test_inputs_not_mutated() -> None:
    ranking = ["b", "a", "a", "c"]
    qrels = {"a": 2, "b": 0}
    run = {"x": 1.0, "y": 1.0, "z": 3.0}
    before = (copy.deepcopy(ranking), copy.deepcopy(qrels), copy.deepcopy(run))
    for fn in METRICS.values():
        fn(ranking, qrels, 2)
    rank_run(run)
    evaluate_rankings({"q": ranking}, {"q": qrels}, ks=(1, 5))
    assert (ranking, qrels, run) == before


def test_rank_run_ties_broken_by_doc_id() -> None:
    run = {"c": 1.0, "a": 1.0, "b": 2.0, "d": 0.5}
    assert rank_run(run) == ["b", "a", "c", "d"]
    assert rank_run(run, depth=2) == ["b", "a"]
    assert rank_run(dict(reversed(list(run.items())))) == ["b", "a", "c", "d"]
    assert rank_run({}) == []


def test_evaluate_rankings_scores_missing_queries_zero_and_ignores_unjudged() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}}
    per_query = evaluate_rankings({"q1": ["a"], "q9": ["a"]}, qrels, ks=(10,), metrics=("ndcg",))
    assert per_query == {"q1": {"ndcg@10": 1.0}, "q2": {"ndcg@10": 0.0}}
    assert mean_scores(per_query) == {"ndcg@10": 0.5}
    assert mean_scores({}) == {}


def test_parse_metric_key() -> None:
    assert parse_metric_key("ndcg@10") == ("ndcg", 10)
    for bad in ("ndcg", "foo@10", "ndcg@0", "ndcg@x"):
        with pytest.raises(ValueError, match=bad):
            parse_metric_key(bad)


# ---- against pytrec_eval ------------------------------------------------------------------------


def test_matches_pytrec_eval_on_fixture() -> None:
    qrels = {
        "q1": {"a": 2, "b": 1, "c": 0, "e": 3},
        "q2": {"x": 0},  # no relevant document
        "q3": {"y": 1},  # judged, nothing retrieved
        "q4": {"z": -1, "w": 1},
    }
    rankings = {"q1": ["c", "a", "d", "b", "f", "e"], "q2": ["x", "y"], "q4": ["z", "w"], "q5": ["a"]}
    ours = evaluate_rankings(rankings, qrels, ks=KS)
    assert_close(ours, trec_scores(rankings, qrels))
    assert all(v == 0.0 for v in ours["q2"].values())
    assert all(v == 0.0 for v in ours["q3"].values())


def test_matches_pytrec_eval_on_random_runs() -> None:
    rng = random.Random(1234)
    docs = [f"d{i:03d}" for i in range(150)]
    qrels: dict[str, dict[str, int]] = {}
    rankings: dict[str, list[str]] = {}
    for q in range(60):
        qid = f"q{q}"
        qrels[qid] = {d: rng.choice([0, 1, 1, 2, 3]) for d in rng.sample(docs, rng.randint(1, 12))}
        depth = rng.choice([0, 3, 20, 120])
        rankings[qid] = [rng.choice(docs) for _ in range(depth)]  # with duplicates
    ours = evaluate_rankings(rankings, qrels, ks=KS)
    assert_close(ours, trec_scores(rankings, qrels))
