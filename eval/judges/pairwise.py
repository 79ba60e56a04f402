"""Pairwise comparison (MT-Bench / AlpacaEval): which of two answers is better, or a tie. Every pair
is judged in both orders; a pair whose verdicts disagree (after mapping positions back to systems)
counts as a tie. Reports win rates, position consistency, first-position preference and, optionally,
a length-controlled win rate (logistic regression on the length difference, read at zero difference).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from eval.judges.base import CallOptions, ChatLLM, Message, Usage, call_json, format_contexts
from rag.errors import JudgeError

Position = Literal["first", "second", "tie"]
Outcome = Literal["a", "b", "tie"]

SYSTEM = """You are an impartial judge. Compare two answers to the QUESTION and decide which one is \
better: more correct, more helpful, better supported by the documents when there are any. Do not let \
the order of the answers or their length influence you. Write a short explanation first, then the \
winner: "first", "second" or "tie". Reply with JSON only."""

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "explanation": {"type": "string", "maxLength": 400},
        "winner": {"type": "string", "enum": ["first", "second", "tie"]},
    },
    "required": ["explanation", "winner"],
}


@dataclass(frozen=True)
class PairVerdict:
    """One pair judged in both orders. ``outcome`` is in system terms after the consistency rule."""

    item_id: str
    status: Literal["ok", "error"]
    outcome: Outcome | None
    ab: Position | None
    ba: Position | None
    reason: str
    usage: Usage = field(default_factory=Usage)

    @property
    def consistent(self) -> bool:
        return (self.status == "ok" and self.outcome != "tie") or (self.ab == "tie" and self.ba == "tie")

    def to_dict(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "status": self.status,
            "outcome": self.outcome,
            "order_ab": self.ab,
            "order_ba": self.ba,
            "consistent": self.consistent,
            "reason": self.reason,
            "usage": self.usage.to_dict(),
        }


def parse_winner(data: dict[str, Any]) -> tuple[Position, str]:
    winner = data.get("winner")
    if winner not in ("first", "second", "tie"):
        raise JudgeError(f"'winner' must be 'first', 'second' or 'tie', got {winner!r}")
    return winner, str(data.get("explanation", "")).strip()


def combine(ab: Position, ba: Position) -> Outcome:
    """System outcome from the two orders: A first (``ab``) and B first (``ba``). Only agreement counts."""
    first = {"first": "a", "second": "b", "tie": "tie"}[ab]
    second = {"first": "b", "second": "a", "tie": "tie"}[ba]
    return first if first == second else "tie"  # type: ignore[return-value]


def build_messages(question: str, first: str, second: str, contexts: Sequence[str] = ()) -> list[Message]:
    docs = f"DOCUMENTS:\n{format_contexts(contexts)}\n\n" if contexts else ""
    user = f"{docs}QUESTION:\n{question.strip()}\n\nFIRST ANSWER:\n{first.strip()}\n\nSECOND ANSWER:\n{second.strip()}"
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


class PairwiseJudge:
    name = "pairwise"

    def __init__(self, llm: ChatLLM, *, options: CallOptions | None = None) -> None:
        self.llm = llm
        self.options = options or CallOptions(max_tokens=300)

    def compare(self, question: str, a: str, b: str, *, contexts: Sequence[str] = (), item_id: str = "") -> PairVerdict:
        usage = Usage()
        try:
            (ab, why_ab), _ = call_json(
                self.llm,
                build_messages(question, a, b, contexts),
                schema=SCHEMA,
                parse=parse_winner,
                options=self.options,
                usage=usage,
            )
            (ba, why_ba), _ = call_json(
                self.llm,
                build_messages(question, b, a, contexts),
                schema=SCHEMA,
                parse=parse_winner,
                options=self.options,
                usage=usage,
            )
        except JudgeError as e:
            return PairVerdict(item_id, "error", None, None, None, str(e), usage)
        outcome = combine(ab, ba)
        reason = f"A first: {ab} ({why_ab}) / B first: {ba} ({why_ba})"
        return PairVerdict(item_id, "ok", outcome, ab, ba, reason, usage)


@dataclass(frozen=True)
class PairwiseSummary:
    n: int
    errors: int
    wins_a: int
    wins_b: int
    ties: int
    win_rate_a: float
    position_consistency: float
    first_position_preference: float
    second_position_preference: float
    length_controlled_win_rate_a: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def summarise(
    verdicts: Sequence[PairVerdict], *, len_a: Sequence[int] | None = None, len_b: Sequence[int] | None = None
) -> PairwiseSummary:
    """Win rate of A with ties as half; position consistency = share of pairs whose two orders agree;
    first-position preference = share of pairs where the judge picked whichever answer came first in
    both orders (MT-Bench Table 2's "biased to first"). Errors are excluded and counted."""
    ok = [v for v in verdicts if v.status == "ok"]
    n = len(ok)
    wa = sum(v.outcome == "a" for v in ok)
    wb = sum(v.outcome == "b" for v in ok)
    ties = n - wa - wb
    nan = math.nan
    lc = None
    if len_a is not None and len_b is not None:
        idx = [i for i, v in enumerate(verdicts) if v.status == "ok"]
        lc = length_controlled_win_rate(
            [verdicts[i].outcome for i in idx],  # type: ignore[misc]
            [len_a[i] - len_b[i] for i in idx],
        )
    return PairwiseSummary(
        n=n,
        errors=len(verdicts) - n,
        wins_a=wa,
        wins_b=wb,
        ties=ties,
        win_rate_a=(wa + 0.5 * ties) / n if n else nan,
        position_consistency=sum(v.consistent for v in ok) / n if n else nan,
        first_position_preference=sum(v.ab == "first" and v.ba == "first" for v in ok) / n if n else nan,
        second_position_preference=sum(v.ab == "second" and v.ba == "second" for v in ok) / n if n else nan,
        length_controlled_win_rate_a=lc,
    )


def length_controlled_win_rate(
    outcomes: Sequence[Outcome], length_diff: Sequence[float], *, l2: float = 1.0, iters: int = 50
) -> float | None:
    """AlpacaEval-style length control, simplified: fit P(A wins) = sigmoid(w0 + w1 * tanh(d / sd(d)))
    on the pairs (ties as half a win each way, L2-regularised Newton steps) and return sigmoid(w0),
    the win rate A would have at equal length. ``None`` with fewer than 2 pairs."""
    if len(outcomes) < 2:
        return None
    y = np.array([{"a": 1.0, "b": 0.0, "tie": 0.5}[o] for o in outcomes])
    d = np.asarray(length_diff, dtype=np.float64)
    sd = d.std() or 1.0
    x = np.stack([np.ones_like(d), np.tanh(d / sd)], axis=1)
    w = np.zeros(2)
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-(x @ w)))
        grad = x.T @ (p - y) + l2 * np.array([0.0, w[1]])
        hess = (x * (p * (1 - p))[:, None]).T @ x + l2 * np.diag([1e-6, 1.0])
        w -= np.linalg.solve(hess, grad)
    return float(1.0 / (1.0 + math.exp(-w[0])))
