"""Cross-encoder reranking of fused candidates.

:func:`load_reranker` turns ``RerankConfig`` into a reranker *and* a :class:`RerankStatus`: when no model
is configured (``rerank.model: null``) or the shipped default is absent, the reranker is ``None`` and the
status says why, so callers can tell the user once and record it — never a silent switch of pipeline.
A model that is configured and present but fails to load raises :class:`~rag.errors.ModelError`.
The model loads lazily on the first call; all (query, passage) pairs of a call go through
``CrossEncoder.predict`` in batches of ``batch_size``.

Rerankers come from :data:`RERANKERS`, keyed by ``rerank.backend``: ``cross_encoder`` is the one above;
another registers a factory (``(RerankConfig, index_dir) -> (reranker or None, status)``) under its own
name with :func:`register_reranker`, from its own package.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from rag.blend import blend
from rag.calibration_file import read_calibration
from rag.config import RerankConfig
from rag.errors import ConfigError, ModelError
from rag.fusion import sort_scored
from rag.models import resolve_reranker_model
from rag.types import Chunk, Hit

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder


@runtime_checkable
class Reranker(Protocol):
    name: str

    def rerank(self, query: str, hits: Sequence[Hit], *, top_k: int) -> list[Hit]: ...

    def rerank_many(self, queries: Sequence[str], hits: Sequence[Sequence[Hit]], *, top_k: int) -> list[list[Hit]]: ...


@dataclass(frozen=True)
class RerankStatus:
    """Whether reranking runs, with which model, and if not, why."""

    enabled: bool
    model: str | None = None
    path: str | None = None
    reason: str | None = None
    fusion_weight: float | None = None
    weight_source: str | None = None

    @property
    def notice(self) -> str | None:
        return None if self.enabled else f"reranking is off: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "model": self.model,
            "path": self.path,
            "reason": self.reason,
            "fusion_weight": self.fusion_weight,
            "weight_source": self.weight_source,
        }


def apply_scores(
    hits: Sequence[Hit],
    scores: Sequence[float] | np.ndarray,
    *,
    top_k: int,
    stage: str = "rerank",
    raw: Sequence[float] | np.ndarray | None = None,
) -> list[Hit]:
    """Re-sort ``hits`` by ``scores`` (ties by chunk id), keep ``top_k``, record the stage score and rank
    (and the model's raw score as ``<stage>_raw`` when it differs from the ranking score)."""
    if len(hits) != len(scores) or (raw is not None and len(raw) != len(hits)):
        raise ValueError(f"{len(hits)} hits but {len(scores)} scores")
    by_id = {h.chunk.id: h for h in hits}
    raw_by_id = {h.chunk.id: float(r) for h, r in zip(hits, raw, strict=True)} if raw is not None else {}
    ranked = sort_scored([(h.chunk.id, float(s)) for h, s in zip(hits, scores, strict=True)])[: max(top_k, 0)]
    out = []
    for r, (cid, s) in enumerate(ranked, start=1):
        extra = {f"{stage}_raw": raw_by_id[cid]} if cid in raw_by_id else {}
        scores_ = {**by_id[cid].scores, stage: s, **extra}
        out.append(Hit(chunk=by_id[cid].chunk, score=s, rank=r, scores=scores_, ranks={**by_id[cid].ranks, stage: r}))
    return out


def passage_text(chunk: Chunk, *, with_title: bool = True) -> str:
    """What the cross-encoder reads for ``chunk``: its text, after its document title when the text does not
    already start with it (a later chunk of a paper no longer names its subject; the title does)."""
    title = (chunk.title or "").strip()
    if not with_title or not title or chunk.text.lstrip().startswith(title):
        return chunk.text
    return f"{title}. {chunk.text}"


def _as_relevance(raw: Any) -> np.ndarray:
    scores = np.asarray(raw, dtype=np.float64)
    if scores.ndim == 2 and scores.shape[1] == 1:
        return scores[:, 0]
    if scores.ndim == 2 and scores.shape[1] == 2:
        return scores[:, 1] - scores[:, 0]
    if scores.ndim != 1:
        raise ModelError(f"the cross-encoder returned scores of shape {scores.shape}; expected one score per pair")
    return scores


class CrossEncoderReranker:
    """sentence-transformers ``CrossEncoder`` by id or path; ``model`` may also be a loaded CrossEncoder."""

    name = "cross-encoder"

    def __init__(
        self,
        model: str | CrossEncoder,
        *,
        batch_size: int = 32,
        max_length: int = 256,
        device: str = "cpu",
        fusion_weight: float = 0.0,
        with_title: bool = False,
    ) -> None:
        self.fusion_weight = fusion_weight  # in [0, 1]: RerankConfig, reranker.json and the calibration check it
        self.with_title = with_title
        self.batch_size = batch_size
        self.max_length = max_length
        self.device = device
        self._model: CrossEncoder | None = None if isinstance(model, str) else model
        self.model_name = model if isinstance(model, str) else str(getattr(model, "model_card_data", "") or "in-memory")

    @property
    def model(self) -> CrossEncoder:
        if self._model is None:
            from sentence_transformers import CrossEncoder  # heavy (torch): loads on first use

            try:
                self._model = CrossEncoder(self.model_name, max_length=self.max_length, device=self.device)
            except Exception as e:
                raise ModelError(
                    f"reranker model {self.model_name!r} could not be loaded: {e}; "
                    "set rerank.model to a CrossEncoder path or null to turn reranking off"
                ) from e
        return self._model

    def load(self) -> None:
        _ = self.model

    def score(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        if not pairs:
            return np.zeros(0)
        raw = self.model.predict(
            [(q, d) for q, d in pairs], batch_size=self.batch_size, show_progress_bar=False, convert_to_numpy=True
        )
        return _as_relevance(raw)

    def rerank(self, query: str, hits: Sequence[Hit], *, top_k: int) -> list[Hit]:
        return self.rerank_many([query], [hits], top_k=top_k)[0]

    def rerank_many(self, queries: Sequence[str], hits: Sequence[Sequence[Hit]], *, top_k: int) -> list[list[Hit]]:
        """Score every (query, candidate) pair of all queries in one batched pass."""
        if len(queries) != len(hits):
            raise ValueError(f"{len(queries)} queries but {len(hits)} candidate lists")
        pairs = [
            (q, passage_text(h.chunk, with_title=self.with_title))
            for q, hs in zip(queries, hits, strict=True)
            for h in hs
        ]
        scores = self.score(pairs)
        out: list[list[Hit]] = []
        start = 0
        for hs in hits:
            raw = scores[start : start + len(hs)]
            if self.fusion_weight > 0.0:
                mixed = blend(raw, [h.score for h in hs], self.fusion_weight)
                out.append(apply_scores(hs, mixed, top_k=top_k, raw=raw))
            else:
                out.append(apply_scores(hs, raw, top_k=top_k))
            start += len(hs)
        return out


RerankerFactory = Callable[[RerankConfig, Path | None], tuple[Reranker | None, RerankStatus]]


def load_reranker(config: RerankConfig, *, index_dir: str | Path | None = None) -> tuple[Reranker | None, RerankStatus]:
    """The reranker ``rerank.backend`` names and its status; ``(None, status with the reason)`` when reranking
    is off (``rerank.model: null`` turns off every backend)."""
    if config.model is None:
        return None, RerankStatus(enabled=False, reason="rerank.model is null in the configuration")
    factory = RERANKERS.get(config.backend)
    if factory is None:
        raise ConfigError(
            f"rerank.backend: {config.backend!r} is not a registered reranker; registered: "
            f"{', '.join(sorted(RERANKERS))} (a third-party reranker registers itself with "
            "rag.rerank.register_reranker)"
        )
    return factory(config, Path(index_dir) if index_dir is not None else None)


def register_reranker(name: str, factory: RerankerFactory, *, replace: bool = False) -> None:
    """Make ``factory`` the reranker ``rerank.backend: NAME`` chooses; a taken name needs ``replace=True``."""
    if not name or not isinstance(name, str):
        raise ConfigError(f"a reranker name must be a non-empty string, got {name!r}")
    if name in RERANKERS and not replace and RERANKERS[name] is not factory:
        raise ConfigError(f"reranker {name!r} is already registered; pass replace=True to replace it")
    RERANKERS[name] = factory


def load_cross_encoder(config: RerankConfig, index_dir: Path | None) -> tuple[Reranker | None, RerankStatus]:
    """The ``cross_encoder`` backend: :class:`CrossEncoderReranker` over ``rerank.model``, off (with the reason)
    when the model is absent.

    The fusion weight comes from the configuration when set, else from ``index_dir``'s label-free
    calibration for this model (:mod:`rag.calibration_file`), else from ``reranker.json`` beside the model."""
    assert config.model is not None, "load_reranker turns reranking off for rerank.model: null"
    try:
        path = resolve_reranker_model(config.model)
    except ModelError as e:
        return None, RerankStatus(enabled=False, model=config.model, reason=str(e))
    if config.fusion_weight is not None:
        weight, source = config.fusion_weight, "configuration"
    elif index_dir is not None and (cal := read_calibration(index_dir, path, with_title=config.with_title)):
        weight, source = cal.fusion_weight, f"index calibration ({cal.queries} {cal.pseudo} pseudo-queries)"
        if weight >= 1.0:  # the reranker could only have lowered nDCG@10 here: do not pay for it
            reason = (
                f"the {source} found no fusion weight at which the reranker beats the first stage on this index; "
                "set rerank.fusion_weight to rerank anyway"
            )
            status = RerankStatus(
                enabled=False, model=config.model, path=path, reason=reason, fusion_weight=weight, weight_source=source
            )
            return None, status
    else:
        weight, source = _model_fusion_weight(path), "reranker.json"
    reranker = CrossEncoderReranker(
        path,
        batch_size=config.batch_size,
        max_length=config.max_length,
        fusion_weight=weight,
        with_title=config.with_title,
    )
    status = RerankStatus(enabled=True, model=config.model, path=path, fusion_weight=weight, weight_source=source)
    return reranker, status


def _model_fusion_weight(path: str) -> float:
    """``fusion_weight`` from ``reranker.json`` beside a model trained by ``rag reranker train``, else 0."""
    meta = Path(path) / "reranker.json"
    if not meta.is_file():
        return 0.0
    try:
        with meta.open(encoding="utf-8") as fh:
            weight = float(json.load(fh).get("fusion_weight", 0.0))
    except (OSError, ValueError, TypeError, AttributeError) as e:
        raise ModelError(f"{meta}: unreadable reranker metadata ({e}); fix or delete the file") from e
    if not 0.0 <= weight <= 1.0:
        raise ModelError(f"{meta}: fusion_weight must be between 0 and 1, got {weight}; fix or delete the file")
    return weight


RERANKERS: dict[str, RerankerFactory] = {"cross_encoder": load_cross_encoder}
