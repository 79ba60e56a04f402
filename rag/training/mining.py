"""Hard negatives and self-supervised pairs.

* :func:`mine_bm25_negatives` — BM25 (bm25s) over the deduplicated passage pool of the training data:
  for each query, passages ranked near the top that are not its positive (nor a near-duplicate of it).
* :func:`mine_dense_negatives` — the same with the embedding model (cosine, exact search).
* :func:`pairs_from_chunks` — label-free (query, passage) pairs from an index: title or heading → its
  passage, and a sentence → the chunk around it (the sentence is removed from the passage, so the
  model cannot win by string matching alone).
* :func:`llm_queries` — optional: questions or claims written by the local LLM for sampled chunks
  (GPL / InPars-style synthetic queries), cached so a long run resumes.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rag.errors import GenerationError
from rag.jsonl import appender, read_rows
from rag.store import open_index
from rag.training.data import LoadReport, TrainExample, normalize_text, text_key
from rag.types import Chunk


class PassagePool:
    """Unique passages (dedup by :func:`text_key`) with a BM25 index built on first use."""

    def __init__(self, passages: Sequence[str], groups: Sequence[str] | None = None) -> None:
        """``groups[i]`` (optional) names the document ``passages[i]`` comes from; see ``group_keys``."""
        self.passages: list[str] = []
        self.key_to_row: dict[str, int] = {}
        self.group_keys: dict[str, set[str]] = {}  # group -> keys of its passages (same-document exclusion)
        for i, p in enumerate(passages):
            k = text_key(p)
            if p and k not in self.key_to_row:
                self.key_to_row[k] = len(self.passages)
                self.passages.append(p)
            if p and groups is not None and groups[i]:
                self.group_keys.setdefault(groups[i], set()).add(k)
        self.keys = [text_key(p) for p in self.passages]
        self._bm25: Any = None

    def __len__(self) -> int:
        return len(self.passages)

    def row(self, passage: str) -> int | None:
        return self.key_to_row.get(text_key(passage))

    def bm25_search(self, queries: Sequence[str], k: int) -> list[list[tuple[int, float]]]:
        import bm25s

        if self._bm25 is None:
            self._bm25 = bm25s.BM25()
            self._bm25.index(bm25s.tokenize(self.passages, stopwords="en", show_progress=False), show_progress=False)
        k = min(k, len(self.passages))
        tokens = bm25s.tokenize(list(queries), stopwords="en", show_progress=False)
        docs, scores = self._bm25.retrieve(tokens, k=k, show_progress=False, n_threads=1)
        return [
            [(int(d), float(s)) for d, s in zip(drow, srow, strict=True) if s > 0]
            for drow, srow in zip(docs, scores, strict=True)
        ]


def _pick_negatives(
    ranked: Sequence[int], positive_keys: set[str], keys: Sequence[str], *, n: int, skip_top: int, rng: random.Random
) -> list[int]:
    """Up to ``n`` rows from ``ranked`` (minus positives), sampled from ranks after ``skip_top``."""
    candidates = [r for r in ranked if keys[r] not in positive_keys]
    hard = candidates[skip_top:] or candidates
    if len(hard) <= n:
        return hard
    chosen = sorted(rng.sample(range(len(hard)), n))
    return [hard[i] for i in chosen]


def mine_bm25_negatives(
    rows: Sequence[TrainExample],
    pool: PassagePool,
    *,
    n: int = 3,
    depth: int = 30,
    skip_top: int = 0,
    seed: int = 0,
    extra_positives: dict[str, set[str]] | None = None,
) -> list[TrainExample]:
    """Return ``rows`` with ``n`` BM25 hard negatives appended to each (existing negatives kept first).

    Every known positive of the same query (``extra_positives``: query → passage keys, built from the
    rows themselves when omitted) is excluded, so a second relevant passage is never a "negative".
    """
    rng = random.Random(seed)
    positives = extra_positives if extra_positives is not None else positives_by_query(rows)
    ranked = pool.bm25_search([r.query for r in rows], depth + 1)
    out: list[TrainExample] = []
    for r, hits in zip(rows, ranked, strict=True):
        order = [d for d, _ in hits]
        if len(order) < n:  # pad with random passages so every group has the same size
            order += [i for i in rng.sample(range(len(pool)), min(len(pool), 4 * n)) if i not in order]
        need = max(0, n - len(r.negatives))
        excluded = positives.get(r.query.lower(), set()) | {text_key(x) for x in r.negatives}
        excluded |= pool.group_keys.get(r.group, set())  # other passages of the query's own document
        picked = _pick_negatives(order, excluded, pool.keys, n=need, skip_top=skip_top, rng=rng) if need else []
        if len(picked) < need:  # tiny pools: fill up with random passages (own rng: the main stream is untouched)
            fill = random.Random(f"{seed}:{r.query}")
            rest = [
                i for i in fill.sample(range(len(pool)), len(pool)) if pool.keys[i] not in excluded and i not in picked
            ]
            picked += rest[: need - len(picked)]
        out.append(replace(r, negatives=(*r.negatives, *(pool.passages[i] for i in picked))))
    return out


def mine_dense_negatives(
    rows: Sequence[TrainExample],
    pool: PassagePool,
    encode: Callable[[Sequence[str]], np.ndarray],
    *,
    n: int = 3,
    depth: int = 30,
    seed: int = 0,
) -> list[TrainExample]:
    """Like :func:`mine_bm25_negatives` with normalised embeddings (``encode`` returns one row per text)."""
    rng = random.Random(seed)
    positives = positives_by_query(rows)
    pvec = np.asarray(encode(pool.passages), dtype=np.float32)
    qvec = np.asarray(encode([r.query for r in rows]), dtype=np.float32)
    sims = qvec @ pvec.T
    top = np.argsort(-sims, axis=1, kind="stable")[:, : depth + 1]
    out: list[TrainExample] = []
    for r, order in zip(rows, top, strict=True):
        picked = _pick_negatives(
            order.tolist(), positives.get(r.query.lower(), set()), pool.keys, n=n, skip_top=0, rng=rng
        )
        out.append(replace(r, negatives=(*r.negatives, *(pool.passages[i] for i in picked))))
    return out


def positives_by_query(rows: Sequence[TrainExample]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for r in rows:
        out.setdefault(r.query.lower(), set()).add(text_key(r.positive))
    return out


# ---------------------------------------------------------------- self-supervised pairs from an index

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'])")


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text) if s.strip()]


def pairs_from_chunks(
    chunks: Sequence[Chunk],
    *,
    max_pairs: int | None = None,
    kinds: Sequence[str] = ("title", "sentence"),
    min_words: int = 6,
    max_words: int = 40,
    seed: int = 0,
) -> list[TrainExample]:
    """Label-free pairs from indexed chunks.

    ``title``: the chunk's document title (or heading path) → the chunk. ``sentence``: one sentence
    drawn from the chunk → the chunk with that sentence removed (an "inverse cloze task" pair). A
    claim-like or question-like sentence is a fair stand-in for a user query about that passage.
    """
    rng = random.Random(seed)
    out: list[TrainExample] = []
    seen_titles: set[str] = set()
    for c in chunks:
        text = normalize_text(c.text)
        if not text:
            continue
        group = f"index:{c.source}"
        label = normalize_text(c.heading or c.title or "")
        if "title" in kinds and label and len(label.split()) >= 3 and label.lower() not in seen_titles:
            seen_titles.add(label.lower())
            body = text[len(label) :].lstrip(" .:") if text.lower().startswith(label.lower()) else text
            out.append(TrainExample(query=label, positive=body, group=group, source="index-title"))
        if "sentence" in kinds:
            sentences = split_sentences(text)
            usable = [i for i, s in enumerate(sentences) if min_words <= len(s.split()) <= max_words]
            if len(sentences) >= 3 and usable:
                i = rng.choice(usable)
                rest = " ".join(sentences[:i] + sentences[i + 1 :])
                if label:
                    rest = f"{label.rstrip('.')}. {rest}"
                out.append(TrainExample(query=sentences[i], positive=rest, group=group, source="index-sentence"))
    rng.shuffle(out)
    return out[:max_pairs] if max_pairs is not None else out


def pairs_from_index(index_dir: str, **kwargs: Any) -> list[TrainExample]:
    """:func:`pairs_from_chunks` over an ragtrail index directory."""
    return pairs_from_chunks(open_index(index_dir).chunks, **kwargs)


QueryStyle = Literal["question", "claim"]

LLM_QUERY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"query": {"type": "string", "maxLength": 200}},
    "required": ["query"],
}

# One instruction and one worked example per style (general domain, written here; never evaluation data).
LLM_QUERY_EXAMPLE_PASSAGE = (
    "The Riverside bridge was closed in 2019 after inspectors found corrosion in two of its steel cables. "
    "Repairs cost 4 million euros and the bridge reopened to cars in 2021; lorries are still not allowed."
)
LLM_QUERY_PROMPTS: dict[QueryStyle, tuple[str, str]] = {
    "question": (
        "You write one short search question that the passage answers. Ask about one specific fact in your own "
        "words; do not copy a whole sentence of the passage.",
        "Why was the Riverside bridge closed in 2019?",
    ),
    "claim": (
        "You write one short claim that the passage supports, as a researcher would state a finding: one "
        "declarative sentence about one specific fact, in your own words; do not copy a whole sentence of the "
        "passage.",
        "Corroded steel cables forced the Riverside bridge to close for two years.",
    ),
}


def llm_query_messages(passage: str, style: QueryStyle) -> list[dict[str, str]]:
    system, example = LLM_QUERY_PROMPTS[style]
    return [
        {"role": "system", "content": system + ' Reply as JSON: {"query": "..."}'},
        {"role": "user", "content": f"Passage:\n{LLM_QUERY_EXAMPLE_PASSAGE}"},
        {"role": "assistant", "content": json.dumps({"query": example})},
        {"role": "user", "content": f"Passage:\n{passage[:1500]}"},
    ]


def parse_llm_query(text: str, passage: str) -> str:
    """The generated query, or :class:`ValueError` saying why it is unusable."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"not JSON ({e.msg})") from e
    query = normalize_text(str(data.get("query", ""))) if isinstance(data, dict) else ""
    if len(query.split()) < 3:
        raise ValueError(f"query {query!r} has fewer than 3 words")
    if text_key(query) in {text_key(s) for s in split_sentences(passage)}:
        raise ValueError("query copies a sentence of the passage")
    return query


