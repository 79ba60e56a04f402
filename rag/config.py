"""Typed, frozen configuration: one dataclass per stage, composed into :class:`PipelineConfig`.

Loaded from YAML with ``yaml.safe_load``; unknown keys are errors (a typo must not be ignored);
``to_dict``/``from_dict`` round-trip. Defaults live here and are mirrored in ``configs/default.yaml``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

import yaml

from rag.errors import ConfigError

DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"
DEFAULT_INDEX_DIR = ".ragtrail"

FusionMethod = Literal["rrf", "weighted"]
RetrievalMode = Literal["bm25", "dense", "hybrid"]
DenseIndexKind = Literal["flat", "hnsw"]
Ordering = Literal["lost_in_the_middle", "rank", "reverse"]
AnswerContext = Literal["sentences", "passages"]
OcrMode = Literal["auto", "off", "always"]

MIN_CHUNK_TOKENS = 8  # the smallest chunk worth embedding


def check_at_least(key: str, value: float | None, low: float) -> None:
    if value is not None and value < low:
        raise ConfigError(f"{key} must be at least {low}, got {value}")


def check_not_negative(key: str, value: float | None, *, hint: str = "") -> None:
    if value is not None and value < 0:
        raise ConfigError(f"{key} must not be negative{hint}, got {value}")


def check_positive(key: str, value: float) -> None:
    if value <= 0:
        raise ConfigError(f"{key} must be positive, got {value}")


def check_between(key: str, value: float | None, low: float, high: float) -> None:
    if value is not None and not low <= value <= high:
        raise ConfigError(f"{key} must be between {low} and {high}, got {value}")


@dataclass(frozen=True)
class EmbeddingConfig:
    """``model``: a sentence-transformers id or local path; the default name maps to the packaged copy."""

    model: str = DEFAULT_EMBEDDING_MODEL
    batch_size: int = 64
    device: str = "cpu"
    max_seq_length: int | None = None

    def __post_init__(self) -> None:
        check_at_least("embedding.batch_size", self.batch_size, 1)
        check_at_least("embedding.max_seq_length", self.max_seq_length, 1)


@dataclass(frozen=True)
class ChunkingConfig:
    """Chunk sizes are counted in tokens of the embedding model's tokenizer. ``chunk_tokens`` above the
    model's ``max_seq_length`` minus its two special tokens is lowered to that (the manifest records the
    result as ``effective_chunk_tokens``); ``overlap_tokens`` is at most half a chunk."""

    chunk_tokens: int = 256
    overlap_tokens: int = 32
    split_markdown_headings: bool = True

    def __post_init__(self) -> None:
        check_at_least("chunking.chunk_tokens", self.chunk_tokens, MIN_CHUNK_TOKENS)
        check_not_negative("chunking.overlap_tokens", self.overlap_tokens)
        if self.overlap_tokens > self.chunk_tokens // 2:
            raise ConfigError(
                f"chunking.overlap_tokens must be at most half of chunking.chunk_tokens ({self.chunk_tokens // 2}), "
                f"got {self.overlap_tokens}"
            )


@dataclass(frozen=True)
class BM25Config:
    k1: float = 1.5
    b: float = 0.75
    lowercase: bool = True
    stopwords: str | None = "en"
    stemmer: str | None = "english"

    def __post_init__(self) -> None:
        check_not_negative("bm25.k1", self.k1)
        check_between("bm25.b", self.b, 0, 1)


@dataclass(frozen=True)
class DenseIndexConfig:
    kind: DenseIndexKind = "flat"
    hnsw_m: int = 32
    hnsw_ef_construction: int = 200
    hnsw_ef_search: int = 128

    def __post_init__(self) -> None:
        check_at_least("dense_index.hnsw_m", self.hnsw_m, 2)
        check_at_least("dense_index.hnsw_ef_construction", self.hnsw_ef_construction, 1)
        check_at_least("dense_index.hnsw_ef_search", self.hnsw_ef_search, 1)


@dataclass(frozen=True)
class IngestConfig:
    extensions: tuple[str, ...] = (".pdf", ".txt", ".md", ".markdown", ".html", ".htm", ".docx", ".pptx", ".xlsx")
    max_file_mb: float = 200.0
    # OCR (ingest/ocr.py) of PDF pages without a text layer and of image files listed in extensions
    # (.png .jpg .jpeg .tif .tiff): auto = pages with (almost) no text layer, always = every page, off = none
    ocr: OcrMode = "auto"
    ocr_dpi: int = 300  # render resolution for OCR, capped at 2000 px on a page's long side
    # each file is parsed and cleaned in a worker process (ingest/isolate.py): stopped after file_timeout_s
    # (OCR included: 600 s is ~120 pages at 300 dpi on 2 cores), its address space capped at max_file_memory_mb;
    # 0 turns a limit off, both 0 load in-process
    file_timeout_s: float = 600.0
    max_file_memory_mb: int = 4096

    def __post_init__(self) -> None:
        for ext in self.extensions:
            if not ext.startswith(".") or len(ext) < 2:
                raise ConfigError(f"ingest.extensions: {ext!r} is not a file suffix like '.pdf'")
        check_positive("ingest.max_file_mb", self.max_file_mb)
        check_not_negative("ingest.file_timeout_s", self.file_timeout_s, hint=" (0: no limit)")
        check_not_negative("ingest.max_file_memory_mb", self.max_file_memory_mb, hint=" (0: no cap)")
        check_between("ingest.ocr_dpi", self.ocr_dpi, 72, 600)


@dataclass(frozen=True)
class RetrievalConfig:
    mode: RetrievalMode = "hybrid"
    fusion: FusionMethod = "rrf"
    rrf_k: int = 60
    dense_weight: float = 0.5
    depth: int = 100

    def __post_init__(self) -> None:
        check_not_negative("retrieval.rrf_k", self.rrf_k)
        check_between("retrieval.dense_weight", self.dense_weight, 0, 1)
        check_at_least("retrieval.depth", self.depth, 1)


@dataclass(frozen=True)
class RerankConfig:
    """``model``: a CrossEncoder id or path; ``"default"`` is the reranker shipped in the package; null turns it off.
    ``fusion_weight``: final score = (1 - w) * minmax(reranker) + w * minmax(first-stage score) per query;
    null takes it from the index's label-free calibration for this model (``rag reranker calibrate``), else
    from ``reranker.json`` beside the model (0 when absent). ``with_title``: the reranker reads each passage
    after its document title (+0.017 nDCG@10 on SciFact; off by default: the model was trained without titles).
    ``backend``: a name in :data:`rag.rerank.RERANKERS` (``cross_encoder`` or one registered with
    :func:`rag.rerank.register_reranker`)."""

    backend: str = "cross_encoder"
    model: str | None = "default"
    depth: int = 30
    batch_size: int = 32
    max_length: int = 256
    fusion_weight: float | None = None
    with_title: bool = False

    def __post_init__(self) -> None:
        for name in ("depth", "batch_size", "max_length"):
            check_at_least(f"rerank.{name}", getattr(self, name), 1)
        check_between("rerank.fusion_weight", self.fusion_weight, 0, 1)


@dataclass(frozen=True)
class PromptConfig:
    """``neutralize_instructions``: replace sentences in passages that address the assistant with an
    override ("ignore all previous instructions ...") before they reach the LLM."""

    ordering: Ordering = "lost_in_the_middle"
    top_k: int = 6
    max_context_tokens: int = 2048
    answer_tokens: int = 384
    neutralize_instructions: bool = True

    def __post_init__(self) -> None:
        for name in ("top_k", "max_context_tokens", "answer_tokens"):
            check_at_least(f"prompt.{name}", getattr(self, name), 1)


@dataclass(frozen=True)
class AnswerConfig:
    """How ``rag ask`` answers (:mod:`rag.evidence`, :mod:`rag.answering`).

    ``context``: ``sentences`` gives the LLM the ``max_sentences`` sentences of the top ``candidates``
    passages that best match the question (at most ``max_context_tokens``), grouped by passage;
    ``max_encode``: sentences embedded per question (those sharing most of its rare terms); ``passages``
    gives it whole passages (``prompt.top_k`` of them, ``prompt.max_context_tokens``).
    ``gate``: decide from evidence whether to answer. Before the LLM, a question is declined when its best
    sentence scores below ``min_score``, when the selected sentences use less than ``min_coverage`` of its
    (IDF-weighted) terms, or when a question term they never use has an idf above ``max_missing_idf`` nats
    (the question names something rare that no excerpt mentions). After it, an answer is withdrawn when more
    than ``max_unsupported`` of the terms it adds to the question appear in no excerpt.
    ``answer_tokens``: the longest answer in sentence mode (``prompt.answer_tokens`` applies to passage
    mode). ``cite_missing``: an answer sentence without a citation is given the excerpt holding most of its
    key terms (marked as added)."""

    context: AnswerContext = "sentences"
    candidates: int = 6
    max_sentences: int = 6
    max_context_tokens: int = 300
    lexical_weight: float = 0.3
    max_encode: int = 24
    gate: bool = True
    min_score: float = 0.6
    min_coverage: float = 0.45
    max_missing_idf: float = 6.16
    max_unsupported: float = 0.7
    cite_missing: bool = True
    max_question_tokens: int = 256
    answer_tokens: int = 160

    def __post_init__(self) -> None:
        for name in (
            "candidates",
            "max_sentences",
            "max_context_tokens",
            "max_question_tokens",
            "answer_tokens",
            "max_encode",
        ):
            check_at_least(f"answer.{name}", getattr(self, name), 1)
        for name in ("min_coverage", "max_unsupported"):
            check_between(f"answer.{name}", getattr(self, name), 0, 1)
        for name in ("max_missing_idf", "lexical_weight"):
            check_not_negative(f"answer.{name}", getattr(self, name))


@dataclass(frozen=True)
class LLMConfig:
    """``backend``: a name in :data:`rag.llm.LLM_BACKENDS` (``llama_cpp``, ``openai`` or one registered with
    :func:`rag.llm.register_llm_backend`). ``model_path`` null means the embedded Qwen2.5-Coder-1.5B-Instruct
    GGUF assembled from PyPI parts."""

    backend: str = "llama_cpp"
    model_path: str | None = None
    n_ctx: int = 4096
    n_threads: int | None = None
    base_url: str | None = None
    model: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    timeout_s: float = 120.0
    max_retries: int = 3
    temperature: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        check_at_least("llm.n_ctx", self.n_ctx, 1)
        check_at_least("llm.n_threads", self.n_threads, 1)
        check_positive("llm.timeout_s", self.timeout_s)
        for name in ("max_retries", "temperature"):
            check_not_negative(f"llm.{name}", getattr(self, name))


@dataclass(frozen=True)
class FollowupConfig:
    """Conversation memory (``rag chat``, ``rag serve``; :mod:`rag.followup`). With history, a question that
    looks like a follow-up (a pronoun, an opening "and ...", no topic words) is rewritten by the LLM into a
    standalone search query when ``rewrite`` is on (at most ``rewrite_tokens``); the answer prompt gets the
    original question after the last ``history_turns`` turns, at most ``history_tokens`` LLM tokens of them."""

    rewrite: bool = True
    history_turns: int = 3
    history_tokens: int = 200
    rewrite_tokens: int = 48

    def __post_init__(self) -> None:
        for name in ("history_turns", "history_tokens"):
            check_not_negative(f"followup.{name}", getattr(self, name))
        check_at_least("followup.rewrite_tokens", self.rewrite_tokens, 1)


@dataclass(frozen=True)
class ServeConfig:
    """``rag serve`` (:mod:`rag.serve`). One answer is generated at a time; ``max_queue`` more may wait (a
    full queue answers 429); ``request_timeout_s`` bounds waiting plus answering; ``api_key_env`` names the
    environment variable holding the bearer token (null: no auth); ``cors_origins`` empty: CORS off;
    ``reports_dir``: where the page looks for ``*/report.html`` of ``rag eval`` runs."""

    host: str = "127.0.0.1"
    port: int = 8000
    api_key_env: str | None = None
    model_name: str = "ragtrail"
    max_queue: int = 4
    request_timeout_s: float = 120.0
    max_body_bytes: int = 1_000_000
    max_search_k: int = 100
    search_workers: int = 2
    cors_origins: tuple[str, ...] = ()
    reports_dir: str = "runs"

    def __post_init__(self) -> None:
        check_between("serve.port", self.port, 0, 65535)
        for name in ("max_body_bytes", "max_search_k", "search_workers"):
            check_at_least(f"serve.{name}", getattr(self, name), 1)
        check_not_negative("serve.max_queue", self.max_queue)
        check_positive("serve.request_timeout_s", self.request_timeout_s)


@dataclass(frozen=True)
class PipelineConfig:
    """``store``: the index store queries search, a name in :data:`rag.store.STORES` (``plain``: the plain-file
    index ``rag ingest`` writes at ``index_dir``; another store registers its own name)."""

    index_dir: str = DEFAULT_INDEX_DIR
    store: str = "plain"
    embedding: EmbeddingConfig = field(default_factory=EmbeddingConfig)
    chunking: ChunkingConfig = field(default_factory=ChunkingConfig)
    bm25: BM25Config = field(default_factory=BM25Config)
    dense_index: DenseIndexConfig = field(default_factory=DenseIndexConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)
    rerank: RerankConfig = field(default_factory=RerankConfig)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    answer: AnswerConfig = field(default_factory=AnswerConfig)
    llm: LLMConfig = field(default_factory=LLMConfig)
    followup: FollowupConfig = field(default_factory=FollowupConfig)
    serve: ServeConfig = field(default_factory=ServeConfig)

    def __post_init__(self) -> None:
        if not self.index_dir.strip():
            raise ConfigError("index_dir must not be empty")
        for key, tokens in (
            ("prompt.answer_tokens", self.prompt.answer_tokens),
            ("answer.answer_tokens", self.answer.answer_tokens),
        ):
            if tokens >= self.llm.n_ctx:
                raise ConfigError(
                    f"{key} ({tokens}) must be below llm.n_ctx ({self.llm.n_ctx}): "
                    "the answer has to fit the LLM's context window"
                )

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PipelineConfig:
        return from_dict(cls, data)

    def replace(self, **changes: Any) -> PipelineConfig:
        return dataclasses.replace(self, **changes)


T = TypeVar("T")


def to_dict(obj: Any) -> dict[str, Any]:
    """Plain dict of a config dataclass (tuples become lists so the result is YAML/JSON friendly)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            out[f.name] = to_dict(value)
        elif isinstance(value, tuple):
            out[f.name] = list(value)
        else:
            out[f.name] = value
    return out


