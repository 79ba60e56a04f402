"""MT-Bench human votes (Zheng et al. 2023, "Judging LLM-as-a-Judge with MT-Bench and Chatbot Arena"):
load the pairs, score any judge's pairwise verdicts against the expert votes with the paper's protocol,
beside the stored GPT-4 verdicts and the "longer answer wins" baseline on exactly the same pairs.

The unit judged is a *pair*: (turn, question, two models), the models in sorted order so that a vote
and a verdict on "B vs A" land on the same pair. Agreement follows FastChat's ``compute_agreement.py``
(which reproduces the paper's Table 3): every expert vote on a pair is compared with the judge's one
verdict on it; "with ties" counts tie = tie (an inconsistent verdict is a tie); "without ties" keeps
only votes where both the judge and the human pick a winner. Intervals are percentile bootstraps
that resample *questions* (votes on one question are not independent).
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rag import jsonl
from rag.errors import EvalDataError

Winner = Literal["model_a", "model_b", "tie"]
Position = Literal["first", "second", "tie"]
Voters = Literal["expert", "all"]
WINNERS: tuple[Winner, ...] = ("model_a", "model_b", "tie")
GPT4 = "gpt-4"
LONGER = "longer-wins"
BOOTSTRAP_RESAMPLES = 2000


@dataclass(frozen=True)
class Vote:
    judge: str  # expert_N / author_N
    winner: Winner


@dataclass(frozen=True)
class MTBenchPair:
    """One judged unit. ``questions``/``answers_*`` hold the conversation up to ``turn`` (the judged
    answer is the last); ``reference`` the GPT-4 reference answers for those turns, when the category
    has them. ``votes`` and ``gpt4`` are oriented to this pair's (sorted) model order; ``gpt4_consistent``
    is false when GPT-4's two orders disagreed (its stored "tie (inconsistent)")."""

    question_id: int
    category: str
    turn: int
    model_a: str
    model_b: str
    questions: tuple[str, ...]
    answers_a: tuple[str, ...]
    answers_b: tuple[str, ...]
    reference: tuple[str, ...] | None = None
    votes: tuple[Vote, ...] = ()
    gpt4: Winner | None = None
    gpt4_consistent: bool | None = None

    @property
    def key(self) -> str:
        return f"q{self.question_id}-t{self.turn}-{self.model_a}-vs-{self.model_b}"

    @property
    def longer(self) -> Winner:
        """The "longer answer wins" verdict: the judged (last) answer with more characters; tie if equal."""
        la, lb = len(self.answers_a[-1].strip()), len(self.answers_b[-1].strip())
        return "model_a" if la > lb else "model_b" if lb > la else "tie"


@dataclass
class LoadReport:
    pairs: list[MTBenchPair]
    skipped: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)

    @property
    def n_votes(self) -> int:
        return sum(len(p.votes) for p in self.pairs)


def flip(winner: Winner) -> Winner:
    return "model_b" if winner == "model_a" else "model_a" if winner == "model_b" else "tie"


def _winner(value: Any) -> Winner:
    text = str(value)
    if text.startswith("tie"):  # "tie" and GPT-4's "tie (inconsistent)"
        return "tie"
    if text not in ("model_a", "model_b"):
        raise ValueError(f"winner {value!r} is not model_a, model_b or tie")
    return text  # type: ignore[return-value]


def _text(row: Mapping[str, Any], key: str) -> str:
    value = row.get(key)
    if not isinstance(value, str):
        raise ValueError(f"{key!r} is {type(value).__name__}, expected text")
    return value


