"""LLM judges, one module per judge, each with its prompt, few-shot example, JSON schema and a pure
parser beside it. Pointwise judges share the :class:`~eval.judges.base.Judge` protocol
(``run(EvalSample) -> JudgeResult``); :func:`build_judge` builds one by name from the registry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

from eval.judges.base import CallOptions, ChatLLM, EvalSample, Judge, JudgeResult, Usage

if TYPE_CHECKING:
    from eval.judges.faithfulness import Granularity

JudgeName = Literal["faithfulness", "answer_relevance", "context_relevance", "pointwise", "geval", "likelihood"]
JUDGE_NAMES: tuple[JudgeName, ...] = get_args(JudgeName)
# MT-Bench's pair judges (eval.judges.mtbench); named here so the CLI lists them without importing numpy
MTBenchJudgeName = Literal["pairwise", "pointwise", "reference"]
MTBENCH_JUDGES: tuple[MTBenchJudgeName, ...] = get_args(MTBenchJudgeName)
# likelihood is the detector that beats HHEM-2.1 on FaithBench; a backend that cannot score given text
# (openai) skips it when the defaults are used
DEFAULT_JUDGES: tuple[JudgeName, ...] = ("faithfulness", "likelihood", "answer_relevance", "context_relevance")


@dataclass(frozen=True)
class JudgeSettings:
    """What :func:`build_judge` passes on: retries for every judge; for the faithfulness judge the unit
    it verifies (``claims``: the RAGAS definition; ``sentences``: the variant measured on FaithBench)
    and how many log-probability alternatives it reads per verdict (0: none); for the likelihood judge
    its surprisal threshold."""

    retries: int = 2
    granularity: Granularity = "claims"
    top_logprobs: int = 0
    likelihood_threshold: float | None = None  # None: the likelihood judge's own default


def _faithfulness(llm: ChatLLM, embedder: Any, s: JudgeSettings) -> Judge:
    from eval.judges.faithfulness import FaithfulnessJudge

    return FaithfulnessJudge(
        llm,
        granularity=s.granularity,
        top_logprobs=s.top_logprobs,
        options=CallOptions(max_tokens=900, retries=s.retries),
    )


def _answer_relevance(llm: ChatLLM, embedder: Any, s: JudgeSettings) -> Judge:
    from eval.judges.answer_relevance import AnswerRelevanceJudge

    if embedder is None:
        raise ValueError("answer_relevance needs an embedder (rag.models.load_embedder)")
    return AnswerRelevanceJudge(llm, embedder, options=CallOptions(max_tokens=200, retries=s.retries))


def _context_relevance(llm: ChatLLM, embedder: Any, s: JudgeSettings) -> Judge:
    from eval.judges.context_relevance import ContextRelevanceJudge

    return ContextRelevanceJudge(llm, options=CallOptions(max_tokens=600, retries=s.retries))


def _pointwise(llm: ChatLLM, embedder: Any, s: JudgeSettings) -> Judge:
    from eval.judges.pointwise import PointwiseJudge

    return PointwiseJudge(llm, options=CallOptions(max_tokens=400, retries=s.retries))


def _geval(llm: ChatLLM, embedder: Any, s: JudgeSettings) -> Judge:
    from eval.judges.geval import GEvalJudge

    return GEvalJudge(llm, criterion="consistency", options=CallOptions(max_tokens=20, retries=s.retries))


def _likelihood(llm: ChatLLM, embedder: Any, s: JudgeSettings) -> Judge:
    from eval.judges.likelihood import LikelihoodJudge

    if s.likelihood_threshold is None:
        return LikelihoodJudge(llm)
    return LikelihoodJudge(llm, threshold=s.likelihood_threshold)


JUDGES: dict[JudgeName, Callable[[ChatLLM, Any, JudgeSettings], Judge]] = {
    "faithfulness": _faithfulness,
    "answer_relevance": _answer_relevance,
    "context_relevance": _context_relevance,
    "pointwise": _pointwise,
    "geval": _geval,
    "likelihood": _likelihood,
}


def build_judge(name: JudgeName, llm: ChatLLM, *, embedder: Any = None, settings: JudgeSettings | None = None) -> Judge:
    """The judge called ``name`` (see :data:`JUDGE_NAMES`) on ``llm``; ``embedder`` for answer_relevance."""
    try:
        factory = JUDGES[name]
    except KeyError:
        raise ValueError(f"unknown judge {name!r}; choose from {', '.join(JUDGE_NAMES)}") from None
    return factory(llm, embedder, settings or JudgeSettings())


__all__ = [
    "DEFAULT_JUDGES",
    "JUDGE_NAMES",
    "MTBENCH_JUDGES",
    "CallOptions",
    "ChatLLM",
    "EvalSample",
    "Judge",
    "JudgeName",
    "JudgeResult",
    "JudgeSettings",
    "MTBenchJudgeName",
    "Usage",
    "build_judge",
]
