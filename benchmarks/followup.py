"""Follow-up questions: second-turn retrieval hit rate with and without rewriting.

    flock /tmp/ragtrail-cpu.lock .venv/bin/python benchmarks/followup.py

30 two-turn dialogues written for this project (``data/followup_dialogues.jsonl``): 15 over ``data/sample``
and 15 over the COVID-QA articles in ``../shared/data/covidqa`` (their gold answers are read from its
``questions.jsonl`` by question id, so no article text is copied here). 25 second turns lean on the first
("and how much can it lift?"), 5 change the subject. Each first turn is asked for real (the local LLM's
answer becomes the history; cached in ``benchmarks/results/followup/first_turns.jsonl``), then the second turn
is searched for five ways, with the default pipeline (hybrid + reranking, ``answer.candidates`` passages):

* as asked;
* after the previous question (the two questions concatenated, no LLM);
* ragtrail's way: rewritten by the LLM only when :func:`rag.followup.followup_cue` fires;
* always rewritten by the LLM;
* the hand-written standalone question (the ceiling).

A hit: one of the passages holds a gold answer (``eval.qa.contains_answer``, as ``rag eval qa``'s context
recall). Prints the table and writes ``summary.json`` and ``rows.jsonl`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if sys.path and Path(sys.path[0] or ".").resolve() == HERE:
    sys.path[0] = str(HERE.parent)  # the repo, not benchmarks/ (whose ingest.py would shadow the package)

import rag  # noqa: E402, F401 - offline environment first
from rag.jsonl import appender, read_jsonl, read_rows  # noqa: E402

REPO = HERE.parent
SHARED = REPO.parent / "shared" / "data"
STRATEGIES = ("as asked", "after the previous question", "rewritten when cued (ragtrail)", "always rewritten")
CEILING = "hand-written standalone"


@dataclass(frozen=True)
class Dialogue:
    id: str
    corpus: str
    kind: str
    first: str
    second: str
    standalone: str
    answers: list[str]


def load_dialogues(path: Path, covidqa_questions: Path) -> list[Dialogue]:
    """The dialogues, COVID-QA ones with their gold answers looked up by ``ref``; bad rows are errors naming
    the file, the line and the reason."""
    from rag.errors import EvalDataError

    golds: dict[str, list[str]] = {}
    if covidqa_questions.is_file():
        golds = {str(q["id"]): q["answers"] for _, q in read_jsonl(covidqa_questions)}
    out = []
    for n, row in read_jsonl(path):
        where = f"{path}:{n} ({row.get('id', '?')})"
        turns = row.get("turns")
        if not isinstance(turns, list) or len(turns) != 2 or not all(isinstance(t, str) and t for t in turns):
            raise EvalDataError(f"{where}: 'turns' must hold two questions")
        if row.get("kind") not in ("follow-up", "topic switch"):
            raise EvalDataError(f"{where}: 'kind' must be 'follow-up' or 'topic switch'")
        answers = row.get("answers")
        if "ref" in row:
            if str(row["ref"]) not in golds:
                raise EvalDataError(f"{where}: question {row['ref']} is not in {covidqa_questions}")
            answers = golds[str(row["ref"])]
        if not answers:
            raise EvalDataError(f"{where}: no gold answers ('answers', or 'ref' to a COVID-QA question)")
        out.append(Dialogue(row["id"], row["corpus"], row["kind"], turns[0], turns[1], row["standalone"], answers))
    return out


def hits_answer(hits: Sequence[Any], answers: Sequence[str]) -> tuple[bool, bool]:
    """(a gold answer in the first passage, in any passage)."""
    from eval.qa import contains_answer

    found = [contains_answer(h.chunk.text, answers) for h in hits]
    return bool(found and found[0]), any(found)


def open_pipeline(index: Path, docs: Path) -> Any:
    from rag.errors import IndexNotFoundError
    from rag.pipeline import Pipeline

    try:
        return Pipeline.from_config(None, index_dir=index)
    except IndexNotFoundError:
        from ingest.pipeline import ingest
        from rag.config import PipelineConfig

        print(f"ingesting {docs} into {index} ...", file=sys.stderr)
        ingest(docs, index_dir=index, config=PipelineConfig())
        return Pipeline.from_config(None, index_dir=index)


def first_turn_answers(dialogues: Sequence[Dialogue], pipes: dict[str, Any], cache: Path) -> dict[str, str]:
    """The local LLM's answer to each first turn (cached by dialogue id and question)."""
    cached = {(r["id"], r["question"]): r["answer"] for r in read_rows(cache)}
    out = {}
    with appender(cache) as append:
        for d in dialogues:
            if (d.id, d.first) not in cached:
                answer = pipes[d.corpus].ask(d.first).answer
                cached[(d.id, d.first)] = answer
                append({"id": d.id, "question": d.first, "answer": answer})
                print(f"  first turn {d.id}: {answer[:70]!r}", file=sys.stderr)
            out[d.id] = cached[(d.id, d.first)]
    return out


def always_rewrite(pipe: Any, question: str, history: list[dict[str, str]]) -> str:
    from rag.followup import rewrite_messages, usable_rewrite

    config = pipe.config
    out = pipe.llm.complete(
        rewrite_messages(question, pipe.conversation(history)),
        max_tokens=config.followup.rewrite_tokens,
        temperature=config.llm.temperature,
        seed=config.llm.seed,
        stop=["\n"],
    )
    return usable_rewrite(question, out.text) or question


