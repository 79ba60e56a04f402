"""Retrieval-evaluation fixtures: a tiny BEIR dataset with its real index, and SciFact evaluated once.

The SciFact index takes a minute or two of CPU to build, so it is built once per session. Set
``RAGTRAIL_SCIFACT_INDEX`` to a directory to keep it between sessions (re-ingesting an unchanged
corpus into it is a no-op).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from eval_tiny_data import write_beir

from rag.config import PipelineConfig, load_config


@pytest.fixture(scope="session")
def tiny_beir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_beir(tmp_path_factory.mktemp("beir") / "tiny")


@pytest.fixture(scope="session")
def tiny_index_dir(tiny_beir: Path, tmp_path_factory: pytest.TempPathFactory, embedder) -> Path:
    """The tiny corpus ingested with the real embedding model (``embedder`` loads it once)."""
    from ingest.pipeline import ingest

    index_dir = tmp_path_factory.mktemp("tiny-index") / "index"
    ingest(tiny_beir / "corpus.jsonl", index_dir=index_dir, config=PipelineConfig())
    return index_dir


@pytest.fixture(scope="session")
def scifact_dir(shared_data: Path) -> Path:
    path = shared_data / "beir" / "scifact"
    if not (path / "corpus.jsonl").is_file():
        pytest.fail(f"SciFact not found at {path}")
    return path


@pytest.fixture(scope="session")
def scifact_pipeline(repo_root: Path) -> PipelineConfig:
    """The pipeline configuration ``configs/expected_scores.yaml`` pins SciFact scores for."""
    with (repo_root / "configs" / "expected_scores.yaml").open(encoding="utf-8") as fh:
        entry = yaml.safe_load(fh)["scifact"]
    return load_config(repo_root / entry["config"] if entry.get("config") else None)


@pytest.fixture(scope="session")
def scifact_index_dir(
    scifact_dir: Path, scifact_pipeline: PipelineConfig, tmp_path_factory: pytest.TempPathFactory, embedder
) -> Path:
    from ingest.pipeline import ingest

    env = os.environ.get("RAGTRAIL_SCIFACT_INDEX")
    index_dir = Path(env) if env else tmp_path_factory.mktemp("scifact") / "index"
    ingest(scifact_dir / "corpus.jsonl", index_dir=index_dir, config=scifact_pipeline)
    return index_dir


@pytest.fixture(scope="session")
def scifact_result(scifact_dir: Path, scifact_index_dir: Path, scifact_pipeline: PipelineConfig):
    """SciFact test evaluated once for bm25, dense and hybrid (the slow tests share it)."""
    from eval.retrieval import RetrievalEvalConfig, RetrievalEvaluator

    config = RetrievalEvalConfig(modes=("bm25", "dense", "hybrid"), n_resamples=2000)
    return RetrievalEvaluator(scifact_pipeline, config).run(scifact_dir, index_dir=scifact_index_dir)
