"""End-to-end answer benchmark: questions with gold answers (or none: unanswerable) asked through the
pipeline exactly as ``rag ask`` asks them, scored on refusals, answer tokens, context, citations and time.

Questions JSONL: ``{"id", "question", "answers": [gold text, ...]}``; ``"answers": []`` marks a question
whose answer is in no document. Extra keys are allowed and ignored.

Metrics (SQuAD answer normalisation: lower case, punctuation and articles removed, whitespace folded):

* ``answerable_refusal_rate``: declined answerable / answerable.
* ``gold_token_recall``: per answerable question, the share of the gold answer's tokens (as a multiset)
  found in the answer, best over the gold answers; a refusal scores 0. ``token_f1``: SQuAD token F1.
* ``context_recall``: a gold answer (normalised) occurs inside the passages given to the LLM.
* ``cited_rate``: non-refusals (answerable and unanswerable) with at least one valid citation.
* ``citation_precision``: of the passages cited by non-refused answerable answers, the share holding a
  gold answer or most (more than half) of its tokens.
* ``unanswerable_decline_rate``: declined unanswerable / unanswerable.
* latency percentiles of the first streamed token and of the whole answer, from the question's start.

Rates carry 95 % percentile-bootstrap intervals over questions.
"""

from __future__ import annotations

import json
import random
import re
import string
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import EvalDataError
from rag.jsonl import appender, read_jsonl, read_rows

# ---- questions ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QAItem:
    id: str
    question: str
    answers: tuple[str, ...]

    @property
    def answerable(self) -> bool:
        return bool(self.answers)


def load_questions(path: str | Path) -> list[QAItem]:
    """Every row of a questions JSONL, validated before anything runs; a problem names the line."""
    p = Path(path)
    if not p.is_file():
        raise EvalDataError(f"{p}: questions file not found")
    items: list[QAItem] = []
    seen: dict[str, int] = {}
    for n, row in read_jsonl(p):
        qid = row.get("id")
        if isinstance(qid, int) and not isinstance(qid, bool):
            qid = str(qid)
        if not isinstance(qid, str) or not qid.strip():
            raise EvalDataError(f"{p}:{n}: 'id' must be a non-empty string")
        question = row.get("question")
        if not isinstance(question, str) or not question.strip():
            raise EvalDataError(f"{p}:{n}: 'question' must be a non-empty string")
        answers = row.get("answers")
        if not isinstance(answers, list) or not all(isinstance(a, str) and a.strip() for a in answers):
            raise EvalDataError(
                f"{p}:{n}: 'answers' must be a list of non-empty strings ([] for a question no document answers)"
            )
        if qid in seen:
            raise EvalDataError(f"{p}:{n}: id {qid!r} was already used on line {seen[qid]}")
        seen[qid] = n
        items.append(QAItem(qid, question.strip(), tuple(a.strip() for a in answers)))
    if not items:
        raise EvalDataError(f"{p}: no questions")
    return items


def sample_items(items: Sequence[QAItem], *, limit: int | None, seed: int) -> list[QAItem]:
    """A seeded sample of ``limit`` items kept in file order (all of them without a limit)."""
    if limit is None or limit >= len(items):
        return list(items)
    if limit < 1:
        raise EvalDataError(f"--limit must be at least 1, got {limit}")
    keep = set(random.Random(seed).sample(range(len(items)), limit))
    return [it for i, it in enumerate(items) if i in keep]


def merge_question_sets(sets: Sequence[tuple[str, Sequence[QAItem]]]) -> list[QAItem]:
    """Several question files as one run; an id used by two files is an error."""
    out: list[QAItem] = []
    where: dict[str, str] = {}
    for name, items in sets:
        for it in items:
            if it.id in where:
                raise EvalDataError(f"{name}: id {it.id!r} is also used in {where[it.id]}")
            where[it.id] = name
            out.append(it)
    return out


# ---- metric functions -----------------------------------------------------------------------------

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)
_CITATION = re.compile(r"\[\s*\d+(?:\s*[-,;]\s*\d+)*\s*\]")


def normalize_answer(text: str) -> str:
    """SQuAD's normalisation: lower case, no punctuation, no articles, single spaces."""
    text = _ARTICLES.sub(" ", text.lower().translate(_PUNCT))
    return " ".join(text.split())


