"""Every error ragtrail raises on purpose. The CLI maps each to a message on stderr and an exit code.

RagError
├── ConfigError            a configuration file or value is invalid          (exit 2)
├── IndexError_            an index directory cannot be used
│   ├── IndexNotFoundError     no index at the path
│   ├── IndexVersionError      written by an incompatible format or embedding model
│   └── IndexLockedError       another process is writing to it
├── IngestError            ingestion failed and nothing was stored (e.g. --strict)
├── DocumentError          one document could not be read (carries the path and the reason)
├── ModelError             a model could not be found, assembled or loaded
├── GenerationError        the LLM backend failed (timeout, HTTP error, bad response)
├── JudgeError             a judge's output could not be parsed into its verdict
└── EvalDataError          an evaluation dataset is missing or malformed
"""

from __future__ import annotations

from pathlib import Path


class RagError(Exception):
    """Base class: an error with a message meant for the user."""

    exit_code: int = 1


class ConfigError(RagError):
    exit_code = 2


class IndexError_(RagError):
    pass


class IndexNotFoundError(IndexError_):
    pass


class IndexVersionError(IndexError_):
    pass


class IndexLockedError(IndexError_):
    pass


class IngestError(RagError):
    pass


class DocumentError(RagError):
    """A single document failed; ingestion skips it and reports ``path: reason``."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class ModelError(RagError):
    pass


class GenerationError(RagError):
    pass


class JudgeError(RagError):
    pass


class EvalDataError(RagError):
    exit_code = 2
