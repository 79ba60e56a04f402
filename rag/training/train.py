"""Fine-tune a sentence-transformers ``CrossEncoder`` as a reranker.

Recipe: every query forms a group ``[positive, n hard negatives]`` scored jointly; the loss is the
softmax cross-entropy of the positive within its group (listwise "localized contrastive estimation",
Gao et al. 2021). Linear warm-up then linear decay, AdamW, gradient clipping. The data order and the
dropout masks are fixed by the seed and the step, so a resumed run (``resume=True``) continues exactly
where a killed one stopped. A held-out split (by article/paragraph group, so no passage leaks) is
scored before and after training with nDCG@10 over ``[positive + BM25 candidates]``; the same split
tunes ``fusion_weight``, the weight of the first-stage score in the final interpolated score.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.config import check_at_least, check_between, check_not_negative, check_positive
from rag.errors import ConfigError
from rag.training.checkpoint import (
    export_fp16,
    latest_checkpoint,
    load_optimizer_state,
    read_state,
    save_checkpoint,
    torch_module,
)
from rag.training.data import TrainExample, dedup_examples, split_by_group, write_jsonl
from rag.training.heldout import (  # re-exported: benchmarks and tests import them from here
    HeldoutQuery,
    HeldoutResult,
    build_heldout,
    evaluate_heldout,
    score_pairs,
)
from rag.training.mining import PassagePool, mine_bm25_negatives, positives_by_query

__all__ = [
    "HeldoutQuery",
    "HeldoutResult",
    "TrainConfig",
    "TrainResult",
    "build_heldout",
    "evaluate_heldout",
    "load_cross_encoder",
    "prepare",
    "score_pairs",
    "train_reranker",
]

if TYPE_CHECKING:
    import torch
    from sentence_transformers import CrossEncoder

PREPARED = "prepared.json"  # the data of a run, read back by a resumed one
CHECKPOINTS = "checkpoints"


@dataclass(frozen=True)
class TrainConfig:
    base: str = "all-MiniLM-L6-v2"
    out: str = "runs/reranker"
    max_length: int = 192
    negatives: int = 3
    batch_queries: int = 4
    lr: float = 5e-5
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    epochs: float = 1.0
    max_steps: int | None = None
    stop_after: int | None = None  # end early at this step; the LR schedule still spans max_steps
    seed: int = 0
    heldout_fraction: float = 0.03
    heldout_queries: int = 60
    heldout_candidates: int = 10
    mine_depth: int = 30
    skip_top: int = 0
    skip_queries: int = 0  # start this far into the seeded data order (a second stage on queries not yet seen)
    checkpoint_every: int = 25
    threads: int = 2
    eval_batch_size: int = 32
    fusion_rrf_k: int = 60
    freeze_embeddings: bool = True
    freeze_layers: int = 0
    exclude_same_group: bool = False
    head_lr: float | None = 2e-3
    progress: bool = True

    def __post_init__(self) -> None:
        for name in (
            "max_length",
            "negatives",
            "batch_queries",
            "max_steps",
            "stop_after",
            "heldout_candidates",
            "mine_depth",
            "checkpoint_every",
            "threads",
            "eval_batch_size",
        ):
            check_at_least(f"train.{name}", getattr(self, name), 1)
        for name in ("weight_decay", "heldout_queries", "skip_top", "skip_queries", "fusion_rrf_k", "freeze_layers"):
            check_not_negative(f"train.{name}", getattr(self, name))
        for name in ("lr", "epochs"):
            check_positive(f"train.{name}", getattr(self, name))
        if self.head_lr is not None:
            check_positive("train.head_lr", self.head_lr)
        check_between("train.warmup_ratio", self.warmup_ratio, 0, 1)
        if not 0 <= self.heldout_fraction < 1:
            raise ConfigError(f"train.heldout_fraction must be at least 0 and below 1, got {self.heldout_fraction}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainResult:
    out: Path
    model_dir: Path
    steps: int
    pairs_seen: int
    seconds: float
    pairs_per_second: float
    before: HeldoutResult | None
    after: HeldoutResult
    counts: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["out"], d["model_dir"] = str(self.out), str(self.model_dir)
        return d


# ---------------------------------------------------------------- model helpers


def load_cross_encoder(base: str, *, max_length: int) -> CrossEncoder:
    """A CrossEncoder from a model path/id (the default embedding name maps to its packaged copy)."""
    from sentence_transformers import CrossEncoder

    from rag.models import resolve_embedding_model, resolve_reranker_model

    path = resolve_reranker_model(base) if base == "default" else resolve_embedding_model(base)
    return CrossEncoder(path, num_labels=1, max_length=max_length, device="cpu")


def _evaluate(ce: CrossEncoder, held: Sequence[HeldoutQuery], cfg: TrainConfig) -> HeldoutResult:
    return evaluate_heldout(ce, held, max_length=cfg.max_length, batch_size=cfg.eval_batch_size, rrf_k=cfg.fusion_rrf_k)


# ---------------------------------------------------------------- training


def _is_head(name: str) -> bool:
    return name.startswith("classifier.") or ".pooler." in name


def _no_decay(name: str) -> bool:
    return "bias" in name or "LayerNorm" in name


def _lr_at(step: int, total: int, cfg: TrainConfig) -> float:
    warm = max(1, int(total * cfg.warmup_ratio))
    if step < warm:
        return cfg.lr * (step + 1) / warm
    return cfg.lr * max(0.0, (total - step) / max(1, total - warm))


def prepare(
    examples: Sequence[TrainExample],
    cfg: TrainConfig,
    *,
    pool_passages: Sequence[str] = (),
    pool_groups: Sequence[str] = (),
) -> tuple[list[TrainExample], list[HeldoutQuery], dict[str, int]]:
    """Dedup, split by group, keep as many training queries as the step budget uses, mine negatives."""
    rows = dedup_examples(e for e in examples if e.positive)
    train, held_rows = split_by_group(rows, heldout_fraction=cfg.heldout_fraction, seed=cfg.seed)
    rng = random.Random(cfg.seed)
    rng.shuffle(train)
    budget = cfg.max_steps * cfg.batch_queries if cfg.max_steps else math.ceil(cfg.epochs * len(train))
    chosen = [train[(cfg.skip_queries + i) % len(train)] for i in range(budget)] if train else []
    texts = [*pool_passages, *(r.positive for r in rows), *(n for r in rows for n in r.negatives)]
    groups = None
    if cfg.exclude_same_group:  # never mine a "negative" from the query's own document (label-free pairs)
        groups = [
            *(pool_groups or [""] * len(pool_passages)),
            *(r.group for r in rows),
            *("" for r in rows for _ in r.negatives),
        ]
    pool = PassagePool(texts, groups)
    unique = list({(r.query, r.positive): r for r in chosen}.values())
    mined = {
        (r.query, r.positive): r
        for r in mine_bm25_negatives(
            unique,
            pool,
            n=cfg.negatives,
            depth=cfg.mine_depth,
            skip_top=cfg.skip_top,
            seed=cfg.seed,
            extra_positives=positives_by_query(rows),
        )
    }
    chosen = [mined[(r.query, r.positive)] for r in chosen]
    held = build_heldout(held_rows, pool, n=cfg.heldout_queries, candidates=cfg.heldout_candidates, seed=cfg.seed)
    counts = {
        "examples": len(rows),
        "train_available": len(train),
        "train_used": len(chosen),
        "train_skipped": cfg.skip_queries,
        "heldout_available": len(held_rows),
        "heldout_queries": len(held),
        "pool_passages": len(pool),
    }
    return chosen, held, counts


def train_reranker(
    examples: Sequence[TrainExample],
    cfg: TrainConfig,
    *,
    resume: bool = False,
    pool_passages: Sequence[str] = (),
    pool_groups: Sequence[str] = (),
    model_extra: dict[str, Any] | None = None,
) -> TrainResult:
    """Prepare data (or reload it when resuming), train, evaluate before/after, export fp16."""
    import torch  # heavy: imported only when a run starts

    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    last = latest_checkpoint(out / CHECKPOINTS) if resume else None
    if resume and (out / PREPARED).is_file():
        data = _load_prepared(out / PREPARED, cfg)
    else:
        data = _Prepared(*prepare(examples, cfg, pool_passages=pool_passages, pool_groups=pool_groups))
    torch.manual_seed(cfg.seed)  # the fresh classification head is initialised from the seed
    ce = load_cross_encoder(last.as_posix() if last else cfg.base, max_length=cfg.max_length)
    if data.before is None:
        data.before = _evaluate(ce, data.held, cfg) if data.held else None
        _save_prepared(out, cfg, data)
    model = torch_module(ce)
    _freeze(model, cfg)
    optimizer, params = _optimizer(model, cfg)
    step = 0
    if last is not None:
        load_optimizer_state(optimizer, last)
        step = int(read_state(last)["step"])
    batches = [data.chosen[i : i + cfg.batch_queries] for i in range(0, len(data.chosen), cfg.batch_queries)]
    loop = _train_loop(ce, model, optimizer, params, batches, cfg, start=step, ckpt_dir=out / CHECKPOINTS)
    after = _evaluate(ce, data.held, cfg)
    model_dir = _export(ce, out, cfg, after, model_extra)
    result = TrainResult(
        out,
        model_dir,
        loop.step,
        loop.pairs_seen,
        loop.seconds,
        loop.pairs_seen / max(loop.seconds, 1e-9),
        data.before,
        after,
        data.counts,
    )
    (out / "training_report.json").write_text(json.dumps(result.to_dict(), indent=2, sort_keys=True), encoding="utf-8")
    return result


# ---------------------------------------------------------------- the steps of a run


@dataclass
class _Prepared:
    """The training queries (with mined negatives), the held-out queries and their counts, as in
    ``prepared.json``; ``before``: the held-out scores of the starting model, once measured."""

    chosen: list[TrainExample]
    held: list[HeldoutQuery]
    counts: dict[str, int]
    before: HeldoutResult | None = None


@dataclass(frozen=True)
class _LoopResult:
    step: int  # the step reached (a resumed run counts the steps before it too)
    pairs_seen: int  # pairs trained on by this call
    seconds: float


def _load_prepared(path: Path, cfg: TrainConfig) -> _Prepared:
    """The data a killed run prepared, so a resumed one trains on exactly the same queries in the same order."""
    data = json.loads(path.read_text(encoding="utf-8"))
    chosen = [TrainExample(**{**r, "negatives": tuple(r["negatives"])}) for r in data["train"]]
    held = [HeldoutQuery(h["query"], tuple(h["candidates"]), tuple(h["relevant"])) for h in data["heldout"]]
    before = HeldoutResult(**data["before"]) if data.get("before") else None
    if cfg.max_steps:  # a resumed run may be given a smaller step budget than it was prepared for
        chosen = chosen[: cfg.max_steps * cfg.batch_queries]
    return _Prepared(chosen, held, data["counts"], before)


def _save_prepared(out: Path, cfg: TrainConfig, data: _Prepared) -> None:
    """``prepared.json`` (what :func:`_load_prepared` reads back) and a readable sample of the training rows."""
    prepared = {
        "config": cfg.to_dict(),
        "counts": data.counts,
        "before": asdict(data.before) if data.before else None,
        "train": [r.to_dict() for r in data.chosen],
        "heldout": [asdict(h) for h in data.held],
    }
    (out / PREPARED).write_text(json.dumps(prepared, ensure_ascii=False), encoding="utf-8")
    write_jsonl(data.chosen[:200], out / "train_sample.jsonl")


def _freeze(model: torch.nn.Module, cfg: TrainConfig) -> None:
    """Stop gradients where ``freeze_embeddings`` / ``freeze_layers`` say."""
    if cfg.freeze_embeddings:  # the word-embedding matrix is half the model; its dense update dominates a CPU step
        for name, p in model.named_parameters():
            if "embeddings.word_embeddings" in name:
                p.requires_grad_(False)
    if cfg.freeze_layers:  # no backward pass through the bottom layers: a cheaper step on a CPU
        frozen = ("embeddings.", *(f"encoder.layer.{i}." for i in range(cfg.freeze_layers)))
        for name, p in model.named_parameters():
            if any(f in name for f in frozen):
                p.requires_grad_(False)


def _optimizer(
    model: torch.nn.Module, cfg: TrainConfig
) -> tuple[torch.optim.Optimizer, list[tuple[str, torch.nn.Parameter]]]:
    """AdamW over the trainable parameters in four groups: encoder or head, with or without weight decay.
    The new head and the never-trained pooler learn at ``head_lr``, the encoder at ``lr`` (each group's
    ``scale`` multiplies the scheduled rate)."""
    import torch  # heavy: imported only when a run starts

    head_scale = (cfg.head_lr or cfg.lr) / cfg.lr
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [
        {
            "params": [p for n, p in params if _is_head(n) == h and _no_decay(n) == nd],
            "weight_decay": 0.0 if nd else cfg.weight_decay,
            "scale": head_scale if h else 1.0,
        }
        for h in (False, True)
        for nd in (False, True)
    ]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=cfg.lr), params


def _group_loss(
    ce: CrossEncoder, model: torch.nn.Module, batch: Sequence[TrainExample], cfg: TrainConfig
) -> tuple[torch.Tensor, int]:
    """Listwise loss of one batch: each query's ``[positive, negatives...]`` scored jointly, softmax
    cross-entropy of the positive (padding slots of a query with fewer negatives are masked out).
    Returns the loss and the number of pairs scored."""
    import torch  # heavy: imported only when a run starts

    group = 1 + cfg.negatives
    pairs: list[tuple[str, str]] = []
    mask: list[list[bool]] = []
    for r in batch:
        docs = [r.positive, *r.negatives[: cfg.negatives]]
        mask.append([True] * len(docs) + [False] * (group - len(docs)))
        docs += [r.positive] * (group - len(docs))
        pairs.extend((r.query, d) for d in docs)
    enc = ce.tokenizer(
        [q for q, _ in pairs],
        [p for _, p in pairs],
        truncation="only_second",
        max_length=cfg.max_length,
        padding=True,
        return_tensors="pt",
    )
    logits = model(**enc).logits.float().view(len(batch), group)
    logits = logits.masked_fill(~torch.tensor(mask), -1e4)
    loss = torch.nn.functional.cross_entropy(logits, torch.zeros(len(batch), dtype=torch.long))
    return loss, len(pairs)


def _train_loop(
    ce: CrossEncoder,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    params: Sequence[tuple[str, torch.nn.Parameter]],
    batches: Sequence[Sequence[TrainExample]],
    cfg: TrainConfig,
    *,
    start: int,
    ckpt_dir: Path,
) -> _LoopResult:
    """Steps ``start`` to ``stop_after`` (or the end): scheduled LR, clipped gradients, a checkpoint every
    ``checkpoint_every`` steps and at the last. Dropout is seeded per step, so a resumed run matches."""
    import torch  # heavy: imported only when a run starts
    from tqdm.auto import tqdm

    total = len(batches)
    end = min(total, cfg.stop_after or total)
    step, pairs_seen, losses = start, 0, []
    model.train()
    t0 = time.perf_counter()
    bar = tqdm(total=total, initial=step, desc="train reranker", disable=not cfg.progress, unit="step")
    while step < end:
        torch.manual_seed(cfg.seed * 1_000_003 + step)
        loss, n_pairs = _group_loss(ce, model, batches[step], cfg)
        for g in optimizer.param_groups:
            g["lr"] = _lr_at(step, total, cfg) * g["scale"]
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for _, p in params], 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        pairs_seen += n_pairs
        losses.append(float(loss.detach()))
        bar.update(1)
        bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}", pairs_s=f"{pairs_seen / (time.perf_counter() - t0):.2f}")
        if step % cfg.checkpoint_every == 0 or step == end:
            state = {"step": step, "total": total, "loss": float(np.mean(losses[-20:])), "config": cfg.to_dict()}
            save_checkpoint(ce, optimizer, ckpt_dir, state)
    bar.close()
    return _LoopResult(step, pairs_seen, time.perf_counter() - t0)


def _export(
    ce: CrossEncoder, out: Path, cfg: TrainConfig, after: HeldoutResult, model_extra: dict[str, Any] | None
) -> Path:
    """The fp16 model in ``out/model`` with ``reranker.json``: the tuned fusion weight and how to score."""
    extra = {
        "fusion_weight": after.fusion_weight,
        "fusion_normalization": "minmax per query",
        "max_length": cfg.max_length,
        "score": "raw logit",
        **(model_extra or {}),
    }
    return export_fp16(ce, out / "model", extra=extra)
