"""FaithBench: binarisation per its README, loader, stratified order, metric maths against sklearn,
and the resumable meta-evaluation run with a deterministic judge."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from sklearn.metrics import balanced_accuracy_score, cohen_kappa_score, f1_score, roc_auc_score

from eval.detection import (
    best_threshold,
    binary_metrics,
    bootstrap_ci,
    cross_validated_predictions,
    roc_auc,
    stratified_auc,
)
from eval.faithbench import (
    BASELINES,
    CV_SUFFIX,
    LEXICAL,
    SENTENCE_COUNT,
    SOURCE_LENGTH,
    binarise,
    load_faithbench,
    run_meta_eval,
    stratified_order,
    work_order,
)
from eval.judges.base import JudgeResult
from rag.errors import EvalDataError


def test_binarise_rules() -> None:
    assert binarise([]) is False
    assert binarise(["Benign"]) is False
    assert binarise(["Questionable"]) is True
    assert binarise(["Questionable"], hallucinated_classes=("Unwanted",)) is False
    assert binarise(["Benign", "Unwanted", "Unwanted.Intrinsic"]) is True
    assert binarise(["Benign", "Unwanted.Extrinsic"], aggregation="best") is False
    # majority over the label set's severities: {Unwanted, Unwanted.Intrinsic, Benign} -> [3, 3, 1] -> 3
    assert binarise(["Unwanted", "Unwanted.Intrinsic", "Benign"], aggregation="majority") is True
    # a tie goes to the milder class (upstream's max(set(xs), key=xs.count) on ints)
    assert binarise(["Benign", "Questionable"], aggregation="majority") is False
    with pytest.raises(EvalDataError, match="unknown FaithBench label"):
        binarise(["Wrong"])


def test_loader_on_the_shared_data(shared_data: Path) -> None:
    items = load_faithbench(shared_data / "faithbench")
    assert len(items) == 400 and len({it.id for it in items}) == 400
    assert sum(it.hallucinated for it in items) == 266  # worst pooling, {Questionable, Unwanted}
    assert (
        sum(it.hallucinated for it in load_faithbench(shared_data / "faithbench", hallucinated_classes=("Unwanted",)))
        == 232
    )
    assert all(set(it.baselines) == set(BASELINES) for it in items)
    first = items[0]
    assert first.id == "b1-0" and first.baselines["HHEM-2.1"] is False  # hhem-2.1 = 0.527 >= 0.5
    assert not first.labels or first.hallucinated == binarise(first.labels)
    with pytest.raises(EvalDataError, match="not found"):
        load_faithbench(shared_data / "faithbench", batches=(99,))


def test_stratified_order_prefixes_keep_the_label_ratio(shared_data: Path) -> None:
    items = load_faithbench(shared_data / "faithbench")
    order = stratified_order(items)
    assert sorted(it.id for it in order) == sorted(it.id for it in items)
    rate = sum(it.hallucinated for it in items) / len(items)
    for n in (10, 40, 80):
        assert abs(sum(it.hallucinated for it in order[:n]) - rate * n) <= 1
    assert [it.id for it in stratified_order(items)] == [it.id for it in order]


def test_binary_metrics_match_sklearn() -> None:
    rng = random.Random(3)
    for _ in range(25):
        n = rng.randint(5, 60)
        t = [rng.random() < 0.6 for _ in range(n)]
        p = [rng.random() < 0.5 for _ in range(n)]
        if len(set(t)) < 2:
            continue
        m = binary_metrics(t, p)
        assert m.balanced_accuracy == pytest.approx(balanced_accuracy_score(t, p))
        assert m.f1 == pytest.approx(f1_score(t, p, zero_division=0))
        assert m.kappa == pytest.approx(cohen_kappa_score(t, p))
        assert m.n == n and m.tp + m.fp + m.fn + m.tn == n


def test_binary_metrics_edge_cases() -> None:
    m = binary_metrics([True, True, False, False], [False, False, False, False])
    assert m.balanced_accuracy == 0.5 and m.f1 == 0.0 and m.kappa == 0.0
    perfect = binary_metrics([True, False], [True, False])
    assert (perfect.balanced_accuracy, perfect.f1, perfect.kappa) == (1.0, 1.0, 1.0)
    assert binary_metrics([True, True], [True, False]).balanced_accuracy == 0.5  # one class present
    assert binary_metrics([True, True], [True, True]).to_dict()["kappa"] is None  # chance agreement 1
    with pytest.raises(ValueError):
        binary_metrics([True], [])


def test_bootstrap_ci_brackets_the_estimate() -> None:
    rng = random.Random(0)
    t = [rng.random() < 0.5 for _ in range(200)]
    p = [x if rng.random() < 0.8 else not x for x in t]
    lo, hi = bootstrap_ci(t, p)
    assert lo < binary_metrics(t, p).balanced_accuracy < hi and hi - lo < 0.2
    dlo, dhi = bootstrap_ci(t, p, y_other=p)
    assert dlo == dhi == 0.0


class CountingJudge:
    """Says 'hallucinated' when the summary is longer than the source; fails on one chosen item."""

    name = "counting"

    def __init__(self, fail_id: str | None = None) -> None:
        self.seen: list[str] = []
        self.fail_id = fail_id

    def judge(self, answer: str, contexts: list[str], *, item_id: str = "") -> JudgeResult:
        self.seen.append(item_id)
        if item_id == self.fail_id:
            return JudgeResult(self.name, item_id, "error", None, "could not parse")
        return JudgeResult(self.name, item_id, "ok", 0.5 if len(answer) > len(contexts[0]) else 1.0, "r")


def test_meta_eval_is_resumable_and_scores_baselines_on_the_same_items(shared_data: Path, tmp_path: Path) -> None:
    items = stratified_order(load_faithbench(shared_data / "faithbench", batches=(1,)))[:12]
    first = CountingJudge(fail_id=items[3].id)
    report = run_meta_eval(items[:8], first, out_dir=tmp_path, judge_label="ours")
    assert len(first.seen) == 8 and report.summary["errors"] == 1
    assert report.metrics["ours"]["n"] == 7 and report.metrics["GPT-4o"]["n"] == 7
    second = CountingJudge()
    report = run_meta_eval(items, second, out_dir=tmp_path, judge_label="ours")
    # the error is retried, done items skipped (the work grouped by source)
    assert second.seen == [it.id for it in work_order([items[3], *items[8:]])]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert set(metrics) == {"ours", *BASELINES}
    assert all({"balanced_accuracy", "f1", "kappa", "n"} <= set(m) for m in metrics.values())
    assert all(m["n"] == 12 for m in metrics.values()) and report.summary["errors"] == 0
    ok = [json.loads(line) for line in (tmp_path / "items.jsonl").read_text().splitlines()]
    assert len(ok) == 13 and {"reason", "usage", "human_hallucinated", "predicted_hallucinated"} <= set(ok[0])


def test_roc_auc_matches_sklearn_with_ties() -> None:
    rng = random.Random(3)
    t = [rng.random() < 0.4 for _ in range(150)]
    s = [round(rng.random() + (0.3 if x else 0.0), 1) for x in t]  # rounded: many ties
    assert roc_auc(t, s) == pytest.approx(roc_auc_score(t, s))
    assert roc_auc([True, True], [0.1, 0.2]) != roc_auc([True, True], [0.1, 0.2])  # NaN: one class only


def test_best_threshold_maximises_balanced_accuracy() -> None:
    t = [False, False, False, True, True, False, True]
    s = [0.1, 0.2, 0.3, 0.35, 0.6, 0.7, 0.9]
    th = best_threshold(t, s)
    ba = binary_metrics(t, [x >= th for x in s]).balanced_accuracy
    assert ba == max(binary_metrics(t, [x >= c for x in s]).balanced_accuracy for c in [*s, 1.0])
    assert 0.3 < th <= 0.35
    assert best_threshold([True, False], [0.5, 0.5]) in (0.5 - 1e-9, 0.5 + 1e-9)


def test_stratified_auc_counts_only_pairs_within_a_stratum() -> None:
    rng = random.Random(3)
    t = [rng.random() < 0.4 for _ in range(60)]
    s = [rng.random() + (0.3 if x else 0.0) for x in t]
    assert stratified_auc(t, s, [0] * 60) == pytest.approx(roc_auc_score(t, s))
    # the stratum itself as the score: it orders no pair inside a stratum
    strata = [int(x) + (i % 2) for i, x in enumerate(t)]
    assert roc_auc(t, [float(k) for k in strata]) > 0.7
    assert stratified_auc(t, [float(k) for k in strata], strata) == 0.5
    # pooled by pairs: two strata with 2x1 and 1x1 pairs
    assert stratified_auc([True, True, False, True, False], [0.9, 0.1, 0.5, 0.2, 0.8], ["a", "a", "a", "b", "b"]) == (
        pytest.approx((1 + 0) / 3)
    )
    assert stratified_auc([True, False], [0.1, 0.2], [0, 1]) != stratified_auc([True, False], [0.1, 0.2], [0, 1])


def test_cross_validated_predictions_never_see_their_own_labels() -> None:
    rng = random.Random(5)
    groups = [i % 4 for i in range(80)]
    t = [rng.random() < 0.5 for _ in range(80)]
    s = [rng.random() + (0.4 if x else 0.0) for x in t]
    preds, thresholds = cross_validated_predictions(groups, t, s)
    assert set(thresholds) == {0, 1, 2, 3}
    flipped = [not x if g == 2 else x for x, g in zip(t, groups, strict=True)]
    preds2, thresholds2 = cross_validated_predictions(groups, flipped, s)
    assert [p for p, g in zip(preds, groups, strict=True) if g == 2] == [
        p for p, g in zip(preds2, groups, strict=True) if g == 2
    ]
    assert thresholds2[2] == thresholds[2] and thresholds2[0] != thresholds[0]
    assert all(p == (x >= thresholds[g]) for p, x, g in zip(preds, s, groups, strict=True))


class ProbJudge:
    """Reports the summary/source length ratio as its hallucination probability."""

    name = "prob"

    def judge(self, answer: str, contexts: list[str], *, item_id: str = "") -> JudgeResult:
        p = min(1.0, len(answer) / max(1, len(contexts[0])))
        return JudgeResult(self.name, item_id, "ok", 1.0, "r", details={"hallucination_prob": p})


def test_meta_eval_thresholds_probabilities_leave_one_batch_out(shared_data: Path, tmp_path: Path) -> None:
    items = stratified_order(load_faithbench(shared_data / "faithbench", batches=(1, 2, 3)))[:30]
    report = run_meta_eval(items, ProbJudge(), out_dir=tmp_path, judge_label="ours")
    assert {"ours" + CV_SUFFIX, "HHEM-2.1" + CV_SUFFIX, LEXICAL + CV_SUFFIX} <= set(report.metrics)
    assert report.metrics["ours" + CV_SUFFIX]["n"] == 30
    s = report.summary
    assert set(s["cv_thresholds_by_batch"]["ours"]) == {str(b) for b in {it.batch for it in items}}
    truth = [it.hallucinated for it in items]
    assert s["roc_auc"]["HHEM-2.1"] == pytest.approx(
        roc_auc_score(truth, [it.baseline_scores["HHEM-2.1"] for it in items])
    )
    assert {"HHEM-2.1", "HHEM-2.1" + CV_SUFFIX} <= set(s["cv_judge_minus_baseline_ba"])
    # the sentence-count prior orders no pair of equal sentence count; every detector is compared that way too
    within = s["roc_auc_within_sentence_count"]
    assert within[SENTENCE_COUNT] == 0.5
    assert {"ours", "GPT-4o", "HHEM-2.1", LEXICAL, SOURCE_LENGTH} <= set(within)
    assert SENTENCE_COUNT + CV_SUFFIX in report.metrics
    rows = [json.loads(line) for line in (tmp_path / "items.jsonl").read_text().splitlines()]
    assert all(0.0 <= r["hallucination_prob"] <= 1.0 for r in rows)


class ThresholdJudge:
    """Calls an item hallucinated from its own threshold, whatever its score."""

    name = "threshold"

    def judge(self, answer: str, contexts: list[str], *, item_id: str = "") -> JudgeResult:
        return JudgeResult(self.name, item_id, "ok", 0.5, "r", details={"hallucinated": len(answer) > 300})


def test_meta_eval_takes_the_judges_own_call_and_keeps_judges_apart(shared_data: Path, tmp_path: Path) -> None:
    items = stratified_order(load_faithbench(shared_data / "faithbench", batches=(1,)))[:6]
    report = run_meta_eval(items, ThresholdJudge(), out_dir=tmp_path, judge_label="t")
    assert [r["predicted_hallucinated"] for r in report.rows] == [len(it.summary) > 300 for it in items]
    with pytest.raises(EvalDataError, match="another judge"):
        run_meta_eval(items, ProbJudge(), out_dir=tmp_path, judge_label="ours")


def test_a_missing_baseline_prediction_drops_the_item_from_that_baseline(shared_data: Path, tmp_path: Path) -> None:
    """Batch 14 of the full release has two items whose stored true_nli is null: the run must not abort."""
    data = json.loads((shared_data / "faithbench" / "data_for_release" / "batch_1.json").read_text())
    items_before = stratified_order(load_faithbench(shared_data / "faithbench", batches=(1,)))[:12]
    nulled = {int(items_before[0].id.split("-")[1]), int(items_before[5].id.split("-")[1])}
    for s in data["samples"]:
        if s["sample_id"] in nulled:
            s["metadata"]["true_nli"] = None
    folder = tmp_path / "fb" / "data_for_release"
    folder.mkdir(parents=True)
    (folder / "batch_1.json").write_text(json.dumps(data))
    items = stratified_order(load_faithbench(tmp_path / "fb", batches=(1,)))[:12]
    assert sum("TRUE-NLI" not in it.baselines for it in items) == 2
    report = run_meta_eval(items, CountingJudge(), out_dir=tmp_path / "out", judge_label="ours")
    assert report.metrics["ours"]["n"] == 12 and report.metrics["GPT-4o"]["n"] == 12
    assert report.metrics["TRUE-NLI"]["n"] == 10 and report.metrics["TRUE-NLI"]["missing_predictions"] == 2
    assert report.summary["baseline_missing_predictions"] == {"TRUE-NLI": 2}
    assert report.summary["judge_minus_baseline_ba"]["TRUE-NLI"]["items"] == 10


def test_work_is_grouped_by_source_but_the_report_keeps_the_stratified_order(shared_data: Path, tmp_path: Path) -> None:
    items = stratified_order(load_faithbench(shared_data / "faithbench", batches=(1, 2)))[:20]
    grouped = work_order(items)
    assert sorted(it.id for it in grouped) == sorted(it.id for it in items)
    sources = [it.source for it in grouped]
    assert all(sources.index(s) + sources.count(s) - 1 == len(sources) - 1 - sources[::-1].index(s) for s in sources)
    assert len(set(sources)) < len(sources)  # the sample does share sources, so grouping matters
    judge = CountingJudge()
    report = run_meta_eval(items, judge, out_dir=tmp_path, judge_label="ours")
    assert judge.seen == [it.id for it in grouped]
    assert [r["item_id"] for r in report.rows] == [it.id for it in items]
