"""Third-party LLM backends and rerankers, registered from this test module without editing ragtrail, then
chosen by configuration (``llm.backend``, ``rerank.backend``) through the pipeline and ``rag ask``."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from query_fakes import FakeIndex, HashEncoder, ScriptedLLM, chunk

from rag.cli import main
from rag.config import AnswerConfig, LLMConfig, PipelineConfig, PromptConfig, RerankConfig, RetrievalConfig
from rag.errors import ConfigError
from rag.llm import LLM_BACKENDS, create_llm, register_llm_backend
from rag.pipeline import Pipeline
from rag.rerank import RERANKERS, Reranker, RerankStatus, apply_scores, load_reranker, register_reranker
from rag.types import Hit

DOCS = [
    ("guide/leave.md", "Full-time employees get 27 days of paid annual leave per year."),
    ("guide/sick.md", "Report sick leave to your team lead before ten in the morning."),
    ("report.pdf", "Robot sales grew by twelve percent in the third quarter of the year."),
]
OPEN_GATE = AnswerConfig(gate=False)


class ShortestFirst:
    """A reranker that prefers short passages: easy to predict, nothing like the first stage."""

    name = "shortest-first"

    def rerank(self, query: str, hits: Sequence[Hit], *, top_k: int) -> list[Hit]:
        return self.rerank_many([query], [hits], top_k=top_k)[0]

    def rerank_many(self, queries: Sequence[str], hits: Sequence[Sequence[Hit]], *, top_k: int) -> list[list[Hit]]:
        return [apply_scores(hs, [-float(len(h.chunk.text)) for h in hs], top_k=top_k) for hs in hits]


def open_shortest_first(config: RerankConfig, index_dir: Path | None) -> tuple[Reranker | None, RerankStatus]:
    return ShortestFirst(), RerankStatus(enabled=True, model=config.model)


def open_scripted(config: LLMConfig) -> ScriptedLLM:
    return ScriptedLLM(reply="Employees get 27 days [1].", name=f"scripted:{config.model}")


@pytest.fixture
def plugins() -> Iterator[None]:
    register_llm_backend("scripted", open_scripted)
    register_reranker("shortest-first", open_shortest_first)
    yield
    LLM_BACKENDS.pop("scripted")
    RERANKERS.pop("shortest-first")


def _config(**changes) -> PipelineConfig:
    return PipelineConfig(
        retrieval=RetrievalConfig(depth=3),
        rerank=RerankConfig(backend="shortest-first", model="any", depth=3),
        llm=LLMConfig(backend="scripted", model="m1"),
        prompt=PromptConfig(top_k=2, answer_tokens=64, ordering="rank"),
        answer=OPEN_GATE,
    ).replace(**changes)


def _pipeline(config: PipelineConfig) -> Pipeline:
    return Pipeline(config, FakeIndex([chunk(i, t, source=s) for i, (s, t) in enumerate(DOCS)]), encoder=HashEncoder())


def test_a_registered_llm_backend_is_created_from_the_config(plugins) -> None:
    llm = create_llm(LLMConfig(backend="scripted", model="m1"))
    assert isinstance(llm, ScriptedLLM) and llm.name == "scripted:m1"
    assert create_llm(LLMConfig(backend="scripted", model="m1")) is llm  # shared per config, like the built-ins


def test_the_pipeline_answers_with_the_registered_backend_and_reranks_with_the_registered_reranker(plugins) -> None:
    pipeline = _pipeline(_config())
    assert pipeline.rerank_status.enabled and isinstance(pipeline.reranker, ShortestFirst)
    found = pipeline.search("annual leave days robot sales", k=3)
    assert found.reranked and [len(h.chunk.text) for h in found.hits] == sorted(len(h.chunk.text) for h in found.hits)
    assert all("rerank" in h.scores for h in found.hits)
    answer = pipeline.ask("How many days of annual leave?")
    assert answer.llm == "scripted:m1" and answer.answer == "Employees get 27 days [1]."


def test_rerank_model_null_turns_off_a_registered_reranker_too(plugins) -> None:
    reranker, status = load_reranker(RerankConfig(backend="shortest-first", model=None))
    assert reranker is None and not status.enabled and "rerank.model is null" in (status.reason or "")


def test_unknown_backends_are_config_errors_naming_the_registered_ones(plugins) -> None:
    with pytest.raises(ConfigError, match=r"llm\.backend: 'nope' is not a registered backend; registered: .*scripted"):
        create_llm(LLMConfig(backend="nope"))
    with pytest.raises(ConfigError, match=r"rerank\.backend: 'nope' is not a registered reranker; .*cross_encoder"):
        _pipeline(_config(rerank=RerankConfig(backend="nope")))


def test_a_taken_name_needs_replace(plugins) -> None:
    with pytest.raises(ConfigError, match="'openai' is already registered"):
        register_llm_backend("openai", open_scripted)
    with pytest.raises(ConfigError, match="'cross_encoder' is already registered"):
        register_reranker("cross_encoder", open_shortest_first)
    register_reranker("shortest-first", open_shortest_first)  # the same factory again: a no-op
    previous = RERANKERS["shortest-first"]
    register_reranker("shortest-first", lambda config, index_dir: (None, RerankStatus(False)), replace=True)
    assert RERANKERS["shortest-first"] is not previous


def test_rag_ask_uses_the_backends_the_config_names(plugins, capsys, query_index: Path, tmp_path: Path) -> None:
    config = tmp_path / "plugins.yaml"
    config.write_text(
        "llm:\n  backend: scripted\n  model: m2\nrerank:\n  backend: shortest-first\n  model: any\n"
        "answer:\n  gate: false\n",
        encoding="utf-8",
    )
    code = main(["ask", "How fast is the Kestrel K7?", "--index", str(query_index), "--config", str(config), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    data = json.loads(out)
    assert data["llm"] == "scripted:m2" and data["reranked"] is True and data["rerank"]["model"] == "any"
