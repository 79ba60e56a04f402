"""The answer/decline decision, taken from evidence rather than left to the 1.5B model's whim.

Three stages can decline a question, and each says why (:class:`Decision`):

* ``gate`` (before the LLM, which is then never called): the best sentence scores below
  ``answer.min_score``, the selected sentences never use a question term rarer than
  ``answer.max_missing_idf`` nats ("Omicron", "AstraZeneca" over articles from early 2020), or they use
  less than ``answer.min_coverage`` of the question's IDF-weighted terms.
* ``model``: the LLM itself replies that the documents do not hold the answer.
* ``check`` (after the LLM): more than ``answer.max_unsupported`` of the answer's key terms occur in
  neither the question nor the sentences it was given, so the answer came from the model's memory. The
  streamed text has then already been shown; ``rag ask`` says plainly that it was withdrawn.

:func:`add_missing_citations` gives an answer sentence that cites nothing the excerpt holding most of
its key terms (at least half of them), so answers stay checkable; added numbers are recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from rag.citations import cited_sentences, key_terms, stem_term, strip_citations, term_stems
from rag.config import AnswerConfig
from rag.evidence import unsupported_terms

Stage = Literal["gate", "model", "check", "answer"]

MIN_CITE_SHARE = 0.5


@dataclass(frozen=True)
class Decision:
    """``answered`` False means the user gets the fixed "not in the documents" reply; ``stage`` says which
    step decided, ``reason`` why, ``features`` the measurements it used."""

    answered: bool
    stage: Stage
    reason: str = ""
    features: dict[str, float] = field(default_factory=dict)
    unsupported: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "answered": self.answered,
            "stage": self.stage,
            "reason": self.reason,
            "features": {k: round(float(v), 4) for k, v in self.features.items()},
            "unsupported": list(self.unsupported),
        }


def gate(features: Mapping[str, float], config: AnswerConfig) -> Decision | None:
    """A decline decided before the LLM runs, or None to go on."""
    if not config.gate:
        return None
    if features.get("sentences", 0.0) <= 0:
        return Decision(False, "gate", "no passage has a usable sentence", dict(features))
    if features["best_score"] < config.min_score:
        return Decision(
            False,
            "gate",
            f"no sentence matches the question well enough (best {features['best_score']:.2f} < "
            f"answer.min_score {config.min_score:.2f})",
            dict(features),
        )
    rarity = features.get("missing_idf", 0.0)
    if rarity > config.max_missing_idf:
        return Decision(
            False,
            "gate",
            f"the excerpts never mention a rare term of the question (idf {rarity:.2f} > "
            f"answer.max_missing_idf {config.max_missing_idf:.2f})",
            dict(features),
        )
    if features["coverage"] < config.min_coverage:
        return Decision(
            False,
            "gate",
            f"the passages use too few of the question's terms ({features['coverage']:.0%} < "
            f"answer.min_coverage {config.min_coverage:.0%})",
            dict(features),
        )
    return None


def new_terms(answer: str, question: str) -> set[str]:
    """The key terms of ``answer`` that the question does not already use (stem match)."""
    asked = term_stems(question)
    return {t for t in key_terms(strip_citations(answer)) if stem_term(t) not in asked}


def check(answer: str, question: str, evidence: str, features: Mapping[str, float], config: AnswerConfig) -> Decision:
    """After the LLM: withdraw an answer whose new terms (those the question does not use) the evidence
    never uses either. "The capital of Canada is Ottawa [1]" over virology excerpts: its one new term,
    "Ottawa", is in no excerpt, so 100 % unsupported however many question words it repeats."""
    missing = unsupported_terms(answer, question, evidence)
    terms = len(new_terms(answer, question))
    share = min(1.0, len(missing) / terms) if terms else 0.0
    measured = {**features, "unsupported_share": share}
    if config.gate and share > config.max_unsupported:
        shown = ", ".join(f"'{w}'" for w in missing[:5])
        return Decision(
            False,
            "check",
            f"{len(missing)} of the {terms} terms the answer adds to the question appear in no passage given ({shown})",
            measured,
            missing,
        )
    return Decision(True, "answer", "", measured, missing)


def add_missing_citations(text: str, passages: Mapping[int, str]) -> tuple[str, list[int]]:
    """``text`` with a citation appended to each sentence that has none, naming the passage that holds
    most (and at least half) of its key terms; returns the new text and the numbers added."""
    if not passages:
        return text, []
    terms_of = {n: key_terms(t) for n, t in passages.items()}
    out = text
    added: list[int] = []
    cursor = 0
    for sentence, numbers in cited_sentences(text):
        if numbers:
            continue
        terms = key_terms(sentence)
        if not terms:
            continue
        share = {n: len(terms & t) / len(terms) for n, t in terms_of.items()}
        best = max(sorted(share), key=lambda n: share[n])
        if share[best] < MIN_CITE_SHARE:
            continue
        at = out.find(sentence, cursor)
        if at < 0:
            continue
        end = at + len(sentence)
        stop = end - 1 if out[end - 1 : end] in {".", "!", "?"} else end
        out = f"{out[:stop].rstrip()} [{best}]{out[stop:]}"
        cursor = stop + len(f" [{best}]")
        added.append(best)
    return out, added
