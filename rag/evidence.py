"""Extractive evidence for the small local LLM: the few sentences of the retrieved passages that bear on
the question, and the measurements that decide whether the question can be answered from them.

A 1.5B model given six 256-token passages mostly declines (the distractors drown the answer) and pays
~20 s of prefill on 2 cores; given a few sentences and a soft prompt it answers, but it also answers
questions the documents do not cover from its own memory. So the reader gets short, high-precision
context, and the answer/decline decision is taken from evidence, not left to the model:

* :func:`split_sentences` cuts a passage into sentences (abbreviations such as "et al." and decimals
  do not end one); :func:`select_evidence` scores every sentence of the top passages against the
  question (embedding cosine of the index's model, plus the share of the question's rare terms it
  holds) and keeps the best ones, with the sentence before the best one, inside a token budget.
  Sentences stay grouped by passage, in document order, so a citation still names a file and a page.
* :func:`coverage` is the IDF-weighted share of the question's terms that the selected text uses at all
  ("How many moons does Neptune have?" over COVID-19 papers: neither "moons" nor "Neptune").
* :func:`unsupported_terms` lists the answer's content words and numbers that neither the question nor
  the evidence uses: "Canberra [1]" fails when no sentence mentions Canberra.

The thresholds that turn these into a decision live in :class:`rag.config.AnswerConfig` and were
calibrated on development questions (README, "Answering").
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rag.citations import absent_terms, key_terms, stem_term, strip_citations, term_stems
from rag.types import Hit

# ---- sentences -----------------------------------------------------------------------------------

_ABBREVIATIONS = frozenset(
    "al e.g i.e etc fig figs vs approx dr mr mrs ms prof no nos vol ref refs eq eqs ca cf sp spp st inc ltd "
    "jan feb mar apr jun jul aug sep sept oct nov dec min max resp".split()
)
_BOUNDARY = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])|\n\s*\n|\n(?=\s*(?:[-*•]|\d+[.)])\s)")
_LAST_WORD = re.compile(r"([A-Za-z][A-Za-z.]*)\.[\"')\]]*$")


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text`` (stripped, non-empty). Ends at ``.!?`` followed by a capital or digit, at a
    blank line, or before a list item; not after a known abbreviation or a single capital (initials)."""
    out: list[str] = []
    start = 0
    for m in _BOUNDARY.finditer(text):
        piece = text[start : m.start()].rstrip()
        word = _LAST_WORD.search(piece)
        if word and "\n" not in m.group(0):
            w = word.group(1).lower().rstrip(".")
            if w in _ABBREVIATIONS or (len(w) == 1 and w.isalpha()):
                continue
        if piece.strip():
            out.append(" ".join(piece.split()))
        start = m.end()
    tail = text[start:].strip()
    if tail:
        out.append(" ".join(tail.split()))
    return out


# ---- term statistics -----------------------------------------------------------------------------

Idf = Callable[[str], float]


class IndexIdf:
    """IDF of a term from the index's BM25 statistics (``ln(1 + (N - df + 0.5) / (df + 0.5))``); a term
    the index has never seen gets ``unseen``, the idf of a term in one passage. Every term weighs 1.0 (and
    ``unseen`` is 1.0) when the index has no BM25 matrix."""

    def __init__(self, index: Any) -> None:
        self._bm25 = getattr(index, "bm25", None)
        self._tokenize = getattr(index, "bm25_tokenizer", None)
        if self._bm25 is None or self._tokenize is None:
            self._bm25 = None
            self.unseen = 1.0
        else:
            self._n = max(1, int(getattr(self._bm25, "n_docs", len(getattr(index, "chunks", [])) or 1)))
            self._indptr = np.asarray(self._bm25.indptr)
            self.unseen = math.log(1 + (self._n - 1 + 0.5) / 1.5)
        self._cache: dict[str, float] = {}

    def __call__(self, term: str) -> float:
        if self._bm25 is None or self._tokenize is None:
            return 1.0
        if term not in self._cache:
            tokens = self._tokenize(term)
            if not tokens:
                self._cache[term] = 0.0  # a stop word of the BM25 analyser
            else:
                col = self._bm25.vocab.get(tokens[0])
                df = int(self._indptr[col + 1] - self._indptr[col]) if col is not None else 0
                self._cache[term] = math.log(1 + (self._n - df + 0.5) / (df + 0.5)) if df else self.unseen
        return self._cache[term]


def index_idf(index: Any) -> IndexIdf:
    return IndexIdf(index)


def missing_idf(question: str, text: str, idf: Idf) -> float:
    """The idf (nats) of the rarest question term that ``text`` never uses (0.0 when every term is used).
    "Which vector does the Oxford-AstraZeneca vaccine use?" over COVID-QA excerpts that never say
    "AstraZeneca": 7.7, the idf of a term no passage of the 3,324 holds. In absolute nats on purpose: in a
    folder of 34 passages no term is rarer than 3.2, so the rule stays silent where rarity means little."""
    known = term_stems(text)
    missing = [idf(t) for t in key_terms(question) if stem_term(t) not in known]
    return max(missing) if missing else 0.0


