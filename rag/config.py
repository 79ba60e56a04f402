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
LLMBackend = Literal["llama_cpp", "openai"]
AnswerContext = Literal["sentences", "passages"]
OcrMode = Literal["auto", "off", "always"]


@dataclass(frozen=True)
class EmbeddingConfig:
    """``model``: a sentence-transformers id or local path; the default name maps to the packaged copy."""

    model: str = DEFAULT_EMBEDDING_MODEL
    batch_size: int = 64
    device: str = "cpu"
    max_seq_length: int | None = None


@dataclass(frozen=True)
class ChunkingConfig:
    """Chunk sizes are counted in tokens of the embedding model's tokenizer."""

    chunk_tokens: int = 256
    overlap_tokens: int = 32
    split_markdown_headings: bool = True


@dataclass(frozen=True)
class BM25Config:
    k1: float = 1.5
    b: float = 0.75
    lowercase: bool = True
    stopwords: str | None = "en"
    stemmer: str | None = "english"


@dataclass(frozen=True)
class DenseIndexConfig:
    kind: DenseIndexKind = "flat"
    hnsw_m: int = 32
    hnsw_ef_construction: int = 200
    hnsw_ef_search: int = 128


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
        if self.file_timeout_s < 0:
            raise ConfigError(f"ingest.file_timeout_s must not be negative (0: no limit), got {self.file_timeout_s}")
        if self.max_file_memory_mb < 0:
            raise ConfigError(
                f"ingest.max_file_memory_mb must not be negative (0: no cap), got {self.max_file_memory_mb}"
            )
        if not 72 <= self.ocr_dpi <= 600:
            raise ConfigError(f"ingest.ocr_dpi must be between 72 and 600, got {self.ocr_dpi}")


@dataclass(frozen=True)
class RetrievalConfig:
    mode: RetrievalMode = "hybrid"
    fusion: FusionMethod = "rrf"
    rrf_k: int = 60
    dense_weight: float = 0.5
    depth: int = 100


@dataclass(frozen=True)
class RerankConfig:
    """``model``: a CrossEncoder id or path; ``"default"`` is the reranker shipped in the package; null turns it off.
    ``fusion_weight``: final score = (1 - w) * minmax(reranker) + w * minmax(first-stage score) per query;
    null takes it from the index's label-free calibration for this model (``rag reranker calibrate``), else
    from ``reranker.json`` beside the model (0 when absent). ``with_title``: the reranker reads each passage
    after its document title (+0.017 nDCG@10 on SciFact; off by default: the model was trained without titles)."""

    model: str | None = "default"
    depth: int = 30
    batch_size: int = 32
    max_length: int = 256
    fusion_weight: float | None = None
    with_title: bool = False


@dataclass(frozen=True)
class PromptConfig:
    """``neutralize_instructions``: replace sentences in passages that address the assistant with an
    override ("ignore all previous instructions ...") before they reach the LLM."""

    ordering: Ordering = "lost_in_the_middle"
    top_k: int = 6
    max_context_tokens: int = 2048
    answer_tokens: int = 384
    neutralize_instructions: bool = True


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
            if getattr(self, name) < 1:
                raise ConfigError(f"answer.{name} must be at least 1, got {getattr(self, name)}")
        for name in ("min_coverage", "max_unsupported"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"answer.{name} must be between 0 and 1, got {getattr(self, name)}")
        if self.max_missing_idf < 0:
            raise ConfigError(f"answer.max_missing_idf must not be negative, got {self.max_missing_idf}")
        if self.lexical_weight < 0:
            raise ConfigError(f"answer.lexical_weight must not be negative, got {self.lexical_weight}")


@dataclass(frozen=True)
class LLMConfig:
    """``model_path`` null means the embedded Qwen2.5-Coder-1.5B-Instruct GGUF assembled from PyPI parts."""

    backend: LLMBackend = "llama_cpp"
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
            if getattr(self, name) < 0:
                raise ConfigError(f"followup.{name} must not be negative, got {getattr(self, name)}")
        if self.rewrite_tokens < 1:
            raise ConfigError(f"followup.rewrite_tokens must be at least 1, got {self.rewrite_tokens}")


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
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"serve.port must be between 0 and 65535, got {self.port}")
        for name in ("max_body_bytes", "max_search_k", "search_workers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"serve.{name} must be at least 1, got {getattr(self, name)}")
        if self.max_queue < 0:
            raise ConfigError(f"serve.max_queue must not be negative, got {self.max_queue}")
        if self.request_timeout_s <= 0:
            raise ConfigError(f"serve.request_timeout_s must be positive, got {self.request_timeout_s}")


@dataclass(frozen=True)
class PipelineConfig:
    index_dir: str = DEFAULT_INDEX_DIR
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
