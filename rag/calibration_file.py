"""The reranker's label-free calibration as stored beside an index: ``rerank_calibration.json``.

:func:`rag.rerank.load_reranker` reads the weight stored for its model here whenever the configuration
leaves ``rerank.fusion_weight`` null; :mod:`rag.calibration` (``rag reranker calibrate``) measures and
writes it. One entry per (model, passage format); an entry made for other weights of the same model
path is ignored (the fingerprint hashes the weight files).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from rag.errors import ConfigError

CALIBRATION_FILE = "rerank_calibration.json"


@dataclass(frozen=True)
class Calibration:
    model: str  # the resolved reranker path or id the weight belongs to
    with_title: bool
    fusion_weight: float
    queries: int
    pseudo: str  # how the pseudo-queries were made, e.g. "llm-claim"
    mode: str  # the first stage
    depth: int  # candidates reranked per query
    ndcg: dict[str, float]  # str(weight) -> mean nDCG@10 over the pseudo-queries
    ci95: tuple[float, float]  # bootstrap CI of (best blend - first stage)
    chunks: int  # chunks in the index when it was calibrated
    seconds: float
    created: str = ""
    notes: list[str] = field(default_factory=list)
    fingerprint: str = ""  # model_fingerprint(model) when calibrated

    def __post_init__(self) -> None:  # read_calibration turns this into a ConfigError naming the file
        if not 0.0 <= self.fusion_weight <= 1.0:
            raise ValueError(f"fusion_weight must be between 0 and 1, got {self.fusion_weight}")

    @property
    def first_stage(self) -> float:
        return self.ndcg["1.0"]

    @property
    def reranker_alone(self) -> float:
        return self.ndcg["0.0"]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibration:
        return cls(**{**d, "ci95": tuple(d["ci95"]), "ndcg": {str(k): float(v) for k, v in d["ndcg"].items()}})


def calibration_path(index_dir: str | Path) -> Path:
    return Path(index_dir) / CALIBRATION_FILE


def model_fingerprint(model: str) -> str:
    """sha256 of a local model's weight files (a re-trained or re-installed model is a new model); an id as is."""
    root = Path(model)
    files = sorted(f for f in root.glob("*") if f.suffix in (".safetensors", ".bin")) if root.is_dir() else []
    if not files:
        return model
    return _hash_files(tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files))


@lru_cache(maxsize=8)
def _hash_files(files: tuple[tuple[str, int, int], ...]) -> str:
    h = hashlib.sha256()
    for name, _, _ in files:
        with open(name, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def read_calibration(index_dir: str | Path, model: str, *, with_title: bool) -> Calibration | None:
    """The stored calibration for ``model`` (resolved path or id; the same weights) and passage format, or None."""
    path = calibration_path(index_dir)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        cals = [Calibration.from_dict(d) for d in data.get("calibrations", [])]
    except (OSError, ValueError, TypeError, KeyError) as e:
        raise ConfigError(f"{path}: unreadable reranker calibration ({e}); re-run `rag reranker calibrate`") from e
    key = _model_key(model)
    for c in cals:  # the weights are hashed only when a calibration for this model is stored
        if _model_key(c.model) == key and c.with_title == with_title:
            if c.fingerprint in ("", model_fingerprint(model)):
                return c
    return None


def write_calibration(index_dir: str | Path, cal: Calibration) -> Path:
    """Store ``cal``, replacing an earlier one for the same model and passage format (atomic write)."""
    path = calibration_path(index_dir)
    kept: list[dict[str, Any]] = []
    if path.is_file():
        try:
            kept = json.loads(path.read_text(encoding="utf-8")).get("calibrations", [])
        except (OSError, ValueError) as e:
            raise ConfigError(f"{path}: unreadable reranker calibration ({e}); delete it and re-run") from e
    key = _model_key(cal.model)
    kept = [d for d in kept if not (_model_key(d.get("model", "")) == key and d.get("with_title") == cal.with_title)]
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"calibrations": [*kept, cal.to_dict()]}, indent=2), encoding="utf-8")
    os.replace(tmp, path)
    return path


def _model_key(model: str) -> str:
    p = Path(model)
    return str(p.resolve()) if p.exists() else model
