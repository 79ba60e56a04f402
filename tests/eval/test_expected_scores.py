"""Regression: SciFact test nDCG@10 per mode reproduces ``configs/expected_scores.yaml`` within its
tolerance, and clears the quality bar (at least the published BM25 / all-MiniLM-L6-v2 numbers minus a
hair; hybrid above both)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

EXPECTED = Path(__file__).resolve().parents[2] / "configs" / "expected_scores.yaml"


def expected() -> dict[str, Any]:
    with EXPECTED.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)["scifact"]


def test_expected_scores_file_is_well_formed() -> None:
    entry = expected()
    assert entry["split"] == "test" and entry["metric"] == "ndcg@10"
    assert 0 < entry["tolerance"] <= 0.02
    assert set(entry["scores"]) >= {"bm25", "dense", "hybrid"}
    assert set(entry["minimum"]) <= set(entry["scores"])
    for mode, value in entry["scores"].items():
        assert 0.0 < value < 1.0, mode
        assert value >= entry["minimum"].get(mode, 0.0), f"pinned {mode} score is below its own minimum"


@pytest.mark.slow
def test_scifact_scores_reproduce(scifact_result) -> None:
    entry = expected()
    metric = entry["metric"]
    measured = {mode: r.means[metric] for mode, r in scifact_result.modes.items()}
    assert len(scifact_result.dataset.qrels) == entry["queries"]
    for mode in ("bm25", "dense", "hybrid"):
        assert measured[mode] == pytest.approx(entry["scores"][mode], abs=entry["tolerance"]), (mode, measured)
        assert measured[mode] >= entry["minimum"][mode], (mode, measured)
    assert measured["hybrid"] > max(measured["bm25"], measured["dense"]), measured
