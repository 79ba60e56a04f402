"""The answer-evaluation suite: load a JSONL of questions, produce missing answers with the pipeline,
run every selected judge on every item, and report (terminal table, summary.json, items.jsonl with the
judges' reasons, answers.jsonl for ``rag eval pairwise``, report.html with a chart). Also the pairwise
runner comparing two systems' answer files.

Suite line: ``{"id", "question", "reference"?, "answer"?, "contexts"?: [str], "domain"?: general|coding|math}``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, get_args

from eval.judges import DEFAULT_JUDGES, EvalSample, Judge, JudgeName, JudgeResult, JudgeSettings, build_judge
from eval.judges.base import Domain
from eval.judges.pairwise import PairVerdict, PairwiseJudge, summarise
from eval.report import (
    bar_chart_png,
    format_table,
    html_image,
    html_page,
    html_paragraph,
    html_section,
    html_table,
    write_json,
    write_jsonl,
    write_text,
)
from rag.errors import EvalDataError
from rag.llm import ContinuationScorer

SCALE: dict[str, float] = {"pointwise": 10.0, "geval_consistency": 5.0}  # for the normalised chart


def load_suite(path: str | Path) -> list[EvalSample]:
    """Read a suite JSONL; every problem names the line and the field."""
    p = Path(path)
    if not p.is_file():
        raise EvalDataError(f"{p}: suite file not found")
    items: list[EvalSample] = []
    with p.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise EvalDataError(f"{p}:{n}: invalid JSON ({e.msg})") from e
            if not isinstance(row, dict) or not isinstance(row.get("question"), str) or not row["question"].strip():
                raise EvalDataError(f"{p}:{n}: each line needs a non-empty 'question' string")
            contexts = row.get("contexts") or []
            if not isinstance(contexts, list) or not all(isinstance(c, str) for c in contexts):
                raise EvalDataError(f"{p}:{n}: 'contexts' must be a list of strings")
            domain = row.get("domain", "general")
            if domain not in get_args(Domain):
                raise EvalDataError(f"{p}:{n}: domain {domain!r} is not one of {', '.join(get_args(Domain))}")
            items.append(
                EvalSample(
                    question=row["question"].strip(),
                    answer=str(row.get("answer") or ""),
                    contexts=tuple(contexts),
                    reference=row.get("reference") or None,
                    id=str(row.get("id", n)),
                    domain=domain,
                )
            )
    if not items:
        raise EvalDataError(f"{p}: the suite is empty")
    if len({it.id for it in items}) != len(items):
        raise EvalDataError(f"{p}: item ids must be unique")
    return items


def produce_answers(items: Sequence[EvalSample], ask: Callable[[str], tuple[str, list[str]]]) -> list[EvalSample]:
    """Fill in the answer and contexts of items that have no answer, with ``ask(question)``."""
    out: list[EvalSample] = []
    for it in items:
        if it.answer.strip():
            out.append(it)
            continue
        answer, contexts = ask(it.question)
        out.append(replace(it, answer=answer, contexts=tuple(contexts)))
    return out


def pipeline_asker(config: Any, index_dir: str | None, llm: Any) -> Callable[[str], tuple[str, list[str]]]:
    """``ask`` over the project's pipeline: the answer and its passages' text in retrieval-rank order."""
    from rag.pipeline import Pipeline

    pipe = Pipeline.from_config(config, index_dir=index_dir, llm=llm)

    def ask(question: str) -> tuple[str, list[str]]:
        ans = pipe.ask(question)
        return ans.answer, [p.hit.chunk.text for p in sorted(ans.passages, key=lambda p: p.hit.rank)]

    return ask


@dataclass(frozen=True)
class SuiteResult:
    items: list[EvalSample]
    results: dict[str, list[JudgeResult]]

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per judge: mean score over OK rows, how many failed, items/minute and tokens/item."""
        out: dict[str, dict[str, Any]] = {}
        for name, rows in self.results.items():
            ok = [r.score for r in rows if r.status == "ok" and r.score is not None]
            seconds = sum(r.usage.seconds for r in rows)
            tokens = sum(r.usage.prompt_tokens + r.usage.completion_tokens for r in rows)
            out[name] = {
                "mean": sum(ok) / len(ok) if ok else None,
                "n_ok": len(ok),
                "errors": len(rows) - len(ok),
                "items_per_minute": 60 * len(rows) / seconds if seconds else None,
                "tokens_per_item": tokens / len(rows) if rows else None,
                "llm_calls": sum(r.usage.calls for r in rows),
            }
        return out


