"""FaithBench (Bao et al., NAACL 2025): load batches, binarise the human labels, and meta-evaluate a
faithfulness judge against them, side by side with the baseline detectors stored in each item's
metadata, on exactly the same items.

Binarisation follows the dataset README (upstream ``scripts/binarize.py``): collect the set of labels
over all annotations; no label -> consistent; otherwise map Benign=1 < Questionable=2 < Unwanted*=3,
pool with ``worst`` (max), ``best`` (min) or ``majority`` (most frequent severity over the label set,
ties to the milder one, as upstream's ``max(set(xs), key=xs.count)`` on ints does), and call the item
hallucinated when the pooled class is in ``hallucinated_classes``. Defaults are upstream's release
config: ``worst`` with {Questionable, Unwanted}. Positive class here = *hallucinated* (upstream's 0).
(Upstream's script returns 0 — its "hallucinated" code — for unannotated items, contradicting its own
comment; we follow the README: no label -> consistent.)
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from eval.detection import binary_metrics, bootstrap_ci, cross_validated_predictions, roc_auc, stratified_auc
from eval.judges.base import JudgeResult
from eval.judges.faithfulness import split_sentences
from rag import jsonl
from rag.citations import absent_share
from rag.errors import EvalDataError

Aggregation = Literal["worst", "best", "majority"]
SeverityClass = Literal["Benign", "Questionable", "Unwanted"]
DEFAULT_HALLUCINATED: tuple[SeverityClass, ...] = ("Questionable", "Unwanted")
SEVERITY: dict[str, int] = {
    "Benign": 1,
    "Questionable": 2,
    "Unwanted": 3,
    "Unwanted.Intrinsic": 3,
    "Unwanted.Extrinsic": 3,
}
CLASS_OF_SEVERITY: dict[int, SeverityClass] = {1: "Benign", 2: "Questionable", 3: "Unwanted"}
DEFAULT_BATCHES = tuple(range(1, 9))


@dataclass(frozen=True)
class Baseline:
    """A detector whose prediction is stored in the metadata: a 0/1 label (0 = hallucinated, upstream's
    convention) or a consistency score (hallucinated below ``threshold``)."""

    key: str
    kind: Literal["label", "score"]
    threshold: float = 0.5

    def hallucinated(self, value: float | int) -> bool:
        return int(value) == 0 if self.kind == "label" else float(value) < self.threshold


BASELINES: dict[str, Baseline] = {
    "GPT-4o": Baseline("gpt_4o", "label"),
    "GPT-3.5-Turbo": Baseline("gpt-3.5-turbo", "label"),
    "HHEM-2.1": Baseline("hhem-2.1", "score"),
    "TrueTeacher": Baseline("trueteacher", "label"),
    "GPT-4-Turbo": Baseline("gpt-4-turbo", "label"),
    "TRUE-NLI": Baseline("true_nli", "label"),
}


@dataclass(frozen=True)
class FaithBenchItem:
    id: str
    batch: int
    source: str
    summary: str
    labels: frozenset[str]
    hallucinated: bool
    summarizer: str = ""
    baselines: dict[str, bool] = field(default_factory=dict)
    # score-kind baselines' hallucination score (1 - consistency), for threshold-free comparison
    baseline_scores: dict[str, float] = field(default_factory=dict)


def binarise(
    labels: Iterable[str],
    *,
    aggregation: Aggregation = "worst",
    hallucinated_classes: Sequence[SeverityClass] = DEFAULT_HALLUCINATED,
) -> bool:
    """True when the item counts as hallucinated under the README's rules (see module docstring)."""
    label_set = set(labels)
    unknown = label_set - set(SEVERITY)
    if unknown:
        raise EvalDataError(f"unknown FaithBench label(s) {sorted(unknown)}; known: {sorted(SEVERITY)}")
    if not label_set:
        return False
    severities = sorted(SEVERITY[label] for label in label_set)
    if aggregation == "worst":
        pooled = max(severities)
    elif aggregation == "best":
        pooled = min(severities)
    elif aggregation == "majority":
        pooled = max(sorted(set(severities)), key=severities.count)
    else:
        raise EvalDataError(f"aggregation {aggregation!r} is not one of 'worst', 'best', 'majority'")
    return CLASS_OF_SEVERITY[pooled] in hallucinated_classes


