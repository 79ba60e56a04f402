"""ragas as an alternative engine, fully offline: its faithfulness, answer-relevancy and context-
precision metrics run on the project's LLM and embedder through ragas' own wrapper interfaces
(:class:`ProjectRagasLLM` is a ``BaseRagasLLM``; the sentence-transformers model goes through
``LangchainEmbeddingsWrapper``), so ragas never builds an OpenAI client. ragas' prompts carry the
JSON schema of their output model; the adapter passes it on as ``json_schema`` so the local model's
replies are constrained like our own judges'. :func:`compare` reports where ragas and our judges differ.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.embeddings import Embeddings
from langchain_core.outputs import Generation, LLMResult
from langchain_core.prompt_values import PromptValue
from ragas.llms.base import BaseRagasLLM

from eval.judges.base import ChatLLM, EvalSample, Usage

RagasMetricName = Literal["faithfulness", "answer_relevancy", "context_precision"]
RAGAS_METRICS: tuple[RagasMetricName, ...] = ("faithfulness", "answer_relevancy", "context_precision")
OURS: dict[RagasMetricName, str] = {
    "faithfulness": "faithfulness",
    "answer_relevancy": "answer_relevance",
    "context_precision": "context_relevance",
}
_ROLES = {"human": "user", "system": "system", "ai": "assistant"}
_SCHEMA_MARK = re.compile(r"as specified in JSON Schema:\s*")


def schema_from_prompt(text: str) -> dict[str, Any] | None:
    """The output JSON schema a ragas ``PydanticPrompt`` embeds in its text, if any."""
    m = _SCHEMA_MARK.search(text)
    if not m:
        return None
    try:
        schema, _ = json.JSONDecoder().raw_decode(text, m.end())
    except json.JSONDecodeError:
        return None
    return schema if isinstance(schema, dict) else None


@dataclass
class ProjectRagasLLM(BaseRagasLLM):
    """ragas' LLM interface over a :class:`rag.llm.LLM` (any object with ``complete``)."""

    llm: Any = None
    max_tokens: int = 1024
    constrain: bool = True
    usage: Usage = field(default_factory=Usage)

    def _complete(self, prompt: PromptValue, n: int, temperature: float | None, stop: list[str] | None) -> LLMResult:
        import time

        messages = [{"role": _ROLES.get(m.type, "user"), "content": str(m.content)} for m in prompt.to_messages()]
        schema = schema_from_prompt(prompt.to_string()) if self.constrain else None
        gens: list[Generation] = []
        for i in range(max(1, n)):
            start = time.perf_counter()
            c = self.llm.complete(
                messages,
                max_tokens=self.max_tokens,
                temperature=temperature or 0.0,
                seed=i,
                json_schema=schema,
                stop=stop,
            )
            self.usage.add(Usage(1, c.prompt_tokens, c.completion_tokens, time.perf_counter() - start))
            gens.append(Generation(text=c.text, generation_info={"finish_reason": c.finish_reason}))
        return LLMResult(generations=[gens])

    def generate_text(
        self,
        prompt: PromptValue,
        n: int = 1,
        temperature: float = 0.01,
        stop: list[str] | None = None,
        callbacks: Any = None,
    ) -> LLMResult:
        return self._complete(prompt, n, temperature, stop)

    async def agenerate_text(
        self,
        prompt: PromptValue,
        n: int = 1,
        temperature: float | None = 0.01,
        stop: list[str] | None = None,
        callbacks: Any = None,
    ) -> LLMResult:
        return self._complete(prompt, n, temperature, stop)

    def is_finished(self, response: LLMResult) -> bool:
        return all(
            (g.generation_info or {}).get("finish_reason") != "length" for gs in response.generations for g in gs
        )


class SentenceTransformerEmbeddings(Embeddings):
    """LangChain ``Embeddings`` over an already-loaded sentence-transformers model."""

    def __init__(self, st_model: Any, *, name: str = "all-MiniLM-L6-v2") -> None:
        self._st = st_model
        self.model = name  # ragas' usage events read ``.model`` and require a string

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [list(map(float, v)) for v in self._st.encode(list(texts))]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


