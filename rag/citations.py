"""Citation parsing: ``[1]``, ``[1, 3]``, ``[1][2]``, ``[2-4]``, ``[Source 2]`` in an answer.

Citations to sources that do not exist are dropped from the list and removed from the cleaned text
(a bracket that cited only unknown numbers disappears). Detecting the fixed "not in the documents"
sentence is here too, so callers can tell a refusal from an answer.

:func:`check_citations` flags a citation whose passage shares almost none of the key terms (numbers and
content words) of the sentence citing it while another passage holds most of them: small LLMs sometimes
cite the wrong number. It only reports; the answer text is never rewritten.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_CITATION = re.compile(
    r"\[\s*(?:sources?\s*)?(\d+(?:\s*-\s*\d+)?(?:\s*[,;]\s*(?:sources?\s*)?\d+(?:\s*-\s*\d+)?)*)\s*\]",
    re.IGNORECASE,
)
_ITEM = re.compile(r"(\d+)(?:\s*-\s*(\d+))?")
_MAX_RANGE = 50
_NOT_FOUND = re.compile(
    r"\b(?:answer|information)\s+(?:is\s+)?not\s+(?:\w+\s+)?(?:in|within|found in|contained in|provided in|"
    r"present in|available in|mentioned in)\s+the\s+(?:provided\s+|given\s+)?(?:documents?|sources?)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Citations:
    """``cited``: valid source numbers in order of first use; ``invalid``: numbers with no source."""

    cited: list[int] = field(default_factory=list)
    invalid: list[int] = field(default_factory=list)
    text: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"cited": list(self.cited), "invalid": list(self.invalid)}


def _numbers(group: str) -> list[int]:
    out: list[int] = []
    for m in _ITEM.finditer(group):
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) else lo
        if hi < lo or hi - lo > _MAX_RANGE:
            hi = lo
        out.extend(range(lo, hi + 1))
    return out


def parse_citations(text: str, n_sources: int) -> Citations:
    """Parse every citation bracket; keep numbers in ``1..n_sources``; return the cleaned text too."""
    cited: list[int] = []
    invalid: list[int] = []

    def rewrite(m: re.Match[str]) -> str:
        nums = _numbers(m.group(1))
        good = [n for n in dict.fromkeys(nums) if 1 <= n <= n_sources]
        for n in nums:
            target = cited if 1 <= n <= n_sources else invalid
            if n not in target:
                target.append(n)
        if len(good) == len(set(nums)):
            return m.group(0)
        return "[" + ", ".join(map(str, good)) + "]" if good else ""

    cleaned = _CITATION.sub(rewrite, text)
    cleaned = re.sub(r"[ \t]+([.,;:!?])", r"\1", cleaned) if invalid else cleaned
    return Citations(cited=cited, invalid=invalid, text=cleaned)


def strip_citations(text: str) -> str:
    """``text`` without its citation brackets (and the space before each): the prose alone."""
    return re.sub(r"[ \t]+([.,;:!?])", r"\1", re.sub(r"\s*" + _CITATION.pattern, "", text, flags=re.IGNORECASE))


def is_not_in_documents(text: str) -> bool:
    """True when the answer says the documents do not contain the answer."""
    return bool(_NOT_FOUND.search(text))


# ---- citation check ------------------------------------------------------------------------------

WEAK_OVERLAP = 0.34  # a cited passage holding less than this share of the sentence's key terms is suspect
BETTER_BY = 0.34  # ... when another passage holds at least this much more of them
MIN_TERMS = 2
_WORD = re.compile(r"[^\W_]+(?:[.,][0-9]+)*", re.UNICODE)
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+|\n+")
_STOP = frozenset(
    "the a an and or but of to in on at by for with from as is are was were be been being it its this that "
    "these those there their they them he she his her you your we our not no yes can could would should "
    "will shall may might must do does did has have had which who whom whose what when where why how than "
    "then also about into over under per each every all any some such only very more most other".split()
)


_LEADING_CITATIONS = re.compile(rf"(?:\s*{_CITATION.pattern}[.,;:]?)+", re.IGNORECASE)


def _numbers_in(text: str) -> list[int]:
    return [n for m in _CITATION.finditer(text) for n in _numbers(m.group(1))]


@dataclass(frozen=True)
class CitationCheck:
    """``[number]`` cited for ``sentence``: ``overlap`` is the share of the sentence's key terms found in
    that passage; ``better`` is another passage holding clearly more of them (``None``: the citation is fine)."""

    number: int
    sentence: str
    overlap: float
    better: int | None = None
    better_overlap: float = 0.0

    @property
    def weak(self) -> bool:
        return self.better is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "sentence": self.sentence,
            "overlap": self.overlap,
            "better": self.better,
            "better_overlap": self.better_overlap,
        }


def key_terms(text: str) -> set[str]:
    """Lower-cased numbers and content words (two letters or more, no stop words), a plural ``s`` dropped
    (not from -ss, -is, -us)."""
    out: set[str] = set()
    for m in _WORD.finditer(text.lower()):
        w = m.group(0)
        if w in _STOP or (len(w) < 2 and not w.isdigit()):
            continue
        plural = len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "is", "us")) and not w.isdigit()
        out.add(w[:-1] if plural else w)
    return out


_SUFFIXES = ("ing", "ed", "es", "ly", "s")


def stem_term(term: str) -> str:
    """A crude stem for matching only (``opened``/``opens`` -> ``open``, ``closed``/``close`` ->
    ``clos``); numbers are kept whole."""
    if term.isdigit() or not term.isalpha():
        return term
    for suffix in _SUFFIXES:
        if term.endswith(suffix) and len(term) - len(suffix) >= 4:
            term = term[: -len(suffix)]
            break
    return term[:-1] if term.endswith("e") and len(term) > 4 else term


def term_stems(text: str) -> frozenset[str]:
    """The stems of the key terms of ``text``: what :func:`absent_terms` matches against."""
    return frozenset(stem_term(t) for t in key_terms(text))


def absent_terms(text: str, context: str | frozenset[str]) -> list[str]:
    """The key terms of ``text`` (as written, in order, once each) that ``context`` never uses, matched
    on a crude stem: the names, numbers and content words a claim adds beyond its source. ``context``
    may be given as its :func:`term_stems` when many texts are checked against it."""
    known = term_stems(context) if isinstance(context, str) else context
    out: list[str] = []
    seen: set[str] = set()
    for m in _WORD.finditer(text):
        word = m.group(0)
        terms = key_terms(word)
        if terms and not any(stem_term(t) in known for t in terms) and word.lower() not in seen:
            seen.add(word.lower())
            out.append(word)
    return out


def absent_share(text: str, context: str) -> float:
    """Share of the key terms of ``text`` that ``context`` never uses (stem match); 0.0 for no terms."""
    terms = key_terms(text)
    if not terms:
        return 0.0
    known = term_stems(context)
    return sum(stem_term(t) not in known for t in terms) / len(terms)


def cited_sentences(text: str) -> list[tuple[str, list[int]]]:
    """``[(sentence without its citations, [cited numbers])]``; a bracket standing alone after a sentence
    ("... 190 EUR. [3]") belongs to that sentence."""
    out: list[tuple[str, list[int]]] = []
    for piece in (p.strip() for p in _SENTENCE_BREAK.split(text)):
        if not piece:
            continue
        lead = _LEADING_CITATIONS.match(piece)
        if lead and out:  # "... 190 EUR. [3] Next sentence": the bracket closes the previous sentence
            out[-1] = (out[-1][0], [*out[-1][1], *_numbers_in(lead.group(0))])
            piece = piece[lead.end() :].strip()
        if not re.search(r"\w", _CITATION.sub("", piece)):
            continue
        bare = re.sub(r"\s+([.,;:!?])", r"\1", _CITATION.sub("", piece)).strip()
        out.append((bare, _numbers_in(piece)))
    return out


def check_citations(text: str, passages: Mapping[int, str]) -> list[CitationCheck]:
    """One check per (sentence, cited number) whose number is a passage and whose sentence has at least
    :data:`MIN_TERMS` key terms."""
    terms_of = {n: key_terms(t) for n, t in passages.items()}
    checks: list[CitationCheck] = []
    for sentence, numbers in cited_sentences(text):
        terms = key_terms(sentence)
        if len(terms) < MIN_TERMS or not terms_of:
            continue
        share = {n: len(terms & t) / len(terms) for n, t in terms_of.items()}
        best = max(sorted(share), key=lambda n: share[n])  # ties: the lowest number
        for n in dict.fromkeys(numbers):
            if n not in share:
                continue
            weak = best not in numbers and share[n] < WEAK_OVERLAP
            if weak and share[best] >= share[n] + BETTER_BY:
                checks.append(CitationCheck(n, sentence, share[n], best, share[best]))
            else:
                checks.append(CitationCheck(n, sentence, share[n]))
    return checks
