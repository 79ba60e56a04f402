"""Ranking metrics as small pure functions, with trec_eval's definitions.

Every metric takes ``ranking`` (document ids, best first), ``qrels`` (document id -> graded relevance
for one query) and a cut-off ``k`` and returns a float. Decisions, each tested against ``pytrec_eval``:

* **Relevance.** A document is relevant when its grade is >= 1 (trec_eval's ``relevance_level``).
  Gains for nDCG are the grades themselves (trec_eval: ``gain = rel``, discount ``log2(rank + 1)``);
  negative grades count as 0.
* **Duplicates** are credited once: a repeated document id is dropped from the ranking and the
  documents after it move up, exactly what a ``{doc: score}`` run holding the best score would give.
* **Empty inputs.** An empty ranking scores 0 on every metric. A query whose qrels hold no relevant
  document scores 0 on every metric (trec_eval does the same and counts it in the mean).
* **Denominators** follow trec_eval: Precision@k divides by ``k`` even when fewer documents were
  returned; Recall@k and MAP@k divide by the number of relevant documents in the qrels.
* **Inputs are never mutated**; nothing is rounded.

:func:`rank_run` turns a ``{doc_id: score}`` run into a ranking with the house tie-break
``(-score, doc_id)``. (trec_eval itself breaks ties by doc id *descending*; tests hand it strictly
decreasing scores so both see the same order.)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Literal, get_args

MetricName = Literal["ndcg", "recall", "precision", "mrr", "map", "hit_rate"]
METRIC_NAMES: tuple[MetricName, ...] = get_args(MetricName)
RELEVANCE_LEVEL = 1

Metric = Callable[[Sequence[str], Mapping[str, int], int], float]


def rank_run(run: Mapping[str, float], *, depth: int | None = None) -> list[str]:
    """Document ids ordered by ``(-score, doc_id)``; ``depth`` keeps only the first ``depth``."""
    ordered = sorted(run.items(), key=lambda item: (-item[1], item[0]))
    if depth is not None:
        ordered = ordered[:depth]
    return [doc_id for doc_id, _ in ordered]


def dedupe(ranking: Iterable[str]) -> list[str]:
    """The ranking without repeated ids (first occurrence kept)."""
    seen: set[str] = set()
    out: list[str] = []
    for doc_id in ranking:
        if doc_id not in seen:
            seen.add(doc_id)
            out.append(doc_id)
    return out


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"cut-off k must be a positive integer, got {k!r}")


def _top(ranking: Sequence[str], k: int) -> list[str]:
    _check_k(k)
    return dedupe(ranking)[:k]


def num_relevant(qrels: Mapping[str, int]) -> int:
    return sum(1 for grade in qrels.values() if grade >= RELEVANCE_LEVEL)


def _is_relevant(doc_id: str, qrels: Mapping[str, int]) -> bool:
    return qrels.get(doc_id, 0) >= RELEVANCE_LEVEL


def dcg(gains: Sequence[float]) -> float:
    """Discounted cumulative gain of gains in rank order: ``sum(g_i / log2(i + 1))``, ``i`` from 1."""
    return sum(g / math.log2(i + 2) for i, g in enumerate(gains))


def ndcg_at_k(ranking: Sequence[str], qrels: Mapping[str, int], k: int) -> float:
    """nDCG@k with graded gains (trec_eval ``ndcg_cut``)."""
    top = _top(ranking, k)
    ideal = sorted((max(g, 0) for g in qrels.values()), reverse=True)[:k]
    idcg = dcg(ideal)
    if idcg <= 0.0:
        return 0.0
    return dcg([max(qrels.get(d, 0), 0) for d in top]) / idcg


def recall_at_k(ranking: Sequence[str], qrels: Mapping[str, int], k: int) -> float:
    """Relevant documents in the top k over all relevant documents (trec_eval ``recall_k``)."""
    top = _top(ranking, k)
    n_rel = num_relevant(qrels)
    if n_rel == 0:
        return 0.0
    return sum(1 for d in top if _is_relevant(d, qrels)) / n_rel


def precision_at_k(ranking: Sequence[str], qrels: Mapping[str, int], k: int) -> float:
    """Relevant documents in the top k over k (trec_eval ``P_k``)."""
    return sum(1 for d in _top(ranking, k) if _is_relevant(d, qrels)) / k


def mrr_at_k(ranking: Sequence[str], qrels: Mapping[str, int], k: int) -> float:
    """Reciprocal rank of the first relevant document within the top k, else 0."""
    for rank, doc_id in enumerate(_top(ranking, k), start=1):
        if _is_relevant(doc_id, qrels):
            return 1.0 / rank
    return 0.0


def map_at_k(ranking: Sequence[str], qrels: Mapping[str, int], k: int) -> float:
    """Average precision cut at k, divided by all relevant documents (trec_eval ``map_cut_k``)."""
    top = _top(ranking, k)
    n_rel = num_relevant(qrels)
    if n_rel == 0:
        return 0.0
    hits = 0
    total = 0.0
    for rank, doc_id in enumerate(top, start=1):
        if _is_relevant(doc_id, qrels):
            hits += 1
            total += hits / rank
    return total / n_rel


def hit_rate_at_k(ranking: Sequence[str], qrels: Mapping[str, int], k: int) -> float:
    """1.0 when any relevant document is in the top k, else 0.0 (trec_eval ``success_k``)."""
    return 1.0 if any(_is_relevant(d, qrels) for d in _top(ranking, k)) else 0.0


METRICS: dict[MetricName, Metric] = {
    "ndcg": ndcg_at_k,
    "recall": recall_at_k,
    "precision": precision_at_k,
    "mrr": mrr_at_k,
    "map": map_at_k,
    "hit_rate": hit_rate_at_k,
}


def metric_key(name: MetricName, k: int) -> str:
    """The name a metric is reported under, e.g. ``ndcg@10``."""
    return f"{name}@{k}"


def parse_metric_key(key: str) -> tuple[MetricName, int]:
    """Inverse of :func:`metric_key`; raises ``ValueError`` naming the bad key."""
    name, sep, k_text = key.partition("@")
    if not sep or name not in METRICS or not k_text.isdigit() or int(k_text) < 1:
        raise ValueError(f"{key!r} is not a metric key like 'ndcg@10' (metrics: {', '.join(METRICS)})")
    return name, int(k_text)  # type: ignore[return-value]


def score_query(
    ranking: Sequence[str],
    qrels: Mapping[str, int],
    *,
    ks: Sequence[int],
    metrics: Sequence[MetricName] = METRIC_NAMES,
) -> dict[str, float]:
    """Every ``metric@k`` for one query."""
    for k in ks:
        _check_k(k)
    top = dedupe(ranking)[: max(ks, default=0)]  # no metric looks deeper than its k
    return {metric_key(m, k): METRICS[m](top, qrels, k) for m in metrics for k in ks}


def evaluate_rankings(
    rankings: Mapping[str, Sequence[str]],
    qrels: Mapping[str, Mapping[str, int]],
    *,
    ks: Sequence[int],
    metrics: Sequence[MetricName] = METRIC_NAMES,
) -> dict[str, dict[str, float]]:
    """Per-query scores for every judged query (the keys of ``qrels``).

    A judged query missing from ``rankings`` scores 0 (trec_eval ``-c``); rankings for queries
    without judgments are ignored.
    """
    return {
        qid: score_query(rankings.get(qid, ()), judged, ks=ks, metrics=metrics) for qid, judged in qrels.items()
    }


def mean_scores(per_query: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """The mean of each metric over the queries given; an empty mapping gives an empty dict."""
    if not per_query:
        return {}
    keys = next(iter(per_query.values())).keys()
    n = len(per_query)
    return {key: math.fsum(scores[key] for scores in per_query.values()) / n for key in keys}