def load_faithbench(
    root: str | Path,
    *,
    batches: Sequence[int] = DEFAULT_BATCHES,
    aggregation: Aggregation = "worst",
    hallucinated_classes: Sequence[SeverityClass] = DEFAULT_HALLUCINATED,
) -> list[FaithBenchItem]:
    """Items of the given batches from ``root`` (the dataset folder or its ``data_for_release``)."""
    base = Path(root)
    if (base / "data_for_release").is_dir():
        base = base / "data_for_release"
    items: list[FaithBenchItem] = []
    for b in batches:
        path = base / f"batch_{b}.json"
        try:
            with path.open(encoding="utf-8") as fh:
                samples = json.load(fh)["samples"]
        except FileNotFoundError as e:
            raise EvalDataError(f"{path}: FaithBench batch not found (point --faithbench at the dataset folder)") from e
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise EvalDataError(f"{path}: not a FaithBench batch file ({e})") from e
        for s in samples:
            try:
                labels = frozenset(lab for a in s["annotations"] for lab in a["label"])
                meta = s["metadata"]
                items.append(
                    FaithBenchItem(
                        id=f"b{b}-{s['sample_id']}",
                        batch=b,
                        source=s["source"],
                        summary=s["summary"],
                        labels=labels,
                        hallucinated=binarise(
                            labels, aggregation=aggregation, hallucinated_classes=hallucinated_classes
                        ),
                        summarizer=str(meta.get("summarizer", "")),
                        baselines={
                            name: bl.hallucinated(meta[bl.key])
                            for name, bl in BASELINES.items()
                            if _numeric(meta.get(bl.key))
                        },
                        baseline_scores={
                            name: 1.0 - float(meta[bl.key])
                            for name, bl in BASELINES.items()
                            if bl.kind == "score" and _numeric(meta.get(bl.key))
                        },
                    )
                )
            except (KeyError, TypeError) as e:
                raise EvalDataError(f"{path}: sample {s.get('sample_id')!r} is malformed ({e})") from e
    return items


def _numeric(value: Any) -> bool:
    """A stored baseline prediction that can be read; a missing one (null, text) only drops that item
    from that baseline's score."""
    if isinstance(value, bool) or value is None:
        return False
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def stratified_order(items: Sequence[FaithBenchItem], *, seed: int = 0) -> list[FaithBenchItem]:
    """A deterministic order whose every prefix keeps the label ratio (and mixes batches), so
    ``--limit N`` is a stratified sample and a larger limit extends a smaller one."""
    rng = random.Random(seed)
    pos = [it for it in items if it.hallucinated]
    neg = [it for it in items if not it.hallucinated]
    rng.shuffle(pos)
    rng.shuffle(neg)
    out: list[FaithBenchItem] = []
    share = len(pos) / len(items) if items else 0.0
    while pos or neg:
        want_pos = math.floor((len(out) + 1) * share + 0.5) > sum(it.hallucinated for it in out)
        out.append(pos.pop() if (want_pos and pos) or not neg else neg.pop())
    return out


# --- meta-evaluation run: resumable per-item JSONL, then metrics for the judge and every baseline ---

ITEMS_FILE = "items.jsonl"


class FaithfulnessJudgeLike(Protocol):
    name: str

    def judge(self, answer: str, contexts: list[str], *, item_id: str = "") -> JudgeResult: ...


@dataclass(frozen=True)
class MetaEvalReport:
    metrics: dict[str, dict[str, Any]]
    summary: dict[str, Any]
    rows: list[dict[str, Any]]


def read_rows(path: Path) -> dict[str, dict[str, Any]]:
    """Rows already written, by item id (the last row per item id wins); a torn last line is ignored."""
    return {row["item_id"]: row for row in jsonl.read_rows(path)}


