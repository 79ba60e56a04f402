"""Passage ordering inside the prompt. Inputs are best first; the output is the order shown to the LLM.

``lost_in_the_middle`` puts the strongest passages at both ends of the context and the weakest in the
middle, because models use the middle of a long context least (Liu et al. 2023, "Lost in the Middle").
Ranks 1..5 become 1, 3, 5, 4, 2, exactly as LangChain's ``LongContextReorder``; for an even count
LangChain puts the best passage last (1..4 -> 2, 4, 3, 1), we keep it first (1, 3, 4, 2).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from rag.config import Ordering

T = TypeVar("T")


def lost_in_the_middle(items: Sequence[T]) -> list[T]:
    """Best first, second best last, the rest alternating inwards."""
    front: list[T] = []
    back: list[T] = []
    for i, item in enumerate(items):
        (front if i % 2 == 0 else back).append(item)
    return front + back[::-1]


def by_rank(items: Sequence[T]) -> list[T]:
    return list(items)


def reverse(items: Sequence[T]) -> list[T]:
    """Weakest first, best last: the best passage sits right before the question."""
    return list(items)[::-1]


ORDERINGS: dict[Ordering, Callable[[Sequence[T]], list[T]]] = {
    "lost_in_the_middle": lost_in_the_middle,
    "rank": by_rank,
    "reverse": reverse,
}


def order(items: Sequence[T], ordering: Ordering) -> list[T]:
    return ORDERINGS[ordering](items)
