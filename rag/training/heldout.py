"""Scoring (query, passage) pairs with a CrossEncoder and the held-out evaluation of a reranker.

The held-out split holds one query per article/paragraph group with its positive among BM25 candidates;
nDCG@10 is measured for the first-stage order, the reranker alone and each blend
``(1 - w) * minmax(reranker) + w * minmax(first stage)`` of :mod:`rag.blend`, which picks the
``fusion_weight`` to ship (a tie goes to the larger weight, as in the label-free calibration).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from eval.metrics import ndcg_at_k
from rag.blend import WEIGHT_GRID, blend, order, pick_weight
from rag.training.checkpoint import torch_module
from rag.training.data import TrainExample, text_key
from rag.training.mining import PassagePool, positives_by_query

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder


@dataclass
class HeldoutResult:
    """nDCG@10 on the held-out split: first stage (BM25 order), reranker alone, and the tuned blend."""

    queries: int
    ndcg_first_stage: float
    ndcg_reranker: float
    fusion_weight: float
    ndcg_blend: float
    curve: dict[str, float] = field(default_factory=dict)


def score_pairs(
    ce: CrossEncoder, pairs: Sequence[tuple[str, str]], *, max_length: int, batch_size: int = 32
) -> np.ndarray:
    """Raw logits (no activation) for each (query, passage) pair, in float32, order kept."""
    import torch

    model, tok = torch_module(ce), ce.tokenizer
    was_training = model.training
    model.eval()
    out: list[np.ndarray] = []
    with torch.inference_mode():
        for i in range(0, len(pairs), batch_size):
            chunk = pairs[i : i + batch_size]
            enc = tok(
                [q for q, _ in chunk],
                [p for _, p in chunk],
                truncation="only_second",
                max_length=max_length,
                padding=True,
                return_tensors="pt",
            )
            out.append(model(**enc).logits.float().reshape(-1).numpy())
    model.train(was_training)
    return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)


@dataclass(frozen=True)
class HeldoutQuery:
    query: str
    candidates: tuple[str, ...]  # first-stage order (best first); the positive is among them
    relevant: tuple[int, ...]


def build_heldout(
    rows: Sequence[TrainExample], pool: PassagePool, *, n: int, candidates: int, seed: int
) -> list[HeldoutQuery]:
    """One query per group; candidates = BM25 top list (positive inserted at its BM25 rank or last)."""
    rng = random.Random(seed)
    by_group: dict[str, TrainExample] = {}
    for r in sorted(rows, key=lambda r: (r.group, r.query)):
        by_group.setdefault(r.group, r)
    picked = sorted(by_group.values(), key=lambda r: (r.group, r.query))
    rng.shuffle(picked)
    picked = picked[:n]
    positives = positives_by_query(rows)
    ranked = pool.bm25_search([r.query for r in picked], candidates * 3)
    out: list[HeldoutQuery] = []
    for r, hits in zip(picked, ranked, strict=True):
        pos_keys = positives.get(r.query.lower(), set())
        docs = [pool.passages[d] for d, _ in hits]
        if not any(text_key(d) in pos_keys for d in docs[:candidates]):
            docs = [*[d for d in docs if text_key(d) not in pos_keys][: candidates - 1], r.positive]
        docs = docs[:candidates]
        rel = tuple(i for i, d in enumerate(docs) if text_key(d) in pos_keys)
        out.append(HeldoutQuery(r.query, tuple(docs), rel))
    return out


def _ndcg10(ranked: Sequence[int], relevant: Sequence[int]) -> float:
    return ndcg_at_k([str(i) for i in ranked], {str(i): 1 for i in relevant}, 10)


def evaluate_heldout(
    ce: CrossEncoder, held: Sequence[HeldoutQuery], *, max_length: int, batch_size: int = 32, rrf_k: int = 60
) -> HeldoutResult:
    """nDCG@10 of the first-stage order, the reranker alone and each blend weight of
    :data:`rag.blend.WEIGHT_GRID` (the first stage scored as RRF of its rank; ties in a ranking go to the
    earlier first-stage candidate); the best weight (:func:`rag.blend.pick_weight`: a tie goes to the
    larger weight) is the one to ship."""
    pairs = [(h.query, c) for h in held for c in h.candidates]
    scores = score_pairs(ce, pairs, max_length=max_length, batch_size=batch_size)
    sums = dict.fromkeys(WEIGHT_GRID, 0.0)
    first = rerank_only = 0.0
    start = 0
    for h in held:
        s = scores[start : start + len(h.candidates)]
        start += len(h.candidates)
        fs = np.array([1.0 / (rrf_k + i + 1) for i in range(len(h.candidates))])
        first += _ndcg10(list(range(len(h.candidates))), h.relevant)
        rerank_only += _ndcg10(order(s), h.relevant)
        for w in WEIGHT_GRID:
            sums[w] += _ndcg10(order(blend(s, fs, w)), h.relevant)
    n = max(len(held), 1)
    means = {w: v / n for w, v in sums.items()}
    best = pick_weight(means)
    return HeldoutResult(
        len(held), first / n, rerank_only / n, best, means[best], {f"{w:.1f}": m for w, m in means.items()}
    )
