"""``rag reranker train``: fine-tune a cross-encoder reranker (thin wrapper over :mod:`rag.training`).

Examples::

    rag reranker train --recipe configs/reranker_train.yaml            # the shipped default's recipe
    rag reranker train --data ../shared/data/beir/myset --out runs/rr  # BEIR qrels (train split)
    rag reranker train --from-index .ragtrail --base default --max-steps 200   # adapt without labels
    rag reranker calibrate --index .ragtrail --style claim   # how far to trust the reranker on this corpus
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from rag.commands.common import add_common_options, progress_enabled


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("reranker", help="train and install cross-encoder rerankers")
    sub = parser.add_subparsers(dest="reranker_command", metavar="ACTION", required=True)
    train = sub.add_parser(
        "train",
        help="fine-tune a CrossEncoder on labelled pairs and/or pairs mined from an index",
        description="Fine-tune a sentence-transformers CrossEncoder (default start: the packaged all-MiniLM-L6-v2) "
        "with a listwise loss over BM25 hard negatives; reports held-out nDCG@10 before/after; resumable.",
    )
    train.add_argument("--recipe", metavar="FILE", help="YAML recipe (see configs/reranker_train.yaml)")
    train.add_argument(
        "--data",
        metavar="PATH",
        action="append",
        help="JSONL (query, positive[, negatives]), BEIR folder (qrels/train.tsv) or shared train/ folder; repeatable",
    )
    train.add_argument(
        "--from-index", metavar="DIR", help="mine label-free pairs (title/heading and sentence → passage) from an index"
    )
    train.add_argument("--index-pairs", type=int, metavar="N", help="at most N pairs from the index")
    train.add_argument(
        "--llm-queries",
        type=int,
        metavar="N",
        help="also ask the local LLM for one query on each of N sampled chunks (~7 s each here; cached in "
        "OUT/llm-queries.jsonl, so a rerun resumes)",
    )
    train.add_argument(
        "--llm-query-style",
        choices=("question", "claim"),
        help="what the LLM writes: a search question (default) or a claim the chunk supports (SciFact-like corpora)",
    )
    train.add_argument(
        "--allow-research-only",
        action="store_true",
        default=None,
        help="include research-only data (WikiQA); never for a model you ship",
    )
    train.add_argument(
        "--base",
        metavar="MODEL",
        help="starting model: path, id, 'all-MiniLM-L6-v2' or 'default' (the shipped reranker)",
    )
    train.add_argument("--out", metavar="DIR", help="run folder: prepared data, checkpoints, report, model/")
    train.add_argument("--epochs", type=float, metavar="N")
    train.add_argument("--max-steps", type=int, metavar="N", help="optimizer steps (overrides --epochs)")
    train.add_argument(
        "--stop-after", type=int, metavar="N", help="end at step N (the LR schedule still spans --max-steps)"
    )
    train.add_argument(
        "--skip-queries",
        type=int,
        metavar="N",
        help="start N queries into the seeded data order (continue a model on queries it has not seen)",
    )
    train.add_argument("--batch-queries", type=int, metavar="N", help="queries per step (each with its negatives)")
    train.add_argument("--negatives", type=int, metavar="N", help="BM25 hard negatives per query")
    train.add_argument("--max-length", type=int, metavar="N", help="tokens per (query, passage) pair")
    train.add_argument("--lr", type=float, metavar="X")
    train.add_argument("--seed", type=int, metavar="S")
    train.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
    train.add_argument(
        "--install", action="store_true", help="copy the trained model to rag/resources/reranker/ (the default)"
    )
    train.add_argument("--json", action="store_true", help="print the training report as JSON")
    train.set_defaults(func=run_train)

    cal = sub.add_parser(
        "calibrate",
        help="choose the reranker's fusion weight for an index, without labels",
        description="Write pseudo-queries for sampled chunks of the index (the local LLM, or a sentence cut out "
        "of the chunk), score the first stage and the reranker on them (each query's own document is the relevant "
        "one) and store the fusion weight with the best nDCG@10 beside the index; rag ask/search/eval use it "
        "while rerank.fusion_weight is null in the configuration.",
    )
    add_common_options(cal)
    cal.add_argument("--queries", type=int, default=100, metavar="N", help="pseudo-queries (default: 100)")
    cal.add_argument(
        "--pseudo",
        choices=("llm", "sentence"),
        default="llm",
        help="llm: written by the configured LLM (~10 s each locally, cached); sentence: cut from the chunk (fast)",
    )
    cal.add_argument(
        "--style",
        choices=("question", "claim"),
        default="question",
        help="what the LLM writes: the kind of query your users type (default: question)",
    )
    cal.add_argument("--seed", type=int, default=0, metavar="S", help="chunk sample (default: 0)")
    cal.add_argument("--dry-run", action="store_true", help="print the result without storing it")
    cal.add_argument("--json", action="store_true", help="print the calibration as JSON")
    cal.set_defaults(func=run_calibrate)


def run_train(args: argparse.Namespace) -> int:
    from rag.models import packaged_reranker_path
    from rag.training.sources import collect, describe, load_recipe
    from rag.training.train import train_reranker

    recipe = load_recipe(
        args.recipe,
        data=tuple(args.data) if args.data else None,
        from_index=args.from_index,
        index_pairs=args.index_pairs,
        llm_queries=args.llm_queries,
        llm_query_style=args.llm_query_style,
        allow_research_only=args.allow_research_only,
        base=args.base,
        out=args.out,
        epochs=args.epochs,
        max_steps=args.max_steps,
        stop_after=args.stop_after,
        skip_queries=args.skip_queries,
        batch_queries=args.batch_queries,
        negatives=args.negatives,
        max_length=args.max_length,
        lr=args.lr,
        seed=args.seed,
        progress=progress_enabled() and not args.json,
    )
    collected = collect(recipe)
    if not args.json:
        print("training data:", file=sys.stderr)
        print("\n".join(describe(collected.report)), file=sys.stderr)
    result = train_reranker(
        collected.examples,
        recipe.train,
        resume=args.resume,
        pool_passages=collected.pool_passages,
        pool_groups=collected.pool_groups,
        model_extra={"base": recipe.train.base, "data": list(recipe.data), "from_index": recipe.from_index},
    )
    if args.install:
        target = packaged_reranker_path()
        card = target / "MODEL_CARD.md"
        keep = card.read_text(encoding="utf-8") if card.is_file() else None
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(result.model_dir, target)
        if keep is not None:
            card.write_text(keep, encoding="utf-8")
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, sort_keys=True))
        return 0
    b, a = result.before, result.after
    print(
        f"trained {result.steps} steps, {result.pairs_seen} pairs in {result.seconds:.0f} s "
        f"({result.pairs_per_second:.2f} pairs/s)"
    )
    if b is not None:
        print(
            f"held-out nDCG@10 ({a.queries} queries): first stage {a.ndcg_first_stage:.4f} | "
            f"reranker before {b.ndcg_reranker:.4f} -> after {a.ndcg_reranker:.4f} | "
            f"blend (fusion_weight {a.fusion_weight}) {a.ndcg_blend:.4f}"
        )
    print(f"model: {result.model_dir}" + (f" (installed to {packaged_reranker_path()})" if args.install else ""))
    return 0


def run_calibrate(args: argparse.Namespace) -> int:
    from rag.calibration import calibrate, llm_pseudo_queries, sentence_queries
    from rag.calibration_file import calibration_path, write_calibration
    from rag.config import load_config
    from rag.errors import ConfigError
    from rag.pipeline import Pipeline
    from rag.rerank import load_reranker

    if args.queries < 1:
        raise ConfigError(f"--queries must be at least 1, got {args.queries}")
    config = load_config(args.config)
    index_dir = Path(args.index or config.index_dir)
    reranker, status = load_reranker(config.rerank)  # not the index's current calibration: it is what we redo
    if reranker is None:  # before any pseudo-query is written (the LLM takes ~10 s per query)
        raise ConfigError(f"nothing to calibrate: {status.notice}")
    pipeline = Pipeline.from_config(config, index_dir=index_dir, reranker=reranker)
    show = progress_enabled() and not args.json
    chunks = list(pipeline.index.iter_chunks())
    notes: list[str] = []
    if args.pseudo == "sentence":
        queries, pseudo = sentence_queries(chunks, n=args.queries, seed=args.seed), "sentence"
    else:
        cache = index_dir / "calibration" / "llm-queries.jsonl"
        cache.parent.mkdir(exist_ok=True)
        queries, notes = llm_pseudo_queries(
            chunks, pipeline.llm, n=args.queries, style=args.style, seed=args.seed, cache=cache, progress=show
        )
        pseudo = f"llm-{args.style}"
    if not args.json:
        print(f"{len(queries)} {pseudo} pseudo-queries from {len(chunks)} chunks", file=sys.stderr)
    cal = calibrate(pipeline, queries, pseudo=pseudo, notes=notes)
    if not args.dry_run:
        write_calibration(index_dir, cal)
    if args.json:
        print(json.dumps(cal.to_dict(), indent=2))
        return 0
    print(f"nDCG@10 on {cal.queries} {cal.pseudo} pseudo-queries ({cal.mode} top {cal.depth} reranked):")
    print("  fusion_weight  nDCG@10")
    for w, v in cal.ndcg.items():
        tag = {"0.0": "  (reranker alone)", "1.0": "  (first stage alone)"}.get(w, "")
        mark = " <- chosen" if float(w) == cal.fusion_weight else ""
        print(f"  {w:>13}  {v:.4f}{tag}{mark}")
    lo, hi = cal.ci95
    print(
        f"chosen fusion_weight {cal.fusion_weight}: {cal.ndcg[str(cal.fusion_weight)] - cal.first_stage:+.4f} over "
        f"the first stage (95% CI [{lo:+.4f}, {hi:+.4f}]), {cal.seconds:.0f} s"
    )
    for note in cal.notes:
        print(f"note: {note}", file=sys.stderr)
    if cal.fusion_weight >= 1.0:
        print("the reranker did not beat the first stage here: rag ask/search/eval switch reranking off on this index")
    if not args.dry_run:
        print(f"stored in {calibration_path(index_dir)} (used while rerank.fusion_weight is null)")
    return 0
