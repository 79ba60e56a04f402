"""Faithfulness (RAGAS definition): split the answer into atomic claims, check each against the
context, score = supported / total. Unlike RAGAS' two calls (statements, then NLI verdicts), one
constrained-JSON call lists the claims *and* their verdicts: half the prefill, and the fixed prefix
(system prompt + few-shot example) is identical across items, so llama.cpp's prefix cache reuses it.

``granularity="sentences"`` is the cheap variant: the answer is split into sentences here (no claim
extraction by the model) and the judge writes only a verdict and a short note per sentence — about a
sixth of the output tokens, which dominate the cost on a CPU. A sample is predicted *hallucinated*
when any claim/sentence is unsupported (score < 1).
"""

from __future__ import annotations

import json
import re
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
Granularity = Literal["claims", "sentences"]
MAX_CLAIMS = 10
MAX_SENTENCES = 16

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


SENTENCE_SYSTEM = """You are a strict fact-checker. You get a CONTEXT and the numbered SENTENCES of an \
answer. For every sentence, in order, give the verdict:
- "supported": every detail of the sentence is stated in the CONTEXT or follows directly from it.
- "unsupported": some detail (name, number, date, place, cause, time, opinion) is not in the CONTEXT \
or differs from it.
Then a note: for an unsupported sentence, the unsupported detail in a few words; otherwise "".
Use only the CONTEXT, never your own knowledge. Reply with JSON only."""

SENTENCE_EXAMPLE_USER = """CONTEXT:
[1] The Riverside Library opened in 1998. It holds about 40,000 books and is closed on Mondays.

SENTENCES:
1. The Riverside Library, which opened in 1998, holds roughly 40,000 books.
2. It is closed on weekends and was funded by the city."""

SENTENCE_EXAMPLE_REPLY: dict[str, Any] = {
    "sentences": [
        {"verdict": "supported", "note": ""},
        {"verdict": "unsupported", "note": "closed on Mondays, not weekends; funding not mentioned"},
    ]
}
_ABBREVIATION = re.compile(r"(?:\b(?:Mr|Mrs|Ms|Dr|St|Jr|Sr|Prof|vs|etc|e\.g|i\.e|No)|\b[A-Z])\.$")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[A-Z0-9\"'(\[])")


def split_sentences(text: str, *, limit: int = MAX_SENTENCES) -> list[str]:
    """Sentences of ``text`` (split after . ! ? before an upper-case start; line breaks too); the
    tail beyond ``limit`` is kept in the last one so nothing goes unjudged."""
    parts: list[str] = []
    for line in text.splitlines():
        for piece in (p.strip() for p in _SENTENCE_END.split(line)):
            if not piece:
                continue
            if parts and _ABBREVIATION.search(parts[-1]) and not parts[-1].endswith("\n"):
                parts[-1] = f"{parts[-1]} {piece}"
            else:
                parts.append(piece)
    if len(parts) > limit:
        parts = [*parts[: limit - 1], " ".join(parts[limit - 1 :])]
    return parts


def sentence_schema(n: int) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "sentences": {
                "type": "array",
                "minItems": n,
                "maxItems": n,
                "items": {
                    "type": "object",
                    "properties": {
                        "verdict": {"type": "string", "enum": ["supported", "unsupported"]},
                        "note": {"type": "string", "maxLength": 120},
                    },
                    "required": ["verdict", "note"],
                },
            }
        },
        "required": ["sentences"],
    }


def build_sentence_messages(sentences: list[str], contexts: tuple[str, ...] | list[str]) -> list[Message]:
    numbered = "\n".join(f"{i}. {s}" for i, s in enumerate(sentences, 1))
    return [
        {"role": "system", "content": SENTENCE_SYSTEM},
        {"role": "user", "content": SENTENCE_EXAMPLE_USER},
        {"role": "assistant", "content": json.dumps(SENTENCE_EXAMPLE_REPLY)},
        {"role": "user", "content": f"CONTEXT:\n{format_contexts(contexts)}\n\nSENTENCES:\n{numbered}"},
    ]


def parse_sentence_verdicts(data: dict[str, Any], sentences: list[str]) -> FaithfulnessVerdict:
    raw = data.get("sentences")
    if not isinstance(raw, list) or len(raw) != len(sentences):
        raise JudgeError(f"expected {len(sentences)} sentence verdict(s), got {raw!r:.80}")
    claims = []
    for i, (item, sentence) in enumerate(zip(raw, sentences, strict=True)):
        verdict = item.get("verdict") if isinstance(item, dict) else None
        if verdict not in ("supported", "unsupported"):
            raise JudgeError(f"sentence {i + 1} verdict {verdict!r} is not 'supported' or 'unsupported'")
        note = item.get("note", "")
        claims.append(Claim(sentence, verdict, note.strip() if isinstance(note, str) else ""))
    return FaithfulnessVerdict(tuple(claims))


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

    def __init__(
        self, llm: ChatLLM, *, granularity: Granularity = "claims", options: CallOptions | None = None
    ) -> None:
        self.llm = llm
        self.granularity = granularity
        self.options = options or CallOptions(max_tokens=900)

    def _verdict(self, answer: str, contexts: tuple[str, ...] | list[str], usage: Usage) -> FaithfulnessVerdict:
        if self.granularity == "sentences":
            sentences = split_sentences(answer)
            verdict, _ = call_json(
                self.llm,
                build_sentence_messages(sentences, contexts),
                schema=sentence_schema(len(sentences)),
                parse=lambda d: parse_sentence_verdicts(d, sentences),
                options=self.options,
                usage=usage,
            )
            return verdict
        verdict, _ = call_json(
            self.llm,
            build_messages(answer, contexts),
            schema=SCHEMA,
            parse=parse_verdict,
            options=self.options,
            usage=usage,
        )
        return verdict

    def judge(self, answer: str, contexts: tuple[str, ...] | list[str], *, item_id: str = "") -> JudgeResult:
        usage = Usage()
        if not answer.strip():
            return error_result(self.name, item_id, "empty answer: nothing to verify", usage)
        try:
            verdict = self._verdict(answer, contexts, usage)
        except JudgeError as e:
            return error_result(self.name, item_id, str(e), usage)
        unsupported = verdict.unsupported
        unit = "claim" if self.granularity == "claims" else "sentence"
        reason = (
            f"{len(verdict.claims)} {unit}(s), all supported"
            if not unsupported
            else f"{len(unsupported)}/{len(verdict.claims)} unsupported: "
            + " | ".join(
                f"{c.text} ({c.evidence})" if c.evidence else c.text
                for c in verdict.claims
                if c.verdict == "unsupported"
            )
        )
        return JudgeResult(
            judge=self.name,
            item_id=item_id,
            status="ok",
            score=verdict.score,
            reason=reason,
            details={
                "granularity": self.granularity,
                "claims": [{"claim": c.text, "evidence": c.evidence, "verdict": c.verdict} for c in verdict.claims],
                "unsupported": unsupported,
                "hallucinated": bool(unsupported),
            },
            usage=usage,
        )

    def run(self, sample: EvalSample) -> JudgeResult:
        return self.judge(sample.answer, sample.contexts, item_id=sample.id)