def _parse(row: Mapping[str, Any]) -> tuple[tuple[int, int, str, str], dict[str, Any], Winner]:
    """(key, the pair's fields in sorted model order, the winner oriented the same way)."""
    turn = int(row["turn"])
    if turn not in (1, 2):
        raise ValueError(f"turn {turn} is not 1 or 2")
    qid = int(row["question_id"])
    a, b = _text(row, "model_a"), _text(row, "model_b")
    if a == b:
        raise ValueError(f"model_a and model_b are both {a!r}")
    winner = _winner(row["winner"])
    questions, answers_a, answers_b = [_text(row, "question")], [_text(row, "answer_a")], [_text(row, "answer_b")]
    if turn == 2:
        questions.insert(0, _text(row, "prev_question"))
        answers_a.insert(0, _text(row, "prev_answer_a"))
        answers_b.insert(0, _text(row, "prev_answer_b"))
    fields: dict[str, Any] = {
        "question_id": qid,
        "category": _text(row, "category"),
        "turn": turn,
        "questions": tuple(questions),
    }
    if a < b:
        fields |= {"model_a": a, "model_b": b, "answers_a": tuple(answers_a), "answers_b": tuple(answers_b)}
    else:
        fields |= {"model_a": b, "model_b": a, "answers_a": tuple(answers_b), "answers_b": tuple(answers_a)}
        winner = flip(winner)
    return (turn, qid, fields["model_a"], fields["model_b"]), fields, winner


def load_mtbench(root: str | Path, *, voters: Voters = "expert") -> LoadReport:
    """Pairs with at least one vote from ``voters`` (the paper's protocol: experts), in a stable order.
    A malformed row is counted and skipped with a note naming its file and line, never a crash."""
    base = Path(root)
    human_path = base / "human_pairs.jsonl"
    if not human_path.is_file():
        raise EvalDataError(f"{base}: no human_pairs.jsonl (expected the MT-Bench folder of ../shared/data/mtbench)")
    report = LoadReport(pairs=[])
    fields: dict[tuple[int, int, str, str], dict[str, Any]] = {}
    votes: dict[tuple[int, int, str, str], list[Vote]] = defaultdict(list)
    for line, row in _rows(human_path, report):
        try:
            key, pair_fields, winner = _parse(row)
            judge = _text(row, "judge")
        except (KeyError, TypeError, ValueError) as e:
            _skip(report, human_path, line, e)
            continue
        if voters == "expert" and not judge.startswith("expert"):
            continue
        fields.setdefault(key, pair_fields)
        votes[key].append(Vote(judge, winner))
    gpt4: dict[tuple[int, int, str, str], Winner] = {}
    gpt4_consistent: dict[tuple[int, int, str, str], bool] = {}
    gpt4_path = base / "gpt4_pairs.jsonl"
    for line, row in _rows(gpt4_path, report):
        try:
            key, _, winner = _parse(row)
        except (KeyError, TypeError, ValueError) as e:
            _skip(report, gpt4_path, line, e)
            continue
        gpt4[key] = winner
        gpt4_consistent[key] = str(row["winner"]) != "tie (inconsistent)"
    references = _references(base / "questions.jsonl", report)
    for key in sorted(fields):
        turn, qid = key[0], key[1]
        ref = references.get(qid)
        report.pairs.append(
            MTBenchPair(
                **fields[key],
                reference=tuple(ref[:turn]) if ref and len(ref) >= turn else None,
                votes=tuple(votes[key]),
                gpt4=gpt4.get(key),
                gpt4_consistent=gpt4_consistent.get(key),
            )
        )
    if not report.pairs:
        raise EvalDataError(f"{human_path}: no usable {voters} votes")
    return report


def _rows(path: Path, report: LoadReport) -> Iterable[tuple[int, dict[str, Any]]]:
    if not path.is_file():
        report.notes.append(f"{path}: missing; its column is left empty")
        return
    yield from jsonl.read_jsonl(path, on_error=lambda line_no, reason: _skip(report, path, line_no, reason))


def _skip(report: LoadReport, path: Path, line: int, error: Exception | str) -> None:
    report.skipped[path.name] += 1
    if report.skipped[path.name] <= 5:
        report.notes.append(f"{path.name} line {line}: skipped ({error})")


def _references(path: Path, report: LoadReport) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for line, row in _rows(path, report):
        ref = row.get("reference")
        try:
            qid = int(row["question_id"])
        except (KeyError, TypeError, ValueError) as e:
            _skip(report, path, line, e)
            continue
        if isinstance(ref, list) and all(isinstance(r, str) for r in ref):
            out[qid] = ref
    return out


