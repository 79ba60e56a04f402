"""Pairwise judging: both orders, inconsistent -> tie, position consistency and bias, length control."""

from __future__ import annotations

import pytest

from eval.judges.pairwise import PairVerdict, PairwiseJudge, combine, length_controlled_win_rate, summarise
from tests.eval.judge_fakes import FakeLLM


def test_combine_maps_positions_back_to_systems() -> None:
    assert combine("first", "second") == "a"  # A won in both orders
    assert combine("second", "first") == "b"
    assert combine("tie", "tie") == "tie"


@pytest.mark.parametrize(("ab", "ba"), [("first", "first"), ("second", "second"), ("tie", "first"), ("second", "tie")])
def test_inconsistent_pair_becomes_a_tie(ab: str, ba: str) -> None:
    assert combine(ab, ba) == "tie"  # type: ignore[arg-type]


def test_judge_asks_both_orders_and_a_position_biased_judge_only_ties() -> None:
    llm = FakeLLM([{"explanation": "the first one is better", "winner": "first"}])
    v = PairwiseJudge(llm).compare("q", "answer A", "answer B", item_id="1")
    firsts = [c["messages"][-1]["content"] for c in llm.calls]
    assert len(firsts) == 2
    assert firsts[0].index("answer A") < firsts[0].index("answer B")
    assert firsts[1].index("answer B") < firsts[1].index("answer A")
    assert v.outcome == "tie" and not v.consistent
    s = summarise([v, v])
    assert s.position_consistency == 0.0 and s.first_position_preference == 1.0 and s.win_rate_a == 0.5


def test_consistent_judge_and_summary_math() -> None:
    def respond(messages: list[dict[str, str]]) -> dict[str, str]:
        user = messages[-1]["content"]
        first_is_a = user.index("GOOD") < user.index("BAD")
        return {"explanation": "", "winner": "first" if first_is_a else "second"}

    judge = PairwiseJudge(FakeLLM(respond=respond))
    wins = judge.compare("q", "GOOD", "BAD")
    losses = judge.compare("q", "BAD", "GOOD")
    err = PairVerdict("x", "error", None, None, None, "boom")
    s = summarise([wins, wins, losses, err])
    assert (s.n, s.errors, s.wins_a, s.wins_b, s.ties) == (3, 1, 2, 1, 0)
    assert s.win_rate_a == pytest.approx(2 / 3) and s.position_consistency == 1.0
    assert s.first_position_preference == 0.0


def test_length_control_removes_a_pure_verbosity_effect() -> None:
    # A wins exactly when it is longer: its raw win rate is 0.75 but at equal length it should be near 0.5.
    outcomes = ["a", "a", "a", "b"] * 5
    diffs = [100, 80, 120, -90] * 5
    lc = length_controlled_win_rate(outcomes, diffs)  # type: ignore[arg-type]
    raw = sum(o == "a" for o in outcomes) / len(outcomes)
    assert lc is not None and abs(lc - 0.5) < abs(raw - 0.5)
    assert length_controlled_win_rate(["a"], [1.0]) is None
