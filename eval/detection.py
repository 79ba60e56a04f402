"""Binary detector metrics, positive class = hallucinated: balanced accuracy, F1, Cohen's kappa
(:func:`binary_metrics`, checked against sklearn), percentile-bootstrap intervals, ROC AUC, and the
threshold chosen on other groups' labels only (:func:`cross_validated_predictions`). Used by the
FaithBench meta-evaluation; nothing here knows about FaithBench.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np


@dataclass(frozen=True)
class BinaryMetrics:
    balanced_accuracy: float
    f1: float
    kappa: float
    n: int
    precision: float
    recall: float
    tp: int
    fp: int
    fn: int
    tn: int

    def to_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in self.__dict__.items()}


def binary_metrics(y_true: Sequence[bool], y_pred: Sequence[bool]) -> BinaryMetrics:
    """Positive class = hallucinated. Balanced accuracy averages recall over the classes present in
    ``y_true`` (as sklearn); F1/precision are 0 when undefined (sklearn's zero_division=0); kappa is
    NaN when chance agreement is 1 (as sklearn)."""
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} items, y_pred {len(y_pred)}")
    n = len(y_true)
    tp = sum(t and p for t, p in zip(y_true, y_pred, strict=True))
    fn = sum(t and not p for t, p in zip(y_true, y_pred, strict=True))
    fp = sum(p and not t for t, p in zip(y_true, y_pred, strict=True))
    tn = n - tp - fn - fp
    recalls = [
        r
        for r, m in ((tp / (tp + fn) if tp + fn else 0.0, tp + fn), (tn / (tn + fp) if tn + fp else 0.0, tn + fp))
        if m
    ]
    balanced = sum(recalls) / len(recalls) if recalls else math.nan
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    if n:
        po = (tp + tn) / n
        pe = ((tp + fn) * (tp + fp) + (tn + fp) * (tn + fn)) / (n * n)
        kappa = (po - pe) / (1 - pe) if pe != 1 else math.nan
    else:
        kappa = math.nan
    return BinaryMetrics(balanced, f1, kappa, n, precision, recall, tp, fp, fn, tn)


def bootstrap_ci(
    y_true: Sequence[bool],
    y_pred: Sequence[bool],
    *,
    y_other: Sequence[bool] | None = None,
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """95% percentile-bootstrap interval of balanced accuracy, or of ``BA(y_pred) - BA(y_other)``
    (paired: the same resampled items for both) when ``y_other`` is given."""
    if not y_true:
        return (math.nan, math.nan)
    t = np.asarray(y_true, dtype=bool)
    p = np.asarray(y_pred, dtype=bool)
    o = np.asarray(y_other, dtype=bool) if y_other is not None else None
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(t), size=(resamples, len(t)))

    def ba(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
        pos = truth.sum(axis=1)
        neg = truth.shape[1] - pos
        tpr = np.divide((truth & pred).sum(axis=1), pos, out=np.full(len(pos), np.nan), where=pos > 0)
        tnr = np.divide((~truth & ~pred).sum(axis=1), neg, out=np.full(len(neg), np.nan), where=neg > 0)
        return np.nanmean(np.stack([tpr, tnr]), axis=0)

    stats = ba(t[idx], p[idx])
    if o is not None:
        stats = stats - ba(t[idx], o[idx])
    lo, hi = np.nanpercentile(stats, [2.5, 97.5])
    return (float(lo), float(hi))


def roc_auc(y_true: Sequence[bool], scores: Sequence[float]) -> float:
    """Area under the ROC curve (positive = hallucinated, higher score = more likely hallucinated);
    ties count one half (Mann-Whitney). NaN when one class is absent."""
    pos = [s for t, s in zip(y_true, scores, strict=True) if t]
    neg = [s for t, s in zip(y_true, scores, strict=True) if not t]
    if not pos or not neg:
        return math.nan
    p = np.asarray(pos, dtype=float)[:, None]
    n = np.asarray(neg, dtype=float)[None, :]
    return float(((p > n).sum() + 0.5 * (p == n).sum()) / (p.size * n.size))


def stratified_auc(y_true: Sequence[bool], scores: Sequence[float], strata: Sequence[object]) -> float:
    """ROC AUC over the (hallucinated, consistent) pairs that share a stratum only: the chance that a
    hallucinated item outscores a consistent one *of the same stratum*. With the number of summary
    sentences as strata, a detector that merely tracks length scores 0.5. NaN when no stratum holds both
    classes."""
    if not len(y_true) == len(scores) == len(strata):
        raise ValueError(f"{len(y_true)} labels, {len(scores)} scores, {len(strata)} strata")
    wins = 0.0
    pairs = 0
    for stratum in set(strata):
        idx = [i for i, s in enumerate(strata) if s == stratum]
        pos = np.asarray([scores[i] for i in idx if y_true[i]], dtype=float)[:, None]
        neg = np.asarray([scores[i] for i in idx if not y_true[i]], dtype=float)[None, :]
        wins += float((pos > neg).sum() + 0.5 * (pos == neg).sum())
        pairs += pos.size * neg.size
    return wins / pairs if pairs else math.nan


def best_threshold(y_true: Sequence[bool], scores: Sequence[float]) -> float:
    """The threshold ``t`` (predict hallucinated when ``score >= t``) with the highest balanced
    accuracy on these items. Candidates are the midpoints between consecutive distinct scores (and
    one beyond each end); among equally good ones the median is taken, so the choice is stable."""
    values = sorted(set(float(s) for s in scores))
    if not values:
        return 0.5
    candidates = [values[0] - 1e-9] + [(a + b) / 2 for a, b in pairwise(values)]
    candidates.append(values[-1] + 1e-9)
    best: list[float] = []
    best_ba = -1.0
    for t in candidates:
        ba = binary_metrics(y_true, [s >= t for s in scores]).balanced_accuracy
        if ba > best_ba + 1e-12:
            best, best_ba = [t], ba
        elif abs(ba - best_ba) <= 1e-12:
            best.append(t)
    return best[(len(best) - 1) // 2]


def cross_validated_predictions(
    groups: Sequence[int], y_true: Sequence[bool], scores: Sequence[float]
) -> tuple[list[bool], dict[int, float]]:
    """Leave-one-group-out: each group's items are thresholded at :func:`best_threshold` chosen on
    the *other* groups' labels only, so no item's own label influences its prediction. Returns the
    predictions and the threshold used for each group."""
    thresholds: dict[int, float] = {}
    preds: list[bool] = [False] * len(scores)
    for g in sorted(set(groups)):
        train = [i for i, x in enumerate(groups) if x != g]
        t = best_threshold([y_true[i] for i in train], [scores[i] for i in train]) if train else 0.5
        thresholds[g] = t
        for i, x in enumerate(groups):
            if x == g:
                preds[i] = scores[i] >= t
    return preds, thresholds
