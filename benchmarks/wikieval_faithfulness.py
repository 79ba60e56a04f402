"""WikiEval pairwise agreement of faithfulness judges (the RAGAS paper's protocol, Es et al. 2024 Table 1).

    nice -n 10 .venv/bin/python benchmarks/wikieval_faithfulness.py [--judges likelihood,faithfulness] [--out DIR]

Each WikiEval question has a grounded answer and an ungrounded one (written without the context). A judge
agrees with the human preference when it scores the grounded answer as more faithful; a tie counts one half.
The judge's own call is counted too: ungrounded answers it flags as hallucinated, grounded ones it passes.
Input: ``../shared/data/wikieval_sample10`` (10 questions, ``context_v1``), so the interval is wide; RAGAS
reports 0.95 for its faithfulness metric on the full 50 questions (judge gpt-3.5-turbo-16k). The judges run
in question mode: the likelihood judge scores each answer as a reply to the question over the context.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import rag  # noqa: E402,F401 - offline environment first
from rag.jsonl import read_jsonl  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
JUDGES = ("likelihood", "faithfulness")


def load(path: Path) -> list[dict[str, Any]]:
    def strip(s: str, prefix: str) -> str:
        return s[len(prefix) :].strip() if s.startswith(prefix) else s.strip()

    return [
        {
            "id": r["source"],
            "question": strip(r["question"], "Question:"),
            "grounded": strip(r["answer"], "Answer:"),
            "ungrounded": strip(r["ungrounded_answer"], "Answer:"),
            "contexts": tuple(r["context_v1"]),
        }
        for _, r in read_jsonl(path)
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--judges", default="likelihood", help=f"comma-separated subset of {','.join(JUDGES)}")
    ap.add_argument("--data", type=Path, default=SHARED / "wikieval_sample10" / "WikiEval_samples_10.jsonl")
    ap.add_argument("--out", type=Path, help="write the results as JSON here")
    args = ap.parse_args()

    from eval.judges import EvalSample, build_judge
    from eval.report import format_table
    from rag.config import LLMConfig
    from rag.llm import create_llm

    llm = create_llm(LLMConfig())
    rows = load(args.data)
    results: dict[str, dict[str, Any]] = {}
    for name in args.judges.split(","):
        judge = build_judge(name, llm)  # type: ignore[arg-type]
        pairs: list[dict[str, Any]] = []
        seconds = 0.0
        for r in rows:
            scores: dict[str, float | None] = {}
            flagged: dict[str, bool | None] = {}
            for kind in ("grounded", "ungrounded"):
                res = judge.run(EvalSample(question=r["question"], answer=r[kind], contexts=r["contexts"], id=r["id"]))
                seconds += res.usage.seconds
                scores[kind] = res.score
                flagged[kind] = res.details.get("hallucinated") if res.ok else None
            ok = None not in scores.values()
            agree = None
            if ok:
                g, u = scores["grounded"], scores["ungrounded"]
                agree = 1.0 if g > u else 0.5 if g == u else 0.0  # type: ignore[operator]
            pairs.append({"id": r["id"], **scores, "agree": agree, "flagged": flagged})
        scored = [p["agree"] for p in pairs if p["agree"] is not None]
        results[name] = {
            "pairs": len(pairs),
            "scored": len(scored),
            "agreement": sum(scored) / len(scored) if scored else None,
            # the judge's own call: ungrounded answers it flags, grounded answers it passes
            "ungrounded_flagged": sum(p["flagged"]["ungrounded"] is True for p in pairs),
            "grounded_passed": sum(p["flagged"]["grounded"] is False for p in pairs),
            "seconds_per_answer": seconds / (2 * len(rows)) if rows else None,
            "rows": pairs,
        }
        print(f"{name}: agreement {results[name]['agreement']}", file=sys.stderr, flush=True)
    print(
        format_table(
            ["judge", "pairs", "scored", "grounded > ungrounded", "ungrounded flagged", "grounded ok", "s/answer"],
            [
                [
                    k,
                    v["pairs"],
                    v["scored"],
                    v["agreement"] or 0.0,
                    v["ungrounded_flagged"],
                    v["grounded_passed"],
                    v["seconds_per_answer"] or 0.0,
                ]
                for k, v in results.items()
            ],
            precision=2,
        )
    )
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "wikieval_faithfulness.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
