"""Rank fusion: combine the ranked lists of several retrievers into one.

Inputs are ``{retriever name: [(id, score), ...]}`` with each list best first; the output is one list
``[(id, fused score), ...]`` sorted by ``(-score, id)`` so ties never depend on input order.

* :func:`reciprocal_rank_fusion` — ``sum_r w_r / (k + rank_r(d))`` (Cormack et al. 2009), ranks 1-based.
* :func:`weighted_fusion` — ``sum_r w_r * minmax_r(score_r(d))`` (:func:`rag.blend.min_max`: a constant list
  maps to ones); a document a retriever did not return contributes 0 for that retriever (it scored below
  the retriever's weakest candidate).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from rag.blend import min_max
from rag.config import FusionMethod

Ranking = Sequence[tuple[str, float]]
Fused = list[tuple[str, float]]


def sort_scored(items: Mapping[str, float] | Sequence[tuple[str, float]]) -> Fused:
    """``(id, score)`` pairs sorted best first, ties broken by id."""
    pairs = items.items() if isinstance(items, Mapping) else items
    return sorted(pairs, key=lambda p: (-p[1], p[0]))


def _checked_weights(rankings: Mapping[str, Ranking], weights: Mapping[str, float] | None) -> dict[str, float]:
    if weights is None:
        return dict.fromkeys(rankings, 1.0)
    missing = sorted(set(rankings) - set(weights))
    if missing:
        raise ValueError(f"no fusion weight for retriever(s) {', '.join(missing)}")
    if any(w < 0 for w in weights.values()):
        raise ValueError(f"fusion weights must be non-negative, got {dict(weights)}")
    return {name: float(weights[name]) for name in rankings}


def reciprocal_rank_fusion(
    rankings: Mapping[str, Ranking], *, k: int = 60, weights: Mapping[str, float] | None = None
) -> Fused:
    """Reciprocal rank fusion. Each list is re-sorted by ``(-score, id)`` first, so its ranks are deterministic."""
    if k < 0:
        raise ValueError(f"rrf k must be >= 0, got {k}")
    w = _checked_weights(rankings, weights)
    fused: dict[str, float] = {}
    for name, ranking in rankings.items():
        seen: set[str] = set()
        rank = 0
        for doc_id, _score in sort_scored(ranking):
            if doc_id in seen:
                continue
            seen.add(doc_id)
            rank += 1
            fused[doc_id] = fused.get(doc_id, 0.0) + w[name] / (k + rank)
    return sort_scored(fused)


def weighted_fusion(rankings: Mapping[str, Ranking], *, weights: Mapping[str, float] | None = None) -> Fused:
    """Convex combination of min-max normalised scores (weights need not sum to one)."""
    w = _checked_weights(rankings, weights)
    fused: dict[str, float] = {}
    for name, ranking in rankings.items():
        best: dict[str, float] = {}
        for doc_id, score in ranking:
            if doc_id not in best or score > best[doc_id]:
                best[doc_id] = score
        ids = list(best)
        for doc_id, norm in zip(ids, min_max([best[i] for i in ids]).tolist(), strict=True):
            fused[doc_id] = fused.get(doc_id, 0.0) + w[name] * norm
        for doc_id in ids:
            fused.setdefault(doc_id, 0.0)
    return sort_scored(fused)


class Fuser(Protocol):
    def __call__(self, rankings: Mapping[str, Ranking], *, rrf_k: int, weights: Mapping[str, float]) -> Fused: ...


def _rrf(rankings: Mapping[str, Ranking], *, rrf_k: int, weights: Mapping[str, float]) -> Fused:
    return reciprocal_rank_fusion(rankings, k=rrf_k, weights=weights)


def _weighted(rankings: Mapping[str, Ranking], *, rrf_k: int, weights: Mapping[str, float]) -> Fused:
    return weighted_fusion(rankings, weights=weights)


FUSERS: dict[FusionMethod, Fuser] = {"rrf": _rrf, "weighted": _weighted}


def fuse(
    method: FusionMethod, rankings: Mapping[str, Ranking], *, rrf_k: int = 60, weights: Mapping[str, float]
) -> Fused:
    """Dispatch to the fusion function registered for ``method``."""
    return FUSERS[method](rankings, rrf_k=rrf_k, weights=weights)
