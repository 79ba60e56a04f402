"""``rag eval judges --mtbench``: judge MT-Bench pairs (resumable rows), turn the stored probabilities
into verdicts under a rule, and score them beside GPT-4 and "the longer answer wins" on the same pairs.

Rows (``OUT/items.jsonl``, one per judged pair) keep what the LLM said (each order's letter
probabilities, or each answer's grade distribution), so a different ``rule`` or ``tie_band`` re-scores a
finished run without the LLM. Rules:

- ``swap`` (the paper's): each order's most likely letter (pointwise: each answer's most likely grade);
  A wins only when both orders say so, anything else is a tie.
- ``margin``: a signed preference for A averaged over both orders, ``(logodds_AB - logodds_BA) / 2``
  with ``logodds = log P(first) - log P(second)`` (pointwise: the expected-grade difference); a constant
  position bias cancels out of it. A tie when ``|margin| <= tie_band``. Each order's own verdict, for the
  position statistics, is its log-odds minus the run's median position bias (estimated without labels).
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from eval.judges import MTBenchJudgeName
from eval.judges.mtbench import LETTERS, PointwiseGrader, argmax_position, log_odds
from eval.mtbench import (
    GPT4,
    LONGER,
    LoadReport,
    MTBenchPair,
    OrderVerdicts,
    Position,
    Winner,
    format_table,
    human_summary,
    judge_metrics,
    margin_rule,
    read_rows,
    reference_metrics,
    swap_rule,
)
from rag import jsonl
from rag.errors import ConfigError

Rule = Literal["swap", "margin"]
RULES: tuple[Rule, ...] = ("swap", "margin")


class PairJudgeLike(Protocol):
    name: MTBenchJudgeName

    def judge(self, pair: MTBenchPair) -> dict[str, Any]: ...


@dataclass(frozen=True)
class RunSettings:
    judge: MTBenchJudgeName
    llm: str
    max_answer_tokens: int
    rule: Rule = "swap"
    tie_band: float = 0.0

    @property
    def label(self) -> str:
        return f"{self.judge}[{self.rule}{'' if self.rule == 'swap' else f' ±{self.tie_band:g}'}] ({self.llm})"

    def identity(self) -> dict[str, Any]:
        """What makes stored rows reusable (the rule and band only re-score them)."""
        return {"judge": self.judge, "llm": self.llm, "max_answer_tokens": self.max_answer_tokens}


def _pointwise_argmax(probs: Mapping[str, float]) -> int:
    return int(max(probs, key=lambda g: (probs[g], -int(g))))


def row_verdict(row: Mapping[str, Any], rule: Rule, tie_band: float) -> tuple[Winner, float]:
    """(winner, margin) of one ok row under ``rule``."""
    if "grades" in row:
        ga, gb = row["grades"]["a"], row["grades"]["b"]
        margin = float(row["expected_grade_a"]) - float(row["expected_grade_b"])
        if rule == "swap":
            a, b = _pointwise_argmax(ga), _pointwise_argmax(gb)
            return ("model_a" if a > b else "model_b" if b > a else "tie"), margin
        return margin_rule(margin, tie_band), margin
    ab, ba = row["order_ab"]["probs"], row["order_ba"]["probs"]
    margin = (log_odds(ab) - log_odds(ba)) / 2
    if rule == "swap":
        return swap_rule(argmax_position(ab), argmax_position(ba)), margin
    return margin_rule(margin, tie_band), margin


def _position(value: float, band: float) -> Position:
    return "first" if value > band else "second" if value < -band else "tie"


def order_verdicts(rows: Sequence[Mapping[str, Any]], rule: Rule, tie_band: float) -> dict[str, OrderVerdicts]:
    """Each pair's verdict in each order (pairwise judges only). ``swap``: the most likely letter;
    ``margin``: the order's log-odds less the run's median position bias, with the tie band."""
    pairwise = [r for r in rows if r.get("status") == "ok" and "order_ab" in r]
    if rule == "swap":
        return {
            str(r["key"]): OrderVerdicts(
                argmax_position(r["order_ab"]["probs"]), argmax_position(r["order_ba"]["probs"])
            )
            for r in pairwise
        }
    if not pairwise:
        return {}
    bias = statistics.median(
        (log_odds(r["order_ab"]["probs"]) + log_odds(r["order_ba"]["probs"])) / 2 for r in pairwise
    )
    return {
        str(r["key"]): OrderVerdicts(
            _position(log_odds(r["order_ab"]["probs"]) - bias, tie_band),
            _position(log_odds(r["order_ba"]["probs"]) - bias, tie_band),
        )
        for r in pairwise
    }


def position_bias(rows: Sequence[Mapping[str, Any]]) -> float | None:
    """The run's median preference for the first position, in log-odds (0 = none)."""
    values = [
        (log_odds(r["order_ab"]["probs"]) + log_odds(r["order_ba"]["probs"])) / 2
        for r in rows
        if r.get("status") == "ok" and "order_ab" in r
    ]
    return statistics.median(values) if values else None


