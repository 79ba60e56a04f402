"""Citation parsing: ``[1]``, ``[1, 3]``, ``[1][2]``, ``[2-4]``, ``[Source 2]`` in an answer.

Citations to sources that do not exist are dropped from the list and removed from the cleaned text
(a bracket that cited only unknown numbers disappears). Detecting the fixed "not in the documents"
sentence is here too, so callers can tell a refusal from an answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_CITATION = re.compile(
    r"\[\s*(?:sources?\s*)?(\d+(?:\s*-\s*\d+)?(?:\s*[,;]\s*(?:sources?\s*)?\d+(?:\s*-\s*\d+)?)*)\s*\]",
    re.IGNORECASE,
)
_ITEM = re.compile(r"(\d+)(?:\s*-\s*(\d+))?")
_MAX_RANGE = 50
_NOT_FOUND = re.compile(
    r"\b(?:answer|information)\s+(?:is\s+)?not\s+(?:\w+\s+)?(?:in|within|found in|contained in|provided in|"
    r"present in|available in|mentioned in)\s+the\s+(?:provided\s+|given\s+)?(?:documents?|sources?)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Citations:
    """``cited``: valid source numbers in order of first use; ``invalid``: numbers with no source."""

    cited: list[int] = field(default_factory=list)
    invalid: list[int] = field(default_factory=list)
    text: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"cited": list(self.cited), "invalid": list(self.invalid)}


def _numbers(group: str) -> list[int]:
    out: list[int] = []
    for m in _ITEM.finditer(group):
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) else lo
        if hi < lo or hi - lo > _MAX_RANGE:
            hi = lo
        out.extend(range(lo, hi + 1))
    return out


def parse_citations(text: str, n_sources: int) -> Citations:
    """Parse every citation bracket; keep numbers in ``1..n_sources``; return the cleaned text too."""
    cited: list[int] = []
    invalid: list[int] = []

    def rewrite(m: re.Match[str]) -> str:
        nums = _numbers(m.group(1))
        good = [n for n in dict.fromkeys(nums) if 1 <= n <= n_sources]
        for n in nums:
            target = cited if 1 <= n <= n_sources else invalid
            if n not in target:
                target.append(n)
        if len(good) == len(set(nums)):
            return m.group(0)
        return "[" + ", ".join(map(str, good)) + "]" if good else ""

    cleaned = _CITATION.sub(rewrite, text)
    cleaned = re.sub(r"[ \t]+([.,;:!?])", r"\1", cleaned) if invalid else cleaned
    return Citations(cited=cited, invalid=invalid, text=cleaned)


def is_not_in_documents(text: str) -> bool:
    """True when the answer says the documents do not contain the answer."""
    return bool(_NOT_FOUND.search(text))
