"""Cost and speed of every LLM judge on the local model: items/minute and tokens/item per judge.

    nice -n 10 .venv/bin/python benchmarks/judges.py [--n 3] [--threads 1] [--judges all] [--out DIR]

Inputs are real: the first N rows of WikiEval (question, context_v1, answer; ../shared/data) for the
suite judges and the pairwise judge (answer vs poor_answer, both orders), and the first N FaithBench
items of the stratified order for both faithfulness granularities. Each judge runs its items back to
back, so the shared prompt prefix (system prompt + few-shot example) is served from llama.cpp's KV
cache after the first item: the first item's cost is reported apart from the rest.
On a CPU shared with other work, --threads 1 is several times faster than 2 (thread barriers stall).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import rag  # noqa: E402,F401 - offline environment first
from rag.jsonl import read_jsonl  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
ALL = (
    "faithfulness_claims",
    "faithfulness_sentences",
    "likelihood",
    "answer_relevance",
    "context_relevance",
    "pointwise",
    "geval",
    "pairwise",
)


def wikieval(n: int) -> list[dict[str, Any]]:
    rows = []
    for _, r in read_jsonl(SHARED / "wikieval_sample10" / "WikiEval_samples_10.jsonl"):
        strip = lambda s, p: s[len(p) :].strip() if s.startswith(p) else s.strip()  # noqa: E731
        rows.append(
            {
                "id": r["source"],
                "question": strip(r["question"], "Question:"),
                "answer": strip(r["answer"], "Answer:"),
                "poor": strip(r["poor_answer"], "Answer:"),
                "contexts": tuple(r["context_v1"]),
            }
        )
    return rows[:n]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=3, help="items per judge (default: 3)")
    ap.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: config)")
    ap.add_argument("--judges", default="all", help=f"comma-separated subset of {','.join(ALL)}")
    ap.add_argument("--out", type=Path, help="write the results as JSON here")
    args = ap.parse_args()

    from eval.faithbench import FaithfulnessJudgeLike, load_faithbench, stratified_order
    from eval.judges import EvalSample, build_judge
    from eval.judges.base import CallOptions
    from eval.judges.faithfulness import FaithfulnessJudge
    from eval.judges.likelihood import LikelihoodJudge
    from eval.judges.pairwise import PairwiseJudge
    from eval.report import format_table
    from rag.config import LLMConfig
    from rag.llm import create_llm
    from rag.models import load_embedder

    names = ALL if args.judges == "all" else tuple(args.judges.split(","))
    llm = create_llm(LLMConfig(n_threads=args.threads))
    t = time.perf_counter()
    llm.count_tokens("warm up")
    print(f"model load {time.perf_counter() - t:.1f}s ({llm.name})", file=sys.stderr)
    wiki = wikieval(args.n)
    samples = [EvalSample(id=r["id"], question=r["question"], answer=r["answer"], contexts=r["contexts"]) for r in wiki]
    fb = stratified_order(load_faithbench(SHARED / "faithbench"))[: args.n]
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        rows: list[tuple[float, int, int, bool]] = []  # seconds, prompt tokens, completion tokens, ok
        if name.startswith("faithfulness_") or name == "likelihood":
            fj: FaithfulnessJudgeLike = (
                LikelihoodJudge(llm)
                if name == "likelihood"
                else FaithfulnessJudge(
                    llm,
                    granularity=name.split("_")[1],  # type: ignore[arg-type]
                    options=CallOptions(max_tokens=900),
                )
            )
            for it in fb:
                r = fj.judge(it.summary, [it.source], item_id=it.id)
                rows.append((r.usage.seconds, r.usage.prompt_tokens, r.usage.completion_tokens, r.ok))
        elif name == "pairwise":
            pj = PairwiseJudge(llm)
            for w in wiki:
                v = pj.compare(w["question"], w["answer"], w["poor"], contexts=w["contexts"], item_id=w["id"])
                rows.append((v.usage.seconds, v.usage.prompt_tokens, v.usage.completion_tokens, v.status == "ok"))
        else:
            embedder = load_embedder("all-MiniLM-L6-v2") if name == "answer_relevance" else None
            judge = build_judge(name, llm, embedder=embedder)  # type: ignore[arg-type]
            for s in samples:
                r = judge.run(s)
                rows.append((r.usage.seconds, r.usage.prompt_tokens, r.usage.completion_tokens, r.ok))
        secs = sum(r[0] for r in rows)
        rest = rows[1:] or rows
        results[name] = {
            "items": len(rows),
            "ok": sum(r[3] for r in rows),
            "items_per_minute": 60 * len(rows) / secs if secs else None,
            "items_per_minute_after_first": 60 * len(rest) / sum(r[0] for r in rest) if rest else None,
            "first_item_s": rows[0][0] if rows else None,
            "tokens_per_item": sum(r[1] + r[2] for r in rows) / len(rows) if rows else None,
            "completion_tokens_per_item": sum(r[2] for r in rows) / len(rows) if rows else None,
        }
        print(f"{name}: {results[name]}", file=sys.stderr, flush=True)
    print(
        format_table(
            ["judge", "items", "ok", "items/min", "items/min (warm)", "tokens/item", "out tok/item"],
            [
                [
                    k,
                    v["items"],
                    v["ok"],
                    v["items_per_minute"] or 0.0,
                    v["items_per_minute_after_first"] or 0.0,
                    v["tokens_per_item"] or 0.0,
                    v["completion_tokens_per_item"] or 0.0,
                ]
                for k, v in results.items()
            ],
            precision=2,
        )
    )
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "judges_benchmark.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
