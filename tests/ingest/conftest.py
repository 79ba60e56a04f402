"""Fixtures for the ingestion tests: a small real folder (Markdown, text, HTML, a 3-page PDF)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from ingest_sample_folder import make_folder

from rag.config import ChunkingConfig, PipelineConfig


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return make_folder(tmp_path / "docs")


SMALL = PipelineConfig(chunking=ChunkingConfig(chunk_tokens=64, overlap_tokens=8))


@pytest.fixture
def config() -> PipelineConfig:
    return SMALL


@pytest.fixture(scope="module")
def built_once(tmp_path_factory: pytest.TempPathFactory, embedder) -> tuple[Path, Path]:
    """(folder, index) ingested once per module; tests that change them take ``built_copy``."""
    from ingest.pipeline import ingest

    base = tmp_path_factory.mktemp("built")
    folder = make_folder(base / "docs")
    ingest(folder, index_dir=base / "index", config=SMALL)
    return folder, base / "index"


@pytest.fixture
def built_copy(built_once: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    """A private copy of the module's folder and index, free to modify."""
    folder, index = built_once
    shutil.copytree(folder, tmp_path / "docs")
    shutil.copytree(index, tmp_path / "index")
    return tmp_path / "docs", tmp_path / "index"


@pytest.fixture
def index_dir(tmp_path: Path) -> Path:
    return tmp_path / "index"
