"""rag.blend: the one min-max, blend, ranking, weight pick and head-rerank shared by every reranking path."""

from __future__ import annotations

import numpy as np
import pytest

from rag.blend import (
    TIE_TOLERANCE,
    WEIGHT_GRID,
    blend,
    head_then_tail,
    min_max,
    order,
    pick_weight,
    rerank_head,
)
from rag.types import Chunk, Hit


def _hits(ids: list[str], scores: list[float]) -> list[Hit]:
    return [
        Hit(Chunk(id=i, source=f"doc-{i}", text=i), s, r, {"fusion": s}, {"fusion": r})
        for r, (i, s) in enumerate(zip(ids, scores, strict=True), start=1)
    ]


def test_min_max_scales_to_the_unit_interval_and_maps_a_constant_list_to_ones() -> None:
    assert min_max([1.0, 3.0, 2.0]).tolist() == [0.0, 1.0, 0.5]
    assert min_max([-4.0, 6.0]).tolist() == [0.0, 1.0]
    assert min_max([3.0, 3.0, 3.0]).tolist() == [1.0, 1.0, 1.0]  # every candidate is equally the best
    assert min_max([7.5]).tolist() == [1.0]
    assert min_max([]).tolist() == []
    x = np.array([2.0, 1.0], dtype=np.float32)
    out = min_max(x)
    assert out.dtype == np.float64 and x.tolist() == [2.0, 1.0]  # the input is not changed


def test_blend_mixes_normalised_scores_and_weight_zero_is_the_model_alone() -> None:
    model = np.array([0.0, 10.0, 5.0])
    assert blend(model, [3.0, 2.0, 1.0], 0.0).tolist() == [0.0, 10.0, 5.0]
    assert blend(model, [3.0, 2.0, 1.0], 0.5).tolist() == pytest.approx([0.5, 0.75, 0.25])
    assert blend(model, [3.0, 2.0, 1.0], 1.0).tolist() == [1.0, 0.5, 0.0]
    # a constant side adds the same to every candidate: the order is the other side's
    assert order(blend(model, [2.0, 2.0, 2.0], 0.7)) == order(model) == [1, 2, 0]
    assert order(blend([4.0, 4.0, 4.0], [1.0, 3.0, 2.0], 0.2)) == [1, 2, 0]
    assert blend([], [], 0.5).tolist() == []


@pytest.mark.parametrize("weight", [-0.1, 1.5])
def test_blend_refuses_a_weight_outside_zero_one(weight: float) -> None:
    with pytest.raises(ValueError, match="fusion weight must be in"):
        blend([1.0], [1.0], weight)


def test_blend_refuses_lists_of_different_lengths() -> None:
    with pytest.raises(ValueError, match="2 model scores but 3 first-stage scores"):
        blend([1.0, 2.0], [1.0, 2.0, 3.0], 0.5)


def test_order_breaks_ties_by_key_then_by_position() -> None:
    assert order([1.0, 2.0, 2.0, 0.5]) == [1, 2, 0, 3]
    assert order([1.0, 2.0, 2.0, 0.5], ["d", "z", "a", "b"]) == [2, 1, 0, 3]
    assert order([]) == []
    with pytest.raises(ValueError, match="2 scores but 1 keys"):
        order([1.0, 2.0], ["a"])


def test_pick_weight_takes_the_best_mean_and_a_tie_goes_to_the_larger_weight() -> None:
    assert pick_weight({0.0: 0.5, 0.3: 0.9, 1.0: 0.7}) == 0.3
    assert pick_weight({0.0: 0.8, 0.4: 0.8, 0.9: 0.8, 1.0: 0.6}) == 0.9
    assert pick_weight(dict.fromkeys(WEIGHT_GRID, 0.25)) == 1.0  # nothing beats the first stage
    # within the tolerance is a tie; a real difference is not
    assert pick_weight({0.2: 0.5 + TIE_TOLERANCE / 2, 0.6: 0.5}) == 0.6
    assert pick_weight({0.2: 0.5 + 1e-6, 0.6: 0.5}) == 0.2
    with pytest.raises(ValueError, match="no weights"):
        pick_weight({})


def test_the_weight_grid_runs_from_the_reranker_alone_to_the_first_stage_alone() -> None:
    assert WEIGHT_GRID == (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def test_rerank_head_reorders_the_head_and_keeps_the_tail_in_first_stage_order() -> None:
    hits = _hits(["a", "b", "c", "d", "e"], [5.0, 4.0, 3.0, 2.0, 1.0])
    out = rerank_head(hits, [0.1, 0.9, 0.5], depth=3, weight=0.0)
    assert [h.chunk.id for h in out] == ["b", "c", "a", "d", "e"]
    assert [h.rank for h in out] == [1, 2, 3, 4, 5]
    assert [h.score for h in out] == [5.0, 4.0, 3.0, 2.0, 1.0]  # by place, so the list stays one ranking
    assert out[0].scores == {"fusion": 4.0} and out[0].ranks == {"fusion": 2}  # per-stage scores are kept
    assert [h.chunk.id for h in hits] == ["a", "b", "c", "d", "e"]  # the input is not changed


def test_rerank_head_blends_with_the_first_stage_and_weight_one_keeps_its_order() -> None:
    hits = _hits(["a", "b", "c"], [3.0, 2.0, 1.0])
    model = [0.0, 1.0, 0.9]
    assert [h.chunk.id for h in rerank_head(hits, model, depth=3, weight=0.0)] == ["b", "c", "a"]
    # w = 0.5: a 0.5, b 0.75, c 0.45
    assert [h.chunk.id for h in rerank_head(hits, model, depth=3, weight=0.5)] == ["b", "a", "c"]
    assert [h.chunk.id for h in rerank_head(hits, model, depth=3, weight=1.0)] == ["a", "b", "c"]


def test_rerank_head_breaks_ties_by_chunk_id_and_handles_short_lists() -> None:
    hits = _hits(["z", "m", "a"], [3.0, 2.0, 1.0])
    assert [h.chunk.id for h in rerank_head(hits, [1.0, 1.0, 1.0], depth=3, weight=0.0)] == ["a", "m", "z"]
    two = _hits(["x", "y"], [2.0, 1.0])
    assert [h.chunk.id for h in rerank_head(two, [0.0, 1.0], depth=10, weight=0.0)] == ["y", "x"]
    assert rerank_head([], [], depth=5, weight=0.3) == []
    with pytest.raises(ValueError, match="1 model scores for 2 head hits"):
        rerank_head(two, [1.0], depth=2, weight=0.0)


def test_head_then_tail_puts_an_already_reranked_head_above_the_rest() -> None:
    hits = _hits(["a", "b", "c", "d"], [4.0, 3.0, 2.0, 1.0])
    out = head_then_tail([hits[1], hits[0]], hits, depth=2)
    assert [(h.chunk.id, h.rank, h.score) for h in out] == [("b", 1, 4.0), ("a", 2, 3.0), ("c", 3, 2.0), ("d", 4, 1.0)]
    # a reranker that keeps fewer than depth: the tail still starts after depth
    assert [h.chunk.id for h in head_then_tail([hits[1]], hits, depth=2)] == ["b", "c", "d"]
