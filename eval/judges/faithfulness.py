"""Faithfulness (RAGAS definition): split the answer into atomic claims, check each against the
context, score = supported / total. Unlike RAGAS' two calls (statements, then NLI verdicts), one
constrained-JSON call lists the claims *and* their verdicts: half the prefill, and the fixed prefix
(system prompt + few-shot example) is identical across items, so llama.cpp's prefix cache reuses it.

``granularity="sentences"`` is the cheap variant: the answer is split into sentences here (no claim
extraction by the model) and the judge writes only a verdict and a short note per sentence — about a
sixth of the output tokens, which dominate the cost on a CPU. A sample is predicted *hallucinated*
when any claim/sentence is unsupported (score < 1).

With ``top_logprobs > 0`` (and a backend that returns them) each verdict also gets ``p_unsupported``:
the probability mass the model put on "unsupported" against "supported" at the token where it chose
the verdict, read off the same generation. ``hallucination_prob`` (the largest of them) is a
continuous soft version of the any-unsupported rule: a threshold on it trades recall for precision,
which the hard rule cannot (a small model says "supported" far too often).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
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
from rag.citations import absent_terms, term_stems
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

SENTENCE_HINTS = """
Under a sentence, "(words not in the CONTEXT: ...)" lists the words of that sentence that the CONTEXT \
never uses. A listed word that only rewords the CONTEXT is fine; a listed word that adds a detail makes \
the sentence unsupported. Check the other details too."""

SENTENCE_EXAMPLE_CONTEXT = (
    "The Riverside Library opened in 1998. It holds about 40,000 books and is closed on Mondays."
)
SENTENCE_EXAMPLE = [
    "The Riverside Library, which opened in 1998, holds roughly 40,000 books.",
    "It is closed on weekends and was funded by the city.",
]

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


def number_sentences(sentences: Sequence[str], context: str | None) -> str:
    """``1. sentence`` lines; with ``context``, each followed by the words it uses that the context does not."""
    known = term_stems(context) if context is not None else None
    lines = []
    for i, sentence in enumerate(sentences, 1):
        lines.append(f"{i}. {sentence}")
        if known is not None:
            absent = absent_terms(sentence, known)
            lines.append(f"   (words not in the CONTEXT: {', '.join(absent) if absent else 'none'})")
    return "\n".join(lines)


def build_sentence_messages(
    sentences: list[str], contexts: tuple[str, ...] | list[str], *, hints: bool = True
) -> list[Message]:
    """System prompt and worked example first (the cacheable prefix), the item last. ``hints`` lists
    under each sentence the words that occur nowhere in the contexts (:func:`rag.citations.absent_terms`):
    a 1.5B model otherwise reads past an added name or number and calls nearly everything supported."""
    example = f"CONTEXT:\n{format_contexts([SENTENCE_EXAMPLE_CONTEXT])}\n\nSENTENCES:\n" + number_sentences(
        SENTENCE_EXAMPLE, SENTENCE_EXAMPLE_CONTEXT if hints else None
    )
    joined = "\n".join(contexts)
    user = f"CONTEXT:\n{format_contexts(contexts)}\n\nSENTENCES:\n" + number_sentences(
        sentences, joined if hints else None
    )
    return [
        {"role": "system", "content": SENTENCE_SYSTEM + (SENTENCE_HINTS if hints else "")},
        {"role": "user", "content": example},
        {"role": "assistant", "content": json.dumps(SENTENCE_EXAMPLE_REPLY)},
        {"role": "user", "content": user},
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


_VERDICT_VALUE = re.compile(r'"verdict"\s*:\s*"([a-z]+)$')
_LABELS: tuple[Verdict, ...] = ("supported", "unsupported")


def verdict_probabilities(tokens: Sequence[str] | None, logprobs: Sequence[Mapping[str, float]] | None) -> list[float]:
    """P(unsupported) at each ``"verdict": "..."`` of a generation, in order.

    Walks the chosen tokens; the decision step is the one whose token starts the verdict's value
    (``"verdict": "`` + a letter). The alternatives at that step are classed by the verdict their
    continuation begins to spell ("un..." or "su..."); the rest of the mass (other tokens) is ignored,
    so the result is P(unsupported | one of the two). Empty when the backend gave no log-probabilities.
    """
    if not tokens or not logprobs or len(tokens) != len(logprobs):
        return []
    out: list[float] = []
    text = ""
    for token, step in zip(tokens, logprobs, strict=True):
        if _VERDICT_VALUE.search(text + token) and not _VERDICT_VALUE.search(text):
            mass = dict.fromkeys(_LABELS, 0.0)
            for alt, lp in step.items():
                m = _VERDICT_VALUE.search(text + alt)
                if m is None:
                    continue
                for label in _LABELS:
                    if label.startswith(m.group(1)):
                        mass[label] += math.exp(lp)
            total = mass["supported"] + mass["unsupported"]
            if total > 0:
                out.append(mass["unsupported"] / total)
        text += token
    return out


@dataclass(frozen=True)
class Claim:
    text: str
    verdict: Verdict
    evidence: str = ""
    p_unsupported: float | None = None


@dataclass(frozen=True)
class FaithfulnessVerdict:
    claims: tuple[Claim, ...]

    @property
    def score(self) -> float:
        return sum(c.verdict == "supported" for c in self.claims) / len(self.claims)

    @property
    def unsupported(self) -> list[str]:
        return [c.text for c in self.claims if c.verdict == "unsupported"]

    @property
    def hallucination_prob(self) -> float | None:
        """The largest P(unsupported) over the claims; None without log-probabilities."""
        probs = [c.p_unsupported for c in self.claims]
        return max(p for p in probs if p is not None) if probs and None not in probs else None

    def with_probabilities(self, probs: Sequence[float]) -> FaithfulnessVerdict:
        """Attach P(unsupported) per claim when there is exactly one per verdict (else unchanged)."""
        if len(probs) != len(self.claims):
            return self
        return FaithfulnessVerdict(tuple(replace(c, p_unsupported=p) for c, p in zip(self.claims, probs, strict=True)))


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
        self,
        llm: ChatLLM,
        *,
        granularity: Granularity = "claims",
        top_logprobs: int = 0,
        options: CallOptions | None = None,
    ) -> None:
        """``top_logprobs > 0`` asks the backend for that many alternatives per token, from which each
        verdict's P(unsupported) is read (the local backend records them while it generates: ~7 % more time)."""
        self.llm = llm
        self.granularity = granularity
        self.top_logprobs = top_logprobs
        self.options = options or CallOptions(max_tokens=900)

    def _verdict(self, answer: str, contexts: tuple[str, ...] | list[str], usage: Usage) -> FaithfulnessVerdict:
        if self.granularity == "sentences":
            sentences = split_sentences(answer)
            verdict, completion = call_json(
                self.llm,
                build_sentence_messages(sentences, contexts),
                schema=sentence_schema(len(sentences)),
                parse=lambda d: parse_sentence_verdicts(d, sentences),
                options=self.options,
                usage=usage,
                top_logprobs=self.top_logprobs,
            )
        else:
            verdict, completion = call_json(
                self.llm,
                build_messages(answer, contexts),
                schema=SCHEMA,
                parse=parse_verdict,
                options=self.options,
                usage=usage,
                top_logprobs=self.top_logprobs,
            )
        if self.top_logprobs <= 0:
            return verdict
        return verdict.with_probabilities(verdict_probabilities(completion.tokens, completion.logprobs))

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
                "claims": [
                    {"claim": c.text, "evidence": c.evidence, "verdict": c.verdict}
                    | ({"p_unsupported": round(c.p_unsupported, 6)} if c.p_unsupported is not None else {})
                    for c in verdict.claims
                ],
                "unsupported": unsupported,
                "hallucinated": bool(unsupported),
                "hallucination_prob": verdict.hallucination_prob,
            },
            usage=usage,
        )

    def run(self, sample: EvalSample) -> JudgeResult:
        return self.judge(sample.answer, sample.contexts, item_id=sample.id)