def ragas_metrics(names: Sequence[RagasMetricName], *, with_reference: bool) -> list[Any]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from ragas.metrics import (
            Faithfulness,
            LLMContextPrecisionWithoutReference,
            LLMContextPrecisionWithReference,
            ResponseRelevancy,
        )
    build: dict[RagasMetricName, Any] = {
        "faithfulness": Faithfulness,
        "answer_relevancy": lambda: ResponseRelevancy(strictness=1),
        "context_precision": LLMContextPrecisionWithReference
        if with_reference
        else LLMContextPrecisionWithoutReference,
    }
    return [build[n]() for n in names]


def run_ragas(
    samples: Sequence[EvalSample],
    llm: ChatLLM,
    embedder: Any,
    *,
    metrics: Sequence[RagasMetricName] = RAGAS_METRICS,
    timeout_s: int = 3600,
) -> tuple[list[dict[str, float | None]], Usage]:
    """ragas' scores per sample (``None`` where ragas produced NaN, i.e. failed) and the LLM cost."""
    from ragas import EvaluationDataset, evaluate
    from ragas.embeddings import LangchainEmbeddingsWrapper
    from ragas.run_config import RunConfig

    with_reference = all(s.reference for s in samples)
    rows = [
        {
            "user_input": s.question,
            "response": s.answer,
            "retrieved_contexts": list(s.contexts) or [""],
            **({"reference": s.reference} if with_reference else {}),
        }
        for s in samples
    ]
    adapter = ProjectRagasLLM(llm=llm)
    result = evaluate(
        EvaluationDataset.from_list(rows),
        metrics=ragas_metrics(metrics, with_reference=with_reference),
        llm=adapter,
        embeddings=LangchainEmbeddingsWrapper(SentenceTransformerEmbeddings(embedder)),
        run_config=RunConfig(max_workers=1, timeout=timeout_s, max_retries=1),
        show_progress=False,
        raise_exceptions=False,
    )
    scores: list[dict[str, float | None]] = []
    for row in result.scores:  # type: ignore[union-attr]  # EvaluationResult unless return_executor
        scores.append(
            {
                ("context_precision" if k.startswith("llm_context_precision") else k): (
                    None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)
                )
                for k, v in row.items()
            }
        )
    return scores, adapter.usage


@dataclass(frozen=True)
class Disagreement:
    item_id: str
    metric: str
    ragas: float | None
    ours: float | None


def compare(
    ids: Sequence[str],
    ragas_scores: Sequence[Mapping[str, float | None]],
    ours: Mapping[str, Mapping[str, float | None]],
    *,
    threshold: float = 0.3,
) -> dict[str, Any]:
    """Per metric: items both scored, mean of each, mean absolute difference, and the items whose
    scores differ by more than ``threshold`` (or that only one engine could score)."""
    out: dict[str, Any] = {}
    for metric, judge in OURS.items():
        if not any(metric in r for r in ragas_scores) or judge not in ours:
            continue
        pairs, flagged = [], []
        for item_id, r in zip(ids, ragas_scores, strict=True):
            a, b = r.get(metric), ours[judge].get(item_id)
            if a is None or b is None:
                if (a is None) != (b is None):
                    flagged.append(Disagreement(item_id, metric, a, b).__dict__)
                continue
            pairs.append((a, b))
            if abs(a - b) > threshold:
                flagged.append(Disagreement(item_id, metric, a, b).__dict__)
        n = len(pairs)
        out[metric] = {
            "ours": judge,
            "n_both": n,
            "ragas_mean": sum(a for a, _ in pairs) / n if n else None,
            "ours_mean": sum(b for _, b in pairs) / n if n else None,
            "mean_abs_diff": sum(abs(a - b) for a, b in pairs) / n if n else None,
            "differ": flagged,
        }
    return out