def run_mtbench(
    pairs: Sequence[MTBenchPair],
    judge: PairJudgeLike,
    *,
    settings: RunSettings,
    out_dir: Path,
    on_item: Callable[[int, int, dict[str, Any]], None] | None = None,
    load: LoadReport | None = None,
) -> dict[str, Any]:
    """Judge the pairs not yet judged ok in ``out_dir`` (appending rows), then score. Returns metrics.json."""
    out_dir.mkdir(parents=True, exist_ok=True)
    items = out_dir / "items.jsonl"
    _check_settings(out_dir, settings)
    done = read_rows(items)
    if isinstance(judge, PointwiseGrader):
        for stored in done.values():
            judge.remember(stored)
    todo = [p for p in pairs if done.get(p.key, {}).get("status") != "ok"]
    start = time.perf_counter()
    judged = 0
    with jsonl.appender(items) as append:
        for i, pair in enumerate(todo, 1):
            result = judge.judge(pair)
            row: dict[str, Any] = {
                "key": pair.key,
                "question_id": pair.question_id,
                "category": pair.category,
                "turn": pair.turn,
                "model_a": pair.model_a,
                "model_b": pair.model_b,
                "judge": settings.judge,
                **result,
            }
            if row["status"] == "ok":
                row["winner"], row["margin"] = row_verdict(row, settings.rule, settings.tie_band)
                row["rule"] = settings.rule if settings.rule == "swap" else f"margin ±{settings.tie_band:g}"
            append(row)
            done[pair.key] = row
            judged += 1
            if on_item:
                on_item(i, len(todo), row)
    elapsed = time.perf_counter() - start
    return score_run(pairs, done, settings=settings, out_dir=out_dir, judged_now=judged, seconds=elapsed, load=load)


def _check_settings(out_dir: Path, settings: RunSettings) -> None:
    path = out_dir / "run.json"
    if path.is_file():
        stored = json.loads(path.read_text(encoding="utf-8"))
        if stored != settings.identity():
            raise ConfigError(
                f"{out_dir}: its rows were judged with {stored}, not {settings.identity()}; choose another --out "
                "(only --rule and --tie-band may change on a finished run)"
            )
    else:
        path.write_text(json.dumps(settings.identity(), indent=2, sort_keys=True) + "\n", encoding="utf-8")


