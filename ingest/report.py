"""The result of an ingest: counts per status, failures with reasons, per-stage timings."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rag.config import PipelineConfig

STAGES = ("discover", "load", "model", "chunk", "embed", "bm25", "dense", "write")


@dataclass
class IngestReport:
    """Counts are in documents (files, or BEIR documents); ``failed`` lists ``(path, reason)``.

    ``cleaning`` maps each stored document's source to ``{"chars_loaded", "chars_removed"}``: the
    non-whitespace characters the loader produced and how many of them cleaning removed (page
    numbers, running headers/footers). ``notes`` name every document that lost more than 20 %.
    ``loading`` maps each file that was read to ``{"seconds"}`` it took to parse and clean and, when it
    was loaded in the worker process (:mod:`ingest.isolate`), the worker's ``"peak_mb"`` meanwhile.
    """

    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    chunks_total: int = 0
    chunks_embedded: int = 0
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    index_dir: str = ""
    written: bool = False
    notes: list[str] = field(default_factory=list)
    cleaning: dict[str, dict[str, int]] = field(default_factory=dict)
    loading: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def documents(self) -> int:
        return self.added + self.updated + self.unchanged

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["failed"] = [{"path": p, "reason": r} for p, r in self.failed]
        out["documents"] = self.documents
        return out


def strict_message(report: IngestReport) -> str:
    lines = "\n".join(f"  {p}: {r}" for p, r in report.failed)
    count = len(report.failed)
    return f"--strict: {count} document(s) could not be ingested; the index was not changed:\n{lines}"


def nothing_message(root: Path, report: IngestReport, config: PipelineConfig) -> str:
    if report.failed:
        lines = "\n".join(f"  {p}: {r}" for p, r in report.failed)
        return f"{root}: none of the documents could be ingested; the index was not changed:\n{lines}"
    supported = ", ".join(config.ingest.extensions)
    return f"{root}: no documents to ingest (supported: {supported}; hidden files are ignored)"
