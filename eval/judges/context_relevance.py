"""Context relevance / precision (RAGAS context precision): for each retrieved passage the judge says
whether it was needed to answer the question (against the reference answer when there is one, else
the system's answer). Score = average precision of the relevant passages over the ranked list (rank
quality); ``details["share_relevant"]`` is the plain share of passages needed."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eval.judges.base import (
    CallOptions,
    ChatLLM,
    EvalSample,
    JudgeResult,
    Message,
    Usage,
    call_json,
    error_result,
    format_contexts,
)
from rag.errors import JudgeError

SYSTEM = """You get a QUESTION, an ANSWER and numbered PASSAGES. For every passage, in order, give a \
short reason and say whether the passage was useful for arriving at the ANSWER to the QUESTION \
("useful": true) or not ("useful": false). Reply with JSON only."""

EXAMPLE_USER = """QUESTION:
When does the office open?

ANSWER:
The office opens at 8:00 on weekdays.

PASSAGES:
[1] Opening hours: the office is open from 8:00 to 18:00, Monday to Friday.
[2] The canteen serves lunch from 12:00."""

EXAMPLE_REPLY: dict[str, Any] = {
    "passages": [
        {"passage": 1, "reason": "gives the opening time", "useful": True},
        {"passage": 2, "reason": "about the canteen, not the office hours", "useful": False},
    ]
}


def schema_for(n: int) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "passages": {
                "type": "array",
                "minItems": n,
                "maxItems": n,
                "items": {
                    "type": "object",
                    "properties": {
                        "passage": {"type": "integer"},
                        "reason": {"type": "string", "maxLength": 160},
                        "useful": {"type": "boolean"},
                    },
                    "required": ["passage", "reason", "useful"],
                },
            }
        },
        "required": ["passages"],
    }


@dataclass(frozen=True)
class PassageVerdicts:
    useful: tuple[bool, ...]
    reasons: tuple[str, ...]


def build_messages(question: str, answer: str, contexts: Sequence[str]) -> list[Message]:
    user = f"QUESTION:\n{question.strip()}\n\nANSWER:\n{answer.strip()}\n\nPASSAGES:\n{format_contexts(contexts)}"
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": EXAMPLE_USER},
        {"role": "assistant", "content": json.dumps(EXAMPLE_REPLY)},
        {"role": "user", "content": user},
    ]


def parse_passages(data: dict[str, Any], n: int) -> PassageVerdicts:
    raw = data.get("passages")
    if not isinstance(raw, list) or len(raw) != n:
        raise JudgeError(f"expected {n} passage verdict(s), got {raw!r:.80}")
    useful, reasons = [], []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("useful"), bool):
            raise JudgeError(f"passage verdict {i + 1} has no boolean 'useful': {item!r:.80}")
        useful.append(item["useful"])
        reasons.append(str(item.get("reason", "")).strip())
    return PassageVerdicts(tuple(useful), tuple(reasons))


def context_precision(useful: Sequence[bool]) -> float:
    """RAGAS context precision: sum_k precision@k * v_k / number of useful passages (0 if none)."""
    hits, total = 0, 0.0
    for k, v in enumerate(useful, 1):
        if v:
            hits += 1
            total += hits / k
    return total / hits if hits else 0.0


class ContextRelevanceJudge:
    name = "context_relevance"

    def __init__(self, llm: ChatLLM, *, options: CallOptions | None = None) -> None:
        self.llm = llm
        self.options = options or CallOptions(max_tokens=600)

    def judge(
        self, question: str, answer: str, contexts: Sequence[str], *, reference: str | None = None, item_id: str = ""
    ) -> JudgeResult:
        usage = Usage()
        if not contexts:
            return error_result(self.name, item_id, "no contexts to judge", usage)
        n = len(contexts)
        try:
            verdicts, _ = call_json(
                self.llm,
                build_messages(question, reference or answer, contexts),
                schema=schema_for(n),
                parse=lambda d: parse_passages(d, n),
                options=self.options,
                usage=usage,
            )
        except JudgeError as e:
            return error_result(self.name, item_id, str(e), usage)
        score = context_precision(verdicts.useful)
        used = [i + 1 for i, v in enumerate(verdicts.useful) if v]
        reason = f"useful passages {used or 'none'} of {n}; " + " | ".join(
            f"[{i + 1}] {r}" for i, r in enumerate(verdicts.reasons)
        )
        details = {
            "useful": list(verdicts.useful),
            "reasons": list(verdicts.reasons),
            "share_relevant": sum(verdicts.useful) / n,
            "against": "reference" if reference else "answer",
        }
        return JudgeResult(self.name, item_id, "ok", score, reason, details, usage)

    def run(self, sample: EvalSample) -> JudgeResult:
        return self.judge(
            sample.question, sample.answer, sample.contexts, reference=sample.reference, item_id=sample.id
        )
