"""LLM judges, one module per judge, each with its prompt, few-shot example, JSON schema and a pure
parser beside it. Pointwise judges share the :class:`~eval.judges.base.Judge` protocol
(``run(EvalSample) -> JudgeResult``); :func:`build_judge` builds one by name from the registry."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from eval.judges.base import CallOptions, ChatLLM, EvalSample, Judge, JudgeResult, Usage

JudgeName = Literal["faithfulness", "answer_relevance", "context_relevance", "pointwise", "geval"]
JUDGE_NAMES: tuple[JudgeName, ...] = ("faithfulness", "answer_relevance", "context_relevance", "pointwise", "geval")
DEFAULT_JUDGES: tuple[JudgeName, ...] = ("faithfulness", "answer_relevance", "context_relevance")


def _faithfulness(llm: ChatLLM, embedder: Any, retries: int) -> Judge:
    from eval.judges.faithfulness import FaithfulnessJudge

    return FaithfulnessJudge(llm, options=CallOptions(max_tokens=900, retries=retries))


def _answer_relevance(llm: ChatLLM, embedder: Any, retries: int) -> Judge:
    from eval.judges.answer_relevance import AnswerRelevanceJudge

    if embedder is None:
        raise ValueError("answer_relevance needs an embedder (rag.models.load_embedder)")
    return AnswerRelevanceJudge(llm, embedder, options=CallOptions(max_tokens=200, retries=retries))


def _context_relevance(llm: ChatLLM, embedder: Any, retries: int) -> Judge:
    from eval.judges.context_relevance import ContextRelevanceJudge

    return ContextRelevanceJudge(llm, options=CallOptions(max_tokens=600, retries=retries))


def _pointwise(llm: ChatLLM, embedder: Any, retries: int) -> Judge:
    from eval.judges.pointwise import PointwiseJudge

    return PointwiseJudge(llm, options=CallOptions(max_tokens=400, retries=retries))


def _geval(llm: ChatLLM, embedder: Any, retries: int) -> Judge:
    from eval.judges.geval import GEvalJudge

    return GEvalJudge(llm, criterion="consistency", options=CallOptions(max_tokens=20, retries=retries))


JUDGES: dict[JudgeName, Callable[[ChatLLM, Any, int], Judge]] = {
    "faithfulness": _faithfulness,
    "answer_relevance": _answer_relevance,
    "context_relevance": _context_relevance,
    "pointwise": _pointwise,
    "geval": _geval,
}


def build_judge(name: JudgeName, llm: ChatLLM, *, embedder: Any = None, retries: int = 2) -> Judge:
    """The judge called ``name`` (see :data:`JUDGE_NAMES`) on ``llm``; ``embedder`` for answer_relevance."""
    try:
        factory = JUDGES[name]
    except KeyError:
        raise ValueError(f"unknown judge {name!r}; choose from {', '.join(JUDGE_NAMES)}") from None
    return factory(llm, embedder, retries)


__all__ = [
    "DEFAULT_JUDGES",
    "JUDGE_NAMES",
    "CallOptions",
    "ChatLLM",
    "EvalSample",
    "Judge",
    "JudgeName",
    "JudgeResult",
    "Usage",
    "build_judge",
]