def run_suite(
    items: Sequence[EvalSample], judges: Sequence[Judge], *, on_row: Callable[[JudgeResult], None] | None = None
) -> SuiteResult:
    """Every judge on every item, judge by judge (consecutive calls share a prompt prefix)."""
    results: dict[str, list[JudgeResult]] = {}
    for judge in judges:
        rows = []
        for it in items:
            r = judge.run(it)
            rows.append(r)
            if on_row is not None:
                on_row(r)
        results[judge.name] = rows
    return SuiteResult(list(items), results)


def terminal_table(summary: dict[str, dict[str, Any]]) -> str:
    rows = [
        [
            n,
            s["mean"] if s["mean"] is not None else "n/a",
            s["n_ok"],
            s["errors"],
            s["items_per_minute"] or 0.0,
            s["tokens_per_item"] or 0.0,
        ]
        for n, s in summary.items()
    ]
    return format_table(["judge", "mean", "ok", "errors", "items/min", "tokens/item"], rows, precision=3)


def write_suite_outputs(result: SuiteResult, out: Path, *, title: str) -> list[Path]:
    summary = result.summary()
    by_item = {it.id: it for it in result.items}
    rows = [{**r.to_dict(), "question": by_item[r.item_id].question} for rs in result.results.values() for r in rs]
    answers = [
        {
            "id": it.id,
            "question": it.question,
            "answer": it.answer,
            "contexts": list(it.contexts),
            "reference": it.reference,
            "domain": it.domain,
        }
        for it in result.items
    ]
    chart = bar_chart_png(
        {
            "mean score (normalised to 0-1)": {
                n: (s["mean"] / SCALE.get(n, 1.0)) for n, s in summary.items() if s["mean"] is not None
            }
        },
        title=title,
        ylabel="score",
    )
    table_rows = [
        [
            n,
            s["mean"] if s["mean"] is not None else "n/a",
            s["n_ok"],
            s["errors"],
            s["items_per_minute"] or 0.0,
            s["tokens_per_item"] or 0.0,
        ]
        for n, s in summary.items()
    ]
    item_rows = [
        [r["item_id"], r["judge"], r["status"], r["score"] if r["score"] is not None else "error", r["reason"][:300]]
        for r in rows
    ]
    page = html_page(
        title,
        [
            html_section(
                "Judges",
                html_table(["judge", "mean", "ok", "errors", "items/min", "tokens/item"], table_rows, precision=3),
                html_image(chart, alt="mean score per judge"),
                html_paragraph(
                    "Failed judgements are excluded from the means and counted under errors.", css_class="note"
                ),
            ),
            html_section(
                "Per item (with the judges' reasons)",
                html_table(["item", "judge", "status", "score", "reason"], item_rows, precision=3),
            ),
        ],
        subtitle=f"{len(result.items)} items",
    )
    return [
        write_json(out / "summary.json", summary),
        write_jsonl(out / "items.jsonl", rows),
        write_jsonl(out / "answers.jsonl", answers),
        write_text(out / "report.html", page),
    ]


