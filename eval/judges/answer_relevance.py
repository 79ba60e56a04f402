"""Answer relevance (RAGAS): the judge writes questions that the answer would answer and says whether
the answer is noncommittal; the score is the mean cosine similarity between the original question and
the generated ones (embedded with the project's sentence-transformers model), 0 when noncommittal."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from eval.judges.base import (
    CallOptions,
    ChatLLM,
    EvalSample,
    JudgeResult,
    Message,
    Usage,
    call_json,
    error_result,
)
from rag.errors import JudgeError

N_QUESTIONS = 3

SYSTEM = f"""Read an ANSWER and write {N_QUESTIONS} different questions that this answer answers \
(each a single, complete question). Also say whether the answer is noncommittal: evasive, vague or \
"I don't know" / "not in the documents" instead of giving information. Reply with JSON only."""

EXAMPLE_USER = "ANSWER:\nThe office is open from 8:00 to 18:00 on weekdays and closed at weekends [1]."
EXAMPLE_REPLY: dict[str, Any] = {
    "questions": [
        "What are the office opening hours?",
        "When is the office open during the week?",
        "Is the office open at weekends?",
    ],
    "noncommittal": False,
}

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "questions": {
            "type": "array",
            "items": {"type": "string", "maxLength": 200},
            "minItems": N_QUESTIONS,
            "maxItems": N_QUESTIONS,
        },
        "noncommittal": {"type": "boolean"},
    },
    "required": ["questions", "noncommittal"],
}


class Embedder(Protocol):
    """Any sentence-transformers-like model."""

    def encode(self, sentences: list[str], **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class GeneratedQuestions:
    questions: tuple[str, ...]
    noncommittal: bool


def build_messages(answer: str) -> list[Message]:
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": EXAMPLE_USER},
        {"role": "assistant", "content": json.dumps(EXAMPLE_REPLY)},
        {"role": "user", "content": f"ANSWER:\n{answer.strip()}"},
    ]


def parse_questions(data: dict[str, Any]) -> GeneratedQuestions:
    qs = data.get("questions")
    if not isinstance(qs, list) or not qs or not all(isinstance(q, str) and q.strip() for q in qs):
        raise JudgeError(f"'questions' must be a non-empty list of strings, got {qs!r:.80}")
    nc = data.get("noncommittal")
    if not isinstance(nc, bool):
        raise JudgeError(f"'noncommittal' must be true or false, got {nc!r}")
    return GeneratedQuestions(tuple(q.strip() for q in qs), nc)


def relevance_score(question_vec: np.ndarray, generated_vecs: np.ndarray, *, noncommittal: bool) -> float:
    """Mean cosine similarity of the question with each generated question; 0 when noncommittal."""
    if noncommittal:
        return 0.0
    q = question_vec / (np.linalg.norm(question_vec) or 1.0)
    g = generated_vecs / np.clip(np.linalg.norm(generated_vecs, axis=1, keepdims=True), 1e-12, None)
    return float(np.mean(g @ q))


class AnswerRelevanceJudge:
    name = "answer_relevance"

    def __init__(self, llm: ChatLLM, embedder: Embedder, *, options: CallOptions | None = None) -> None:
        self.llm = llm
        self.embedder = embedder
        self.options = options or CallOptions(max_tokens=200)

    def judge(self, question: str, answer: str, *, item_id: str = "") -> JudgeResult:
        usage = Usage()
        if not answer.strip():
            return error_result(self.name, item_id, "empty answer", usage)
        try:
            gen, _ = call_json(
                self.llm,
                build_messages(answer),
                schema=SCHEMA,
                parse=parse_questions,
                options=self.options,
                usage=usage,
            )
        except JudgeError as e:
            return error_result(self.name, item_id, str(e), usage)
        vecs = np.asarray(self.embedder.encode([question, *gen.questions]), dtype=np.float64)
        score = relevance_score(vecs[0], vecs[1:], noncommittal=gen.noncommittal)
        reason = ("noncommittal answer" if gen.noncommittal else f"mean similarity {score:.3f}") + (
            "; generated: " + " | ".join(gen.questions)
        )
        return JudgeResult(
            self.name,
            item_id,
            "ok",
            score,
            reason,
            {"generated_questions": list(gen.questions), "noncommittal": gen.noncommittal},
            usage,
        )

    def run(self, sample: EvalSample) -> JudgeResult:
        return self.judge(sample.question, sample.answer, item_id=sample.id)
