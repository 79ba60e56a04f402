from __future__ import annotations

import pytest
from query_fakes import hit

from rag.config import RerankConfig
from rag.errors import ModelError
from rag.rerank import CrossEncoderReranker, Reranker, RerankStatus, apply_scores, load_reranker


@pytest.fixture(scope="module")
def tiny_cross_encoder():
    """MiniLM weights with a random classification head: real plumbing, meaningless scores."""
    import torch
    from sentence_transformers import CrossEncoder

    from rag.models import resolve_embedding_model

    torch.manual_seed(0)
    return CrossEncoder(resolve_embedding_model("all-MiniLM-L6-v2"), num_labels=1, max_length=64)


TEXTS = ["Cats purr when content.", "Rain tomorrow.", "Robots sell well.", "Dogs bark.", "Tea is hot."]


def _hits():
    return [hit(i, t, score=1.0 / (i + 1), rank=i + 1) for i, t in enumerate(TEXTS)]


def test_apply_scores_sorts_by_score_then_id_and_records_the_stage():
    hits = [hit("b", score=0.3, rank=1), hit("a", score=0.2, rank=2), hit("c", score=0.1, rank=3)]
    out = apply_scores(hits, [0.5, 0.5, 0.9], top_k=2)
    assert [h.chunk.id for h in out] == ["cc", "ca"]
    assert out[0].scores == {"fusion": 0.1, "rerank": 0.9} and out[0].ranks["rerank"] == 1
    assert out[0].score == 0.9 and out[1].rank == 2
    with pytest.raises(ValueError):
        apply_scores(hits, [1.0], top_k=1)


def test_cross_encoder_reranker_orders_by_its_own_scores(tiny_cross_encoder):
    reranker = CrossEncoderReranker(tiny_cross_encoder, batch_size=2)
    assert isinstance(reranker, Reranker)
    hits = _hits()
    out = reranker.rerank("do cats purr?", hits, top_k=3)
    expected = reranker.score([("do cats purr?", t) for t in TEXTS])
    best = sorted(range(5), key=lambda i: (-expected[i], f"c{i}"))[:3]
    assert [h.chunk.id for h in out] == [f"c{i}" for i in best]
    assert [h.score for h in out] == pytest.approx([float(expected[i]) for i in best], abs=1e-5)
    assert all("fusion" in h.scores and "rerank" in h.scores for h in out)


def test_rerank_many_batches_across_queries_and_matches_one_by_one(tiny_cross_encoder):
    one = CrossEncoderReranker(tiny_cross_encoder, batch_size=1)
    many = CrossEncoderReranker(tiny_cross_encoder, batch_size=16)
    queries = ["cats?", "weather?"]
    together = many.rerank_many(queries, [_hits(), _hits()[:3]], top_k=2)
    alone = [one.rerank(q, h, top_k=2) for q, h in zip(queries, [_hits(), _hits()[:3]], strict=True)]
    assert [[h.chunk.id for h in hs] for hs in together] == [[h.chunk.id for h in hs] for hs in alone]
    for a, b in zip(together, alone, strict=True):
        assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=1e-4)
    assert many.rerank("x", [], top_k=3) == []


def test_reranker_model_loads_from_a_path(tiny_cross_encoder, tmp_path):
    tiny_cross_encoder.save(str(tmp_path / "ce"))
    reranker, status = load_reranker(RerankConfig(model=str(tmp_path / "ce"), max_length=64))
    assert status.enabled and status.path == str(tmp_path / "ce") and status.notice is None
    assert reranker is not None and len(reranker.rerank("cats", _hits(), top_k=2)) == 2


def test_null_model_turns_reranking_off_with_a_reason():
    reranker, status = load_reranker(RerankConfig(model=None))
    assert reranker is None and not status.enabled
    assert status.notice == "reranking is off: rerank.model is null in the configuration"


def test_missing_default_model_turns_reranking_off_and_says_why(monkeypatch, tmp_path):
    monkeypatch.setattr("rag.models.packaged_reranker_path", lambda: tmp_path / "absent")
    reranker, status = load_reranker(RerankConfig(model="default"))
    assert reranker is None and status.to_dict()["enabled"] is False
    assert status.notice is not None and "default reranker is not in this install" in status.notice


def test_a_configured_model_that_cannot_load_is_an_error(tmp_path):
    reranker = CrossEncoderReranker(str(tmp_path / "nothing-here"))
    with pytest.raises(ModelError, match="could not be loaded"):
        reranker.rerank("q", _hits(), top_k=2)


def test_status_round_trips_to_dict():
    s = RerankStatus(enabled=True, model="default", path="/x")
    assert s.to_dict() == {
        "enabled": True,
        "model": "default",
        "path": "/x",
        "reason": None,
        "fusion_weight": None,
        "weight_source": None,
    }


def test_fusion_weight_comes_from_reranker_json_beside_the_model(tiny_cross_encoder, tmp_path):
    import json

    tiny_cross_encoder.save(str(tmp_path / "ce"))
    (tmp_path / "ce" / "reranker.json").write_text(json.dumps({"fusion_weight": 1.0}), encoding="utf-8")
    reranker, _ = load_reranker(RerankConfig(model=str(tmp_path / "ce"), max_length=64))
    assert isinstance(reranker, CrossEncoderReranker) and reranker.fusion_weight == 1.0
    out = reranker.rerank("cats", _hits(), top_k=5)
    assert [h.chunk.id for h in out] == ["c0", "c1", "c2", "c3", "c4"]  # weight 1: the first-stage order
    assert all("rerank_raw" in h.scores for h in out)
    overridden, _ = load_reranker(RerankConfig(model=str(tmp_path / "ce"), fusion_weight=0.0, max_length=64))
    assert isinstance(overridden, CrossEncoderReranker) and overridden.fusion_weight == 0.0


def test_a_reranker_json_weight_outside_0_1_names_the_file(tiny_cross_encoder, tmp_path):
    import json

    tiny_cross_encoder.save(str(tmp_path / "ce"))
    (tmp_path / "ce" / "reranker.json").write_text(json.dumps({"fusion_weight": 1.5}), encoding="utf-8")
    with pytest.raises(ModelError, match=r"reranker\.json: fusion_weight must be between 0 and 1, got 1\.5"):
        load_reranker(RerankConfig(model=str(tmp_path / "ce"), max_length=64))
