"""Blending a reranker's scores with the first stage's: one rule for each decision.

Used by the pipeline's reranker (:mod:`rag.rerank`), weighted fusion (:mod:`rag.fusion`), the label-free
calibration (:mod:`rag.calibration`), the held-out evaluation of a trained reranker
(:mod:`rag.training.heldout`), ``rag eval retrieval``'s ``hybrid+rerank`` mode (:mod:`eval.retrieval`)
and ``benchmarks/rerank.py``.

* :func:`min_max` scales one query's scores to [0, 1]; **a constant list maps to all ones** (every
  candidate is equally the best), so in weighted fusion a document a retriever returned never scores
  below one it did not return (those count 0).
* :func:`blend` is ``(1 - w) * min_max(model) + w * min_max(first stage)``; ``w = 0`` gives the model's
  raw scores (the same order as their min-max).
* :func:`order` ranks by ``(-score, key)``, so ties never depend on input order.
* :data:`WEIGHT_GRID` is 0.0, 0.1, ..., 1.0; :func:`pick_weight` takes the weight with the best mean
  score, and **a tie goes to the larger weight**, i.e. to the first stage: a reranker that cannot beat
  it is not worth its cost.
* :func:`rerank_head` re-sorts the first ``depth`` hits and keeps the rest below them in their
  first-stage order; :func:`head_then_tail` does the same for a head already reranked elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from rag.types import Hit

WEIGHT_GRID: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(11))
TIE_TOLERANCE = 1e-9  # mean scores closer than this are a tie

Scores = Sequence[float] | np.ndarray


def min_max(scores: Scores) -> np.ndarray:
    """``scores`` scaled to [0, 1] (float64); a constant list maps to all ones, an empty one to empty."""
    x = np.asarray(scores, dtype=np.float64)
    if x.size == 0:
        return x
    lo, hi = float(x.min()), float(x.max())
    if hi == lo:
        return np.ones_like(x)
    return (x - lo) / (hi - lo)


def blend(model_scores: Scores, first_stage: Scores, weight: float) -> np.ndarray:
    """``(1 - weight) * min_max(model_scores) + weight * min_max(first_stage)`` over one query's candidates.

    ``weight`` 0 returns the model's raw scores (as float64), which rank exactly as their min-max."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"fusion weight must be in [0, 1], got {weight}")
    model = np.asarray(model_scores, dtype=np.float64)
    prior = np.asarray(first_stage, dtype=np.float64)
    if model.shape != prior.shape:
        raise ValueError(f"{model.size} model scores but {prior.size} first-stage scores")
    if weight == 0.0:
        return model
    return (1.0 - weight) * min_max(model) + weight * min_max(prior)


def order(scores: Scores, keys: Sequence[str] | None = None) -> list[int]:
    """Indices of ``scores`` best first; ties go to the smaller key (``keys[i]``, else the position ``i``)."""
    values = [float(s) for s in scores]
    if keys is None:
        return sorted(range(len(values)), key=lambda i: (-values[i], i))
    if len(keys) != len(values):
        raise ValueError(f"{len(values)} scores but {len(keys)} keys")
    return sorted(range(len(values)), key=lambda i: (-values[i], keys[i]))


def pick_weight(means: Mapping[float, float]) -> float:
    """The weight with the best mean score; within :data:`TIE_TOLERANCE` of the best, the larger weight."""
    if not means:
        raise ValueError("no weights to pick from")
    best = max(means.values())
    return max(w for w, m in means.items() if m >= best - TIE_TOLERANCE)


def head_then_tail(head: Sequence[Hit], hits: Sequence[Hit], *, depth: int) -> list[Hit]:
    """``head`` (the first ``depth`` of ``hits``, reordered) followed by the rest of ``hits`` in their order.

    Every hit is rescored by its place (score ``n - i``, rank ``i + 1`` for ``n`` hits) so the list stays one
    ranking whatever scale the head was scored on; per-stage ``scores`` and ``ranks`` are kept."""
    ordered = [*head, *hits[depth:]]
    n = len(ordered)
    return [
        Hit(chunk=h.chunk, score=float(n - i), rank=i + 1, scores=h.scores, ranks=h.ranks)
        for i, h in enumerate(ordered)
    ]


def rerank_head(hits: Sequence[Hit], model_scores: Scores, *, depth: int, weight: float) -> list[Hit]:
    """The first ``depth`` hits re-sorted by :func:`blend` of ``model_scores`` (one per head hit) and their
    first-stage ``score`` (ties by chunk id), the rest below them; see :func:`head_then_tail`.
    ``weight`` 1.0 keeps the first stage's order as it is."""
    head = list(hits[:depth])
    if len(model_scores) != len(head):
        raise ValueError(f"{len(model_scores)} model scores for {len(head)} head hits")
    if weight >= 1.0:
        return head_then_tail(head, hits, depth=depth)
    final = blend(model_scores, [h.score for h in head], weight)
    return head_then_tail([head[i] for i in order(final, [h.chunk.id for h in head])], hits, depth=depth)