def score_run(
    pairs: Sequence[MTBenchPair],
    rows: Mapping[str, Mapping[str, Any]],
    *,
    settings: RunSettings,
    out_dir: Path | None = None,
    judged_now: int = 0,
    seconds: float = 0.0,
    load: LoadReport | None = None,
) -> dict[str, Any]:
    """metrics.json: the judge (under ``settings.rule``), ``gpt-4`` and ``longer-wins`` on exactly the
    pairs the judge scored, plus human statistics, errors and cost."""
    ok = [rows[p.key] for p in pairs if rows.get(p.key, {}).get("status") == "ok"]
    errors = sum(rows.get(p.key, {}).get("status") == "error" for p in pairs)
    scored_keys = {str(r["key"]) for r in ok}
    scored = [p for p in pairs if p.key in scored_keys]
    verdicts = {str(r["key"]): row_verdict(r, settings.rule, settings.tie_band)[0] for r in ok}
    orders = order_verdicts(ok, settings.rule, settings.tie_band) if settings.judge != "pointwise" else None
    longer = {p.key: p.longer for p in scored}
    mine = judge_metrics(scored, verdicts, orders=orders, baseline=longer)
    if settings.judge == "pointwise":
        mine["position_consistency_note"] = "each answer is graded alone: no position to swap"
    mine["position_bias_logodds"] = position_bias(ok)
    mine["errors"] = errors
    usage = [r.get("usage", {}) for r in ok]
    calls = sum(int(u.get("calls", 0)) for u in usage)
    tokens = sum(int(u.get("prompt_tokens", 0)) + int(u.get("completion_tokens", 0)) for u in usage)
    mine["cost"] = {
        "llm_calls": calls,
        "tokens_per_pair": tokens / len(ok) if ok else None,
        "seconds_per_pair": sum(float(u.get("seconds", 0.0)) for u in usage) / len(ok) if ok else None,
        "pairs_per_min_this_run": 60 * judged_now / seconds if seconds > 0 and judged_now else None,
    }
    metrics: dict[str, Any] = {settings.label: mine, **reference_metrics(scored)}
    metrics["_settings"] = {
        **settings.identity(),
        "rule": settings.rule,
        "tie_band": settings.tie_band,
        "label": settings.label,
    }
    metrics["_humans"] = human_summary(scored)
    if load is not None:
        metrics["_data"] = {"skipped_rows": dict(load.skipped), "notes": load.notes}
    if out_dir is not None:
        (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return metrics


def format_report(metrics: Mapping[str, Any]) -> str:
    label = metrics["_settings"]["label"]
    m = metrics[label]
    lines = [format_table(metrics, [label, GPT4, LONGER])]
    h = metrics["_humans"]
    lines.append(
        f"\nhumans: {h['votes']} expert votes on {h['pairs']} pairs, ties {100 * h['tie_share']:.1f}%, "
        f"the longer answer picked in {100 * h['picks_longer']:.1f}% of decisive votes"
    )
    diff, ci = m.get("vs_baseline_without_ties"), m.get("vs_baseline_without_ties_ci95")
    if diff is not None and not math.isnan(diff):
        lines.append(
            f"{label} - longer-wins, agreement without ties: {100 * diff:+.1f} points "
            f"(95% CI {100 * ci[0]:+.1f} to {100 * ci[1]:+.1f}, paired by question)"
        )
    same, same_ci = m.get("vs_baseline_same_votes"), m.get("vs_baseline_same_votes_ci95")
    if same is not None and not math.isnan(same):
        lines.append(
            f"on the votes where it is decisive ({100 * m['decisive_share']:.0f}% of pairs): {100 * same:+.1f} points "
            f"over longer-wins (95% CI {100 * same_ci[0]:+.1f} to {100 * same_ci[1]:+.1f})"
        )
    if m.get("position_consistency") is not None:
        lines.append(
            f"position: consistent {100 * m['position_consistency']:.1f}%, first-position bias "
            f"{100 * m['first_position_bias']:.1f}%, second {100 * m['second_position_bias']:.1f}%"
        )
    cost = m["cost"]
    if cost["tokens_per_pair"] is not None:
        speed = cost["pairs_per_min_this_run"]
        lines.append(
            f"cost: {cost['tokens_per_pair']:.0f} tokens and {cost['seconds_per_pair']:.1f} s of LLM time per pair"
            + (f"; {speed:.2f} pairs/min in this run" if speed else "")
        )
    if m["errors"]:
        lines.append(f"{m['errors']} pair(s) failed (status error in items.jsonl) and are left out")
    return "\n".join(lines)


def check_rule(rule: str, tie_band: float) -> Rule:
    if rule not in RULES:
        raise ConfigError(f"--rule {rule!r}: choose {' or '.join(RULES)}")
    if tie_band < 0:
        raise ConfigError(f"--tie-band {tie_band}: must be >= 0")
    return rule  # type: ignore[return-value]


__all__ = ["LETTERS", "RULES", "RunSettings", "format_report", "row_verdict", "run_mtbench", "score_run"]