def from_dict(cls: type[T], data: dict[str, Any] | None, *, where: str = "") -> T:
    """Build a config dataclass from a dict, checking keys, types and ``Literal`` choices."""
    if data is None:
        return cls()
    if not isinstance(data, dict):
        raise ConfigError(f"{where or cls.__name__}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"{where or cls.__name__}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(names))}"
        )
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value, f"{where}.{name}" if where else name)
    return cls(**kwargs)


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where=where)  # type: ignore[arg-type]
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{where}: invalid value {value!r}")
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(repr, choices))}")
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item_type, *_rest) = get_args(tp)
        return tuple(_coerce(item_type, v, where) for v in value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def load_config(path: str | Path | None = None, *, overrides: dict[str, Any] | None = None) -> PipelineConfig:
    """Load a YAML config (``None`` gives the defaults), then apply nested ``overrides``."""
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        try:
            with p.open(encoding="utf-8") as fh:
                loaded = yaml.safe_load(fh)
        except FileNotFoundError as e:
            raise ConfigError(f"{p}: config file not found") from e
        except yaml.YAMLError as e:
            raise ConfigError(f"{p}: invalid YAML: {e}") from e
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{p}: the top level must be a mapping")
        data = loaded or {}
    if overrides:
        data = _deep_merge(data, overrides)
    try:
        return PipelineConfig.from_dict(data)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}" if path else str(e)) from e


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out