def answer_tokens(text: str) -> list[str]:
    return normalize_answer(_CITATION.sub(" ", text)).split()


def _overlap(pred: Sequence[str], gold: Sequence[str]) -> int:
    return sum((Counter(pred) & Counter(gold)).values())


def gold_token_recall(prediction: str, golds: Sequence[str]) -> float:
    """Best share of a gold answer's tokens found in ``prediction`` (citations ignored); 0 without golds."""
    pred = answer_tokens(prediction)
    best = 0.0
    for gold in golds:
        g = answer_tokens(gold)
        if g:
            best = max(best, _overlap(pred, g) / len(g))
    return best


def token_f1(prediction: str, golds: Sequence[str]) -> float:
    """SQuAD token F1, best over the gold answers."""
    pred = answer_tokens(prediction)
    best = 0.0
    for gold in golds:
        g = answer_tokens(gold)
        common = _overlap(pred, g)
        if common == 0:
            continue
        precision, recall = common / len(pred), common / len(g)
        best = max(best, 2 * precision * recall / (precision + recall))
    return best


def contains_answer(text: str, golds: Sequence[str]) -> bool:
    """A gold answer, normalised, occurs in ``text``, normalised (on token boundaries)."""
    hay = f" {normalize_answer(text)} "
    return any(g and f" {g} " in hay for g in (normalize_answer(a) for a in golds))


def supports_answer(text: str, golds: Sequence[str], *, min_share: float = 0.5) -> bool:
    """``text`` holds a gold answer, or more than ``min_share`` of one gold answer's tokens."""
    if contains_answer(text, golds):
        return True
    tokens = answer_tokens(text)
    for gold in golds:
        g = answer_tokens(gold)
        if g and _overlap(tokens, g) / len(g) > min_share:
            return True
    return False


def percentile(values: Sequence[float], q: float) -> float | None:
    return float(np.percentile(np.asarray(values, dtype=float), q)) if values else None


def bootstrap_rate_ci(values: Sequence[float], *, resamples: int = 2000, seed: int = 0) -> tuple[float, float] | None:
    """95 % percentile-bootstrap interval of the mean of ``values`` (0/1 flags or scores)."""
    if not values:
        return None
    v = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, len(v), size=(resamples, len(v)))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return (float(lo), float(hi))


# ---- rows ----------------------------------------------------------------------------------------


def item_row(item: QAItem, answer: Any, *, first_token_s: float | None, total_s: float) -> dict[str, Any]:
    """One ``items.jsonl`` row from a :class:`rag.pipeline.Answer`."""
    return {
        "id": item.id,
        "question": item.question,
        "answers": list(item.answers),
        "answer": answer.answer,
        "raw_answer": answer.raw_answer,
        "refused": bool(answer.refused),
        "decision": answer.decision.to_dict() if getattr(answer, "decision", None) is not None else None,
        "citations": list(answer.citations.cited),
        "passages": [
            {"number": p.number, "source": p.hit.chunk.source, "page": p.hit.chunk.page, "text": p.text}
            for p in answer.passages
        ],
        "prompt_tokens": answer.prompt.prompt_tokens if answer.generated else 0,
        "first_token_s": first_token_s,
        "total_s": total_s,
        "timings_ms": {k: round(float(v), 1) for k, v in (getattr(answer, "timings", None) or {}).items()},
    }


def score_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """The per-question scores of an ``items.jsonl`` row."""
    golds = row["answers"]
    refused = bool(row["refused"])
    passages = {p["number"]: p["text"] for p in row["passages"]}
    cited = [n for n in row["citations"] if n in passages]
    out: dict[str, Any] = {"id": row["id"], "answerable": bool(golds), "refused": refused, "cited": bool(cited)}
    if golds:
        answer = "" if refused else row["answer"]
        out["gold_token_recall"] = gold_token_recall(answer, golds)
        out["token_f1"] = token_f1(answer, golds)
        out["context_recall"] = contains_answer("\n".join(passages.values()), golds)
        out["supported_citations"] = [supports_answer(passages[n], golds) for n in cited] if not refused else []
    return out