def run_meta_eval(
    items: Sequence[FaithBenchItem],
    judge: FaithfulnessJudgeLike,
    *,
    out_dir: str | Path,
    judge_label: str,
    on_item: Callable[[int, int, dict[str, Any]], None] | None = None,
) -> MetaEvalReport:
    """Judge every item not already judged OK in ``out_dir/items.jsonl`` (errors are retried), append
    each row as it is done, then score the judge and the baselines on the items the judge judged."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / ITEMS_FILE
    done = read_rows(path)
    others = sorted({str(r.get("judge_label")) for r in done.values()} - {judge_label})
    if others:
        raise EvalDataError(
            f"{path}: holds rows of another judge ({', '.join(others)}), not {judge_label}; "
            "give this judge its own --out folder"
        )
    pending = work_order([it for it in items if done.get(it.id, {}).get("status") != "ok"])
    with jsonl.appender(path) as append:
        for i, it in enumerate(pending, 1):
            r = judge.judge(it.summary, [it.source], item_id=it.id)
            row = {
                **r.to_dict(),
                "judge_label": judge_label,
                "batch": it.batch,
                "human_hallucinated": it.hallucinated,
                "predicted_hallucinated": _predicted_hallucinated(r),
                "hallucination_prob": r.details.get("hallucination_prob") if r.ok else None,
            }
            append(row)
            done[it.id] = row
            if on_item is not None:
                on_item(i, len(pending), row)
    rows = [done[it.id] for it in items if it.id in done]
    report = score_rows(items, rows, judge_label=judge_label)
    (out / "metrics.json").write_text(json.dumps(report.metrics, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    (out / "summary.json").write_text(json.dumps(report.summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return report


def work_order(items: Sequence[FaithBenchItem]) -> list[FaithBenchItem]:
    """The items grouped by source (groups in order of first appearance, items in their given order within
    a group), so consecutive prompts share the source as a prefix and the backend's KV cache skips it. Only
    the order of the work changes: which items are judged, and the order rows are reported in, do not."""
    groups: dict[str, list[FaithBenchItem]] = {}
    for it in items:
        groups.setdefault(it.source, []).append(it)
    return [it for group in groups.values() for it in group]


def _predicted_hallucinated(r: JudgeResult) -> bool | None:
    """The judge's own call (``details["hallucinated"]``), else any claim unsupported (score < 1)."""
    if not r.ok or r.score is None:
        return None
    return bool(r.details.get("hallucinated", r.score < 1.0))


CV_SUFFIX = " @cv-threshold"
LEXICAL = "absent-terms share (no LLM)"
SENTENCE_COUNT = "summary sentence count (length prior, no evidence)"
SOURCE_LENGTH = "source length in words (length prior, no evidence)"
# Detectors that need no model, scored from the item alone. The two length priors read nothing of what the
# summary says: a judge that does not beat them under the same protocol has not shown it checks anything.
MODEL_FREE: dict[str, Callable[[FaithBenchItem], float]] = {
    LEXICAL: lambda it: absent_share(it.summary, it.source),
    SENTENCE_COUNT: lambda it: float(len(split_sentences(it.summary))),
    SOURCE_LENGTH: lambda it: float(len(it.source.split())),
}


