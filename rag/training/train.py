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
    blend,
    build_heldout,
    evaluate_heldout,
    minmax,
    score_pairs,
)
from rag.training.mining import PassagePool, mine_bm25_negatives, positives_by_query

__all__ = [
    "HeldoutQuery",
    "HeldoutResult",
    "TrainConfig",
    "TrainResult",
    "blend",
    "build_heldout",
    "evaluate_heldout",
    "load_cross_encoder",
    "minmax",
    "prepare",
    "score_pairs",
    "train_reranker",
]

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder


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
    return evaluate_heldout(
        ce, held, max_length=cfg.max_length, batch_size=cfg.eval_batch_size, rrf_k=cfg.fusion_rrf_k
    )


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
    import torch
    from tqdm.auto import tqdm

    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    ckpt_dir = out / "checkpoints"
    out.mkdir(parents=True, exist_ok=True)
    prepared = out / "prepared.json"
    last = latest_checkpoint(ckpt_dir) if resume else None
    if resume and prepared.is_file():
        data = json.loads(prepared.read_text(encoding="utf-8"))
        chosen = [TrainExample(**{**r, "negatives": tuple(r["negatives"])}) for r in data["train"]]
        held = [HeldoutQuery(h["query"], tuple(h["candidates"]), tuple(h["relevant"])) for h in data["heldout"]]
        counts, before = data["counts"], (HeldoutResult(**data["before"]) if data.get("before") else None)
        if cfg.max_steps:  # a resumed run may be given a smaller step budget than it was prepared for
            chosen = chosen[: cfg.max_steps * cfg.batch_queries]
    else:
        chosen, held, counts = prepare(examples, cfg, pool_passages=pool_passages, pool_groups=pool_groups)
        before = None
    torch.manual_seed(cfg.seed)  # the fresh classification head is initialised from the seed
    ce = load_cross_encoder(last.as_posix() if last else cfg.base, max_length=cfg.max_length)
    head_scale = (cfg.head_lr or cfg.lr) / cfg.lr
    if before is None:
        before = _evaluate(ce, held, cfg) if held else None
        prepared.write_text(
            json.dumps(
                {
                    "config": cfg.to_dict(),
                    "counts": counts,
                    "before": asdict(before) if before else None,
                    "train": [r.to_dict() for r in chosen],
                    "heldout": [asdict(h) for h in held],
                },
                ensure_ascii=False,
            ),
            encoding="utf-8",
        )
        write_jsonl(chosen[:200], out / "train_sample.jsonl")
    batches = [chosen[i : i + cfg.batch_queries] for i in range(0, len(chosen), cfg.batch_queries)]
    total = len(batches)
    model = torch_module(ce)
    if cfg.freeze_embeddings:  # the word-embedding matrix is half the model; its dense update dominates a CPU step
        for name, p in model.named_parameters():
            if "embeddings.word_embeddings" in name:
                p.requires_grad_(False)
    if cfg.freeze_layers:  # no backward pass through the bottom layers: a cheaper step on a CPU
        frozen = ("embeddings.", *(f"encoder.layer.{i}." for i in range(cfg.freeze_layers)))
        for name, p in model.named_parameters():
            if any(f in name for f in frozen):
                p.requires_grad_(False)
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    # the new head and the never-trained pooler learn at head_lr, the encoder at lr
    groups = [
        {
            "params": [p for n, p in params if _is_head(n) == h and _no_decay(n) == nd],
            "weight_decay": 0.0 if nd else cfg.weight_decay,
            "scale": head_scale if h else 1.0,
        }
        for h in (False, True)
        for nd in (False, True)
    ]
    opt = torch.optim.AdamW([g for g in groups if g["params"]], lr=cfg.lr)
    step = 0
    if last is not None:
        load_optimizer_state(opt, last)
        step = int(read_state(last)["step"])
    model.train()
    t0, pairs_seen, losses = time.perf_counter(), 0, []
    bar = tqdm(total=total, initial=step, desc="train reranker", disable=not cfg.progress, unit="step")
    end = min(total, cfg.stop_after or total)
    while step < end:
        batch = batches[step]
        torch.manual_seed(cfg.seed * 1_000_003 + step)
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
        for g in opt.param_groups:
            g["lr"] = _lr_at(step, total, cfg) * g["scale"]
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for _, p in params], 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        pairs_seen += len(pairs)
        losses.append(float(loss.detach()))
        bar.update(1)
        bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}", pairs_s=f"{pairs_seen / (time.perf_counter() - t0):.2f}")
        if step % cfg.checkpoint_every == 0 or step == end:
            save_checkpoint(
                ce,
                opt,
                ckpt_dir,
                {"step": step, "total": total, "loss": float(np.mean(losses[-20:])), "config": cfg.to_dict()},
            )
    bar.close()
    seconds = time.perf_counter() - t0
    after = _evaluate(ce, held, cfg)
    extra = {
        "fusion_weight": after.fusion_weight,
        "fusion_normalization": "minmax per query",
        "max_length": cfg.max_length,
        "score": "raw logit",
        **(model_extra or {}),
    }
    model_dir = export_fp16(ce, out / "model", extra=extra)
    result = TrainResult(
        out, model_dir, step, pairs_seen, seconds, pairs_seen / max(seconds, 1e-9), before, after, counts
    )
    (out / "training_report.json").write_text(json.dumps(result.to_dict(), indent=2, sort_keys=True), encoding="utf-8")
    return result
