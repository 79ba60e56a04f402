"""Configuration: every shipped config round-trips, and every range rule fails at load time with the dotted
key of the bad value (a ConfigError, exit code 2), never later as a traceback."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from rag.config import PipelineConfig, load_config, to_dict
from rag.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def _is_pipeline_config(path: Path) -> bool:
    """Recipes have a top-level ``train:``; expected_scores.yaml pins scores; the rest configure the pipeline."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return path.name != "expected_scores.yaml" and "train" not in data


PIPELINE_CONFIGS = [p for p in sorted((REPO / "configs").glob("*.yaml")) if _is_pipeline_config(p)]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _leaves(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_the_pipeline_configs_are_found() -> None:
    names = {p.name for p in PIPELINE_CONFIGS}
    assert {"default.yaml", "answer_passages.yaml", "answer_gate_open.yaml", "reranker_ms_marco.yaml"} <= names


@pytest.mark.parametrize("path", PIPELINE_CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_round_trips(path: Path, tmp_path: Path) -> None:
    """load -> dump -> load gives the same config, and every value the file sets is in the loaded config."""
    config = load_config(path)
    written = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    loaded = _leaves(config.to_dict())
    for key, value in _leaves(written).items():
        assert loaded[key] == value, (path.name, key)
    dumped = tmp_path / "dumped.yaml"
    dumped.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False), encoding="utf-8")
    again = load_config(dumped)
    assert again == config
    assert PipelineConfig.from_dict(config.to_dict()) == config


def test_default_yaml_mirrors_the_dataclass_defaults() -> None:
    assert load_config(REPO / "configs" / "default.yaml") == PipelineConfig()
    assert set(_leaves(yaml.safe_load((REPO / "configs" / "default.yaml").read_text()))) == set(
        _leaves(PipelineConfig().to_dict())
    )


# One case per rule family: a range [low, high], a lower bound, not negative, positive, an optional value
# (null allowed, a number checked), the overlap within half a chunk, the extension form, a rule across
# sections, and a per-name list in one section.
BAD = [
    ("retrieval:\n  dense_weight: 1.5\n", r"retrieval\.dense_weight must be between 0 and 1, got 1\.5"),
    ("bm25:\n  b: -0.1\n", r"bm25\.b must be between 0 and 1, got -0\.1"),
    ("ingest:\n  ocr_dpi: 30\n", r"ingest\.ocr_dpi must be between 72 and 600, got 30"),
    ("serve:\n  port: 70000\n", r"serve\.port must be between 0 and 65535"),
    ("chunking:\n  chunk_tokens: 4\n  overlap_tokens: 0\n", r"chunking\.chunk_tokens must be at least 8, got 4"),
    ("retrieval:\n  depth: 0\n", r"retrieval\.depth must be at least 1, got 0"),
    ("prompt:\n  top_k: 0\n", r"prompt\.top_k must be at least 1, got 0"),
    ("dense_index:\n  hnsw_m: 1\n", r"dense_index\.hnsw_m must be at least 2, got 1"),
    ("embedding:\n  batch_size: 0\n", r"embedding\.batch_size must be at least 1, got 0"),
    ("embedding:\n  max_seq_length: 0\n", r"embedding\.max_seq_length must be at least 1, got 0"),
    ("rerank:\n  depth: 0\n", r"rerank\.depth must be at least 1, got 0"),
    ("answer:\n  candidates: 0\n", r"answer\.candidates must be at least 1, got 0"),
    ("followup:\n  rewrite_tokens: 0\n", r"followup\.rewrite_tokens must be at least 1"),
    ("retrieval:\n  rrf_k: -1\n", r"retrieval\.rrf_k must not be negative, got -1"),
    ("bm25:\n  k1: -0.5\n", r"bm25\.k1 must not be negative, got -0\.5"),
    ("llm:\n  temperature: -1\n", r"llm\.temperature must not be negative, got -1\.0"),
    ("ingest:\n  file_timeout_s: -1\n", r"ingest\.file_timeout_s must not be negative \(0: no limit\)"),
    ("llm:\n  timeout_s: 0\n", r"llm\.timeout_s must be positive, got 0\.0"),
    ("ingest:\n  max_file_mb: 0\n", r"ingest\.max_file_mb must be positive, got 0\.0"),
    ("rerank:\n  fusion_weight: 1.2\n", r"rerank\.fusion_weight must be between 0 and 1, got 1\.2"),
    ("llm:\n  n_threads: 0\n", r"llm\.n_threads must be at least 1, got 0"),
    (
        "chunking:\n  chunk_tokens: 64\n  overlap_tokens: 40\n",
        r"chunking\.overlap_tokens must be at most half of chunking\.chunk_tokens \(32\), got 40",
    ),
    ("ingest:\n  extensions: [.pdf, txt]\n", r"ingest\.extensions: 'txt' is not a file suffix like '\.pdf'"),
    ("llm:\n  n_ctx: 300\n", r"prompt\.answer_tokens \(384\) must be below llm\.n_ctx \(300\)"),
    ("index_dir: ''\n", r"index_dir must not be empty"),
]