def score_rows(items: Sequence[FaithBenchItem], rows: Sequence[dict[str, Any]], *, judge_label: str) -> MetaEvalReport:
    """Metrics for the judge (OK rows only) and for each baseline on exactly those items.

    When every OK row carries the judge's ``hallucination_prob``, more rows are scored with one
    protocol: the judge, each score-kind baseline (HHEM-2.1) and the :data:`MODEL_FREE` detectors (the
    share of summary terms absent from the source, what the judge's word hints alone would give, and two
    length priors), each thresholded per batch at the threshold that is best on the *other* batches
    (``@cv-threshold``); the summary gets each one's threshold-free ROC AUC."""
    by_id = {it.id: it for it in items}
    ok = [r for r in rows if r["status"] == "ok" and r["item_id"] in by_id]
    truth = [by_id[r["item_id"]].hallucinated for r in ok]
    ours = [bool(r["predicted_hallucinated"]) for r in ok]
    metrics: dict[str, dict[str, Any]] = {}
    gaps: dict[str, Any] = {}
    cv_gaps: dict[str, Any] = {}

    def add(name: str, preds: Sequence[bool]) -> dict[str, Any]:
        e = binary_metrics(truth, preds).to_dict()
        e["ci95_balanced_accuracy"] = list(bootstrap_ci(truth, preds))
        metrics[name] = e
        return e

    entry = add(judge_label, ours)
    baseline_preds: dict[str, list[bool]] = {}
    missing: dict[str, int] = {}
    for name in BASELINES:
        have = [i for i, r in enumerate(ok) if name in by_id[r["item_id"]].baselines]
        if not have:
            continue
        preds = [by_id[ok[i]["item_id"]].baselines[name] for i in have]
        missing[name] = len(ok) - len(have)
        if missing[name] == 0:
            baseline_preds[name] = preds
            e = add(name, preds)
            diff = (entry["balanced_accuracy"] or math.nan) - (e["balanced_accuracy"] or math.nan)
            gaps[name] = {"ba_difference": diff, "ci95_paired": list(bootstrap_ci(truth, ours, y_other=preds))}
            continue
        # scored on the items that have its prediction only, and compared with the judge on those same items
        sub_truth, sub_ours = [truth[i] for i in have], [ours[i] for i in have]
        e = binary_metrics(sub_truth, preds).to_dict()
        e["ci95_balanced_accuracy"] = list(bootstrap_ci(sub_truth, preds))
        e["n"], e["missing_predictions"] = len(have), missing[name]
        metrics[name] = e
        mine = binary_metrics(sub_truth, sub_ours).balanced_accuracy
        diff = (mine if mine is not None else math.nan) - (e["balanced_accuracy"] or math.nan)
        gaps[name] = {
            "ba_difference": diff,
            "ci95_paired": list(bootstrap_ci(sub_truth, sub_ours, y_other=preds)),
            "items": len(have),
        }

    probs = [r.get("hallucination_prob") for r in ok]
    auc: dict[str, float | None] = {}
    within: dict[str, float | None] = {}
    thresholds: dict[str, dict[int, float]] = {}
    if ok and all(p is not None for p in probs):
        batches = [by_id[r["item_id"]].batch for r in ok]
        scored: dict[str, list[float]] = {judge_label: [float(p) for p in probs if p is not None]}
        for name in BASELINES:
            if all(name in by_id[r["item_id"]].baseline_scores for r in ok):
                scored[name] = [by_id[r["item_id"]].baseline_scores[name] for r in ok]
        for name, detector in MODEL_FREE.items():
            scored[name] = [detector(by_id[r["item_id"]]) for r in ok]
        cv_preds: dict[str, list[bool]] = {}
        strata = [len(split_sentences(by_id[r["item_id"]].summary)) for r in ok]
        for name, preds in {judge_label: ours, **baseline_preds}.items():
            if name not in scored:  # a hard 0/1 label is a two-valued score
                within[name] = _nan_to_none(stratified_auc(truth, [float(p) for p in preds], strata))
        for name, series in scored.items():
            auc[name] = _nan_to_none(roc_auc(truth, series))
            within[name] = _nan_to_none(stratified_auc(truth, series, strata))
            cv_preds[name], thresholds[name] = cross_validated_predictions(batches, truth, series)
            add(name + CV_SUFFIX, cv_preds[name])
        ours_cv = cv_preds[judge_label]
        ba_cv = metrics[judge_label + CV_SUFFIX]["balanced_accuracy"] or math.nan
        others = {**baseline_preds, **{n + CV_SUFFIX: p for n, p in cv_preds.items() if n != judge_label}}
        for name, preds in others.items():
            diff = ba_cv - (metrics[name]["balanced_accuracy"] or math.nan)
            cv_gaps[name] = {"ba_difference": diff, "ci95_paired": list(bootstrap_ci(truth, ours_cv, y_other=preds))}

    seconds = sum(r["usage"]["seconds"] for r in rows)
    tokens = [r["usage"]["prompt_tokens"] + r["usage"]["completion_tokens"] for r in rows]
    summary = {
        "judge": judge_label,
        "items_selected": len(items),
        "items_judged": len(rows),
        "ok": len(ok),
        "errors": sum(r["status"] == "error" for r in rows),
        "error_reasons": [r["reason"] for r in rows if r["status"] == "error"][:20],
        "human_hallucinated_rate": (sum(truth) / len(truth)) if truth else None,
        "judge_minus_baseline_ba": gaps,
        "baseline_missing_predictions": {name: n for name, n in missing.items() if n},
        "cv_judge_minus_baseline_ba": cv_gaps,
        "roc_auc": auc,
        "roc_auc_within_sentence_count": within,
        "cv_thresholds_by_batch": {name: {str(b): t for b, t in th.items()} for name, th in thresholds.items()},
        "items_per_minute": (60 * len(rows) / seconds) if seconds else None,
        "tokens_per_item": (sum(tokens) / len(tokens)) if tokens else None,
        "prompt_tokens_per_item": (sum(r["usage"]["prompt_tokens"] for r in rows) / len(rows)) if rows else None,
        "completion_tokens_per_item": (sum(r["usage"]["completion_tokens"] for r in rows) / len(rows))
        if rows
        else None,
    }
    return MetaEvalReport(metrics=metrics, summary=summary, rows=list(rows))