def summarize(rows: Sequence[Mapping[str, Any]], *, resamples: int = 2000, seed: int = 0) -> dict[str, Any]:
    """``summary.json``: every metric with its count and, for rates, a 95 % bootstrap interval."""
    scored = [score_row(r) for r in rows]
    answerable = [s for s in scored if s["answerable"]]
    unanswerable = [s for s in scored if not s["answerable"]]
    answered = [s for s in scored if not s["refused"]]
    citations = [ok for s in answerable for ok in s.get("supported_citations", [])]

    def rate(name: str, values: list[float]) -> None:
        out[name] = sum(values) / len(values) if values else None
        out[f"{name}_ci95"] = bootstrap_rate_ci(values, resamples=resamples, seed=seed)
        out[f"{name}_n"] = len(values)

    out: dict[str, Any] = {"questions": len(rows), "answerable": len(answerable), "unanswerable": len(unanswerable)}
    rate("answerable_refusal_rate", [float(s["refused"]) for s in answerable])
    rate("gold_token_recall", [s["gold_token_recall"] for s in answerable])
    rate("token_f1", [s["token_f1"] for s in answerable])
    rate("context_recall", [float(s["context_recall"]) for s in answerable])
    rate("cited_rate", [float(s["cited"]) for s in answered])
    rate("citation_precision", [float(ok) for ok in citations])
    rate("unanswerable_decline_rate", [float(s["refused"]) for s in unanswerable])
    first = [float(r["first_token_s"]) for r in rows if r.get("first_token_s") is not None]
    total = [float(r["total_s"]) for r in rows]
    out["first_token_s_p50"], out["first_token_s_p95"] = percentile(first, 50), percentile(first, 95)
    out["total_s_p50"], out["total_s_p95"] = percentile(total, 50), percentile(total, 95)
    prompts = [int(r["prompt_tokens"]) for r in rows if int(r.get("prompt_tokens") or 0) > 0]
    out["mean_prompt_tokens"] = sum(prompts) / len(prompts) if prompts else None
    out["llm_calls"] = len(prompts)
    return out


# ---- the run -------------------------------------------------------------------------------------

Ask = Callable[[str, Callable[[str], None]], Any]


@dataclass(frozen=True)
class QARun:
    rows: list[dict[str, Any]]
    skipped: int  # rows read back from a previous run

    def summary(self, *, resamples: int = 2000, seed: int = 0) -> dict[str, Any]:
        return summarize(self.rows, resamples=resamples, seed=seed)


def run_settings_path(out: Path) -> Path:
    return out / "run.json"


def check_resume(out: Path, settings: Mapping[str, Any]) -> None:
    """Refuse to append to ``out`` when its rows were produced with other settings (config, model)."""
    path = run_settings_path(out)
    if not path.is_file():
        return
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise EvalDataError(f"{path}: unreadable ({e.msg}); remove the folder or choose another --out") from e
    if previous != json.loads(json.dumps(dict(settings))):
        changed = sorted(k for k in set(previous) | set(settings) if previous.get(k) != settings.get(k))
        raise EvalDataError(
            f"{out}: holds rows from a run with other settings ({', '.join(changed)}); "
            "choose another --out or remove the folder to start again"
        )


def run_qa(
    items: Sequence[QAItem],
    ask: Ask,
    out: Path,
    *,
    settings: Mapping[str, Any],
    on_row: Callable[[dict[str, Any], int, int], None] | None = None,
) -> QARun:
    """Ask every item not already in ``out/items.jsonl`` and append its row as soon as it is answered."""
    check_resume(out, settings)
    out.mkdir(parents=True, exist_ok=True)
    run_settings_path(out).write_text(json.dumps(dict(settings), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    wanted = {it.id for it in items}
    done = {r["id"]: r for r in read_rows(out / "items.jsonl") if r.get("id") in wanted}
    rows: list[dict[str, Any]] = []
    with appender(out / "items.jsonl") as append:
        for i, item in enumerate(items, 1):
            if item.id in done:
                rows.append(done[item.id])
                continue
            first: list[float] = []
            start = time.perf_counter()

            def on_token(_piece: str, first: list[float] = first, start: float = start) -> None:
                if not first:
                    first.append(time.perf_counter() - start)

            answer = ask(item.question, on_token)
            total = time.perf_counter() - start
            row = item_row(item, answer, first_token_s=first[0] if first else None, total_s=total)
            append(row)
            rows.append(row)
            if on_row is not None:
                on_row(row, i, len(items))
    return QARun(rows=rows, skipped=len(done))
