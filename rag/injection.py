"""Defence against instructions planted in documents (indirect prompt injection).

The prompt already fences document text as data and tells the model never to obey it. Small local
models still react to a planted "ignore all previous instructions ..." (Qwen2.5-1.5B stops answering and
refuses), so before a passage reaches the LLM each sentence that addresses the assistant with an
override is replaced by :data:`REMOVED`. The hit's stored text is unchanged; the passage records how
many sentences were neutralised. Turn off with ``prompt.neutralize_instructions: false``.
"""

from __future__ import annotations

import re

# Short and neutral on purpose: a marker that names "instructions" or "the AI assistant" made
# Qwen2.5-1.5B distrust the whole passage and reply that the answer is not in the documents.
REMOVED = "[removed]"

_PATTERNS = [
    r"\b(?:ignore|disregard|forget|override|bypass)\b[^.!?\n]{0,60}?\b(?:instructions?|rules|prompts?|directions|guidelines|context)\b",
    r"\b(?:system|admin|administrator|developer)\s*(?:instructions?|prompts?|messages?|overrides?|commands?)\s*:",
    r"\byou\s+(?:are\s+now|must\s+now|will\s+now|should\s+now)\b",
    r"\bfrom\s+now\s+on\b[^.!?\n]{0,60}?\b(?:answer|reply|respond|say|output|write|print)\b",
    r"\b(?:answer|reply|respond)\s+(?:to\s+)?(?:every|all|each|any)\s+(?:user\s+)?(?:questions?|queries)\s+with\b",
    r"\bnew\s+instructions?\s*:",
    r"<\|?(?:im_start|im_end|system|endoftext)\|?>",
]
_INJECTION = re.compile("|".join(f"(?:{p})" for p in _PATTERNS), re.IGNORECASE)
_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+|$)|\n")


def neutralize_instructions(text: str) -> tuple[str, int]:
    """``text`` with every sentence that reads as an instruction to the assistant replaced; and the count."""
    if not _INJECTION.search(text):
        return text, 0
    out: list[str] = []
    removed = 0
    last = 0
    for m in _SENTENCE.finditer(text):
        out.append(text[last : m.start()])
        sentence = m.group(0)
        if _INJECTION.search(sentence):
            lead = len(sentence) - len(sentence.lstrip())
            out.append(sentence[:lead] + REMOVED)
            removed += 1
        else:
            out.append(sentence)
        last = m.end()
    out.append(text[last:])
    cleaned = "".join(out)
    cleaned = re.sub(rf"{re.escape(REMOVED)}(?:[ \t]*{re.escape(REMOVED)})+", REMOVED, cleaned)
    return cleaned, removed
