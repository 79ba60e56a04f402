"""MT-Bench judge meta-evaluation: the paper's agreement protocol (reproduced on the stored GPT-4
verdicts), the loader's orientation and malformed-row handling, verdict rules, position statistics,
clustered intervals, and the resumable run with deterministic judges, through Python and the CLI."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eval.judges.mtbench import (
    PairJudge,
    PointwiseGrader,
    pair_messages,
    token_distribution,
    truncate,
)
from eval.mtbench import (
    GPT4,
    LONGER,
    MTBenchPair,
    OrderVerdicts,
    Scored,
    Vote,
    agreement,
    bootstrap_agreement,
    judge_metrics,
    load_mtbench,
    margin_rule,
    position_stats,
    reference_metrics,
    stratified_sample,
    swap_rule,
)
from eval.mtbench_run import RunSettings, row_verdict, run_mtbench
from rag.errors import ConfigError, EvalDataError, JudgeError
from tests.eval.judge_fakes import FakeCompletion, FakeLLM, chat_stub_server


def test_stored_gpt4_verdicts_reproduce_the_published_agreement(shared_data: Path) -> None:
    """The README of ../shared/data/mtbench (FastChat's compute_agreement.py protocol, expert votes):
    GPT-4 vs humans turn 1 0.656 / 0.832, turn 2 0.637 / 0.850 (with / without ties)."""
    load = load_mtbench(shared_data / "mtbench")
    assert not load.skipped
    assert load.n_votes == 1301
    gpt4 = reference_metrics(load.pairs)[GPT4]
    got = {
        t: (round(gpt4[t]["agreement_with_ties"], 3), round(gpt4[t]["agreement_without_ties"], 3))
        for t in ("turn1", "turn2")
    }
    assert got == {"turn1": (0.656, 0.832), "turn2": (0.637, 0.850)}
    assert gpt4["turn1"]["n_with_ties"] == 654 and gpt4["turn2"]["n_with_ties"] == 647
    lo, hi = gpt4["turn1"]["agreement_without_ties_ci95"]
    assert lo < 0.832 < hi and hi - lo < 0.2
    # GPT-4's position consistency: the pairs whose stored verdict is not "tie (inconsistent)"
    rows = [json.loads(line) for line in (shared_data / "mtbench" / "gpt4_pairs.jsonl").open(encoding="utf-8")]
    inconsistent = {
        (r["turn"], r["question_id"], *sorted((r["model_a"], r["model_b"])))
        for r in rows
        if r["winner"] == "tie (inconsistent)"
    }
    judged = [(p.turn, p.question_id, p.model_a, p.model_b) for p in load.pairs if p.gpt4 is not None]
    expected = 1 - sum(k in inconsistent for k in judged) / len(judged)
    assert gpt4["position_n"] == len(judged) == 794
    assert gpt4["position_consistency"] == pytest.approx(expected) and 0.5 < expected < 0.95


def _row(qid: int, turn: int, a: str, b: str, winner: str, judge: str = "expert_0", **extra: Any) -> dict[str, Any]:
    row = {
        "question_id": qid,
        "category": "writing" if qid < 100 else "math",
        "turn": turn,
        "model_a": a,
        "model_b": b,
        "question": f"question {qid} turn {turn}",
        "answer_a": f"answer by {a}" + " more words" * (3 if a == "m-long" else 0),
        "answer_b": f"answer by {b}" + " more words" * (3 if b == "m-long" else 0),
        "winner": winner,
        "judge": judge,
        "judge_type": judge.split("_")[0],
    }
    if turn == 2:
        row |= {
            "prev_question": f"question {qid} turn 1",
            "prev_answer_a": f"first by {a}",
            "prev_answer_b": f"first by {b}",
        }
    return row | extra


def _write(folder: Path, human: list[Any], gpt4: list[Any], questions: list[Any] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in (("human_pairs", human), ("gpt4_pairs", gpt4), ("questions", questions or [])):
        (folder / f"{name}.jsonl").write_text(
            "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8"
        )
    return folder


@pytest.fixture()
def tiny(tmp_path: Path) -> Path:
    human = [
        _row(81, 1, "m-long", "m-short", "model_a"),
        _row(81, 1, "m-short", "m-long", "model_a", judge="expert_1"),  # reversed order: m-short wins
        _row(81, 1, "m-long", "m-short", "tie", judge="author_0"),  # not an expert
        _row(81, 2, "m-long", "m-short", "model_b"),
        _row(111, 1, "m-long", "m-short", "tie"),
        _row(111, 2, "m-short", "m-long", "model_b"),  # m-long wins
        _row(112, 1, "m-long", "m-short", "model_a"),
        _row(112, 2, "m-long", "m-short", "model_a"),
    ]
    gpt4 = [
        _row(81, 1, "m-short", "m-long", "model_b", judge="gpt-4"),  # m-long, stored in the other order
        _row(81, 2, "m-long", "m-short", "tie (inconsistent)", judge="gpt-4"),
        _row(111, 1, "m-long", "m-short", "model_a", judge="gpt-4"),
        _row(111, 2, "m-long", "m-short", "model_a", judge="gpt-4"),
        _row(112, 1, "m-long", "m-short", "model_b", judge="gpt-4"),
        _row(112, 2, "m-long", "m-short", "model_a", judge="gpt-4"),
    ]
    questions = [{"question_id": 111, "category": "math", "turns": ["q1", "q2"], "reference": ["ref 1", "ref 2"]}]
    return _write(tmp_path / "mtbench", human, gpt4, questions)


def test_loader_orients_votes_to_sorted_models_and_keeps_experts(tiny: Path) -> None:
    load = load_mtbench(tiny)
    pairs = {p.key: p for p in load.pairs}
    p = pairs["q81-t1-m-long-vs-m-short"]
    assert [v.winner for v in p.votes] == ["model_a", "model_b"]  # the reversed vote flipped; the author left out
    assert p.gpt4 == "model_a" and p.longer == "model_a"
    assert pairs["q81-t2-m-long-vs-m-short"].questions == ("question 81 turn 1", "question 81 turn 2")
    assert pairs["q81-t2-m-long-vs-m-short"].gpt4 == "tie"
    assert pairs["q111-t2-m-long-vs-m-short"].reference == ("ref 1", "ref 2")
    assert pairs["q111-t1-m-long-vs-m-short"].reference == ("ref 1",)
    assert pairs["q81-t1-m-long-vs-m-short"].reference is None
    assert load.n_votes == 7
    assert len(load_mtbench(tiny, voters="all").pairs[0].votes) == 3


def test_malformed_rows_are_counted_and_skipped_never_a_crash(tmp_path: Path) -> None:
    human = [
        _row(81, 1, "x", "y", "model_a"),
        "{not json",
        _row(81, 1, "x", "y", "both"),  # bad winner
        _row(81, 3, "x", "y", "tie"),  # bad turn
        {k: v for k, v in _row(82, 2, "x", "y", "tie").items() if k != "prev_answer_b"},  # turn 2 without history
        _row(83, 1, "x", "x", "tie"),  # a model against itself
        [1, 2],
    ]
    load = load_mtbench(_write(tmp_path / "m", human, ["oops"]))
    assert len(load.pairs) == 1
    assert load.skipped == {"human_pairs.jsonl": 6, "gpt4_pairs.jsonl": 1}
    assert any("line 3" in n and "both" in n for n in load.notes)
    with pytest.raises(EvalDataError, match=r"no human_pairs\.jsonl"):
        load_mtbench(tmp_path / "nowhere")
    with pytest.raises(EvalDataError, match=r"no usable expert votes"):
        load_mtbench(_write(tmp_path / "e", ["{bad"], []))


def test_agreement_protocol_by_hand() -> None:
    units = [
        Scored(1, 1, "c", "model_a", "model_a"),  # agree
        Scored(1, 1, "c", "tie", "tie"),  # agree with ties only
        Scored(2, 1, "c", "model_b", "tie"),  # disagree with ties; dropped without
        Scored(2, 2, "c", "model_b", "model_a"),  # disagree
    ]
    assert agreement(units, ties=True) == (0.5, 4)
    assert agreement(units, ties=False) == (0.5, 2)
    assert math.isnan(agreement([], ties=True)[0])
    lo, hi = bootstrap_agreement(units, ties=True)
    assert 0.0 <= lo <= 0.5 <= hi <= 1.0
    assert bootstrap_agreement(units, ties=True, other=units) == (0.0, 0.0)


def test_rules_and_position_statistics() -> None:
    assert swap_rule("first", "second") == "model_a"
    assert swap_rule("second", "first") == "model_b"
    assert swap_rule("first", "first") == "tie"  # the same position twice: inconsistent
    assert swap_rule("tie", "tie") == "tie"
    assert margin_rule(0.3, 0.2) == "model_a" and margin_rule(-0.3, 0.2) == "model_b" and margin_rule(0.1, 0.2) == "tie"
    stats = position_stats(
        [
            OrderVerdicts("first", "second"),
            OrderVerdicts("first", "first"),
            OrderVerdicts("second", "second"),
            OrderVerdicts("tie", "tie"),
        ]
    )
    assert stats == {
        "position_consistency": 0.5,
        "first_position_bias": 0.25,
        "second_position_bias": 0.25,
        "position_n": 4,
    }


def test_row_verdicts_from_stored_probabilities() -> None:
    row = {
        "order_ab": {"probs": {"A": 0.5, "B": 0.3, "C": 0.2}},
        "order_ba": {"probs": {"A": 0.45, "B": 0.35, "C": 0.2}},
    }
    # the first position wins both times: inconsistent under the paper's rule...
    assert row_verdict(row, "swap", 0.0)[0] == "tie"
    # ...but A is preferred more when first than B is: the averaged log-odds favour A
    winner, margin = row_verdict(row, "margin", 0.0)
    assert winner == "model_a" and margin == pytest.approx((math.log(0.5 / 0.3) - math.log(0.45 / 0.35)) / 2, abs=1e-5)
    assert row_verdict(row, "margin", 0.2)[0] == "tie"
    graded = {
        "grades": {"a": {"7": 0.6, "8": 0.4}, "b": {"7": 0.7, "8": 0.3}},
        "expected_grade_a": 7.4,
        "expected_grade_b": 7.3,
    }
    assert row_verdict(graded, "swap", 0.0)[0] == "tie"  # both most likely 7
    assert row_verdict(graded, "margin", 0.05)[0] == "model_a"


def test_token_distribution_and_truncation() -> None:
    dist = token_distribution(
        {"A": math.log(0.5), " A": math.log(0.1), "B": math.log(0.2), "The": math.log(0.2)}, "ABC"
    )
    assert dist == pytest.approx({"A": 0.75, "B": 0.25, "C": 0.0})
    with pytest.raises(JudgeError, match="none of A, B, C"):
        token_distribution({"The": -0.1}, "ABC")
    text = " ".join(f"w{i}" for i in range(100))
    cut = truncate(text, 10, lambda t: len(t.split()))
    assert cut.endswith("[... truncated]") and 8 <= len(cut.split()) - 2 <= 12
    assert truncate("short", 10) == "short"


def _longer_first_llm() -> FakeLLM:
    """A judge that prefers whichever answer is longer (reads the prompt), with a slight first-position bias;
    grades an answer by its length."""

    def respond(messages: Any) -> Any:
        user = messages[-1]["content"]
        if "Rating (1-9)" in user:
            grade = "8" if "more words" in user.split("[The Start of Assistant's Answer]")[-1] else "4"
            return FakeCompletion(grade, logprobs=[{grade: math.log(0.7), "5": math.log(0.3)}])
        first = user[user.index("Start of Assistant A") : user.index("End of Assistant A")]
        second = user[user.index("Start of Assistant B") : user.index("End of Assistant B")]
        letter = "A" if first.count("more words") >= second.count("more words") else "B"
        other = "B" if letter == "A" else "A"
        return FakeCompletion(letter, logprobs=[{letter: math.log(0.6), other: math.log(0.3), "C": math.log(0.1)}])

    return FakeLLM(respond=respond)


def test_run_is_resumable_and_a_length_judge_matches_the_length_baseline(tiny: Path, tmp_path: Path) -> None:
    load = load_mtbench(tiny)
    pairs = stratified_sample(load.pairs, None)
    llm = _longer_first_llm()
    settings = RunSettings("pairwise", "fake", 320)
    out = tmp_path / "run"
    metrics = run_mtbench(pairs, PairJudge(llm), settings=settings, out_dir=out, load=load)
    assert len(llm.calls) == 2 * len(pairs)
    assert all(c["max_tokens"] == 1 and c["top_logprobs"] == 20 for c in llm.calls)
    mine = metrics[settings.label]
    for key in ("agreement_with_ties", "agreement_without_ties", "position_consistency", "n"):
        assert key in mine and key in metrics[GPT4] and key in metrics[LONGER]
    # it reads length only, so it agrees with "the longer answer wins" everywhere
    for key in ("agreement_with_ties", "agreement_without_ties"):
        assert mine[key] == metrics[LONGER][key]
    assert mine["position_consistency"] == 1.0 and mine["vs_baseline_without_ties"] == 0.0
    rows = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
    assert {r["key"] for r in rows} == {p.key for p in pairs}
    assert all(
        {"question_id", "turn", "model_a", "model_b", "order_ab", "order_ba", "winner"} <= r.keys() for r in rows
    )
    assert json.loads((out / "metrics.json").read_text())[GPT4]["n"] == metrics[GPT4]["n"]

    again = FakeLLM(replies=["unused"])
    run_mtbench(pairs, PairJudge(again), settings=settings, out_dir=out)
    assert again.calls == []  # everything was judged already
    rescored = run_mtbench(
        pairs, PairJudge(again), settings=RunSettings("pairwise", "fake", 320, "margin", 0.1), out_dir=out
    )
    assert again.calls == [] and rescored[RunSettings("pairwise", "fake", 320, "margin", 0.1).label]["n"] == mine["n"]
    with pytest.raises(ConfigError, match="choose another --out"):
        run_mtbench(pairs, PairJudge(again), settings=RunSettings("pointwise", "fake", 320), out_dir=out)


def test_pointwise_grades_each_answer_once(tiny: Path, tmp_path: Path) -> None:
    pairs = load_mtbench(tiny).pairs
    llm = _longer_first_llm()
    settings = RunSettings("pointwise", "fake", 320)
    metrics = run_mtbench(pairs, PointwiseGrader(llm), settings=settings, out_dir=tmp_path / "p")
    answers = {(p.question_id, p.turn, m) for p in pairs for m in (p.model_a, p.model_b)}
    assert len(llm.calls) == len(answers)
    mine = metrics[settings.label]
    assert mine["agreement_without_ties"] == metrics[LONGER]["agreement_without_ties"]
    assert mine["position_consistency"] is None and "no position" in mine["position_consistency_note"]


def test_judge_errors_are_rows_not_crashes(tiny: Path, tmp_path: Path) -> None:
    pairs = load_mtbench(tiny).pairs
    llm = FakeLLM(replies=[FakeCompletion("Well", logprobs=[{"Well": -0.1, "The": -2.0}])])
    settings = RunSettings("pairwise", "fake", 320)
    metrics = run_mtbench(pairs, PairJudge(llm), settings=settings, out_dir=tmp_path / "e")
    assert metrics[settings.label]["errors"] == len(pairs)
    assert metrics[settings.label]["n"] == 0


def test_reference_judge_puts_the_reference_in_the_prompt_for_math_only(tiny: Path) -> None:
    pairs = {p.key: p for p in load_mtbench(tiny).pairs}
    llm = _longer_first_llm()
    PairJudge(llm, reference=True).judge(pairs["q111-t2-m-long-vs-m-short"])
    PairJudge(llm, reference=True).judge(pairs["q81-t2-m-long-vs-m-short"])
    prompts = [c["messages"][-1]["content"] for c in llm.calls]
    assert "Reference answer" in prompts[0] and "ref 2" in prompts[0]
    assert "Reference" not in prompts[2]
    swapped = pair_messages(pairs["q81-t1-m-long-vs-m-short"], ["B text"], ["A text"])[-1]["content"]
    assert swapped.index("B text") < swapped.index("A text")


def test_length_baseline_never_ties_on_unequal_answers() -> None:
    pair = MTBenchPair(1, "c", 1, "a", "b", ("q",), ("long answer",), ("short",), votes=(Vote("expert_0", "model_a"),))
    assert pair.longer == "model_a"
    metrics = judge_metrics([pair], {pair.key: "model_a"})
    assert metrics["agreement_with_ties"] == 1.0 and metrics["picks_longer"] == 1.0


def _prefer_longer(body: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI-compatible judge that prefers whichever assistant's answer is longer, with top log-probabilities."""
    user = body["messages"][-1]["content"]
    first = user[user.index("Start of Assistant A") : user.index("End of Assistant A")]
    second = user[user.index("Start of Assistant B") : user.index("End of Assistant B")]
    letter = "A" if len(first) >= len(second) else "B"
    top = [{"token": letter, "logprob": math.log(0.7), "bytes": None}] + [
        {"token": t, "logprob": math.log(0.15), "bytes": None} for t in "ABC" if t != letter
    ]
    step = {"token": letter, "logprob": math.log(0.7), "bytes": None, "top_logprobs": top}
    usage = {"prompt_tokens": 80, "completion_tokens": 1, "total_tokens": 81}
    return {"content": letter, "finish_reason": "length", "logprobs": {"content": [step]}, "usage": usage}


@pytest.fixture()
def logprob_server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    with chat_stub_server(_prefer_longer) as served:
        yield served


def test_cli_runs_the_suite_against_any_openai_compatible_endpoint(
    tiny: Path, tmp_path: Path, logprob_server: tuple[str, list[dict[str, Any]]], capsys: pytest.CaptureFixture[str]
) -> None:
    from rag.cli import main

    base_url, requests = logprob_server
    config = tmp_path / "judge.yaml"
    config.write_text(f"llm:\n  backend: openai\n  base_url: {base_url}\n  model: judge-model\n  max_retries: 0\n")
    out = tmp_path / "out"
    args = ["eval", "judges", "--mtbench", str(tiny), "--config", str(config), "--out", str(out), "--rule", "margin"]
    assert main([*args, "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    label = "pairwise[margin ±0] (openai:judge-model)"
    assert metrics[label]["agreement_without_ties"] == metrics[LONGER]["agreement_without_ties"]
    assert len(requests) == 2 * metrics[label]["pairs"]
    assert requests[0]["max_tokens"] == 1 and requests[0]["top_logprobs"] == 20 and requests[0]["logprobs"] is True
    assert sorted(json.loads((out / "metrics.json").read_text())) == sorted(
        [label, GPT4, LONGER, "_settings", "_humans", "_data"]
    )
    assert main([*args, "--judge", "likelihood"]) == 2  # a FaithBench judge
    assert "MT-Bench takes" in capsys.readouterr().err


def test_abstaining_does_not_buy_agreement_on_the_same_votes() -> None:
    """A judge that ties on all but one pair wins "without ties" easily; on the votes where it is decisive it
    is compared with the length baseline on exactly those votes."""
    pairs = [
        MTBenchPair(i, "c", 1, "a", "b", ("q",), ("long answer",), ("short",), votes=(Vote("expert_0", w),))
        for i, w in enumerate(["model_a", "model_b", "model_b", "model_b"])
    ]
    verdicts: dict[str, Any] = {p.key: "tie" for p in pairs}
    verdicts[pairs[0].key] = "model_a"
    m = judge_metrics(pairs, verdicts, baseline={p.key: p.longer for p in pairs})
    assert m["agreement_without_ties"] == 1.0 and m["vs_baseline_without_ties"] == 0.75  # longer-wins: 1/4
    assert m["vs_baseline_same_votes"] == 0.0 and m["decisive_share"] == 0.25