def stratified_sample(pairs: Sequence[MTBenchPair], limit: int | None, *, seed: int = 0) -> list[MTBenchPair]:
    """A seeded order that interleaves the (turn, category) strata, so any prefix is balanced; the
    first ``limit`` pairs of it (all when ``limit`` is None)."""
    strata: dict[tuple[int, str], list[MTBenchPair]] = defaultdict(list)
    for p in pairs:
        strata[(p.turn, p.category)].append(p)
    rng = random.Random(seed)
    queues = []
    for key in sorted(strata):
        group = sorted(strata[key], key=lambda p: p.key)
        rng.shuffle(group)
        queues.append(group)
    order: list[MTBenchPair] = []
    while any(queues):
        for q in queues:
            if q:
                order.append(q.pop())
    return order if limit is None else order[:limit]


# ---- verdict rules ---------------------------------------------------------------------------------


def swap_rule(ab: Position, ba: Position) -> Winner:
    """The paper's rule: A wins only if it wins in both orders (first when A is first, second when B is);
    any disagreement is a tie."""
    first: Winner = {"first": "model_a", "second": "model_b", "tie": "tie"}[ab]  # type: ignore[assignment]
    second: Winner = {"first": "model_b", "second": "model_a", "tie": "tie"}[ba]  # type: ignore[assignment]
    return first if first == second else "tie"


def margin_rule(margin: float, tie_band: float) -> Winner:
    """A continuous preference for A (positive) or B (negative) with a tie band around zero."""
    return "model_a" if margin > tie_band else "model_b" if margin < -tie_band else "tie"


# ---- metrics ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scored:
    """One (pair, human vote) comparison unit."""

    question_id: int
    turn: int
    category: str
    human: Winner
    judge: Winner


def comparisons(pairs: Sequence[MTBenchPair], verdicts: Mapping[str, Winner]) -> list[Scored]:
    """Every vote on a pair that has a verdict, beside that verdict."""
    return [
        Scored(p.question_id, p.turn, p.category, v.winner, verdicts[p.key])
        for p in pairs
        if p.key in verdicts
        for v in p.votes
    ]


def agreement(units: Sequence[Scored], *, ties: bool) -> tuple[float, int]:
    """(agreement, n). Without ties only units where both sides picked a winner count."""
    if not ties:
        units = [u for u in units if u.human != "tie" and u.judge != "tie"]
    if not units:
        return math.nan, 0
    return sum(u.human == u.judge for u in units) / len(units), len(units)


def _cluster_stats(units: Sequence[Scored], *, ties: bool) -> dict[int, tuple[int, int]]:
    per_q: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for u in units:
        if not ties and (u.human == "tie" or u.judge == "tie"):
            continue
        per_q[u.question_id][0] += u.human == u.judge
        per_q[u.question_id][1] += 1
    return {q: (a, n) for q, (a, n) in per_q.items()}


def bootstrap_agreement(
    units: Sequence[Scored],
    *,
    ties: bool,
    other: Sequence[Scored] | None = None,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float]:
    """95 % percentile interval of agreement, or of ``agreement(units) - agreement(other)`` (paired: the
    same resampled questions for both), resampling questions with replacement."""
    questions = sorted({u.question_id for u in units} | {u.question_id for u in other or ()})
    if not questions:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(questions), size=(resamples, len(questions)))

    def ratios(stats: dict[int, tuple[int, int]]) -> np.ndarray:
        agree = np.array([stats.get(q, (0, 0))[0] for q in questions], dtype=np.float64)
        total = np.array([stats.get(q, (0, 0))[1] for q in questions], dtype=np.float64)
        a, n = agree[draws].sum(axis=1), total[draws].sum(axis=1)
        return np.divide(a, n, out=np.full(resamples, np.nan), where=n > 0)

    values = ratios(_cluster_stats(units, ties=ties))
    if other is not None:
        values = values - ratios(_cluster_stats(other, ties=ties))
    if np.all(np.isnan(values)):
        return (math.nan, math.nan)
    lo, hi = np.nanpercentile(values, [2.5, 97.5])
    return (float(lo), float(hi))


