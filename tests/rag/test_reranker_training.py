"""Reranker training: loaders, mining, and a tiny real end-to-end run (index → pairs → train → export → load)."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag.training.data import (
    TrainExample,
    dedup_examples,
    load_any,
    load_beir_examples,
    load_jsonl,
    load_squad,
    load_train_dir,
    split_by_group,
    text_key,
)
from rag.training.mining import PassagePool, mine_bm25_negatives, pairs_from_chunks
from rag.types import Chunk


def _write(path: Path, lines: list[dict]) -> Path:
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return path


def test_load_jsonl_positive_and_positives(tmp_path: Path) -> None:
    f = _write(
        tmp_path / "pairs.jsonl",
        [
            {"query": "what is bm25", "positive": "BM25 is a  ranking function.", "negatives": ["Cats purr."]},
            {"query": "q2", "positives": ["p1", "p2"]},
        ],
    )
    rows = load_jsonl(f)
    assert [r.positive for r in rows] == ["BM25 is a ranking function.", "p1", "p2"]
    assert rows[0].negatives == ("Cats purr.",)
    assert rows[1].group == rows[2].group
    with pytest.raises(Exception, match="query"):
        load_jsonl(_write(tmp_path / "bad.jsonl", [{"positive": "x"}]))


def test_load_beir_keeps_relevant_pairs(tmp_path: Path) -> None:
    _write(
        tmp_path / "corpus.jsonl",
        [{"_id": "d1", "title": "T", "text": "body"}, {"_id": "d2", "title": "", "text": "x"}],
    )
    _write(tmp_path / "queries.jsonl", [{"_id": "q1", "text": "query one"}])
    (tmp_path / "qrels").mkdir()
    (tmp_path / "qrels" / "train.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t0\n", encoding="utf-8"
    )
    rows = load_beir_examples(tmp_path)
    assert [(r.query, r.positive) for r in rows] == [("query one", "T. body")]
    assert load_any(tmp_path) == rows


def test_load_squad_splits_unanswerable(tmp_path: Path) -> None:
    data = {
        "data": [
            {
                "title": "A",
                "paragraphs": [
                    {
                        "context": "Ctx.",
                        "qas": [
                            {"id": "1", "question": "Q1?", "answers": [{"text": "x"}]},
                            {"id": "2", "question": "Q2?", "answers": [], "is_impossible": True},
                        ],
                    }
                ],
            }
        ]
    }
    f = tmp_path / "s.json.gz"
    with gzip.open(f, "wt", encoding="utf-8") as fh:
        json.dump(data, fh)
    pos, neg = load_squad(f, source="s")
    assert [(r.query, r.positive) for r in pos] == [("Q1?", "Ctx.")]
    assert neg[0].positive == "" and neg[0].negatives == ("Ctx.",)


def test_shared_train_dir_skips_research_only(shared_data: Path) -> None:
    rows = load_train_dir(shared_data / "train", include=["mlqa_dev_en", "wikiqa"])
    assert {r.source for r in rows} == {"mlqa"}
    assert len(rows) == 1148
    assert load_train_dir(shared_data / "train", include=["wikiqa"], allow_research_only=True)


def test_split_by_group_is_deterministic_and_disjoint() -> None:
    rows = [TrainExample(f"q{i}", f"p{i}", group=f"g{i % 17}") for i in range(200)]
    a1, b1 = split_by_group(rows, heldout_fraction=0.3, seed=1)
    a2, b2 = split_by_group(rows, heldout_fraction=0.3, seed=1)
    assert (a1, b1) == (a2, b2)
    assert not {r.group for r in a1} & {r.group for r in b1}
    assert b1 and a1
    assert len(dedup_examples([*rows, *rows])) == 200


def test_bm25_negatives_exclude_every_positive() -> None:
    passages = ["the cat sat on the mat", "a cat and a dog", "dogs bark loudly", "the mat is red", "stock markets fell"]
    rows = [TrainExample("cat on the mat", passages[0]), TrainExample("cat on the mat", passages[3])]
    mined = mine_bm25_negatives(rows, PassagePool(passages), n=2, depth=5, seed=0)
    for r in mined:
        assert len(r.negatives) == 2
        assert not {text_key(n) for n in r.negatives} & {text_key(passages[0]), text_key(passages[3])}


def test_pairs_from_chunks_titles_and_sentences() -> None:
    text = (
        "Reciprocal rank fusion merges ranked lists. It adds one over k plus rank for every list a document "
        "appears in. The constant k is usually sixty. Fusion needs no score calibration at all."
    )
    chunks = [Chunk(id="c1", source="doc.md", text=text, title="Rank fusion methods explained", heading=None)]
    pairs = pairs_from_chunks(chunks, seed=0)
    kinds = {p.source: p for p in pairs}
    assert kinds["index-title"].query == "Rank fusion methods explained"
    sentence = kinds["index-sentence"]
    assert sentence.query in text and sentence.query not in sentence.positive


@pytest.fixture(scope="module")
def tiny_index(tmp_path_factory: pytest.TempPathFactory, repo_root: Path) -> Path:
    from ingest.pipeline import ingest
    from rag.config import PipelineConfig

    docs = tmp_path_factory.mktemp("docs")
    sample = repo_root / "data" / "sample"
    for path in [*sample.glob("*.md"), *(sample / "handbook").glob("*")]:  # text only: a quick index
        shutil.copy(path, docs / path.name)
    index_dir = tmp_path_factory.mktemp("idx") / "index"
    ingest(docs, index_dir=index_dir, config=PipelineConfig())
    return index_dir


@pytest.mark.slow  # trains a cross-encoder for two steps and exports it
def test_train_export_and_load_end_to_end(tiny_index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import rag.models
    from rag.config import RerankConfig
    from rag.rerank import load_reranker
    from rag.training.mining import pairs_from_index
    from rag.training.train import TrainConfig, load_cross_encoder, score_pairs, train_reranker

    pairs = pairs_from_index(str(tiny_index), max_pairs=40, seed=0)
    assert len(pairs) >= 8
    cfg = TrainConfig(
        out=str(tmp_path / "run"),
        max_steps=2,
        batch_queries=2,
        negatives=2,
        max_length=64,
        heldout_fraction=0.25,
        heldout_queries=3,
        heldout_candidates=3,
        checkpoint_every=1,
        lr=1e-4,
        progress=False,
    )
    result = train_reranker(pairs, cfg)
    assert result.steps == 2 and result.pairs_seen == 2 * 2 * 3
    assert result.before is not None and 0.0 <= result.after.ndcg_reranker <= 1.0
    assert 0.0 <= result.after.fusion_weight <= 1.0
    shipped = result.model_dir
    assert (shipped / "model.safetensors").is_file() and (shipped / "reranker.json").is_file()
    assert json.loads((shipped / "config.json").read_text())["dtype"] == "float32"
    assert (tmp_path / "run" / "checkpoints" / "step-0000002" / "optimizer.safetensors").is_file()

    monkeypatch.setattr(rag.models, "packaged_reranker_path", lambda: shipped)
    reranker, status = load_reranker(RerankConfig(model="default", max_length=512))
    assert status.enabled and reranker is not None and status.path == str(shipped)
    probe = [(p.query, p.positive) for p in pairs[:4]]
    shipped_scores = reranker.score(probe)
    ckpt = tmp_path / "run" / "checkpoints"
    step1 = score_pairs(load_cross_encoder(str(ckpt / "step-0000001"), max_length=512), probe, max_length=512)
    step2 = score_pairs(load_cross_encoder(str(ckpt / "step-0000002"), max_length=512), probe, max_length=512)
    assert shipped_scores.shape == (4,) and np.isfinite(shipped_scores).all()
    assert np.allclose(shipped_scores, step2, atol=2e-2)  # raw logits (Identity activation); fp16 keeps them
    assert not np.allclose(step1, step2, atol=1e-4)  # training moved them

    resumed = train_reranker(pairs, cfg, resume=True)  # nothing left to do: loads step 2, re-exports
    assert resumed.pairs_seen == 0 and resumed.steps == 2


def test_same_document_passages_are_never_negatives() -> None:
    passages = ["cats sit on mats all day", "cats and mats, the sequel", "dogs bark", "markets fell", "rain today"]
    pool = PassagePool(passages, groups=["doc1", "doc1", "doc2", "doc3", "doc4"])
    row = TrainExample("cats on mats", "cats sit on mats all day", group="doc1")
    (mined,) = mine_bm25_negatives([row], pool, n=2, depth=5, seed=0)
    assert "cats and mats, the sequel" not in mined.negatives and len(mined.negatives) == 2


def test_llm_queries_resume_from_the_cache_and_report_failures(tmp_path: Path) -> None:
    """Each answer is cached as it comes; a rerun asks only for chunks not cached. A query that does not
    parse, or copies a sentence of its passage, is cached as a failure with its reason; a backend failure
    is counted but not cached, so the rerun asks again."""
    from rag.errors import GenerationError
    from rag.training.data import LoadReport
    from rag.training.mining import llm_queries
    from tests.eval.judge_fakes import FakeLLM

    chunks = [
        Chunk(id=f"c{i}", source=f"d{i}", text=f"Sentence number {i} about topic {i}. It has a second sentence here.")
        for i in range(4)
    ]
    backend_down = {"number 3 "}

    def respond(messages: list[dict[str, str]]) -> Any:
        passage = messages[-1]["content"]
        if any(key in passage for key in backend_down):
            raise GenerationError("backend down")
        if "number 0 " in passage:
            return "not json"
        if "number 1 " in passage:
            return {"query": "Sentence number 1 about topic 1."}  # copies the passage
        return {"query": f"what is topic {passage.split('topic ')[1][0]} about?"}

    cache = tmp_path / "q.jsonl"
    report = LoadReport()
    first = llm_queries(chunks, FakeLLM(respond=respond), n=4, style="claim", cache=cache, report=report)
    assert [e.query for e in first] == ["what is topic 2 about?"] and first[0].source == "index-llm-claim"
    assert report.counts == {"index:llm-claims": 1, "index:llm-failed": 3}
    assert "not JSON" in cache.read_text() and "copies a sentence" in cache.read_text()
    assert "backend" not in cache.read_text()

    backend_down.clear()
    with cache.open("a") as fh:
        fh.write('{"chunk": "c9", "sty')  # torn last line from an interrupted run
    resumed = FakeLLM(respond=respond)
    again = llm_queries(chunks, resumed, n=4, style="claim", cache=cache)
    assert len(resumed.calls) == 1 and "number 3 " in resumed.calls[0]["messages"][-1]["content"]
    assert sorted(e.query for e in again) == ["what is topic 2 about?", "what is topic 3 about?"]
    other_style = FakeLLM(respond=respond)
    llm_queries(chunks, other_style, n=4, style="question", cache=cache)
    assert len(other_style.calls) == 4 and "search question" in other_style.calls[0]["messages"][0]["content"]
    rows = cache.read_text().splitlines()
    assert sum('"style": "question"' in r for r in rows) == 4 and all(json.loads(r) for r in rows if "c9" not in r)


def test_every_shipped_config_loads(repo_root: Path) -> None:
    """Training recipes (a top-level ``train:``) load as recipes, the rest as pipeline configs: a typo in
    any key of configs/ fails here, not an hour into a run."""
    import yaml

    from rag.config import load_config
    from rag.errors import ConfigError
    from rag.training.sources import load_recipe

    recipes = 0
    for path in sorted((repo_root / "configs").glob("*.yaml")):
        data = yaml.safe_load(path.read_text()) or {}
        if path.name == "expected_scores.yaml":
            continue
        if "train" in data:
            recipe = load_recipe(path)
            recipes += 1
            assert recipe.llm_query_style in ("question", "claim"), path
        else:
            load_config(path)
    assert recipes >= 3
    with pytest.raises(ConfigError, match="llm_query_style 'poem'"):
        load_recipe(None, llm_query_style="poem")


def test_skip_queries_continues_the_seeded_order_on_queries_not_yet_used() -> None:
    """Stage 2 of the shipped recipe: the same split and order, starting where stage 1 stopped."""
    from rag.training.train import TrainConfig, prepare

    rows = [TrainExample(f"question {i} on topic {i}", f"passage {i} on topic {i}", group=f"g{i}") for i in range(120)]
    base = {"max_steps": 5, "batch_queries": 4, "seed": 3, "heldout_fraction": 0.1, "heldout_queries": 4}
    base["negatives"] = 1
    stage1, held1, _ = prepare(rows, TrainConfig(**base))
    stage2, held2, counts = prepare(rows, TrainConfig(**base, skip_queries=20))
    both, _, _ = prepare(rows, TrainConfig(**{**base, "max_steps": 10}))
    assert [r.query for r in both] == [r.query for r in stage1] + [r.query for r in stage2]
    assert not {r.query for r in stage1} & {r.query for r in stage2}
    assert held1 == held2 and counts["train_skipped"] == 20
