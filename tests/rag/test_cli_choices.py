"""The CLI's choices come from the Literals and registries they name, and its shared argument types."""

from __future__ import annotations

import argparse
from typing import get_args

import pytest

from eval.judges import JUDGE_NAMES, JUDGES, MTBENCH_JUDGES, JudgeName, MTBenchJudgeName
from eval.runs import Aggregation
from rag.cli import build_parser
from rag.commands.common import non_negative_int, positive_int
from rag.config import RetrievalMode
from rag.retrieval import RETRIEVERS


def _choices(argv: list[str], option: str) -> tuple[str, ...]:
    parser: argparse.ArgumentParser = build_parser()
    for name in argv:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    action = next(a for a in parser._actions if option in a.option_strings)
    assert action.choices is not None
    return tuple(action.choices)


def test_judge_choices_are_the_judge_registry() -> None:
    assert _choices(["eval", "faithfulness"], "--judge") == JUDGE_NAMES == get_args(JudgeName)
    assert set(JUDGE_NAMES) == set(JUDGES)
    mtbench = _choices(["eval", "judges"], "--judge")
    assert set(get_args(MTBenchJudgeName)) == set(MTBENCH_JUDGES) <= set(mtbench)


@pytest.mark.parametrize("command", ["ask", "search"])
def test_mode_choices_are_the_retriever_registry(command: str) -> None:
    assert _choices([command], "--mode") == get_args(RetrievalMode)
    assert set(get_args(RetrievalMode)) == set(RETRIEVERS)


def test_aggregation_choices_are_the_run_aggregations() -> None:
    assert _choices(["eval", "retrieval"], "--aggregation") == get_args(Aggregation)


@pytest.mark.parametrize(
    ("parse", "good", "bad", "message"),
    [
        (positive_int, {"1": 1, "25": 25}, ["0", "-3", "x", "1.5"], "expected a positive integer"),
        (non_negative_int, {"0": 0, "8000": 8000}, ["-1", "port"], "expected a whole number of 0 or more"),
    ],
)
def test_whole_number_argument_types(parse, good: dict[str, int], bad: list[str], message: str) -> None:
    for text, value in good.items():
        assert parse(text) == value
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError, match=f"{message}, got {text!r}"):
            parse(text)
