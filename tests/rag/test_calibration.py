"""Label-free calibration of the reranker's fusion weight (``rag reranker calibrate``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from query_fakes import ScriptedLLM, hit

from rag.blend import pick_weight
from rag.calibration import doc_ndcg10, paired_ci, weight_curve
from rag.calibration_file import Calibration, model_fingerprint, read_calibration, write_calibration
from rag.cli import main
from rag.config import RerankConfig
from rag.errors import ConfigError
from rag.rerank import CrossEncoderReranker, load_reranker, passage_text
from rag.types import Chunk


def _hits(sources: list[str]):
    n = len(sources)
    return [hit(i, f"text {i}", score=float(n - i), rank=i + 1, source=s) for i, s in enumerate(sources)]


def test_doc_ndcg10_counts_a_document_once_at_its_best_chunk():
    hits = _hits(["a", "a", "b", "a", "c"])
    assert doc_ndcg10(hits, "a") == 1.0
    assert doc_ndcg10(hits, "b") == pytest.approx(1 / np.log2(3))  # second document, not third chunk
    assert doc_ndcg10(hits, "c") == pytest.approx(1 / np.log2(4))
    assert doc_ndcg10(hits, "zzz") == 0.0
    eleven = _hits([f"d{i}" for i in range(11)])
    assert doc_ndcg10(eleven, "d9") > 0.0 and doc_ndcg10(eleven, "d10") == 0.0


def test_the_curve_follows_the_better_ranker_and_ties_go_to_the_first_stage():
    # first stage ranks the relevant document third; a good reranker puts it first, a bad one last
    cands = [_hits(["x", "y", "rel", "z"]) for _ in range(3)]
    good = [np.array([0.0, 0.1, 5.0, 0.2])] * 3
    bad = [np.array([5.0, 4.0, -9.0, 3.0])] * 3
    rel = ["rel"] * 3
    curve_good = weight_curve(cands, good, rel, depth=4)
    means_good = {w: float(v.mean()) for w, v in curve_good.items()}
    assert means_good[0.0] == 1.0 and means_good[1.0] == pytest.approx(0.5)
    # every weight up to the one where the first stage starts to win ranks "rel" first: the largest is picked
    assert pick_weight(means_good) == max(w for w, m in means_good.items() if m == 1.0) > 0.0
    curve_bad = weight_curve(cands, bad, rel, depth=4)
    means_bad = {w: float(v.mean()) for w, v in curve_bad.items()}
    assert means_bad[0.0] < means_bad[1.0] and pick_weight(means_bad) == 1.0


def test_depth_limits_what_the_reranker_may_move():
    cands = [_hits(["x", "y", "rel"])]
    curve = weight_curve(cands, [np.array([0.0, 1.0])], ["rel"], depth=2)
    assert curve[0.0].mean() == curve[1.0].mean() == pytest.approx(0.5)


def test_paired_ci_brackets_the_mean_difference():
    a, b = np.array([1.0, 0.5, 1.0, 0.0]), np.array([0.5, 0.5, 0.5, 0.0])
    lo, hi = paired_ci(a, b)
    assert lo <= float((a - b).mean()) <= hi and lo >= 0.0
    assert paired_ci(np.array([]), np.array([])) == (0.0, 0.0)


def _cal(model: str, weight: float, *, with_title: bool = True) -> Calibration:
    ndcg = {str(round(0.1 * i, 1)): 0.5 for i in range(11)}
    return Calibration(model, with_title, weight, 10, "sentence", "hybrid", 30, ndcg, (0.0, 0.0), 5, 1.0)


def test_calibrations_are_stored_per_model_and_passage_format(tmp_path):
    write_calibration(tmp_path, _cal("model-a", 0.3))
    write_calibration(tmp_path, _cal("model-b", 0.9))
    write_calibration(tmp_path, _cal("model-a", 0.7))  # replaces the first
    write_calibration(tmp_path, _cal("model-a", 0.1, with_title=False))
    got = read_calibration(tmp_path, "model-a", with_title=True)
    assert got is not None and got.fusion_weight == 0.7 and got.first_stage == 0.5
    assert read_calibration(tmp_path, "model-a", with_title=False).fusion_weight == 0.1  # type: ignore[union-attr]
    assert read_calibration(tmp_path, "model-b", with_title=True).fusion_weight == 0.9  # type: ignore[union-attr]
    assert read_calibration(tmp_path, "model-c", with_title=True) is None
    assert len(json.loads((tmp_path / "rerank_calibration.json").read_text())["calibrations"]) == 3


def test_an_unreadable_calibration_names_the_file(tmp_path):
    (tmp_path / "rerank_calibration.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"rerank_calibration\.json"):
        read_calibration(tmp_path, "m", with_title=True)


def test_a_calibrated_weight_outside_0_1_names_the_file(tmp_path):
    stored = {**_cal("m", 0.5).to_dict(), "fusion_weight": -0.2}
    (tmp_path / "rerank_calibration.json").write_text(json.dumps({"calibrations": [stored]}), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"rerank_calibration\.json: .*fusion_weight must be between 0 and 1"):
        read_calibration(tmp_path, "m", with_title=True)


def test_the_reranker_reads_the_title_before_a_chunk_that_lacks_it():
    later = Chunk(id="1", source="p", text="We found X.", title="Paper on X")
    first = Chunk(id="0", source="p", text="Paper on X\n\nAbstract.", title="Paper on X")
    assert passage_text(later) == "Paper on X. We found X."
    assert passage_text(first) == first.text
    assert passage_text(later, with_title=False) == "We found X."
    assert passage_text(Chunk(id="2", source="p", text="t")) == "t"


@pytest.fixture(scope="module")
def tiny_ce_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from sentence_transformers import CrossEncoder

    from rag.models import resolve_embedding_model

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ce") / "ce"
    CrossEncoder(resolve_embedding_model("all-MiniLM-L6-v2"), num_labels=1, max_length=64).save(str(path))
    return path


def test_load_reranker_takes_the_index_calibration_unless_the_config_sets_a_weight(tiny_ce_dir, tmp_path):
    write_calibration(tmp_path, _cal(str(tiny_ce_dir), 0.6))
    base = {"model": str(tiny_ce_dir), "max_length": 64, "with_title": True}
    reranker, status = load_reranker(RerankConfig(**base), index_dir=tmp_path)
    assert isinstance(reranker, CrossEncoderReranker) and reranker.fusion_weight == 0.6
    assert status.fusion_weight == 0.6 and "index calibration" in (status.weight_source or "")
    fixed, status = load_reranker(RerankConfig(**base, fusion_weight=0.2), index_dir=tmp_path)
    assert isinstance(fixed, CrossEncoderReranker) and fixed.fusion_weight == 0.2
    assert status.weight_source == "configuration"
    plain, status = load_reranker(RerankConfig(**{**base, "with_title": False}), index_dir=tmp_path)
    assert isinstance(plain, CrossEncoderReranker) and plain.fusion_weight == 0.0
    assert status.weight_source == "reranker.json"


def test_calibrate_cli_writes_queries_with_the_llm_once_and_the_pipeline_uses_the_weight(
    capsys, monkeypatch, query_index, tiny_ce_dir, tmp_path
):
    from rag.pipeline import Pipeline

    index = tmp_path / "ix"
    shutil.copytree(query_index, index)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"rerank:\n  model: {tiny_ce_dir}\n  max_length: 64\n", encoding="utf-8")
    llm = ScriptedLLM(reply=json.dumps({"query": "How fast can the delivery robot drive?"}))
    monkeypatch.setattr("rag.llm.create_llm", lambda config: llm)
    argv = ["reranker", "calibrate", "--index", str(index), "--config", str(cfg), "--queries", "3", "--json"]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    asked = len(llm.seen)
    assert asked == 3 and data["queries"] == 3 and data["pseudo"] == "llm-question"
    assert set(data["ndcg"]) == {str(round(0.1 * i, 1)) for i in range(11)}
    assert 0.0 <= data["fusion_weight"] <= 1.0
    assert data["ndcg"][str(data["fusion_weight"])] == max(data["ndcg"].values())
    assert (index / "calibration" / "llm-queries.jsonl").is_file()
    pipeline = Pipeline.from_config(cfg, index_dir=index, llm=llm)
    assert pipeline.rerank_status.fusion_weight == data["fusion_weight"]
    assert "3 llm-question pseudo-queries" in (pipeline.rerank_status.weight_source or "")
    # a rerun reuses the cached queries (the LLM is not asked again), even where the stored calibration
    # turned reranking off
    write_calibration(index, _cal(str(tiny_ce_dir), 1.0, with_title=False))
    assert Pipeline.from_config(cfg, index_dir=index, llm=llm).reranker is None
    assert main([*argv[:-1], "--dry-run"]) == 0
    assert len(llm.seen) == asked and "fusion_weight" in capsys.readouterr().out


def test_calibrate_refuses_when_reranking_is_off(capsys, query_index, tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("rerank:\n  model: null\n", encoding="utf-8")
    code = main(["reranker", "calibrate", "--index", str(query_index), "--config", str(cfg), "--pseudo", "sentence"])
    _, err = capsys.readouterr()
    assert code == 2 and "nothing to calibrate: reranking is off" in err and "pseudo-queries" not in err
    assert not (query_index / "rerank_calibration.json").exists()


def test_status_reports_where_the_weight_came_from():
    from rag.rerank import RerankStatus

    s = RerankStatus(enabled=True, model="m", path="/m", fusion_weight=0.4, weight_source="configuration")
    assert s.to_dict()["fusion_weight"] == 0.4 and s.to_dict()["weight_source"] == "configuration"


def test_a_calibration_of_other_weights_is_ignored(tiny_ce_dir, tmp_path):
    import dataclasses

    assert model_fingerprint(str(tiny_ce_dir)) == model_fingerprint(str(tiny_ce_dir)) != str(tiny_ce_dir)
    assert model_fingerprint("some/hub-id") == "some/hub-id"
    stale = dataclasses.replace(_cal(str(tiny_ce_dir), 0.6), fingerprint="weights-of-an-earlier-install")
    write_calibration(tmp_path, stale)
    cfg = RerankConfig(model=str(tiny_ce_dir), max_length=64, with_title=True)
    reranker, status = load_reranker(cfg, index_dir=tmp_path)
    assert isinstance(reranker, CrossEncoderReranker) and status.weight_source == "reranker.json"
    current = dataclasses.replace(stale, fingerprint=model_fingerprint(str(tiny_ce_dir)))
    write_calibration(tmp_path, current)
    reranker, status = load_reranker(cfg, index_dir=tmp_path)
    assert isinstance(reranker, CrossEncoderReranker) and reranker.fusion_weight == 0.6


def test_a_calibration_that_trusts_only_the_first_stage_turns_reranking_off_and_says_why(tiny_ce_dir, tmp_path):
    write_calibration(tmp_path, _cal(str(tiny_ce_dir), 1.0, with_title=False))
    reranker, status = load_reranker(RerankConfig(model=str(tiny_ce_dir), max_length=64), index_dir=tmp_path)
    assert reranker is None and not status.enabled and status.fusion_weight == 1.0
    assert status.notice is not None and "no fusion weight at which the reranker beats the first stage" in status.notice
    cfg = RerankConfig(model=str(tiny_ce_dir), max_length=64, fusion_weight=0.5)
    forced, status = load_reranker(cfg, index_dir=tmp_path)
    assert isinstance(forced, CrossEncoderReranker) and status.enabled
