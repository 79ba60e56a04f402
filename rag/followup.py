"""Conversation memory: follow-up questions become standalone search queries.

"and how much can it lift?" retrieves nothing useful on its own. With history, a question that *looks like*
a follow-up (:func:`followup_cue`: a pronoun that refers back, an opening "and"/"what about", an ending
"too", no topic words at all) is rewritten by the LLM into a standalone question (:func:`rewrite_messages`,
one short prompt with one example) and that is what retrieval searches for. The answer prompt still gets
the question as asked, after the earlier turns (:func:`conversation`), so the rewrite never changes what
is answered. A question without a cue is searched as asked: no LLM call, no risk of the rewrite dragging in
the previous topic after the user changed it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rag.citations import strip_citations
from rag.config import FollowupConfig

if TYPE_CHECKING:
    from rag.llm import LLM

Message = dict[str, str]
CountTokens = Callable[[str], int]

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?", re.UNICODE)
_OPENERS = frozenset({"and", "but", "also", "so", "or", "then", "plus"})
_OPENING_PHRASES = ("what about", "how about", "what else", "what if", "same for", "and what", "and how")
_ENDINGS = ("too", "else", "instead", "as well", "either")
_REFERRING = frozenset(
    "it its itself they them their theirs themselves he him his she her hers these those this former latter "
    "ones".split()
)
_BE = frozenset({"is", "are", "was", "were", "be", "been", "'s"})
# Words that name no topic: function words, question words and verbs that any question may use.
_FUNCTION = frozenset(
    "the a an and or but of to in on at by for with from as is are was were be been being it its this that "
    "these those there their they them he she his her him you your we our us i me my not no yes can could "
    "would should will shall may might must do does did done has have had which who whom whose what when where "
    "why how than then also about into over under per each every all any some such only very more most other "
    "much many long often else so too well just really again instead same one ones get got mean means happen "
    "happens work works like exactly please tell say said if less".split()
)

REWRITE_SYSTEM = (
    "You rewrite the user's last question so that it can be understood without the conversation. Replace "
    "words like it, they, this and there with what they refer to, and add the topic if the question leaves "
    "it out. Do not answer the question. Reply with the rewritten question only."
)
_EXAMPLE = (
    "Conversation:\nUser: Who makes the Orca X2 drone?\nAssistant: Orca Labs makes the Orca X2.\n"
    "Last question: and how fast can it fly?",
    "How fast can the Orca X2 drone fly?",
)
_PREFIX = re.compile(r"^\s*(?:rewritten question|standalone question|question|query)\s*:\s*", re.IGNORECASE)
MAX_REWRITE_WORDS = 60
ANSWER_WORDS = 40  # of the last answer, shown to the rewriter (the referent is usually near its start)


@dataclass(frozen=True)
class FollowUp:
    """How a question with history was searched: ``query`` is what retrieval used (the rewrite, or the question
    as asked); ``cue`` why it looked like a follow-up (``None``: it did not); ``note`` why a rewrite was not
    used when one was wanted."""

    question: str
    query: str
    cue: str | None = None
    rewritten: bool = False
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "query": self.query,
            "cue": self.cue,
            "rewritten": self.rewritten,
            "note": self.note,
        }


def _words(text: str) -> list[str]:
    return [w.lower().replace("’", "'") for w in _WORD.findall(text)]


def followup_cue(question: str) -> str | None:
    """Why ``question`` looks like it continues a conversation, or ``None`` when it reads as standalone.

    Cues: an opening connective ("and ...", "what about ..."); a word that refers back (it, they, this,
    those, ...; "that" unless it follows a content word, as in "the virus that causes"; "there" unless
    existential, as in "is there"); an ending "too"/"else"/"as well"; no topic words at all ("How much?");
    two words or fewer ("In Paris?")."""
    words = _words(question)
    if not words:
        return None
    text = " ".join(words)
    if words[0] in _OPENERS:
        return f"opens with {words[0]!r}"
    for phrase in _OPENING_PHRASES:
        if text.startswith(phrase + " ") or text == phrase:
            return f"opens with {phrase!r}"
    for i, w in enumerate(words):
        before = words[i - 1] if i else None
        after = words[i + 1] if i + 1 < len(words) else None
        if w in _REFERRING:
            return f"refers back with {w!r}"
        if w == "that" and (before is None or before in _FUNCTION):
            return "refers back with 'that'"
        if w == "there" and before not in _BE and after not in _BE:
            return "refers back with 'there'"
        if w == "same" and before == "the":
            return "refers back with 'the same'"
    for ending in _ENDINGS:
        if text.endswith(" " + ending):
            return f"ends with {ending!r}"
    if all(w in _FUNCTION for w in words):
        return "no topic words"
    if len(words) <= 2:
        return "two words or fewer"
    return None


def conversation(
    history: Sequence[Mapping[str, Any]], *, max_turns: int, max_tokens: int, count_tokens: CountTokens
) -> list[Message]:
    """The turns an answer prompt may see: user and assistant messages with text (others dropped), citations
    removed from answers, the last ``max_turns`` turns (a user message and the reply), oldest dropped first
    until they fit ``max_tokens``."""
    turns: list[Message] = []
    for m in history:
        role, content = m.get("role"), m.get("content")
        if role not in ("user", "assistant") or not isinstance(content, str) or not content.strip():
            continue
        text = " ".join((strip_citations(content) if role == "assistant" else content).split())
        turns.append({"role": role, "content": text})
    turns = turns[-2 * max_turns :] if max_turns > 0 else []
    while turns and sum(count_tokens(t["content"]) for t in turns) > max_tokens:
        turns.pop(0)
    while turns and turns[0]["role"] == "assistant":  # a conversation the model reads starts with the user
        turns.pop(0)
    return turns


def _clip(text: str, words: int) -> str:
    parts = text.split()
    return " ".join(parts[:words]) + (" ..." if len(parts) > words else "")


def rewrite_messages(question: str, history: Sequence[Message]) -> list[Message]:
    """The rewrite prompt: the instruction, one worked example, then the last two questions and the start of
    the last answer before the question to rewrite."""
    users = [t["content"] for t in history if t["role"] == "user"][-2:]
    answers = [t["content"] for t in history if t["role"] == "assistant"]
    lines = [f"User: {q}" for q in users]
    if answers:
        lines.append(f"Assistant: {_clip(answers[-1], ANSWER_WORDS)}")
    body = "Conversation:\n" + "\n".join(lines) + f"\nLast question: {question}"
    return [
        {"role": "system", "content": REWRITE_SYSTEM},
        {"role": "user", "content": _EXAMPLE[0]},
        {"role": "assistant", "content": _EXAMPLE[1]},
        {"role": "user", "content": body},
    ]


def parse_rewrite(text: str) -> str | None:
    """The rewritten question from the LLM's reply: its first line without a label or quotes; ``None`` when
    that is empty or longer than :data:`MAX_REWRITE_WORDS` words (the model answered instead)."""
    line = next((ln for ln in text.strip().splitlines() if ln.strip()), "")
    line = _PREFIX.sub("", line).strip().strip("\"'`“”").strip()
    if not line or len(line.split()) > MAX_REWRITE_WORDS:
        return None
    return line


def usable_rewrite(question: str, reply: str) -> str | None:
    """:func:`parse_rewrite`, and for a question, only a question: "Until the end of the year." is the model
    answering instead of rewriting."""
    query = parse_rewrite(reply)
    if query is not None and question.rstrip().endswith("?") and not query.endswith("?"):
        return None
    return query


def plan_query(
    question: str,
    history: Sequence[Message],
    *,
    llm: LLM,
    config: FollowupConfig,
    temperature: float = 0.0,
    seed: int | None = 0,
) -> FollowUp:
    """What to search for ``question`` after ``history`` (as returned by :func:`conversation`)."""
    if not any(t["role"] == "user" for t in history):
        return FollowUp(question, question)
    cue = followup_cue(question)
    if cue is None:
        return FollowUp(question, question)
    if not config.rewrite:
        return FollowUp(question, question, cue, note="followup.rewrite is off; searched for the question as asked")
    out = llm.complete(
        rewrite_messages(question, history),
        max_tokens=config.rewrite_tokens,
        temperature=temperature,
        seed=seed,
        stop=["\n"],
    )
    query = usable_rewrite(question, out.text)
    if query is None:
        return FollowUp(question, question, cue, note=f"unusable rewrite {out.text[:80]!r}; searched for the question")
    return FollowUp(question, query, cue, rewritten=query != question)
