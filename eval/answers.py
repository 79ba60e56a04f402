"""The answer-evaluation suite: load a JSONL of questions, produce missing answers with the pipeline,
run every selected judge on every item, and report (terminal table, summary.json, items.jsonl with the
judges' reasons, answers.jsonl for ``rag eval pairwise``, report.html with a chart). Also the pairwise
runner comparing two systems' answer files. Plain functions: ``rag eval faithfulness`` and ``rag eval
pairwise`` (:mod:`rag.commands.eval_answers`) parse the arguments, call them and print.

Suite line: ``{"id", "question", "reference"?, "answer"?, "contexts"?: [str], "domain"?: general|coding|math}``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, get_args

from eval.judges import DEFAULT_JUDGES, EvalSample, JudgeName, JudgeResult
from eval.judges.base import Domain, Judge
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
from rag.jsonl import read_jsonl
from rag.llm import ContinuationScorer
from rag.pipeline import Pipeline

SCALE: dict[str, float] = {"pointwise": 10.0, "geval_consistency": 5.0}  # for the normalised chart


def load_suite(path: str | Path) -> list[EvalSample]:
    """Read a suite JSONL; every problem names the line and the field."""
    p = Path(path)
    if not p.is_file():
        raise EvalDataError(f"{p}: suite file not found")
    items: list[EvalSample] = []
    for n, row in read_jsonl(p):
        if not isinstance(row.get("question"), str) or not row["question"].strip():
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


def choose_judges(requested: Sequence[JudgeName] | None, llm: Any) -> tuple[list[JudgeName], list[str]]:
    """The judges to run (those asked for, else :data:`~eval.judges.DEFAULT_JUDGES`) and notes on what was
    left out: the default likelihood judge needs a backend that scores given text."""
    names: list[JudgeName] = list(dict.fromkeys(requested or DEFAULT_JUDGES))
    if not requested and not isinstance(llm, ContinuationScorer):
        names.remove("likelihood")
        return names, [f"{llm.name} cannot score given text; the likelihood judge is skipped"]
    return names, []


SUMMARY_HEADERS = ("judge", "mean", "ok", "errors", "items/min", "tokens/item")


def _summary_rows(summary: Mapping[str, Mapping[str, Any]]) -> list[list[Any]]:
    return [
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


def terminal_table(summary: Mapping[str, Mapping[str, Any]]) -> str:
    return format_table(SUMMARY_HEADERS, _summary_rows(summary), precision=3)


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
    item_rows = [
        [r["item_id"], r["judge"], r["status"], r["score"] if r["score"] is not None else "error", r["reason"][:300]]
        for r in rows
    ]
    page = html_page(
        title,
        [
            html_section(
                "Judges",
                html_table(SUMMARY_HEADERS, _summary_rows(summary), precision=3),
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


def ragas_comparison(result: SuiteResult, llm: Any, embedder: Any) -> dict[str, Any]:
    """ragas' scores on the same items, with the cost and where they differ from our judges."""
    from eval.ragas_engine import compare, run_ragas  # lazy: ragas is heavy and only --ragas needs it

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


def pairwise_summary(
    a: Mapping[str, EvalSample], b: Mapping[str, EvalSample], verdicts: Sequence[PairVerdict], *, length_control: bool
) -> dict[str, Any]:
    """Win rates and consistency of ``verdicts`` (optionally with the answer-length difference regressed
    out), plus pairs per minute and tokens per pair."""
    ids = [v.item_id for v in verdicts]
    lengths = ([len(a[i].answer.split()) for i in ids], [len(b[i].answer.split()) for i in ids])
    summary = summarise(
        verdicts, len_a=lengths[0] if length_control else None, len_b=lengths[1] if length_control else None
    ).to_dict()
    seconds = sum(v.usage.seconds for v in verdicts)
    summary["pairs_per_minute"] = 60 * len(verdicts) / seconds if seconds else None
    summary["tokens_per_pair"] = sum(v.usage.prompt_tokens + v.usage.completion_tokens for v in verdicts) / len(
        verdicts
    )
    return summary


def write_pairwise_outputs(summary: Mapping[str, Any], verdicts: Sequence[PairVerdict], out: Path) -> list[Path]:
    return [
        write_json(out / "summary.json", summary),
        write_jsonl(out / "pairs.jsonl", [v.to_dict() for v in verdicts]),
    ]


def pairwise_table(summary: Mapping[str, Any]) -> str:
    return format_table(
        ["metric", "value"], [[k, v if v is not None else "n/a"] for k, v in summary.items()], precision=3
    )
