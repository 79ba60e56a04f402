"""Re-score finished ``rag eval judges --mtbench`` runs under every verdict rule, without the LLM.

For each run folder (its ``items.jsonl``): the paper's swap rule, the margin rule at a grid of tie bands,
and the margin rule with its tie band chosen by cross-validation over questions (the band that maximises
agreement with ties on the other folds, applied to the held-out fold; labels never pick a band for the
votes they are scored on). Every row is on exactly the pairs the judge scored, beside GPT-4 and
"the longer answer wins", with the paired interval of the gain over the length baseline.

    python benchmarks/mtbench_judges.py runs/mtbench-dev-pointwise runs/mtbench-dev-pairwise
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from eval.mtbench import (  # noqa: E402
    GPT4,
    LONGER,
    MTBenchPair,
    Winner,
    agreement,
    bootstrap_agreement,
    comparisons,
    load_mtbench,
    margin_rule,
    position_stats,
    read_rows,
)
from eval.mtbench_run import order_verdicts, row_verdict  # noqa: E402

FOLDS = 5


def _pct(x: float) -> str:
    return f"{100 * x:5.1f}%"


def cv_band_verdicts(
    pairs: list[MTBenchPair], rows: dict[str, dict[str, Any]], bands: list[float]
) -> dict[str, Winner]:
    """Margin-rule verdicts whose tie band is chosen on the other question folds."""
    questions = sorted({p.question_id for p in pairs})
    fold_of = {q: i % FOLDS for i, q in enumerate(questions)}
    margins = {p.key: row_verdict(rows[p.key], "margin", 0.0)[1] for p in pairs}
    out: dict[str, Winner] = {}
    for fold in range(FOLDS):
        train = [p for p in pairs if fold_of[p.question_id] != fold]

        def score(band: float, train: list[MTBenchPair] = train) -> float:
            verdicts = {p.key: margin_rule(margins[p.key], band) for p in train}
            value, _ = agreement(comparisons(train, verdicts), ties=True)
            return value

        best = max(bands, key=lambda b: (score(b), -b))
        for p in pairs:
            if fold_of[p.question_id] == fold:
                out[p.key] = margin_rule(margins[p.key], best)
    return out


def line(name: str, pairs: list[MTBenchPair], verdicts: dict[str, Winner], longer: dict[str, Winner]) -> str:
    units = comparisons(pairs, verdicts)
    other = comparisons(pairs, longer)
    w, n = agreement(units, ties=True)
    wo, n_wo = agreement(units, ties=False)
    lo, hi = bootstrap_agreement(units, ties=False)
    base, _ = agreement(other, ties=False)
    dlo, dhi = bootstrap_agreement(units, ties=False, other=other)
    ties = sum(v == "tie" for v in verdicts.values()) / len(verdicts)
    decisive = [p for p in pairs if verdicts[p.key] != "tie"]
    mine, theirs = comparisons(decisive, verdicts), comparisons(decisive, longer)
    same = agreement(mine, ties=False)[0] - agreement(theirs, ties=False)[0]
    slo, shi = bootstrap_agreement(mine, ties=False, other=theirs)
    return (
        f"{name:<40} {_pct(w)} {_pct(wo)} [{100 * lo:4.1f}, {100 * hi:4.1f}] {n_wo:>5}/{n:<5} {_pct(ties)} "
        f"{100 * (wo - base):+5.1f} [{100 * dlo:+5.1f}, {100 * dhi:+5.1f}] "
        f"{100 * same:+5.1f} [{100 * slo:+5.1f}, {100 * shi:+5.1f}]"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="output folders of rag eval judges --mtbench")
    parser.add_argument("--mtbench", type=Path, default=REPO.parent / "shared" / "data" / "mtbench")
    args = parser.parse_args()
    all_pairs = {p.key: p for p in load_mtbench(args.mtbench).pairs}
    header = (
        f"{'judge / rule':<40} {'w/ ties':>6} {'w/o ties [95% CI]':>20} {'votes w/o/w':>11} {'ties':>6} "
        f"{'- longer-wins w/o ties [95% CI]':>31} {'- longer-wins, same votes':>26}"
    )
    for run in args.runs:
        rows = {k: r for k, r in read_rows(run / "items.jsonl").items() if r.get("status") == "ok"}
        pairs = [all_pairs[k] for k in sorted(rows) if k in all_pairs]
        settings = json.loads((run / "run.json").read_text())
        votes = sum(len(p.votes) for p in pairs)
        print(f"\n{run}: {settings['judge']} ({settings['llm']}), {len(pairs)} pairs, {votes} expert votes")
        print(header)
        print("-" * len(header))
        longer = {p.key: p.longer for p in pairs}
        gpt4 = {p.key: p.gpt4 for p in pairs if p.gpt4 is not None}
        print(line(GPT4, [p for p in pairs if p.key in gpt4], gpt4, longer))
        print(line(LONGER, pairs, longer, longer))
        print(line("swap (paper)", pairs, {p.key: row_verdict(rows[p.key], "swap", 0.0)[0] for p in pairs}, longer))
        pointwise = settings["judge"] == "pointwise"
        bands = [0.0, 0.05, 0.1, 0.2, 0.3, 0.5] if pointwise else [0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5]
        for band in bands:
            verdicts = {p.key: row_verdict(rows[p.key], "margin", band)[0] for p in pairs}
            print(line(f"margin ±{band:g}", pairs, verdicts, longer))
        print(
            line(f"margin, band by {FOLDS}-fold CV over questions", pairs, cv_band_verdicts(pairs, rows, bands), longer)
        )
        if not pointwise:
            ok = list(rows.values())
            for rule in ("swap", "margin"):
                stats = position_stats(order_verdicts(ok, rule, 0.0).values())  # type: ignore[arg-type]
                print(
                    f"position ({rule} per-order verdicts): consistent {_pct(stats['position_consistency'])}, "
                    f"first {_pct(stats['first_position_bias'])}, second {_pct(stats['second_position_bias'])}"
                )
        usage = [r["usage"] for r in rows.values()]
        tokens = sum(u["prompt_tokens"] + u["completion_tokens"] for u in usage) / len(usage)
        seconds = sum(u["seconds"] for u in usage) / len(usage)
        print(f"cost: {tokens:.0f} tokens and {seconds:.1f} s of LLM time per pair ({60 / seconds:.1f} pairs/min)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
