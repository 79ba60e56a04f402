"""Faithfulness (RAGAS definition): split the answer into atomic claims, check each against the
context, score = supported / total. Unlike RAGAS' two calls (statements, then NLI verdicts), one
constrained-JSON call lists the claims *and* their verdicts: half the prefill, and the fixed prefix
(system prompt + few-shot example) is identical across items, so llama.cpp's prefix cache reuses it.

A sample is predicted *hallucinated* when any claim is unsupported (score < 1).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

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

Verdict = Literal["supported", "unsupported"]
MAX_CLAIMS = 10

SYSTEM = """You are a strict fact-checker. You get a CONTEXT and an ANSWER.
Split the ANSWER into short atomic claims (one fact each; at most 10). For each claim, first quote \
the few words of the CONTEXT that decide it (or "none"), then give the verdict:
- "supported": the CONTEXT states the claim or it follows directly from the CONTEXT.
- "unsupported": the CONTEXT does not say it, says something different, or the claim adds a detail \
(name, number, date, place, cause, time, opinion) that the CONTEXT does not give.
Use only the CONTEXT, never your own knowledge. Reply with JSON only."""

EXAMPLE_USER = """CONTEXT:
[1] The Riverside Library opened in 1998. It holds about 40,000 books and is closed on Mondays.

ANSWER:
The Riverside Library, which opened in 1998, holds roughly 40,000 books. It is closed on weekends \
and was funded by the city."""

EXAMPLE_REPLY: dict[str, Any] = {
    "claims": [
        {"claim": "The Riverside Library opened in 1998.", "evidence": "opened in 1998", "verdict": "supported"},
        {"claim": "It holds roughly 40,000 books.", "evidence": "about 40,000 books", "verdict": "supported"},
        {"claim": "It is closed on weekends.", "evidence": "closed on Mondays", "verdict": "unsupported"},
        {"claim": "It was funded by the city.", "evidence": "none", "verdict": "unsupported"},
    ]
}

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "claims": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_CLAIMS,
            "items": {
                "type": "object",
                "properties": {
                    "claim": {"type": "string", "maxLength": 240},
                    "evidence": {"type": "string", "maxLength": 120},
                    "verdict": {"type": "string", "enum": ["supported", "unsupported"]},
                },
                "required": ["claim", "evidence", "verdict"],
            },
        }
    },
    "required": ["claims"],
}


@dataclass(frozen=True)
class Claim:
    text: str
    verdict: Verdict
    evidence: str = ""


@dataclass(frozen=True)
class FaithfulnessVerdict:
    claims: tuple[Claim, ...]

    @property
    def score(self) -> float:
        return sum(c.verdict == "supported" for c in self.claims) / len(self.claims)

    @property
    def unsupported(self) -> list[str]:
        return [c.text for c in self.claims if c.verdict == "unsupported"]


def build_messages(answer: str, contexts: tuple[str, ...] | list[str]) -> list[Message]:
    """System prompt and the worked example first (the shared, cacheable prefix), the item last."""
    user = f"CONTEXT:\n{format_contexts(contexts)}\n\nANSWER:\n{answer.strip()}"
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": EXAMPLE_USER},
        {"role": "assistant", "content": json.dumps(EXAMPLE_REPLY)},
        {"role": "user", "content": user},
    ]


def parse_verdict(data: dict[str, Any]) -> FaithfulnessVerdict:
    """Decoded JSON -> verdict. Raises :class:`JudgeError` on any shape the schema should have prevented."""
    raw = data.get("claims")
    if not isinstance(raw, list) or not raw:
        raise JudgeError(f"'claims' must be a non-empty list, got {raw!r:.80}")
    claims: list[Claim] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise JudgeError(f"claim {i} is not an object: {item!r:.80}")
        text, verdict = item.get("claim"), item.get("verdict")
        if not isinstance(text, str) or not text.strip():
            raise JudgeError(f"claim {i} has no text")
        if verdict not in ("supported", "unsupported"):
            raise JudgeError(f"claim {i} verdict {verdict!r} is not 'supported' or 'unsupported'")
        evidence = item.get("evidence", "")
        claims.append(Claim(text.strip(), verdict, evidence.strip() if isinstance(evidence, str) else ""))
    return FaithfulnessVerdict(tuple(claims))


class FaithfulnessJudge:
    """``run(sample)`` -> score = supported claims / claims; the unsupported ones listed in ``details``."""

    name = "faithfulness"

    def __init__(self, llm: ChatLLM, *, options: CallOptions | None = None) -> None:
        self.llm = llm
        self.options = options or CallOptions(max_tokens=900)

    def judge(self, answer: str, contexts: tuple[str, ...] | list[str], *, item_id: str = "") -> JudgeResult:
        usage = Usage()
        if not answer.strip():
            return error_result(self.name, item_id, "empty answer: nothing to verify", usage)
        try:
            verdict, _ = call_json(
                self.llm,
                build_messages(answer, contexts),
                schema=SCHEMA,
                parse=parse_verdict,
                options=self.options,
                usage=usage,
            )
        except JudgeError as e:
            return error_result(self.name, item_id, str(e), usage)
        unsupported = verdict.unsupported
        reason = (
            f"{len(verdict.claims)} claim(s), all supported"
            if not unsupported
            else f"{len(unsupported)}/{len(verdict.claims)} unsupported: " + " | ".join(unsupported)
        )
        return JudgeResult(
            judge=self.name,
            item_id=item_id,
            status="ok",
            score=verdict.score,
            reason=reason,
            details={
                "claims": [{"claim": c.text, "evidence": c.evidence, "verdict": c.verdict} for c in verdict.claims],
                "unsupported": unsupported,
                "hallucinated": bool(unsupported),
            },
            usage=usage,
        )

    def run(self, sample: EvalSample) -> JudgeResult:
        return self.judge(sample.answer, sample.contexts, item_id=sample.id)
