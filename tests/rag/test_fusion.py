from __future__ import annotations

import pytest

from rag.fusion import fuse, reciprocal_rank_fusion, weighted_fusion


def test_rrf_matches_formula():
    fused = dict(reciprocal_rank_fusion({"a": [("x", 9.0), ("y", 5.0)], "b": [("y", 0.9), ("z", 0.1)]}, k=60))
    assert fused["x"] == pytest.approx(1 / 61)
    assert fused["y"] == pytest.approx(1 / 62 + 1 / 61)
    assert fused["z"] == pytest.approx(1 / 62)


def test_rrf_orders_by_fused_score_then_id():
    out = reciprocal_rank_fusion({"a": [("b", 1.0), ("a", 0.5)], "b": [("a", 1.0), ("b", 0.5)]}, k=60)
    assert [d for d, _ in out] == ["a", "b"]  # equal fused scores: id decides
    assert out[0][1] == out[1][1]


def test_rrf_ranks_come_from_scores_not_input_order():
    shuffled = reciprocal_rank_fusion({"a": [("y", 1.0), ("x", 3.0), ("z", 2.0)]}, k=0)
    assert [d for d, _ in shuffled] == ["x", "z", "y"]
    assert dict(shuffled)["x"] == pytest.approx(1.0)


def test_rrf_input_ties_are_ranked_by_id():
    out = reciprocal_rank_fusion({"a": [("q", 1.0), ("p", 1.0)]}, k=60)
    assert out == [("p", pytest.approx(1 / 61)), ("q", pytest.approx(1 / 62))]


def test_rrf_weights_and_k():
    out = dict(reciprocal_rank_fusion({"a": [("x", 1.0)], "b": [("y", 1.0)]}, k=10, weights={"a": 2.0, "b": 1.0}))
    assert out == {"x": pytest.approx(2 / 11), "y": pytest.approx(1 / 11)}


def test_rrf_counts_duplicate_ids_once():
    out = dict(reciprocal_rank_fusion({"a": [("x", 2.0), ("x", 1.0), ("y", 0.5)]}, k=60))
    assert out == {"x": pytest.approx(1 / 61), "y": pytest.approx(1 / 62)}


def test_rrf_rejects_bad_inputs():
    with pytest.raises(ValueError, match="k must be"):
        reciprocal_rank_fusion({"a": []}, k=-1)
    with pytest.raises(ValueError, match="no fusion weight"):
        reciprocal_rank_fusion({"a": [], "b": []}, weights={"a": 1.0})


def test_weighted_fusion_normalises_each_list():
    # bm25 scores are unbounded, cosine scores are in [-1, 1]; after min-max both span [0, 1]
    out = dict(
        weighted_fusion(
            {"bm25": [("x", 30.0), ("y", 10.0)], "dense": [("y", 0.9), ("z", 0.5)]}, weights={"bm25": 0.5, "dense": 0.5}
        )
    )
    assert out == {"x": pytest.approx(0.5), "y": pytest.approx(0.5), "z": pytest.approx(0.0)}


def test_weighted_fusion_weight_one_reproduces_that_ranking():
    rankings = {"bm25": [("a", 3.0), ("b", 2.0), ("c", 1.0)], "dense": [("c", 0.9), ("b", 0.5), ("a", 0.1)]}
    out = weighted_fusion(rankings, weights={"bm25": 0.0, "dense": 1.0})
    assert [d for d, _ in out] == ["c", "b", "a"]


def test_fusion_does_not_mutate_inputs():
    rankings = {"a": [("y", 1.0), ("x", 3.0)], "b": [("x", 0.1)]}
    copy = {k: list(v) for k, v in rankings.items()}
    fuse("rrf", rankings, weights={"a": 1.0, "b": 1.0})
    fuse("weighted", rankings, weights={"a": 1.0, "b": 1.0})
    assert rankings == copy


def test_fusion_is_independent_of_list_order():
    a = {"bm25": [("x", 2.0), ("y", 1.0)], "dense": [("y", 0.8), ("z", 0.7)]}
    b = {"dense": [("z", 0.7), ("y", 0.8)], "bm25": [("y", 1.0), ("x", 2.0)]}
    w = {"bm25": 1.0, "dense": 1.0}
    for method in ("rrf", "weighted"):
        assert fuse(method, a, weights=w) == fuse(method, b, weights=w)


def test_fusion_of_empty_lists():
    assert fuse("rrf", {"a": [], "b": []}, weights={"a": 1.0, "b": 1.0}) == []
    assert fuse("weighted", {}, weights={}) == []