def coverage(question: str, text: str, idf: Idf) -> float:
    """IDF-weighted share of the question's key terms whose stem ``text`` uses (1.0 for no terms)."""
    terms = {t: idf(t) for t in key_terms(question)}
    total = sum(terms.values())
    if total <= 0:
        return 1.0
    known = term_stems(text)
    return sum(w for t, w in terms.items() if stem_term(t) in known) / total


def unsupported_terms(answer: str, question: str, evidence: str) -> list[str]:
    """Key terms of ``answer`` (citations removed) found neither in ``question`` nor in ``evidence``."""
    known = term_stems(question) | term_stems(evidence)
    return absent_terms(strip_citations(answer), frozenset(known))


# ---- selection -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sentence:
    hit_index: int  # which hit (best first) it comes from
    position: int  # its place in that hit's passage
    text: str
    score: float  # cosine with the question + lexical weight * coverage of the question's terms
    cosine: float


@dataclass(frozen=True)
class Excerpt:
    """The selected sentences of one hit, in document order (``text`` joins them; a gap shows " ... ")."""

    hit: Hit
    sentences: list[Sentence]
    text: str
    score: float  # its best sentence's score


@dataclass(frozen=True)
class Evidence:
    excerpts: list[Excerpt]
    features: dict[str, float] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return "\n".join(e.text for e in self.excerpts)


def score_sentences(
    question: str,
    hits: Sequence[Hit],
    *,
    encode: Callable[[Sequence[str]], np.ndarray],
    idf: Idf,
    lexical_weight: float,
    max_encode: int | None = None,
    min_words: int = 3,
) -> list[Sentence]:
    """The sentences of ``hits`` with at least ``min_words`` words, scored against ``question``. With
    ``max_encode``, only that many sentences are embedded: those sharing most of the question's rare terms
    (ties: the better hit first); the others are dropped. Embedding is the cost here (~40 sentences/s on
    2 cores), so the prefilter keeps the evidence step well under a second."""
    pieces: list[tuple[int, int, str, float]] = []
    for h, hit in enumerate(hits):
        for i, s in enumerate(split_sentences(hit.chunk.text)):
            if len(s.split()) >= min_words:
                pieces.append((h, i, s, coverage(question, s, idf)))
    if max_encode is not None and len(pieces) > max_encode:
        keep = sorted(range(len(pieces)), key=lambda j: (-pieces[j][3], pieces[j][0], pieces[j][1]))[:max_encode]
        pieces = [pieces[j] for j in sorted(keep)]
    if not pieces:
        return []
    vectors = encode([question, *(p[2] for p in pieces)])
    cosines = vectors[1:] @ vectors[0]
    return [
        Sentence(h, i, s, float(cos) + lexical_weight * lex, float(cos))
        for (h, i, s, lex), cos in zip(pieces, cosines, strict=True)
    ]


def select_evidence(
    question: str,
    hits: Sequence[Hit],
    *,
    encode: Callable[[Sequence[str]], np.ndarray],
    count_tokens: Callable[[str], int],
    idf: Idf,
    max_sentences: int,
    max_tokens: int,
    lexical_weight: float = 0.3,
    max_encode: int | None = None,
    context_before_best: bool = True,
) -> Evidence:
    """The best sentences of ``hits`` within ``max_tokens`` (and at most ``max_sentences``), grouped by hit
    in hit order, plus the measurements the answer decision uses."""
    scored = score_sentences(
        question, hits, encode=encode, idf=idf, lexical_weight=lexical_weight, max_encode=max_encode
    )
    ranked = sorted(scored, key=lambda s: (-s.score, s.hit_index, s.position))
    by_place = {(s.hit_index, s.position): s for s in scored}
    chosen: dict[tuple[int, int], Sentence] = {}
    used = 0
    for rank, s in enumerate(ranked):
        if len(chosen) >= max_sentences:
            break
        group = [s]
        if rank == 0 and context_before_best and (s.hit_index, s.position - 1) in by_place:
            group.insert(0, by_place[(s.hit_index, s.position - 1)])  # the best sentence's antecedent
        for g in group:
            key = (g.hit_index, g.position)
            if key in chosen:
                continue
            cost = count_tokens(g.text) + 1
            if used + cost > max_tokens:
                continue
            chosen[key] = g
            used += cost
    excerpts: list[Excerpt] = []
    for h, hit in enumerate(hits):
        mine = sorted((s for (hi, _p), s in chosen.items() if hi == h), key=lambda s: s.position)
        if not mine:
            continue
        parts = [mine[0].text]
        for prev, cur in itertools.pairwise(mine):
            parts.append((" " if cur.position == prev.position + 1 else " ... ") + cur.text)
        excerpts.append(Excerpt(hit, mine, "".join(parts), max(s.score for s in mine)))
    excerpts.sort(key=lambda e: -e.score)
    text = "\n".join(e.text for e in excerpts)
    best = ranked[0] if ranked else None
    features = {
        "best_score": best.score if best else 0.0,
        "best_cosine": max((s.cosine for s in scored), default=0.0),
        "coverage": coverage(question, text, idf) if text else 0.0,
        "missing_idf": missing_idf(question, text, idf) if text else 0.0,
        "sentences": float(len(chosen)),
    }
    return Evidence(excerpts, features)
