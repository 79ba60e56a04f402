"""Retrieval evaluation end to end: loaders, runs, report files, the CLI, and a real SciFact run
re-scored by pytrec_eval."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from eval_tiny_data import TINY_QRELS, write_beir

from eval.datasets import load_dataset, load_qrels
from eval.metrics import dedupe, rank_run
from eval.retrieval import RetrievalEvalConfig, RetrievalEvaluator, hits_to_run, rerank_candidates
from eval.runs import aggregate, read_run, write_run
from rag.cli import main
from rag.config import PipelineConfig
from rag.errors import ConfigError, EvalDataError, ModelError
from rag.types import Chunk, Hit

# ---- loaders ------------------------------------------------------------------------------------


def test_load_beir_keeps_judged_queries(tiny_beir: Path) -> None:
    ds = load_dataset(tiny_beir)
    assert ds.kind == "beir" and ds.name == "tiny" and ds.corpus == tiny_beir / "corpus.jsonl"
    assert ds.qrels == TINY_QRELS
    assert set(ds.queries) == set(TINY_QRELS)  # the unjudged query is dropped
    assert ds.unit("q1") == "document"


def test_load_beir_errors_name_the_problem(tmp_path: Path) -> None:
    root = write_beir(tmp_path / "ds")
    with pytest.raises(EvalDataError, match=r"split 'dev'.*available splits: test"):
        load_dataset(root, split="dev")
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\tyes\n", encoding="utf-8")
    with pytest.raises(EvalDataError, match=r"test.tsv:2: relevance 'yes'"):
        load_dataset(root)
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq404\td1\t1\n", encoding="utf-8")
    with pytest.raises(EvalDataError, match="q404"):
        load_dataset(root)
    with pytest.raises(EvalDataError, match="dataset not found"):
        load_dataset(tmp_path / "missing")


def test_load_qrels_trec_format(tmp_path: Path) -> None:
    path = tmp_path / "qrels.txt"
    path.write_text("q1 0 d1 2\nq1 0 d2 0\nq2 0 d3 1\n", encoding="utf-8")
    assert load_qrels(path) == {"q1": {"d1": 2, "d2": 0}, "q2": {"d3": 1}}


def test_load_plain_jsonl(tmp_path: Path) -> None:
    (tmp_path / "questions.jsonl").write_text(
        '{"id": "a", "question": "Where?", "relevant": ["./docs/x.md", "y.txt"]}\n'
        '{"question": "What?", "relevant": {"z.md": 2}}\n'
        '{"id": "c", "question": "Which chunk?", "relevant_chunks": ["abc123"]}\n',
        encoding="utf-8",
    )
    ds = load_dataset(tmp_path)
    assert ds.kind == "jsonl" and ds.corpus == tmp_path
    assert ds.qrels == {"a": {"docs/x.md": 1, "y.txt": 1}, "2": {"z.md": 2}, "c": {"abc123": 1}}
    assert (ds.unit("a"), ds.unit("c")) == ("document", "chunk")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "question": "Q", "relevant": ["x"], "relevant_chunks": ["y"]}\n', encoding="utf-8")
    with pytest.raises(EvalDataError, match=r"bad.jsonl:1: give exactly one"):
        load_dataset(bad)


# ---- runs ---------------------------------------------------------------------------------------


def test_aggregate_chunks_to_documents() -> None:
    pairs = [("a", 0.9), ("b", 0.8), ("a", 0.7), ("c", 0.7)]
    assert aggregate(pairs) == {"a": 0.9, "b": 0.8, "c": 0.7}
    assert aggregate(pairs, how="sum") == pytest.approx({"a": 1.6, "b": 0.8, "c": 0.7})
    assert aggregate(pairs, how="first") == {"a": 0.9, "b": 0.8, "c": 0.7}
    with pytest.raises(ValueError, match="'mean'"):
        aggregate(pairs, how="mean")  # type: ignore[arg-type]


def test_trec_run_round_trip(tmp_path: Path) -> None:
    run = {"q2": {"d1": 0.5, "d2": 0.5, "d3": 1 / 3}, "q1": {"x": 1e-9}}
    path = write_run(tmp_path / "run.trec", run, name="test-run")
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "q1 Q0 x 1 1e-09 test-run"
    assert [line.split()[2] for line in lines[1:]] == ["d1", "d2", "d3"]  # ties by doc id
    assert read_run(path) == run
    with pytest.raises(ValueError, match="whitespace"):
        write_run(tmp_path / "bad.trec", run, name="two words")


def _hit(doc: str, chunk: str, score: float, rank: int) -> Hit:
    return Hit(chunk=Chunk(id=chunk, source=doc, text=f"text of {chunk}"), score=score, rank=rank)


def test_hits_to_run_collapses_documents_and_keeps_chunks(tmp_path: Path) -> None:
    (tmp_path / "questions.jsonl").write_text(
        '{"id": "d", "question": "Q", "relevant": ["a.md"]}\n{"id": "c", "question": "Q", "relevant_chunks": ["c1"]}\n',
        encoding="utf-8",
    )
    ds = load_dataset(tmp_path)
    hits = [_hit("a.md", "c1", 0.9, 1), _hit("b.md", "c2", 0.8, 2), _hit("a.md", "c3", 0.7, 3)]
    run = hits_to_run({"d": hits, "c": hits}, ds)
    assert run == {"d": {"a.md": 0.9, "b.md": 0.8}, "c": {"c1": 0.9, "c2": 0.8, "c3": 0.7}}


class ReverseReranker:
    """A stand-in reranker that puts the candidates in reverse order."""

    name = "reverse"

    def rerank(self, query, hits, *, top_k):
        return self.rerank_many([query], [hits], top_k=top_k)[0]

    def rerank_many(self, queries, hits, *, top_k):
        return [
            [Hit(h.chunk, float(i), i + 1, {**h.scores, "rerank": float(i)}) for i, h in enumerate(hs[::-1])][:top_k]
            for hs in hits
        ]


def test_rerank_candidates_reorders_head_and_keeps_tail() -> None:
    hits = [_hit(f"d{i}", f"c{i}", 1.0 - i / 10, i + 1) for i in range(5)]
    out = rerank_candidates(ReverseReranker(), ["q"], [hits], depth=3)[0]
    assert [h.chunk.id for h in out] == ["c2", "c1", "c0", "c3", "c4"]
    assert [h.score for h in out] == sorted((h.score for h in out), reverse=True)


# ---- end to end on the tiny corpus --------------------------------------------------------------


def test_evaluation_on_tiny_corpus_writes_every_output(tiny_beir: Path, tiny_index_dir: Path, tmp_path: Path) -> None:
    from eval.retrieval_report import terminal_summary, write_outputs

    config = RetrievalEvalConfig(modes=("bm25", "dense", "hybrid"), ks=(1, 3, 10), n_resamples=500)
    result = RetrievalEvaluator(PipelineConfig(), config).run(tiny_beir, index_dir=tiny_index_dir)
    assert list(result.modes) == ["bm25", "dense", "hybrid"]
    for scored in result.modes.values():
        assert set(scored.per_query) == set(TINY_QRELS)
        assert all(v == 0.0 for v in scored.per_query["q5"].values())  # no relevant document
    for mode in ("dense", "hybrid"):  # all 10 documents come back: 4 of 5 queries fully recalled
        assert result.modes[mode].means["recall@10"] == pytest.approx(0.8)
    assert result.modes["dense"].means["ndcg@10"] > 0.6
    assert len(result.comparisons) == 3
    assert any("up to date" in n for n in result.notes)

    paths = write_outputs(result, tmp_path / "out")
    metrics = json.loads(paths["metrics"].read_text(encoding="utf-8"))
    assert set(metrics) == {"bm25", "dense", "hybrid"}
    assert metrics["dense"]["ndcg@10"] == pytest.approx(result.modes["dense"].means["ndcg@10"])
    assert {"ndcg@1", "recall@3", "precision@10", "mrr@10", "map@10", "hit_rate@1"} <= set(metrics["bm25"])
    rows = [json.loads(line) for line in paths["per_query"].read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 3 * len(TINY_QRELS)
    assert {"mode", "qid", "query", "ndcg@10", "first_relevant_rank", "top"} <= set(rows[0])
    assert read_run(paths["run:hybrid"]).keys() == set(TINY_QRELS)
    page = paths["html"].read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 4
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert "by the max of each document" in page
    summary = terminal_summary(result)
    assert "nDCG@10" in summary and "p rand." in summary


def test_unknown_or_missing_reranker_is_an_error_not_a_silent_switch(tiny_beir: Path, tiny_index_dir: Path) -> None:
    from rag.config import RerankConfig

    pipeline = PipelineConfig(rerank=RerankConfig(model=None))
    config = RetrievalEvalConfig(modes=("hybrid+rerank",))
    with pytest.raises(ModelError, match="reranking is off"):
        RetrievalEvaluator(pipeline, config).run(tiny_beir, index_dir=tiny_index_dir)
    default = RetrievalEvaluator(pipeline, RetrievalEvalConfig(modes=None, n_resamples=100)).run(
        tiny_beir, index_dir=tiny_index_dir)
    assert "hybrid+rerank" not in default.modes
    assert any(n.startswith("hybrid+rerank not evaluated: reranking is off") for n in default.notes)


def test_config_validation() -> None:
    with pytest.raises(ConfigError, match="'splade'"):
        RetrievalEvalConfig(modes=("splade",))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="depth 5 is below"):
        RetrievalEvalConfig(depth=5, ks=(10,))
    with pytest.raises(ConfigError, match="positive integers"):
        RetrievalEvalConfig(ks=(0, 10))


def test_index_built_from_another_corpus_is_refused(tiny_beir: Path, tiny_index_dir: Path, tmp_path: Path) -> None:
    other = write_beir(tmp_path / "other")
    with pytest.raises(ConfigError, match="was built from"):
        RetrievalEvaluator().run(other, index_dir=tiny_index_dir)


def test_cli(tiny_beir: Path, tiny_index_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli-out"
    code = main(["eval", "retrieval", "--dataset", str(tiny_beir), "--index", str(tiny_index_dir),
                 "--modes", "bm25,dense", "--k", "1,5,10", "--resamples", "200", "--out", str(out), "--json"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert set(printed) == {"bm25", "dense"} and "ndcg@5" in printed["dense"]
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["bm25.trec", "dense.trec"]
    assert main(["eval", "retrieval", "--dataset", str(tmp_path / "nope"), "--index", str(tiny_index_dir)]) == 2
    assert "dataset not found" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["eval", "retrieval", "--dataset", str(tiny_beir), "--modes", "bm25,splade"])
    assert exc.value.code == 2


# ---- a real run, re-scored by the reference implementation --------------------------------------


@pytest.mark.slow
def test_scifact_run_matches_pytrec_eval(scifact_result, tmp_path: Path) -> None:
    pytrec_eval = pytest.importorskip("pytrec_eval")
    qrels = scifact_result.dataset.qrels
    measures = {"ndcg_cut.10,100", "recall.10,100", "P.10", "map_cut.10,100", "success.10"}
    names = {"ndcg_cut": "ndcg", "recall": "recall", "P": "precision", "map_cut": "map", "success": "hit_rate"}
    for mode, result in scifact_result.modes.items():
        path = write_run(tmp_path / f"{mode}.trec", result.run, name=mode)
        run = read_run(path)
        # trec_eval breaks score ties by doc id descending; give it our order as distinct scores
        ranked = {q: {d: float(-i) for i, d in enumerate(dedupe(rank_run(scores)))} for q, scores in run.items()}
        reference = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(ranked)
        assert set(reference) == set(qrels)
        for qid, scores in reference.items():
            for trec_key, value in scores.items():
                measure, _, k = trec_key.rpartition("_")
                ours = result.per_query[qid][f"{names[measure]}@{k}"]
                assert ours == pytest.approx(value, abs=1e-9), (mode, qid, trec_key)
        mean_ref = sum(s["ndcg_cut_10"] for s in reference.values()) / len(qrels)
        assert result.means["ndcg@10"] == pytest.approx(mean_ref, abs=1e-12)
        assert not math.isnan(result.means["mrr@10"])