def run_suite_command(
    args: argparse.Namespace, *, llm_factory: Callable[[argparse.Namespace], Any], progress: bool
) -> int:
    """``rag eval faithfulness``: the CLI's one library call."""
    items = load_suite(args.suite)
    config, llm = llm_factory(args)
    missing = sum(not it.answer.strip() for it in items)
    if missing:
        print(
            f"producing {missing} missing answer(s) with the pipeline over {args.index or config.index_dir}",
            file=sys.stderr,
        )
        items = produce_answers(items, pipeline_asker(config, args.index, llm))
    names: list[JudgeName] = list(dict.fromkeys(args.judges or DEFAULT_JUDGES))
    if not args.judges and not isinstance(llm, ContinuationScorer):
        names.remove("likelihood")
        print(f"note: {llm.name} cannot score given text; the likelihood judge is skipped", file=sys.stderr)
    embedder = None
    if "answer_relevance" in names:
        from rag.models import load_embedder

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
        paths.append(write_json(out / "ragas.json", ragas_comparison(result, llm, embedder or _embedder(config))))
    if args.json:
        print(json.dumps(result.summary(), indent=2, sort_keys=True))
    else:
        print(terminal_table(result.summary()))
        print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def _embedder(config: Any) -> Any:
    from rag.models import load_embedder

    return load_embedder(config.embedding.model, config.embedding.device)


def ragas_comparison(result: SuiteResult, llm: Any, embedder: Any) -> dict[str, Any]:
    """ragas' scores on the same items, with the cost and where they differ from our judges."""
    from eval.ragas_engine import compare, run_ragas

    ids = [it.id for it in result.items]
    scores, usage = run_ragas(result.items, llm, embedder)
    ours = {name: {r.item_id: r.score for r in rows} for name, rows in result.results.items()}
    return {
        "per_item": dict(zip(ids, scores, strict=True)),
        "usage": usage.to_dict(),
        "comparison": compare(ids, scores, ours),
    }


def load_answers(path: str | Path) -> dict[str, EvalSample]:
    return {it.id: it for it in load_suite(path)}


def run_pairwise(
    a: dict[str, EvalSample],
    b: dict[str, EvalSample],
    judge: PairwiseJudge,
    *,
    on_pair: Callable[[PairVerdict], None] | None = None,
) -> list[PairVerdict]:
    """Judge the items both files share (by id); both must hold an answer for each."""
    shared = [i for i in a if i in b]
    if not shared:
        raise EvalDataError("the two answer files share no item id")
    verdicts = []
    for i in shared:
        v = judge.compare(a[i].question, a[i].answer, b[i].answer, contexts=a[i].contexts, item_id=i)
        verdicts.append(v)
        if on_pair is not None:
            on_pair(v)
    return verdicts


def run_pairwise_command(
    args: argparse.Namespace, *, llm_factory: Callable[[argparse.Namespace], Any], progress: bool
) -> int:
    """``rag eval pairwise``: both orders per pair, inconsistent = tie; summary + per-pair rows."""
    from eval.judges.base import CallOptions

    a, b = load_answers(args.a), load_answers(args.b)
    _, llm = llm_factory(args)
    verdicts = run_pairwise(
        a,
        b,
        PairwiseJudge(llm, options=CallOptions(max_tokens=300, retries=args.max_retries)),
        on_pair=(lambda v: print(f"{v.item_id}: {v.outcome}", file=sys.stderr)) if progress else None,
    )
    ids = [v.item_id for v in verdicts]
    lengths = ([len(a[i].answer.split()) for i in ids], [len(b[i].answer.split()) for i in ids])
    summary = summarise(
        verdicts, len_a=lengths[0] if args.length_control else None, len_b=lengths[1] if args.length_control else None
    ).to_dict()
    seconds = sum(v.usage.seconds for v in verdicts)
    summary["pairs_per_minute"] = 60 * len(verdicts) / seconds if seconds else None
    summary["tokens_per_pair"] = sum(v.usage.prompt_tokens + v.usage.completion_tokens for v in verdicts) / len(
        verdicts
    )
    out = Path(args.out or "runs/eval-pairwise")
    write_json(out / "summary.json", summary)
    write_jsonl(out / "pairs.jsonl", [v.to_dict() for v in verdicts])
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=True))
    else:
        print(
            format_table(
                ["metric", "value"], [[k, v if v is not None else "n/a"] for k, v in summary.items()], precision=3
            )
        )
        print(f"wrote {out / 'summary.json'}, {out / 'pairs.jsonl'}")
    return 0