def length_preference(pairs: Sequence[MTBenchPair], verdicts: Mapping[str, Winner]) -> tuple[float, int]:
    """Of the decisive verdicts on pairs of unequal length, the share that picked the longer answer."""
    picks = [
        verdicts[p.key] == p.longer
        for p in pairs
        if p.key in verdicts and verdicts[p.key] != "tie" and p.longer != "tie"
    ]
    return (sum(picks) / len(picks), len(picks)) if picks else (math.nan, 0)


def human_length_preference(pairs: Sequence[MTBenchPair]) -> tuple[float, int]:
    picks = [v.winner == p.longer for p in pairs for v in p.votes if v.winner != "tie" and p.longer != "tie"]
    return (sum(picks) / len(picks), len(picks)) if picks else (math.nan, 0)


@dataclass(frozen=True)
class OrderVerdicts:
    """A judge's verdict in each order (A first, then B first), in positions."""

    ab: Position
    ba: Position


def position_stats(orders: Iterable[OrderVerdicts]) -> dict[str, float | int]:
    """Consistency = the two orders name the same system (or both tie); first/second bias = the share of
    pairs where the judge picked whatever came first (second) in both orders (MT-Bench Table 2)."""
    items = list(orders)
    n = len(items)
    if not n:
        return {
            "position_consistency": math.nan,
            "first_position_bias": math.nan,
            "second_position_bias": math.nan,
            "n": 0,
        }
    consistent = sum(swap_rule(o.ab, o.ba) != "tie" or (o.ab == "tie" and o.ba == "tie") for o in items)
    return {
        "position_consistency": consistent / n,
        "first_position_bias": sum(o.ab == "first" and o.ba == "first" for o in items) / n,
        "second_position_bias": sum(o.ab == "second" and o.ba == "second" for o in items) / n,
        "position_n": n,
    }


