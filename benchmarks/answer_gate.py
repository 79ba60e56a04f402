"""Calibrate the answer/decline decision (``answer.min_score``, ``answer.min_coverage``,
``answer.max_unsupported``) on a ``rag eval qa`` run made with the gate open, and print the trade-off
curve between refusing answerable questions and declining unanswerable ones.

With the gate open every question reaches the LLM and each row of ``items.jsonl`` keeps the
measurements the gate would have used (``decision.features``). Applying thresholds to them afterwards
gives exactly the decisions the gate would have taken, because a gate decline only skips the LLM.

    rag eval qa --docs ../shared/data/covidqa/docs --config configs/answer_gate_open.yaml \\
        --questions DEV_ANSWERABLE.jsonl --questions data/covidqa_unanswerable_dev.jsonl --out runs/qa-dev
    python benchmarks/answer_gate.py runs/qa-dev/items.jsonl [--target-decline 0.92]

Prints: the model alone (no gate), each signal alone, and the chosen operating point; then the curve
(one row per value of the signal that moves most, the others at their chosen values).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eval.qa import gold_token_recall
from eval.report import format_table
from rag.jsonl import read_rows

NO_GATE = (-1e9, 0.0, 1.0, 99.0)
Thresholds = tuple[float, float, float, float]  # min_score, min_coverage, max_unsupported, max_missing_idf


@dataclass(frozen=True)
class Item:
    answerable: bool
    model_declined: bool
    best_score: float
    coverage: float
    unsupported: float
    recall: float  # gold-token recall of the LLM's answer if kept
    missing_idf: float = 0.0


def load(path: Path, *, index: Path | None = None) -> list[Item]:
    """The rows of a gate-open run; ``index`` recomputes ``missing_idf`` from each row's excerpts for
    rows recorded before that measurement existed."""
    idf = None
    if index is not None:
        from rag.evidence import index_idf
        from rag.store import open_index

        idf = index_idf(open_index(index))
    out = []
    for r in read_rows(path):
        d = r.get("decision") or {}
        f = d.get("features") or {}
        if "best_score" not in f:
            raise SystemExit(f"{path}: row {r['id']} has no gate measurements (run with the gate open)")
        model_declined = d.get("stage") == "model" or (r["refused"] and d.get("stage") != "check")
        out.append(
            Item(
                answerable=bool(r["answers"]),
                model_declined=model_declined,
                best_score=float(f["best_score"]),
                coverage=float(f["coverage"]),
                unsupported=float(f.get("unsupported_share", 0.0)),
                recall=gold_token_recall(r.get("raw_answer") or r["answer"], r["answers"]) if r["answers"] else 0.0,
                missing_idf=_rarity(r, f, idf),
            )
        )
    return out


def _rarity(row: dict[str, Any], features: dict[str, Any], idf: Any) -> float:
    if "missing_idf" in features:
        return float(features["missing_idf"])
    if idf is None:
        return 0.0
    from rag.evidence import missing_idf

    text = "\n".join(p["text"] for p in row["passages"])
    return missing_idf(row["question"], text, idf) if text else 0.0


def declined(it: Item, th: Thresholds) -> bool:
    min_score, min_coverage, max_unsupported, max_rarity = th
    if it.best_score < min_score or it.coverage < min_coverage or it.missing_idf > max_rarity:
        return True
    return it.model_declined or it.unsupported > max_unsupported


def rates(items: Sequence[Item], th: Thresholds) -> dict[str, float]:
    ans = [it for it in items if it.answerable]
    una = [it for it in items if not it.answerable]
    refused = [declined(it, th) for it in ans]
    return {
        "answerable_refusal": sum(refused) / len(ans) if ans else float("nan"),
        "unanswerable_decline": sum(declined(it, th) for it in una) / len(una) if una else float("nan"),
        "gold_token_recall": sum(0.0 if r else it.recall for it, r in zip(ans, refused, strict=True)) / len(ans)
        if ans
        else float("nan"),
    }


def grid(items: Sequence[Item]) -> tuple[list[float], list[float], list[float], list[float]]:
    scores = sorted({round(it.best_score, 2) for it in items})
    return (
        [-1e9, *scores],
        [i / 10 for i in range(0, 8)],
        [i / 10 for i in range(3, 11)],
        [i / 4 for i in range(12, 33)] + [99.0],
    )


def choose(items: Sequence[Item], target: float) -> tuple[Thresholds, dict[str, float]]:
    """The thresholds with the fewest answerable refusals among those declining at least ``target`` of the
    unanswerable questions (ties: more gold-token recall, then the loosest thresholds)."""
    best: tuple[Any, ...] | None = None
    scores, coverages, unsupported, rarities = grid(items)
    for th in itertools.product(scores, coverages, unsupported, rarities):
        r = rates(items, th)
        if r["unanswerable_decline"] < target:
            continue
        key = (r["answerable_refusal"], -r["gold_token_recall"], th[0], th[1], -th[2], -th[3])
        if best is None or key < best[0]:
            best = (key, th, r)
    if best is None:
        raise SystemExit(f"no thresholds decline {target:.0%} of the unanswerable questions")
    return best[1], best[2]


def replay(path: Path, items: Sequence[Item], th: Thresholds, out: Path) -> None:
    from eval.qa import summarize
    from eval.report import write_json, write_jsonl

    rows = read_rows(path)
    replayed = []
    for row, it in zip(rows, items, strict=True):
        if declined(it, th) and not row["refused"]:
            row = {**row, "refused": True, "citations": [], "answer": "The answer is not in the documents."}
        replayed.append(row)
    write_jsonl(out / "items.jsonl", replayed)
    summary = summarize(replayed)
    write_json(out / "summary.json", {"thresholds": list(th), **summary})
    print(json.dumps({k: v for k, v in summary.items() if not k.endswith(("_ci95", "_n"))}))


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("items", type=Path, help="items.jsonl of a gate-open rag eval qa run")
    p.add_argument("--target-decline", type=float, default=0.92, help="unanswerable decline rate to reach")
    p.add_argument(
        "--at",
        nargs=4,
        type=float,
        action="append",
        metavar=("MIN_SCORE", "MIN_COVERAGE", "MAX_UNSUPPORTED", "MAX_MISSING_IDF"),
        help="also report these thresholds (repeatable; the shipped defaults: 0.6 0 0.7 6.16)",
    )
    p.add_argument("--index", type=Path, help="index to recompute missing_idf from (runs recorded before it)")
    p.add_argument(
        "--replay",
        type=Path,
        metavar="OUT",
        help="write OUT/items.jsonl and OUT/summary.json: the run's rows with the first --at thresholds applied "
        "(exact for thresholds at least as strict as the run's; latencies stay those measured, an upper bound)",
    )
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    items = load(args.items, index=args.index)
    th, r = choose(items, args.target_decline)
    rows = [
        ["LLM alone (gate open)", *rates(items, NO_GATE).values(), "", "", "", ""],
        ["best sentence score only", *rates(items, (th[0], 0.0, 1.0, 99.0)).values(), th[0], "", "", ""],
        ["question coverage only", *rates(items, (-1e9, th[1], 1.0, 99.0)).values(), "", th[1], "", ""],
        ["answer support only", *rates(items, (-1e9, 0.0, th[2], 99.0)).values(), "", "", th[2], ""],
        ["missing rare term only", *rates(items, (-1e9, 0.0, 1.0, th[3])).values(), "", "", "", th[3]],
        ["chosen (all four)", *r.values(), *th],
    ]
    for at in args.at or []:
        point = (at[0], at[1], at[2], at[3])
        rows.append(["--at", *rates(items, point).values(), *point])
    headers = [
        "decision",
        "answerable refused",
        "unanswerable declined",
        "gold-token recall",
        "min_score",
        "min_coverage",
        "max_unsupported",
        "max_missing_idf",
    ]
    print(f"{sum(it.answerable for it in items)} answerable, {sum(not it.answerable for it in items)} unanswerable")
    print(format_table(headers, rows, precision=3))
    curve = []
    for value in sorted({round(it.best_score, 2) for it in items} | {th[0]}):
        c = rates(items, (value, th[1], th[2], th[3]))
        curve.append([value, c["answerable_refusal"], c["unanswerable_decline"], c["gold_token_recall"]])
    thinned = curve[:: max(1, len(curve) // 25)]
    print("\ntrade-off curve: min_score swept, min_coverage and max_unsupported at their chosen values")
    print(
        format_table(
            ["min_score", "answerable refused", "unanswerable declined", "gold-token recall"], thinned, precision=3
        )
    )
    if args.replay and args.at:
        replay(args.items, items, tuple(args.at[0]), args.replay)  # type: ignore[arg-type]
    if args.json:
        keys = ("min_score", "min_coverage", "max_unsupported", "max_missing_idf")
        print(json.dumps({**dict(zip(keys, th, strict=True)), **r}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