def llm_queries(
    chunks: Sequence[Chunk],
    llm: Any,
    *,
    n: int,
    seed: int = 0,
    style: QueryStyle = "question",
    cache: str | Path | None = None,
    report: LoadReport | None = None,
    progress: bool = False,
) -> list[TrainExample]:
    """One query (a question, or a claim as in SciFact-like corpora) written by ``llm`` for each of ``n``
    chunks sampled with ``seed``.

    Every answer is appended to ``cache`` (JSONL: chunk id, style, query or why it is unusable) as soon
    as it is written, and chunks already there are not asked again, so an interrupted run resumes where
    it stopped (about 10 s per query with the local 1.5B model); a backend failure is not cached.
    Failures are counted in ``report`` under ``index:llm-failed`` with the first reason, never silently
    dropped."""
    rng = random.Random(seed)
    sample = rng.sample(list(chunks), min(n, len(chunks)))
    done = {row["chunk"]: row for row in read_rows(cache) if row.get("style") == style} if cache else {}
    out: list[TrainExample] = []
    failed: list[str] = []
    with appender(cache) if cache is not None else nullcontext(lambda row: None) as append:
        from tqdm.auto import tqdm

        for c in tqdm(sample, desc=f"llm {style}s", unit="query", disable=not progress):
            row = done.get(c.id)
            if row is None:
                try:
                    completion = llm.complete(
                        llm_query_messages(c.text, style), max_tokens=80, json_schema=LLM_QUERY_SCHEMA
                    )
                except GenerationError as e:  # the backend failed: reported, not cached (a rerun asks again)
                    failed.append(f"{c.id}: {e}")
                    continue
                try:
                    row = {"chunk": c.id, "style": style, "query": parse_llm_query(completion.text, c.text)}
                except ValueError as e:  # greedy decoding would write the same again: cached as failed
                    row = {"chunk": c.id, "style": style, "error": str(e)}
                append(row)
            if "query" in row:
                out.append(
                    TrainExample(
                        query=row["query"],
                        positive=normalize_text(c.text),
                        group=f"index:{c.source}",
                        source=f"index-llm-{style}",
                    )
                )
            else:
                failed.append(f"{c.id}: {row.get('error')}")
    if report is not None:
        report.counts[f"index:llm-{style}s"] = len(out)
        if failed:
            report.counts["index:llm-failed"] = len(failed)
            report.skipped["index:llm-failed"] = f"{len(failed)} chunk(s), e.g. {failed[0]}"
    return out
