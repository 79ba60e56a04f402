"""Retrieval evaluation: run each mode over the judged queries, score, compare, report.

:func:`evaluate_retrieval` is the whole job; :class:`RetrievalEvaluator` is the thin typed wrapper the
CLI calls. Steps:

1. load the dataset (:mod:`eval.datasets`) and open its index, building it through
   :func:`ingest.pipeline.ingest` when absent (re-ingesting an unchanged corpus is a no-op);
2. retrieve ``depth`` chunks per query for each mode in batches (``bm25``, ``dense``, ``hybrid`` from
   :mod:`rag.retrieval`; ``hybrid+rerank`` reranks the first ``rerank.depth`` hybrid candidates with
   :mod:`rag.rerank` and keeps the rest below them);
3. collapse chunks to documents (``max`` of a document's chunk scores by default) for queries judged
   per document — BEIR judges documents, not chunks;
4. score every judged query (:mod:`eval.metrics`), average, and compare modes pairwise on per-query
   nDCG@10 (:mod:`eval.significance`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

from eval.datasets import EvalDataset, load_dataset
from eval.metrics import METRIC_NAMES, evaluate_rankings, mean_scores, parse_metric_key, rank_run
from eval.runs import Aggregation, Run, aggregate
from eval.significance import PairedComparison, compare_systems
from ingest.pipeline import ingest
from rag.blend import head_then_tail
from rag.config import PipelineConfig
from rag.errors import ConfigError, IndexNotFoundError, ModelError
from rag.rerank import Reranker, load_reranker
from rag.retrieval import QueryEncoder, Retriever, SentenceTransformerEncoder, build_retriever
from rag.store import VectorStore, current_generation, open_store, read_manifest
from rag.types import Hit

EvalMode = Literal["bm25", "dense", "hybrid", "hybrid+rerank"]
EVAL_MODES: tuple[EvalMode, ...] = get_args(EvalMode)
DEFAULT_KS: tuple[int, ...] = (1, 3, 5, 10, 100)
ProgressFactory = Callable[[int, str], Any]


@dataclass(frozen=True)
class RetrievalEvalConfig:
    """Options of one evaluation run (the pipeline's own settings come from :class:`PipelineConfig`).

    ``depth``: chunks retrieved per query; ``None`` means ``max(retrieval.depth, depth_factor * max(ks))``
    so that @100 metrics still see 100 documents after chunks are collapsed into documents.
    ``modes=None`` means bm25, dense, hybrid, plus hybrid+rerank when a reranker model is present.
    """

    modes: tuple[EvalMode, ...] | None = None
    ks: tuple[int, ...] = DEFAULT_KS
    depth: int | None = None
    depth_factor: int = 3
    aggregation: Aggregation = "max"
    significance_metric: str = "ndcg@10"
    n_resamples: int = 10_000
    seed: int = 0
    batch_size: int = 128

    def __post_init__(self) -> None:
        if not self.ks or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in self.ks):
            raise ConfigError(f"k values must be positive integers, got {self.ks!r}")
        for mode in self.modes or ():
            if mode not in EVAL_MODES:
                raise ConfigError(f"unknown retrieval mode {mode!r}; choose from {', '.join(EVAL_MODES)}")
        if self.depth is not None and self.depth < max(self.ks):
            raise ConfigError(f"depth {self.depth} is below the largest k ({max(self.ks)})")
        try:
            parse_metric_key(self.significance_metric)
        except ValueError as e:
            raise ConfigError(str(e)) from e

    def chunk_depth(self, pipeline: PipelineConfig) -> int:
        return self.depth or max(pipeline.retrieval.depth, self.depth_factor * max(self.ks))


@dataclass(frozen=True)
class ModeResult:
    """One mode's scored run. ``run`` is per judged unit (documents, or chunks for chunk-judged queries)."""

    mode: str
    run: Run
    per_query: dict[str, dict[str, float]]
    means: dict[str, float]
    seconds: float
    timings_ms: dict[str, float] = field(default_factory=dict)
    shallow_queries: int = 0


@dataclass(frozen=True)
class RetrievalEvalResult:
    dataset: EvalDataset
    config: RetrievalEvalConfig
    pipeline: PipelineConfig
    index_dir: Path
    chunk_depth: int
    modes: dict[str, ModeResult]
    comparisons: list[PairedComparison]
    notes: list[str]
    seconds: dict[str, float]

    def metrics(self) -> dict[str, dict[str, float]]:
        """``metrics.json``: mode -> ``metric@k`` -> mean over all judged queries."""
        return {mode: dict(result.means) for mode, result in self.modes.items()}


# ---- retrieval ----------------------------------------------------------------------------------


class CachingEncoder:
    """Wraps a query encoder so dense and hybrid embed each query once per evaluation."""

    def __init__(self, inner: QueryEncoder) -> None:
        self.inner = inner
        self._cache: dict[str, np.ndarray] = {}

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            for text, vector in zip(missing, self.inner.encode(missing), strict=True):
                self._cache[text] = vector
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([self._cache[t] for t in texts])


def rerank_candidates(
    reranker: Reranker, queries: Sequence[str], hits: Sequence[list[Hit]], *, depth: int
) -> list[list[Hit]]:
    """Rerank the first ``depth`` hits of each list; the rest keep their order below them
    (:func:`rag.blend.head_then_tail`: scores become rank-based so each list stays one ranking)."""
    heads = reranker.rerank_many(queries, [h[:depth] for h in hits], top_k=depth)
    return [head_then_tail(head, full, depth=depth) for head, full in zip(heads, hits, strict=True)]


def hits_to_run(
    hits: Mapping[str, Sequence[Hit]], dataset: EvalDataset, *, aggregation: Aggregation = "max"
) -> Run:
    """Per query ``{unit id: score}``: chunk scores collapsed to documents, or kept per chunk."""
    run: Run = {}
    for qid, qhits in hits.items():
        if dataset.unit(qid) == "chunk":
            run[qid] = {h.chunk.id: float(h.score) for h in qhits}
        else:
            run[qid] = aggregate(((h.chunk.source, h.score) for h in qhits), how=aggregation)
    return run


def retrieve(
    retriever: Retriever,
    queries: Mapping[str, str],
    *,
    depth: int,
    batch_size: int,
    reranker: Reranker | None = None,
    rerank_depth: int = 0,
    timings: dict[str, float] | None = None,
    progress: Any = None,
) -> dict[str, list[Hit]]:
    """``depth`` hits per query, searched in batches; ``progress.update(n)`` after each batch."""
    qids = list(queries)
    out: dict[str, list[Hit]] = {}
    for start in range(0, len(qids), batch_size):
        batch = qids[start : start + batch_size]
        texts = [queries[q] for q in batch]
        results = retriever.search_many(texts, k=depth, timings=timings)
        if reranker is not None:
            t0 = time.perf_counter()
            results = rerank_candidates(reranker, texts, results, depth=rerank_depth)
            if timings is not None:
                timings["rerank"] = timings.get("rerank", 0.0) + (time.perf_counter() - t0) * 1000.0
        out.update(zip(batch, results, strict=True))
        if progress is not None:
            progress.update(len(batch))
    return out


def score_run(run: Run, dataset: EvalDataset, *, ks: Sequence[int]) -> dict[str, dict[str, float]]:
    """Per-query ``metric@k`` for every judged query (a query with nothing retrieved scores 0)."""
    rankings = {qid: rank_run(scores) for qid, scores in run.items()}
    return evaluate_rankings(rankings, dataset.qrels, ks=ks, metrics=METRIC_NAMES)


# ---- the job ------------------------------------------------------------------------------------


def resolve_modes(
    config: RetrievalEvalConfig, pipeline: PipelineConfig, *, index_dir: str | Path | None = None
) -> tuple[list[EvalMode], Reranker | None, list[str]]:
    """The modes to run, the reranker when ``hybrid+rerank`` is among them, and notes for the report."""
    notes: list[str] = []
    reranker, status = load_reranker(pipeline.rerank, index_dir=index_dir)
    if reranker is not None:
        notes.append(f"reranker fusion_weight {status.fusion_weight} (from the {status.weight_source})")
    if config.modes is None:
        modes: list[EvalMode] = ["bm25", "dense", "hybrid"]
        if reranker is not None:
            modes.append("hybrid+rerank")
        else:
            notes.append(f"hybrid+rerank not evaluated: {status.notice}")
        return modes, reranker, notes
    modes = list(dict.fromkeys(config.modes))
    if "hybrid+rerank" in modes and reranker is None:
        raise ModelError(f"mode hybrid+rerank was asked for but {status.notice}")
    return modes, (reranker if "hybrid+rerank" in modes else None), notes


def evaluate_retrieval(
    dataset: EvalDataset,
    index: VectorStore,
    *,
    pipeline: PipelineConfig,
    config: RetrievalEvalConfig | None = None,
    index_dir: Path | None = None,
    encoder: QueryEncoder | None = None,
    progress: ProgressFactory | None = None,
    notes: Sequence[str] = (),
) -> RetrievalEvalResult:
    """Evaluate every mode over ``index`` (already built for ``dataset``'s corpus)."""
    config = config or RetrievalEvalConfig()
    modes, reranker, mode_notes = resolve_modes(config, pipeline, index_dir=getattr(index, "path", index_dir))
    all_notes = [*notes, *mode_notes]
    depth = config.chunk_depth(pipeline)
    max_k = max(config.ks)
    retrieval_cfg = dataclasses.replace(pipeline.retrieval, depth=max(pipeline.retrieval.depth, depth))
    shared_encoder = CachingEncoder(encoder or SentenceTransformerEncoder(
        index.embedding_model, batch_size=pipeline.embedding.batch_size, device=pipeline.embedding.device))
    results: dict[str, ModeResult] = {}
    for mode in modes:
        base_mode = "hybrid" if mode == "hybrid+rerank" else mode
        retriever = build_retriever(index, retrieval_cfg, mode=base_mode, encoder=shared_encoder)
        timings: dict[str, float] = {}
        bar = progress(len(dataset.queries), f"{mode:>13}") if progress else None
        t0 = time.perf_counter()
        try:
            hits = retrieve(retriever, dataset.queries, depth=depth, batch_size=config.batch_size,
                            reranker=reranker if mode == "hybrid+rerank" else None,
                            rerank_depth=pipeline.rerank.depth, timings=timings, progress=bar)
        finally:
            if bar is not None:
                bar.close()
        run = hits_to_run(hits, dataset, aggregation=config.aggregation)
        seconds = time.perf_counter() - t0
        per_query = score_run(run, dataset, ks=config.ks)
        shallow = sum(1 for scores in run.values() if len(scores) < max_k)
        results[mode] = ModeResult(mode=mode, run=run, per_query=per_query, means=mean_scores(per_query),
                                   seconds=seconds, timings_ms=timings, shallow_queries=shallow)
        if shallow and max_k > 1:
            all_notes.append(f"{mode}: {shallow} of {len(run)} queries returned fewer than {max_k} "
                             f"{'documents' if dataset.kind == 'beir' else 'units'} from {depth} chunks")
    t0 = time.perf_counter()
    comparisons = compare_systems({m: r.per_query for m, r in results.items()}, metric=config.significance_metric,
                                  n_resamples=config.n_resamples, seed=config.seed)
    significance_s = time.perf_counter() - t0
    unreachable = _unjudged_count(dataset, index)
    if unreachable:
        all_notes.append(f"{unreachable} judged id(s) are not in the index and can never be retrieved")
    no_relevant = sum(1 for q in dataset.qrels.values() if not any(g >= 1 for g in q.values()))
    if no_relevant:
        all_notes.append(f"{no_relevant} judged queries have no relevant document; they score 0 (as trec_eval)")
    return RetrievalEvalResult(
        dataset=dataset, config=config, pipeline=pipeline, index_dir=index_dir or Path("."), chunk_depth=depth,
        modes=results, comparisons=comparisons, notes=all_notes,
        seconds={**{m: r.seconds for m, r in results.items()}, "significance": significance_s},
    )


def _unjudged_count(dataset: EvalDataset, index: VectorStore) -> int:
    sources: set[str] = set()
    chunk_ids: set[str] = set()
    for c in index.iter_chunks():
        sources.add(c.source)
        chunk_ids.add(c.id)
    missing = 0
    for qid, judged in dataset.qrels.items():
        known = chunk_ids if dataset.unit(qid) == "chunk" else sources
        missing += sum(1 for doc_id, grade in judged.items() if grade >= 1 and doc_id not in known)
    return missing


# ---- index and the typed entry point ------------------------------------------------------------


def default_index_dir(dataset: EvalDataset, pipeline: PipelineConfig) -> Path:
    """BEIR: ``.ragtrail-<name>`` under the current directory (never the user's main index, never inside
    the dataset folder, which may be read-only); a user's own folder: the configured index."""
    if dataset.kind == "beir":
        return Path(f".ragtrail-{dataset.name}")
    return Path(pipeline.index_dir)


def open_or_build_index(
    dataset: EvalDataset, *, index_dir: Path, pipeline: PipelineConfig, progress: bool = False
) -> tuple[VectorStore, list[str]]:
    """Open the index for ``dataset``'s corpus, ingesting it first (a no-op when nothing changed).

    Refuses an index that was built from a different corpus, since re-ingesting into it would replace
    that corpus.
    """
    corpus = dataset.corpus.resolve()
    try:
        manifest = read_manifest(current_generation(index_dir))
    except (IndexNotFoundError, FileNotFoundError):
        manifest = None
    if manifest is not None:
        built_from = manifest.get("source", {}).get("path")
        if built_from is not None and Path(built_from) != corpus:
            raise ConfigError(
                f"index {index_dir} was built from {built_from}, not from {corpus}; "
                "pass --index DIR to evaluate with a separate index"
            )
    report = ingest(corpus, index_dir=index_dir, config=pipeline, progress=progress)
    if report.written:
        note = (f"index {'built' if manifest is None else 'updated'} at {index_dir}: {report.documents} documents, "
                f"{report.chunks_total} chunks ({report.seconds:.0f} s)")
    else:
        note = f"index {index_dir} is up to date ({report.documents} documents, {report.chunks_total} chunks)"
    notes = [note]
    if report.failed:
        notes.append(f"{len(report.failed)} document(s) could not be ingested, e.g. {report.failed[0][0]}: "
                     f"{report.failed[0][1]}")
    return open_store(index_dir, pipeline, embedding_model=pipeline.embedding.model), notes


class RetrievalEvaluator:
    """Typed entry point: ``RetrievalEvaluator(pipeline, config).run(dataset_path, ...)``."""

    def __init__(self, pipeline: PipelineConfig | None = None, config: RetrievalEvalConfig | None = None) -> None:
        self.pipeline = pipeline or PipelineConfig()
        self.config = config or RetrievalEvalConfig()

    def run(
        self,
        dataset: str | Path | EvalDataset,
        *,
        split: str = "test",
        qrels: str | Path | None = None,
        index_dir: str | Path | None = None,
        progress: bool = False,
    ) -> RetrievalEvalResult:
        ds = dataset if isinstance(dataset, EvalDataset) else load_dataset(dataset, split=split, qrels_path=qrels)
        where = Path(index_dir) if index_dir is not None else default_index_dir(ds, self.pipeline)
        index, notes = open_or_build_index(ds, index_dir=where, pipeline=self.pipeline, progress=progress)
        return evaluate_retrieval(ds, index, pipeline=self.pipeline, config=self.config, index_dir=where,
                                  progress=_tqdm_factory if progress else None, notes=notes)


def _tqdm_factory(total: int, desc: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="q", leave=False, dynamic_ncols=True)