def timed(fn: Callable[[], str]) -> tuple[str, float]:
    start = time.perf_counter()
    value = fn()
    return value, (time.perf_counter() - start) * 1000.0


def run(args: argparse.Namespace) -> dict[str, Any]:
    from eval.qa import contains_answer
    from rag.followup import followup_cue

    dialogues = load_dialogues(args.dialogues, args.covidqa / "questions.jsonl")
    pipes = {
        "sample": open_pipeline(args.sample_index, REPO / "data" / "sample"),
        "covidqa": open_pipeline(args.covidqa_index, args.covidqa / "docs"),
    }
    for d in dialogues:  # a gold answer no passage holds would make a miss of every strategy
        index = pipes[d.corpus].index
        if not any(contains_answer(c.text, d.answers) for c in index.iter_chunks()):
            raise SystemExit(f"{args.dialogues}: {d.id}: no passage of {index.path} holds {d.answers}")
    args.out.mkdir(parents=True, exist_ok=True)
    answers = first_turn_answers(dialogues, pipes, args.out / "first_turns.jsonl")
    rows = []
    rewrite_ms: list[float] = []
    for d in dialogues:
        pipe = pipes[d.corpus]
        history = [{"role": "user", "content": d.first}, {"role": "assistant", "content": answers[d.id]}]
        plan = pipe.plan_query(d.second, history)
        always, ms = timed(partial(always_rewrite, pipe, d.second, history))
        rewrite_ms.append(ms)
        queries = {
            "as asked": d.second,
            "after the previous question": f"{d.first} {d.second}",
            "rewritten when cued (ragtrail)": plan.query,
            "always rewritten": always,
            CEILING: d.standalone,
        }
        row: dict[str, Any] = {
            "id": d.id,
            "corpus": d.corpus,
            "kind": d.kind,
            "cue": followup_cue(d.second),
            "first_answer": answers[d.id],
        }
        for name, query in queries.items():
            hits = pipe.search(query, k=pipe.config.answer.candidates).hits
            at1, at_k = hits_answer(hits, d.answers)
            row[name] = {"query": query, "hit@1": at1, "hit": at_k}
        rows.append(row)
        print(f"  {d.id}: cue={row['cue']!r} rewrite={plan.query!r}", file=sys.stderr)
    summary = summarize(rows, k=pipes["sample"].config.answer.candidates)
    summary["rewrite_ms_mean"] = statistics.fmean(rewrite_ms)
    summary["llm"] = pipes["sample"].llm.name
    with (args.out / "rows.jsonl").open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return summary


def summarize(rows: Sequence[dict[str, Any]], *, k: int) -> dict[str, Any]:
    def rate(name: str, key: str, keep: Callable[[dict[str, Any]], bool]) -> float:
        chosen = [r for r in rows if keep(r)]
        return sum(r[name][key] for r in chosen) / len(chosen) if chosen else float("nan")

    out: dict[str, Any] = {"dialogues": len(rows), "k": k, "strategies": {}}
    groups: dict[str, Callable[[dict[str, Any]], bool]] = {
        "all": lambda r: True,
        "follow-up": lambda r: r["kind"] == "follow-up",
        "topic switch": lambda r: r["kind"] == "topic switch",
        "sample": lambda r: r["corpus"] == "sample",
        "covidqa": lambda r: r["corpus"] == "covidqa",
    }
    out["counts"] = {g: sum(keep(r) for r in rows) for g, keep in groups.items()}
    out["cued"] = {
        "follow-up": sum(r["cue"] is not None for r in rows if r["kind"] == "follow-up"),
        "topic switch": sum(r["cue"] is not None for r in rows if r["kind"] == "topic switch"),
    }
    for name in (*STRATEGIES, CEILING):
        out["strategies"][name] = {
            "hit@1": rate(name, "hit@1", groups["all"]),
            **{f"hit@{k} {g}": rate(name, "hit", keep) for g, keep in groups.items()},
        }
    return out


def print_table(summary: dict[str, Any]) -> None:
    from eval.report import format_table

    k, counts = summary["k"], summary["counts"]
    headers = [
        "second turn searched as",
        "hit@1",
        f"hit@{k} all ({counts['all']})",
        f"follow-ups ({counts['follow-up']})",
        f"topic switches ({counts['topic switch']})",
        f"data/sample ({counts['sample']})",
        f"COVID-QA ({counts['covidqa']})",
    ]
    rows = [
        [name, s["hit@1"], *(s[f"hit@{k} {g}"] for g in ("all", "follow-up", "topic switch", "sample", "covidqa"))]
        for name, s in summary["strategies"].items()
    ]
    print(format_table(headers, rows, precision=3))
    cued = summary["cued"]
    print(
        f"\nthe cue fired on {cued['follow-up']}/{counts['follow-up']} follow-ups and "
        f"{cued['topic switch']}/{counts['topic switch']} topic switches; one LLM rewrite took "
        f"{summary['rewrite_ms_mean'] / 1000:.1f} s on average ({summary['llm']})"
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dialogues", type=Path, default=REPO / "data" / "followup_dialogues.jsonl")
    p.add_argument("--covidqa", type=Path, default=SHARED / "covidqa", help="COVID-QA folder (docs/, questions.jsonl)")
    p.add_argument("--sample-index", type=Path, default=REPO / ".ragtrail-qa-data-sample")
    p.add_argument("--covidqa-index", type=Path, default=REPO / ".ragtrail-qa-covidqa-docs")
    p.add_argument("--out", type=Path, default=HERE / "results" / "followup")
    args = p.parse_args(argv)
    summary = run(args)
    print_table(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
