"""The query pipeline: retrieve -> rerank -> prompt -> generate -> cite, from Python or the CLI.

>>> pipe = Pipeline.from_config("configs/default.yaml", index_dir=".ragtrail")  # doctest: +SKIP
>>> pipe.search("annual leave", k=5).hits                                        # doctest: +SKIP
>>> pipe.ask("How many days of annual leave?").answer                            # doctest: +SKIP

Models (embedder, cross-encoder, LLM) load lazily on first use. Results are typed dataclasses with
``to_dict`` (:mod:`rag.results`); timings are wall milliseconds per stage.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rag import llm as llms
from rag.answering import Decision, add_missing_citations, check, gate
from rag.citations import Citations, check_citations, is_not_in_documents, parse_citations
from rag.config import PipelineConfig, RetrievalMode, load_config
from rag.errors import ConfigError, ModelError
from rag.evidence import Evidence, Idf, index_idf, select_evidence
from rag.followup import FollowUp, conversation, plan_query
from rag.llm import LLM, Message
from rag.prompt import NOT_IN_DOCUMENTS, Prompt, build_excerpt_prompt, build_prompt, trim_to_tokens
from rag.rerank import Reranker, RerankStatus, load_reranker
from rag.results import Answer, SearchResult, Source
from rag.retrieval import RETRIEVERS, QueryEncoder, Retriever, SentenceTransformerEncoder, Timings, timed
from rag.store import VectorStore, open_store
from rag.types import Filters, Hit

__all__ = ["Answer", "Pipeline", "SearchResult", "Source"]  # the result types live in rag.results

_UNSET: Any = object()


class Pipeline:
    """Holds the store (``index``), the retrievers, the reranker (or why there is none) and the LLM."""

    def __init__(
        self,
        config: PipelineConfig,
        index: VectorStore,
        *,
        llm: LLM | None = None,
        reranker: Reranker | None = _UNSET,
        encoder: QueryEncoder | None = None,
    ) -> None:
        self.config = config
        self.index = index
        self._llm = llm
        self._llm_ready = False
        self._idf: Idf | None = None
        if reranker is _UNSET:
            self.reranker, self.rerank_status = load_reranker(config.rerank, index_dir=getattr(index, "path", None))
        elif reranker is None:
            self.reranker, self.rerank_status = None, RerankStatus(enabled=False, reason="no reranker was given")
        else:
            self.reranker, self.rerank_status = reranker, RerankStatus(enabled=True, model=reranker.name)
        self.encoder: QueryEncoder = encoder or SentenceTransformerEncoder(
            index.embedding_model, batch_size=config.embedding.batch_size, device=config.embedding.device
        )
        self.retrievers: dict[RetrievalMode, Retriever] = {}
        self.unavailable: dict[RetrievalMode, str] = {}  # modes this store cannot serve, and why
        for mode, factory in RETRIEVERS.items():
            try:
                self.retrievers[mode] = factory(index, self.encoder, config.retrieval)
            except ConfigError as e:
                self.unavailable[mode] = str(e)

    @classmethod
    def from_config(
        cls,
        config: PipelineConfig | str | Path | None = None,
        *,
        index_dir: str | Path | None = None,
        llm: LLM | None = None,
        reranker: Reranker | None = _UNSET,
    ) -> Pipeline:
        """A pipeline from a config object, a YAML path or the defaults, over the store ``config.store`` names
        (:func:`rag.store.open_store`) at ``index_dir`` (default: ``config.index_dir``)."""
        if not isinstance(config, PipelineConfig):
            config = load_config(config)
        index = open_store(Path(index_dir if index_dir is not None else config.index_dir), config)
        return cls(config, index, llm=llm, reranker=reranker)

    def with_index(self, index: VectorStore) -> Pipeline:
        """This pipeline (config, LLM, reranker and, for the same embedding model, query encoder) over another
        store, e.g. a new generation written by ``rag ingest``; nothing is loaded again."""
        same_model = index.embedding_model == self.index.embedding_model
        encoder = self.encoder if same_model else None
        other = Pipeline(self.config, index, llm=self._llm, reranker=None, encoder=encoder)
        other.reranker, other.rerank_status = self.reranker, self.rerank_status
        other._llm_ready = self._llm_ready
        return other

    @property
    def llm(self) -> LLM:
        if self._llm is None:
            self._llm = llms.create_llm(self.config.llm)  # looked up on the module: tests substitute it
        return self._llm

    def retriever(self, mode: RetrievalMode) -> Retriever:
        """The retriever of ``mode``; a mode this store cannot serve is a :class:`~rag.errors.ConfigError`."""
        if mode in self.unavailable:
            raise ConfigError(self.unavailable[mode])
        return self.retrievers[mode]

    def _use_reranker(self, rerank: bool | None) -> Reranker | None:
        if rerank is False:
            return None
        if self.reranker is None and rerank is True:
            raise ModelError(f"reranking was requested but is unavailable: {self.rerank_status.reason}")
        return self.reranker

    def search_many(
        self,
        queries: Sequence[str],
        *,
        k: int | None = None,
        mode: RetrievalMode | None = None,
        rerank: bool | None = None,
        filters: Filters | None = None,
        timings: Timings | None = None,
    ) -> list[list[Hit]]:
        """Batched retrieval (+ reranking of ``rerank.depth`` candidates when on) for many queries."""
        k = k if k is not None else self.config.prompt.top_k
        retriever = self.retriever(mode or self.config.retrieval.mode)
        reranker = self._use_reranker(rerank)
        depth = max(k, self.config.rerank.depth) if reranker is not None else k
        candidates = retriever.search_many(queries, k=depth, filters=filters, timings=timings)
        if reranker is None:
            return candidates
        load = getattr(reranker, "load", None)
        if load is not None:
            with timed(timings, "load"):
                load()
        with timed(timings, "rerank"):
            return reranker.rerank_many(queries, candidates, top_k=k)

    def search(
        self,
        query: str,
        *,
        k: int | None = None,
        mode: RetrievalMode | None = None,
        rerank: bool | None = None,
        filters: Filters | None = None,
    ) -> SearchResult:
        timings: dict[str, float] = {}
        start = time.perf_counter()
        hits = self.search_many([query], k=k, mode=mode, rerank=rerank, filters=filters, timings=timings)[0]
        timings["total"] = (time.perf_counter() - start) * 1000.0
        return SearchResult(
            query=query,
            mode=mode or self.config.retrieval.mode,
            hits=hits,
            reranked=self._use_reranker(rerank) is not None,
            rerank=self.rerank_status,
            timings=timings,
        )

    def build_prompt(
        self, question: str, hits: Sequence[Hit], *, top_k: int | None = None, history: Sequence[Message] = ()
    ) -> Prompt:
        config = self.config.prompt
        if top_k is not None:
            config = replace(config, top_k=top_k)
        llm = self.llm
        return build_prompt(
            question,
            hits,
            config=config,
            count_tokens=llm.count_tokens,
            context_window=llm.context_window,
            history=history,
        )

    def conversation(self, history: Sequence[Message]) -> list[Message]:
        """The earlier turns an answer prompt sees (``followup.history_turns`` and ``history_tokens``)."""
        config = self.config.followup
        return conversation(
            history,
            max_turns=config.history_turns,
            max_tokens=config.history_tokens,
            count_tokens=self.llm.count_tokens,
        )

    def plan_query(self, question: str, history: Sequence[Message]) -> FollowUp:
        """What to search for ``question`` after ``history``: a follow-up rewritten into a standalone question
        by the LLM (:mod:`rag.followup`), else the question as asked."""
        turns = self.conversation(history)
        llm_config = self.config.llm
        return plan_query(
            question,
            turns,
            llm=self.llm,
            config=self.config.followup,
            temperature=llm_config.temperature,
            seed=llm_config.seed,
        )

    def prepare_question(self, question: str) -> tuple[str, list[str]]:
        """The question stripped, trimmed to ``answer.max_question_tokens`` LLM tokens with a note when longer;
        an empty question is a ``ValueError``."""
        if not isinstance(question, str) or not question.strip():
            raise ValueError("the question is empty: ask something about the indexed documents")
        question = " ".join(question.split())
        limit = self.config.answer.max_question_tokens
        tokens = self.llm.count_tokens(question)
        if tokens <= limit:
            return question, []
        trimmed = trim_to_tokens(question, limit, self.llm.count_tokens, marker="") or question[: limit * 3]
        note = f"the question has {tokens} tokens; only its first {limit} were used (answer.max_question_tokens)"
        return trimmed, [note]

    def ask(
        self,
        question: str,
        *,
        top_k: int | None = None,
        mode: RetrievalMode | None = None,
        rerank: bool | None = None,
        filters: Filters | None = None,
        on_token: Callable[[str], None] | None = None,
        history: Sequence[Message] | None = None,
    ) -> Answer:
        """Answer ``question`` from the index with [n] citations, or decline. ``on_token`` receives the answer
        as it streams; without it the answer is generated in one call. ``top_k``: passages retrieved
        (default: ``answer.candidates`` for sentence context, ``prompt.top_k`` for passage context).
        ``history``: the conversation so far (``{"role", "content"}`` messages); a follow-up is searched for
        as a standalone question and answered as asked, after the earlier turns (:mod:`rag.followup`)."""
        start = time.perf_counter()
        timings: dict[str, float] = {}
        if not self._llm_ready:  # the tokenizer comes with the model: load it outside the other timings
            with timed(timings, "load"):
                self.llm.count_tokens("")
            self._llm_ready = True
        question, notes = self.prepare_question(question)
        turns = self.conversation(history) if history else []
        followup: FollowUp | None = None
        if turns:
            with timed(timings, "rewrite"):
                followup = self.plan_query(question, turns)
            if followup.note:
                notes = [*notes, followup.note]
        query = followup.query if followup is not None else question
        sentences = self.config.answer.context == "sentences"
        if top_k is None:
            top_k = self.config.answer.candidates if sentences else self.config.prompt.top_k
        found = self.search(query, k=top_k, mode=mode, rerank=rerank, filters=filters)
        timings.update({k: v for k, v in found.timings.items() if k != "total"})
        asked = _Asked(question, query, followup, notes)
        if not sentences:
            with timed(timings, "prompt"):
                prompt = self.build_prompt(question, found.hits, top_k=top_k, history=turns)
            return self._finish(asked, prompt, found, None, on_token, timings, start)
        with timed(timings, "evidence"):
            evidence = self.select_evidence(query, found.hits)
        with timed(timings, "prompt"):
            prompt = build_excerpt_prompt(
                question,
                [(e.hit, e.text) for e in evidence.excerpts],
                count_tokens=self.llm.count_tokens,
                neutralize=self.config.prompt.neutralize_instructions,
                history=turns,
            )
        declined = gate(evidence.features, self.config.answer)
        if declined is not None:
            if on_token is not None:
                on_token(NOT_IN_DOCUMENTS)
            timings["total"] = (time.perf_counter() - start) * 1000.0
            return Answer(
                question=question,
                answer=NOT_IN_DOCUMENTS,
                raw_answer="",
                citations=Citations(text=NOT_IN_DOCUMENTS),
                passages=prompt.passages,
                prompt=prompt,
                search=found,
                not_in_documents=True,
                llm=self.llm.name,
                finish_reason="declined_by_gate",
                timings=timings,
                decision=declined,
                notes=notes,
                followup=followup,
            )
        return self._finish(asked, prompt, found, evidence, on_token, timings, start)

    def select_evidence(self, question: str, hits: Sequence[Hit]) -> Evidence:
        """The sentences of ``hits`` given to the LLM in sentence-context mode, with the gate's measurements."""
        encode = self.encoder.encode
        if self._idf is None:
            self._idf = index_idf(self.index)
        config = self.config.answer
        return select_evidence(
            question,
            hits,
            encode=encode,
            count_tokens=self.llm.count_tokens,
            idf=self._idf,
            max_sentences=config.max_sentences,
            max_tokens=config.max_context_tokens,
            lexical_weight=config.lexical_weight,
            max_encode=config.max_encode,
        )

    def _finish(
        self,
        asked: _Asked,
        prompt: Prompt,
        found: SearchResult,
        evidence: Evidence | None,
        on_token: Callable[[str], None] | None,
        timings: dict[str, float],
        start: float,
    ) -> Answer:
        raw, finish = self._generate(prompt, on_token, timings)
        citations = parse_citations(raw, len(prompt.passages))
        texts = {p.number: p.text for p in prompt.passages}
        refused = is_not_in_documents(raw)
        decision: Decision | None = None
        added: list[int] = []
        text = citations.text
        if evidence is not None:
            if refused:
                decision = Decision(
                    False, "model", "the LLM replied that the passages do not hold the answer", dict(evidence.features)
                )
            else:
                decision = check(text, asked.query, "\n".join(texts.values()), evidence.features, self.config.answer)
                if decision.answered and self.config.answer.cite_missing:
                    text, added = add_missing_citations(text, texts)
                    if added:
                        citations = parse_citations(text, len(prompt.passages))
        checks = check_citations(citations.text, texts)
        timings["total"] = (time.perf_counter() - start) * 1000.0
        withdrawn = decision is not None and decision.stage == "check" and not decision.answered
        return Answer(
            question=asked.question,
            answer=NOT_IN_DOCUMENTS if withdrawn else citations.text.strip(),
            raw_answer=raw,
            citations=Citations(text=NOT_IN_DOCUMENTS) if withdrawn else citations,
            passages=prompt.passages,
            prompt=prompt,
            search=found,
            not_in_documents=refused,
            llm=self.llm.name,
            finish_reason=finish,
            timings=timings,
            citation_checks=[] if withdrawn else checks,
            decision=decision,
            added_citations=added,
            notes=asked.notes,
            followup=asked.followup,
        )

    def _generate(
        self, prompt: Prompt, on_token: Callable[[str], None] | None, timings: dict[str, float]
    ) -> tuple[str, str | None]:
        if not prompt.passages:
            if on_token is not None:
                on_token(NOT_IN_DOCUMENTS)
            return NOT_IN_DOCUMENTS, "no_sources"
        sentences = self.config.answer.context == "sentences"
        max_tokens = self.config.answer.answer_tokens if sentences else self.config.prompt.answer_tokens
        temperature, seed = self.config.llm.temperature, self.config.llm.seed
        start = time.perf_counter()
        if on_token is None:
            completion = self.llm.complete(prompt.messages, max_tokens=max_tokens, temperature=temperature, seed=seed)
            timings["generate"] = (time.perf_counter() - start) * 1000.0
            return completion.text, completion.finish_reason
        pieces: list[str] = []
        # Closed explicitly: when ``on_token`` raises (a server cancelling a request), the backend's stream must
        # stop generating and release the model now, not whenever the generator is collected.
        stream = self.llm.stream(prompt.messages, max_tokens=max_tokens, temperature=temperature, seed=seed)
        try:
            for piece in stream:
                if not pieces:
                    timings["first_token"] = (time.perf_counter() - start) * 1000.0
                pieces.append(piece)
                on_token(piece)
        finally:
            close = getattr(stream, "close", None)
            if callable(close):
                close()
        timings["generate"] = (time.perf_counter() - start) * 1000.0
        return "".join(pieces), None


@dataclass(frozen=True)
class _Asked:
    """The question as asked, what retrieval searched for, and the notes so far."""

    question: str
    query: str
    followup: FollowUp | None
    notes: list[str]