@pytest.mark.parametrize(("text", "message"), BAD, ids=[m.split()[0].replace("\\", "").rstrip(":") for _, m in BAD])
def test_a_value_out_of_range_is_a_config_error_naming_the_file_and_key(
    text: str, message: str, tmp_path: Path
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError, match=rf"^{path}: {message}"):
        load_config(path)


GOOD = [
    "retrieval:\n  dense_weight: 0\n  rrf_k: 0\n",
    "retrieval:\n  dense_weight: 1\n",
    "rerank:\n  fusion_weight: null\n",
    "rerank:\n  fusion_weight: 1.0\n",
    "chunking:\n  chunk_tokens: 8\n  overlap_tokens: 4\n",
    "chunking:\n  chunk_tokens: 64\n  overlap_tokens: 0\n",
    "llm:\n  n_ctx: 385\n  n_threads: null\n  temperature: 0\n",
    "ingest:\n  file_timeout_s: 0\n  max_file_memory_mb: 0\n  ocr_dpi: 72\n",
    "serve:\n  port: 0\n  max_queue: 0\n",
]


@pytest.mark.parametrize("text", GOOD)
def test_values_on_the_boundary_are_accepted(text: str, tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, text))
    for key, value in _leaves(yaml.safe_load(text)).items():
        assert _leaves(config.to_dict())[key] == value


def test_rules_hold_for_configs_built_in_python_too() -> None:
    """``replace`` and direct construction run the same checks as YAML loading."""
    config = PipelineConfig()
    with pytest.raises(ConfigError, match=r"^retrieval\.dense_weight must be between 0 and 1, got -0\.5$"):
        dataclasses.replace(config.retrieval, dense_weight=-0.5)
    with pytest.raises(ConfigError, match=r"answer\.answer_tokens \(5000\) must be below llm\.n_ctx \(4096\)"):
        config.replace(answer=dataclasses.replace(config.answer, answer_tokens=5000))
    assert to_dict(dataclasses.replace(config.retrieval, dense_weight=0.25))["dense_weight"] == 0.25


def test_overrides_are_checked_like_the_file() -> None:
    with pytest.raises(ConfigError, match=r"^rerank\.batch_size must be at least 1, got 0$"):
        load_config(overrides={"rerank": {"batch_size": 0}})


def test_rag_ask_with_a_bad_config_exits_2_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    path = _write(tmp_path, "retrieval:\n  dense_weight: 1.5\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "rag.cli", "ask", "what is the leave policy?", "--config", str(path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == f"rag: error: {path}: retrieval.dense_weight must be between 0 and 1, got 1.5"
    assert "Traceback" not in proc.stderr and proc.stdout == ""


@pytest.mark.parametrize(
    ("train", "message"),
    [
        ({"lr": 0}, r"train\.lr must be positive, got 0"),
        ({"batch_queries": 0}, r"train\.batch_queries must be at least 1, got 0"),
        ({"max_steps": 0}, r"train\.max_steps must be at least 1, got 0"),
        ({"skip_queries": -8}, r"train\.skip_queries must not be negative, got -8"),
        ({"warmup_ratio": 1.5}, r"train\.warmup_ratio must be between 0 and 1, got 1\.5"),
        ({"heldout_fraction": 1.0}, r"train\.heldout_fraction must be at least 0 and below 1, got 1\.0"),
    ],
)
def test_a_training_recipe_is_checked_the_same_way(train: dict[str, Any], message: str, tmp_path: Path) -> None:
    from rag.training.sources import load_recipe

    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump({"data": [], "train": {"max_steps": 10, **train}}), encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_recipe(path)
