"""``rag eval faithfulness | judges | pairwise``: answer evaluation with LLM judges, the judges'
meta-evaluation against FaithBench's human labels, and pairwise comparison of two systems' answers.
The judge names come from :mod:`eval.judges` (light); the suites, models and reports are imported inside
the handlers, not at CLI start-up."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args

from eval.judges import DEFAULT_JUDGES, JUDGE_NAMES, MTBENCH_JUDGES, JudgeName, MTBenchJudgeName
from eval.judges.faithfulness import Granularity
from rag.commands.common import add_common_options, progress_enabled
from rag.errors import ConfigError

FAITHBENCH_JUDGES: tuple[JudgeName, ...] = ("faithfulness", "likelihood")  # the judges FaithBench can score
LLMFactory = Callable[[argparse.Namespace], tuple[Any, Any]]


def _llm_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--llm-threads",
        type=int,
        metavar="N",
        help="llama.cpp threads (overrides llm.n_threads; 1 is much faster on a CPU shared with other work)",
    )
    p.add_argument(
        "--max-retries",
        type=int,
        default=2,
        metavar="N",
        help="extra attempts when a judge's output does not parse (default: 2)",
    )


def _faithfulness_options(p: argparse.ArgumentParser, *, granularity: str, logprobs: int, logprobs_use: str) -> None:
    p.add_argument(
        "--granularity",
        choices=get_args(Granularity),
        default=granularity,
        help="what the faithfulness judge verifies: the answer's sentences, each with the words the context "
        "never uses as a hint (cheap; the variant measured on FaithBench), or LLM-extracted atomic claims with "
        f"evidence (RAGAS definition, ~6x the output tokens) (default: {granularity})",
    )
    p.add_argument(
        "--logprobs",
        type=int,
        default=logprobs,
        metavar="K",
        help=f"top-K token log-probabilities per faithfulness verdict (default: {logprobs}; 0 turns it off): each "
        f"verdict's P(unsupported) is kept, and {logprobs_use}",
    )
    p.add_argument(
        "--likelihood-threshold",
        type=float,
        metavar="NATS",
        help="mean surprisal per token at which the likelihood judge calls an answer hallucinated (default: 0.84, "
        "set for the embedded model; another model needs its own, measured with rag eval judges)",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    f = subparsers.add_parser(
        "faithfulness",
        help="judge a question suite's answers (faithfulness, relevance, pointwise grades...)",
        description="Run LLM judges over a JSONL suite of questions (optional reference, answer, contexts). "
        "Absent answers are produced by the pipeline over --index.",
    )
    f.add_argument("--suite", required=True, metavar="FILE", help="questions JSONL (see data/sample_questions.jsonl)")
    f.add_argument(
        "--judge",
        dest="judges",
        action="append",
        choices=JUDGE_NAMES,
        metavar="NAME",
        help=f"judge to run, repeatable (default: {', '.join(DEFAULT_JUDGES)}; likelihood only where the backend "
        f"scores given text; choices: {', '.join(JUDGE_NAMES)})",
    )
    f.add_argument(
        "--ragas",
        action="store_true",
        help="also run ragas' faithfulness/answer-relevancy/context-precision on the same LLM and embedder "
        "and report where they differ from ours (ragas.json)",
    )
    _faithfulness_options(
        f,
        granularity="claims",
        logprobs=0,
        logprobs_use="the item's hallucination_prob (the highest over its claims) goes into items.jsonl",
    )
    f.add_argument("--out", metavar="DIR", help="output folder (default: runs/eval-answers-<suite>)")
    f.add_argument("--json", action="store_true", help="print the summary JSON instead of the table")
    _llm_options(f)
    add_common_options(f)
    f.set_defaults(func=run_faithfulness)

    j = subparsers.add_parser(
        "judges",
        help="meta-evaluate judges against human labels: FaithBench (faithfulness) or MT-Bench (pairwise votes)",
        description="--faithbench: judge FaithBench items (stratified order, so --limit N is a stratified sample) and "
        "score the judge and the baseline detectors stored in the data on the same items. --mtbench: judge MT-Bench "
        "pairs (both orders) and score agreement with the expert votes beside GPT-4 and 'the longer answer wins' on "
        "the same pairs. Per-item rows are appended to OUT/items.jsonl; rerunning with the same --out skips items "
        "already judged.",
    )
    source = j.add_mutually_exclusive_group(required=True)
    source.add_argument("--faithbench", metavar="DIR", help="FaithBench folder (holds data_for_release/)")
    source.add_argument("--mtbench", metavar="DIR", help="MT-Bench folder (human_pairs.jsonl, gpt4_pairs.jsonl, ...)")
    j.add_argument(
        "--limit", type=int, metavar="N", help="judge only the first N items (pairs) of the stratified order"
    )
    j.add_argument(
        "--batches", default="1-8", metavar="SPEC", help="FaithBench batches, e.g. 1-8 or 1,3 (default: 1-8)"
    )
    j.add_argument(
        "--aggregation",
        choices=("worst", "best", "majority"),
        default="worst",
        help="FaithBench: how annotators' labels are pooled (default: worst, as upstream)",
    )
    j.add_argument(
        "--hallucinated",
        default="Questionable,Unwanted",
        metavar="LIST",
        help="FaithBench: pooled classes counted as hallucinated (default: Questionable,Unwanted)",
    )
    j.add_argument("--seed", type=int, default=0, help="seed of the stratified order (default: 0)")
    j.add_argument(
        "--judge",
        choices=tuple(dict.fromkeys((*FAITHBENCH_JUDGES, *MTBENCH_JUDGES))),
        help="FaithBench: faithfulness (verdict per sentence/claim, constrained JSON; the default) or likelihood "
        "(surprisal of the summary given the source, local backend only). MT-Bench: pairwise (the default; one "
        "letter per order, its probabilities kept), reference (pairwise with GPT-4's reference answer for math, "
        "reasoning and coding) or pointwise (each answer graded 1-9 alone, two grades make the verdict)",
    )
    j.add_argument(
        "--rule",
        choices=("swap", "margin"),
        default="swap",
        help="MT-Bench verdict rule: swap (the paper's: both orders must agree, else tie) or margin (the "
        "preference averaged over both orders, a tie within --tie-band) (default: swap)",
    )
    j.add_argument(
        "--tie-band",
        type=float,
        default=0.0,
        metavar="X",
        help="MT-Bench, --rule margin: half-width of the tie band (log-odds for pairwise/reference, grade points "
        "for pointwise) (default: 0)",
    )
    j.add_argument(
        "--max-answer-tokens",
        type=int,
        default=320,
        metavar="N",
        help="MT-Bench: every answer (and reference) is cut to N tokens, the same for both sides (default: 320)",
    )
    j.add_argument(
        "--voters",
        choices=("expert", "all"),
        default="expert",
        help="MT-Bench: whose votes count (default: expert, the paper's protocol)",
    )
    _faithfulness_options(
        j,
        granularity="sentences",
        logprobs=20,
        logprobs_use="the judge is also scored thresholded on it, leave-one-batch-out (@cv-threshold)",
    )
    j.add_argument(
        "--out",
        metavar="DIR",
        help="output folder (default: runs/eval-judges-faithbench, -likelihood for that judge; "
        "runs/eval-judges-mtbench-<judge>)",
    )
    j.add_argument("--json", action="store_true", help="print metrics.json instead of the table")
    _llm_options(j)
    add_common_options(j)
    j.set_defaults(func=run_judges)

    p = subparsers.add_parser(
        "pairwise",
        help="compare two systems' answers on one suite (both orders; inconsistent = tie)",
        description="Each input is a JSONL with id/question and answer (as written by `rag eval faithfulness`, "
        "answers.jsonl). Every pair is judged in both orders; an inconsistent pair counts as a tie.",
    )
    p.add_argument("--a", required=True, metavar="FILE", help="system A's answers (JSONL)")
    p.add_argument("--b", required=True, metavar="FILE", help="system B's answers (JSONL)")
    p.add_argument(
        "--length-control",
        action="store_true",
        help="also report the win rate with the length difference regressed out (verbosity bias)",
    )
    p.add_argument("--out", metavar="DIR", help="output folder (default: runs/eval-pairwise)")
    p.add_argument("--json", action="store_true", help="print the summary JSON instead of the table")
    _llm_options(p)
    add_common_options(p)
    p.set_defaults(func=run_pairwise)


def _batches(spec: str) -> tuple[int, ...]:
    out: list[int] = []
    try:
        for part in spec.split(","):
            lo, _, hi = part.partition("-")
            out.extend(range(int(lo), int(hi or lo) + 1))
    except ValueError as e:
        raise ConfigError(f"--batches {spec!r}: expected e.g. 1-8 or 1,3,5") from e
    return tuple(dict.fromkeys(out))


def _llm(args: argparse.Namespace) -> Any:
    from rag.config import load_config
    from rag.llm import create_llm

    overrides = {"llm": {"n_threads": args.llm_threads}} if args.llm_threads else None
    config = load_config(args.config, overrides=overrides)
    return config, create_llm(config.llm)


def run_judges(args: argparse.Namespace) -> int:
    if args.mtbench:
        return run_mtbench_judges(args)
    if args.judge not in (None, *FAITHBENCH_JUDGES):
        raise ConfigError(f"--judge {args.judge}: FaithBench takes {' or '.join(FAITHBENCH_JUDGES)}")
    args.judge = args.judge or "faithfulness"
    from eval.faithbench import (
        FaithfulnessJudgeLike,
        SeverityClass,
        format_meta_table,
        load_faithbench,
        run_meta_eval,
        stratified_order,
    )
    from eval.judges.base import CallOptions
    from eval.judges.faithfulness import FaithfulnessJudge
    from eval.judges.likelihood import DEFAULT_THRESHOLD, LikelihoodJudge

    classes = tuple(c.strip() for c in args.hallucinated.split(",") if c.strip())
    bad = [c for c in classes if c not in get_args(SeverityClass)]
    if bad or not classes:
        raise ConfigError(f"--hallucinated {args.hallucinated!r}: choose from {', '.join(get_args(SeverityClass))}")
    items = load_faithbench(
        args.faithbench, batches=_batches(args.batches), aggregation=args.aggregation, hallucinated_classes=classes
    )  # type: ignore[arg-type]
    items = stratified_order(items, seed=args.seed)[: args.limit]
    _, llm = _llm(args)
    judge: FaithfulnessJudgeLike
    if args.judge == "likelihood":
        threshold = DEFAULT_THRESHOLD if args.likelihood_threshold is None else args.likelihood_threshold
        judge = LikelihoodJudge(llm, threshold=threshold)
        label = f"likelihood ({llm.name})"
        out = Path(args.out or "runs/eval-judges-faithbench-likelihood")
    else:
        judge = FaithfulnessJudge(
            llm,
            granularity=args.granularity,
            top_logprobs=max(0, args.logprobs),
            options=CallOptions(max_tokens=900, retries=args.max_retries),
        )
        label = f"faithfulness[{args.granularity}] ({llm.name})"
        out = Path(args.out or "runs/eval-judges-faithbench")
    verbose = progress_enabled()

    def on_item(i: int, total: int, row: dict[str, Any]) -> None:
        if verbose or i % 10 == 0 or i == total:
            u = row["usage"]
            print(
                f"[{i}/{total}] {row['item_id']} {row['status']} score={row['score']} "
                f"human={'H' if row['human_hallucinated'] else 'C'} {u['seconds']:.0f}s "
                f"{u['prompt_tokens'] + u['completion_tokens']} tok",
                file=sys.stderr,
                flush=True,
            )

    report = run_meta_eval(items, judge, out_dir=out, judge_label=label, on_item=on_item)
    if args.json:
        print(json.dumps(report.metrics, indent=2, sort_keys=True))
    else:
        print(format_meta_table(report))
        print(f"wrote {out / 'metrics.json'}, {out / 'summary.json'}, {out / 'items.jsonl'}")
    return 0


def run_faithfulness(args: argparse.Namespace) -> int:
    return run_suite_command(args, llm_factory=_llm, progress=progress_enabled())


def run_pairwise(args: argparse.Namespace) -> int:
    return run_pairwise_command(args, llm_factory=_llm, progress=progress_enabled())


def run_suite_command(args: argparse.Namespace, *, llm_factory: LLMFactory, progress: bool) -> int:
    """``rag eval faithfulness``: the suite with its missing answers produced, every judge, the reports."""
    from eval.answers import (
        choose_judges,
        load_suite,
        pipeline_asker,
        produce_answers,
        ragas_comparison,
        run_suite,
        terminal_table,
        write_suite_outputs,
    )
    from eval.judges import JudgeResult, JudgeSettings, build_judge
    from eval.report import write_json
    from rag.models import load_embedder

    items = load_suite(args.suite)
    config, llm = llm_factory(args)
    missing = sum(not it.answer.strip() for it in items)
    if missing:
        print(
            f"producing {missing} missing answer(s) with the pipeline over {args.index or config.index_dir}",
            file=sys.stderr,
        )
        items = produce_answers(items, pipeline_asker(config, args.index, llm))
    names, notes = choose_judges(args.judges, llm)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    embedder = None
    if "answer_relevance" in names or getattr(args, "ragas", False):
        embedder = load_embedder(config.embedding.model, config.embedding.device)
    settings = JudgeSettings(
        retries=args.max_retries,
        granularity=getattr(args, "granularity", "claims"),
        top_logprobs=max(0, getattr(args, "logprobs", 0)),
        likelihood_threshold=getattr(args, "likelihood_threshold", None),
    )
    judges = [build_judge(n, llm, embedder=embedder, settings=settings) for n in names]

    def on_row(r: JudgeResult) -> None:
        if progress:
            print(f"{r.judge} {r.item_id}: {r.status} {r.score}", file=sys.stderr, flush=True)

    result = run_suite(items, judges, on_row=on_row)
    out = Path(args.out or f"runs/eval-answers-{Path(args.suite).stem}")
    paths = write_suite_outputs(result, out, title=f"Answer evaluation: {Path(args.suite).name} ({llm.name})")
    if getattr(args, "ragas", False):
        paths.append(write_json(out / "ragas.json", ragas_comparison(result, llm, embedder)))
    if args.json:
        print(json.dumps(result.summary(), indent=2, sort_keys=True))
    else:
        print(terminal_table(result.summary()))
        print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def run_pairwise_command(args: argparse.Namespace, *, llm_factory: LLMFactory, progress: bool) -> int:
    """``rag eval pairwise``: both orders per pair, inconsistent = tie; summary + per-pair rows."""
    from eval.answers import load_answers, pairwise_summary, pairwise_table, run_pairwise, write_pairwise_outputs
    from eval.judges.base import CallOptions
    from eval.judges.pairwise import PairwiseJudge

    a, b = load_answers(args.a), load_answers(args.b)
    _, llm = llm_factory(args)
    verdicts = run_pairwise(
        a,
        b,
        PairwiseJudge(llm, options=CallOptions(max_tokens=300, retries=args.max_retries)),
        on_pair=(lambda v: print(f"{v.item_id}: {v.outcome}", file=sys.stderr)) if progress else None,
    )
    summary = pairwise_summary(a, b, verdicts, length_control=args.length_control)
    paths = write_pairwise_outputs(summary, verdicts, Path(args.out or "runs/eval-pairwise"))
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=True))
    else:
        print(pairwise_table(summary))
        print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def run_mtbench_judges(args: argparse.Namespace) -> int:
    from eval.judges.mtbench import PairJudge, PointwiseGrader
    from eval.mtbench import load_mtbench, stratified_sample
    from eval.mtbench_run import RunSettings, check_rule, format_report, run_mtbench

    judge_name: MTBenchJudgeName = args.judge or "pairwise"
    if judge_name not in MTBENCH_JUDGES:
        raise ConfigError(f"--judge {judge_name}: MT-Bench takes {', '.join(MTBENCH_JUDGES)}")
    if args.max_answer_tokens < 16:
        raise ConfigError(f"--max-answer-tokens {args.max_answer_tokens}: must be at least 16")
    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit {args.limit}: must be at least 1")
    rule = check_rule(args.rule, args.tie_band)
    load = load_mtbench(args.mtbench, voters=args.voters)
    for note in load.notes:
        print(f"note: {note}", file=sys.stderr)
    pairs = stratified_sample(load.pairs, args.limit, seed=args.seed)
    _, llm = _llm(args)
    judge = (
        PointwiseGrader(llm, max_answer_tokens=args.max_answer_tokens)
        if judge_name == "pointwise"
        else PairJudge(llm, reference=judge_name == "reference", max_answer_tokens=args.max_answer_tokens)
    )
    settings = RunSettings(judge_name, llm.name, args.max_answer_tokens, rule, args.tie_band)
    out = Path(args.out or f"runs/eval-judges-mtbench-{judge_name}")
    verbose = progress_enabled()

    def on_item(i: int, total: int, row: dict[str, Any]) -> None:
        if verbose or i % 10 == 0 or i == total:
            u = row["usage"]
            print(
                f"[{i}/{total}] {row['key']} {row['status']} winner={row.get('winner')} {u['seconds']:.0f}s "
                f"{u['prompt_tokens']} tok",
                file=sys.stderr,
                flush=True,
            )

    metrics = run_mtbench(pairs, judge, settings=settings, out_dir=out, on_item=on_item, load=load)
    if args.json:
        print(json.dumps(metrics, indent=2, sort_keys=True))
    else:
        print(format_report(metrics))
        print(f"wrote {out / 'metrics.json'}, {out / 'items.jsonl'}")
    return 0