def _nan_to_none(x: float) -> float | None:
    return None if math.isnan(x) else x


def format_meta_table(report: MetaEvalReport) -> str:
    """Terminal table: one row per judge/baseline, on the same items, with the judge's cost below."""
    from eval.report import format_table

    rows = []
    for name, m in report.metrics.items():
        lo, hi = m["ci95_balanced_accuracy"]
        rows.append([name, m["balanced_accuracy"], f"[{lo:.3f}, {hi:.3f}]", m["f1"], m["kappa"], m["n"]])
    s = report.summary
    lines = [
        format_table(["detector", "bal_acc", "95% CI", "F1(halluc)", "kappa", "n"], rows, precision=3),
        f"judge errors: {s['errors']} of {s['items_judged']} judged ({s['items_selected']} selected); "
        f"human hallucinated rate {s['human_hallucinated_rate'] or 0:.3f}",
    ]
    if s["items_per_minute"]:
        lines.append(
            f"cost: {s['items_per_minute']:.2f} items/min, {s['tokens_per_item']:.0f} tokens/item "
            f"({s['prompt_tokens_per_item']:.0f} prompt + {s['completion_tokens_per_item']:.0f} completion)"
        )
    for label, gaps in (
        (s["judge"], s["judge_minus_baseline_ba"]),
        (s["judge"] + CV_SUFFIX, s["cv_judge_minus_baseline_ba"]),
    ):
        for name in ("HHEM-2.1", "HHEM-2.1" + CV_SUFFIX, "GPT-4o"):
            g = gaps.get(name)
            if g:
                lo, hi = g["ci95_paired"]
                lines.append(
                    f"{label} - {name}: {g['ba_difference']:+.3f} balanced accuracy "
                    f"(paired 95% CI [{lo:+.3f}, {hi:+.3f}])"
                )
    if s["roc_auc"]:
        lines.append(
            "ROC AUC (threshold-free): " + ", ".join(f"{n} {a:.3f}" for n, a in s["roc_auc"].items() if a is not None)
        )
        lines.append(
            "ROC AUC within equal summary-sentence counts (0.5 = nothing beyond length): "
            + ", ".join(f"{n} {a:.3f}" for n, a in s["roc_auc_within_sentence_count"].items() if a is not None)
        )
        lines.append(
            f"{CV_SUFFIX.strip()}: each batch thresholded at the value best on the other batches' labels "
            "(leave-one-batch-out), the same protocol for the judge and HHEM-2.1"
        )
    return "\n".join(lines)
