"""Pointwise grading (MT-Bench single-answer grading): a 1-10 rating with the explanation written
first. Rubrics per domain as Vicuna/MT-Bench did (general, coding, math — for math the judge solves
the problem itself before grading); **reference-guided** when the item has a reference answer."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from eval.judges.base import (
    CallOptions,
    ChatLLM,
    Domain,
    EvalSample,
    JudgeResult,
    Message,
    Usage,
    call_json,
    error_result,
    format_contexts,
)
from rag.errors import JudgeError

RUBRICS: dict[Domain, str] = {
    "general": "Consider helpfulness, relevance, accuracy, depth and level of detail. An answer that says the "
    "information is not available is good when it truly is not, and bad when it is.",
    "coding": "Consider whether the code or explanation is correct, runs as described, handles edge cases, and "
    "answers exactly what was asked. Correctness matters far more than style.",
    "math": "First solve the problem yourself step by step in 'solution'. Then compare: a wrong final result "
    "is rated 1-3 however well explained; a correct one 7-10 depending on the reasoning.",
}
REFERENCE_NOTE = (
    "A REFERENCE answer is given: it is correct. Compare the ANSWER with it; missing or contradicting its key "
    "facts lowers the rating."
)

SYSTEM = """You are an impartial judge. Rate the ANSWER to the QUESTION on a scale of 1 to 10. \
{rubric} {reference}Write a short explanation first, then the rating. Reply with JSON only."""

EXAMPLE_USER = """QUESTION:
How many days of annual leave do full-time staff get?

ANSWER:
Full-time staff get 25 days of annual leave per year [1]."""
EXAMPLE_REPLY: dict[str, Any] = {
    "explanation": "Direct, specific and cites its source; fully answers the question.",
    "rating": 9,
}


def schema_for(domain: Domain) -> dict[str, Any]:
    props: dict[str, Any] = {
        "explanation": {"type": "string", "maxLength": 500},
        "rating": {"type": "integer", "minimum": 1, "maximum": 10},
    }
    if domain == "math":
        props = {"solution": {"type": "string", "maxLength": 800}, **props}
    return {"type": "object", "properties": props, "required": list(props)}


@dataclass(frozen=True)
class Grade:
    rating: int
    explanation: str
    solution: str | None = None


def build_messages(sample: EvalSample) -> list[Message]:
    system = SYSTEM.format(rubric=RUBRICS[sample.domain], reference=REFERENCE_NOTE + " " if sample.reference else "")
    parts = [f"QUESTION:\n{sample.question.strip()}"]
    if sample.contexts:
        parts.append(f"DOCUMENTS THE ANSWER COULD USE:\n{format_contexts(sample.contexts)}")
    if sample.reference:
        parts.append(f"REFERENCE:\n{sample.reference.strip()}")
    parts.append(f"ANSWER:\n{sample.answer.strip()}")
    example = dict(EXAMPLE_REPLY)
    if sample.domain == "math":
        example = {"solution": "(not needed: no calculation)", **example}
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": EXAMPLE_USER},
        {"role": "assistant", "content": json.dumps(example)},
        {"role": "user", "content": "\n\n".join(parts)},
    ]


def parse_grade(data: dict[str, Any]) -> Grade:
    rating = data.get("rating")
    if isinstance(rating, str) and rating.strip().isdigit():
        rating = int(rating.strip())
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 10:
        raise JudgeError(f"'rating' must be an integer 1-10, got {rating!r}")
    explanation = data.get("explanation")
    if not isinstance(explanation, str):
        raise JudgeError("the grade has no 'explanation' string")
    solution = data.get("solution")
    return Grade(rating, explanation.strip(), solution.strip() if isinstance(solution, str) else None)


class PointwiseJudge:
    """``score`` is the 1-10 rating; ``details`` has the explanation, rubric and whether a reference was used."""

    name = "pointwise"

    def __init__(self, llm: ChatLLM, *, options: CallOptions | None = None) -> None:
        self.llm = llm
        self.options = options or CallOptions(max_tokens=400)

    def run(self, sample: EvalSample) -> JudgeResult:
        usage = Usage()
        options = self.options
        if sample.domain == "math" and options.max_tokens < 900:
            options = CallOptions(max_tokens=900, retries=options.retries, seed=options.seed)
        try:
            grade, _ = call_json(
                self.llm,
                build_messages(sample),
                schema=schema_for(sample.domain),
                parse=parse_grade,
                options=options,
                usage=usage,
            )
        except JudgeError as e:
            return error_result(self.name, sample.id, str(e), usage)
        details: dict[str, Any] = {
            "rating": grade.rating,
            "domain": sample.domain,
            "reference_guided": bool(sample.reference),
        }
        if grade.solution:
            details["solution"] = grade.solution
        return JudgeResult(self.name, sample.id, "ok", float(grade.rating), grade.explanation, details, usage)