def judge_metrics(
    pairs: Sequence[MTBenchPair],
    verdicts: Mapping[str, Winner],
    *,
    orders: Mapping[str, OrderVerdicts] | None = None,
    baseline: Mapping[str, Winner] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Agreement with and without ties (overall, per turn, per category, with intervals), the tie share,
    length preference, position statistics when both orders are known, and (``baseline``) the paired
    interval of the difference in agreement without ties against that baseline."""
    units = comparisons(pairs, verdicts)
    out: dict[str, Any] = {}
    for ties, name in ((True, "agreement_with_ties"), (False, "agreement_without_ties")):
        value, n = agreement(units, ties=ties)
        out[name] = value
        out[f"{name}_n"] = n
        out[f"{name}_ci95"] = list(bootstrap_agreement(units, ties=ties, seed=seed))
    for turn in (1, 2):
        sub = [u for u in units if u.turn == turn]
        out[f"turn{turn}"] = _agreements(sub, seed=seed)
    out["per_category"] = {
        cat: _agreements([u for u in units if u.category == cat], seed=seed)
        for cat in sorted({u.category for u in units})
    }
    judged = [p for p in pairs if p.key in verdicts]
    out["n"] = len(units)
    out["pairs"] = len(judged)
    out["tie_share"] = sum(verdicts[p.key] == "tie" for p in judged) / len(judged) if judged else math.nan
    out["picks_longer"], out["picks_longer_n"] = length_preference(judged, verdicts)
    if orders is not None:
        stats = position_stats(orders[p.key] for p in judged if p.key in orders)
        out |= stats
    else:
        out["position_consistency"] = None
    if baseline is not None:
        other = comparisons(judged, baseline)
        out["vs_baseline_without_ties_ci95"] = list(bootstrap_agreement(units, ties=False, other=other, seed=seed))
        out["vs_baseline_without_ties"] = agreement(units, ties=False)[0] - agreement(other, ties=False)[0]
        # Without ties rewards abstaining: a judge that ties on all but its surest pairs is scored on those
        # alone. The fair comparison is on the same votes: where this judge is decisive.
        decisive = [p for p in judged if verdicts[p.key] != "tie"]
        mine_there, theirs_there = comparisons(decisive, verdicts), comparisons(decisive, baseline)
        out["vs_baseline_same_votes"] = agreement(mine_there, ties=False)[0] - agreement(theirs_there, ties=False)[0]
        out["vs_baseline_same_votes_ci95"] = list(
            bootstrap_agreement(mine_there, ties=False, other=theirs_there, seed=seed)
        )
        out["decisive_share"] = len(decisive) / len(judged) if judged else math.nan
    return out


def _agreements(units: Sequence[Scored], *, seed: int) -> dict[str, Any]:
    with_ties, n_with = agreement(units, ties=True)
    without, n_without = agreement(units, ties=False)
    return {
        "agreement_with_ties": with_ties,
        "agreement_with_ties_ci95": list(bootstrap_agreement(units, ties=True, seed=seed)),
        "agreement_without_ties": without,
        "agreement_without_ties_ci95": list(bootstrap_agreement(units, ties=False, seed=seed)),
        "n_with_ties": n_with,
        "n_without_ties": n_without,
    }


def reference_metrics(pairs: Sequence[MTBenchPair], *, seed: int = 0) -> dict[str, dict[str, Any]]:
    """GPT-4's stored verdicts and "longer answer wins" on ``pairs``: the columns every run is compared to."""
    gpt4 = {p.key: p.gpt4 for p in pairs if p.gpt4 is not None}
    longer = {p.key: p.longer for p in pairs}
    gpt4_metrics = judge_metrics([p for p in pairs if p.key in gpt4], gpt4, seed=seed)
    # Only the combined verdict is stored, but an inconsistent one is marked: that is position consistency.
    consistent = [p.gpt4_consistent for p in pairs if p.gpt4_consistent is not None]
    if consistent:
        gpt4_metrics["position_consistency"] = sum(consistent) / len(consistent)
        gpt4_metrics["position_n"] = len(consistent)
    return {GPT4: gpt4_metrics, LONGER: judge_metrics(pairs, longer, seed=seed)}


def human_summary(pairs: Sequence[MTBenchPair]) -> dict[str, Any]:
    votes = [v.winner for p in pairs for v in p.votes]
    share, n = human_length_preference(pairs)
    return {
        "votes": len(votes),
        "pairs": len(pairs),
        "tie_share": votes.count("tie") / len(votes) if votes else math.nan,
        "picks_longer": share,
        "picks_longer_n": n,
    }


def format_table(metrics: Mapping[str, Mapping[str, Any]], names: Sequence[str]) -> str:
    """The paper's Table 3 layout per turn, plus position consistency and length preference."""

    def pct(x: Any) -> str:
        return "   -  " if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:5.1f}%"

    def ci(x: Any) -> str:
        if not x or any(v is None or math.isnan(v) for v in x):
            return "            "
        return f"[{100 * x[0]:4.1f},{100 * x[1]:5.1f}]"

    header = (
        f"{'judge / turn':<14} {'agree w/ ties (95% CI)':>26} {'agree w/o ties (95% CI)':>26} {'votes':>6} "
        f"{'ties':>7} {'longer':>7} {'consist.':>8}"
    )
    lines = [header, "-" * len(header)]
    for name in names:
        m = metrics[name]
        lines.append(name)
        for turn in ("turn1", "turn2", "all"):
            t = m if turn == "all" else m[turn]
            n = m["agreement_with_ties_n"] if turn == "all" else t["n_with_ties"]
            row = (
                f"  {'turn ' + turn[-1] if turn != 'all' else 'both turns':<12} "
                f"{pct(t['agreement_with_ties'])} {ci(t['agreement_with_ties_ci95']):>19} "
                f"{pct(t['agreement_without_ties'])} {ci(t['agreement_without_ties_ci95']):>19} {n:>6}"
            )
            if turn == "all":
                row += f" {pct(m['tie_share'])} {pct(m['picks_longer'])} {pct(m.get('position_consistency')):>8}"
            lines.append(row)
    return "\n".join(lines)


def read_rows(path: Path) -> dict[str, dict[str, Any]]:
    """Judged rows by pair key; a later row for the same key wins (a rerun after an error)."""
    return {str(r["key"]): r for r in jsonl.read_rows(path) if "key" in r}


Progress = Callable[[int, int, dict[str, Any]], None]
