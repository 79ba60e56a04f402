"""Shared fixtures: the real embedding model and LLM (session-scoped), and the shared evaluation data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import rag  # noqa: F401 - sets the offline environment before any model library is imported

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("RAGTRAIL_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``. CI always has it, so there a missing folder is a failure, not a skip."""
    if not SHARED_DATA.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"shared data not found at {SHARED_DATA}")
        pytest.skip(f"shared data not found at {SHARED_DATA} (set RAGTRAIL_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def embedder():
    """The real default embedding model (all-MiniLM-L6-v2 from its PyPI package), loaded once."""
    from rag.models import load_embedder

    return load_embedder("all-MiniLM-L6-v2")


@pytest.fixture(scope="session")
def local_llm():
    """The real embedded LLM (Qwen2.5-Coder-1.5B-Instruct Q4_K_M via llama-cpp-python), loaded once."""
    from rag.config import LLMConfig
    from rag.llm import create_llm

    return create_llm(LLMConfig(n_ctx=4096))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test that loads the local LLM (the ``local_llm`` fixture or the ``llm`` mark) must be marked ``slow`` too,
    so ``-m "not slow"`` stays a quick loop; one that is not stops the run here, naming it."""
    unmarked = [
        item.nodeid
        for item in items
        if ("local_llm" in getattr(item, "fixturenames", ()) or item.get_closest_marker("llm"))
        and not item.get_closest_marker("slow")
    ]
    if unmarked:
        raise pytest.UsageError(f"tests that load the local LLM must be marked slow: {', '.join(unmarked)}")
