from __future__ import annotations

import pytest
from langchain_community.document_transformers import LongContextReorder
from langchain_core.documents import Document

from rag.ordering import ORDERINGS, lost_in_the_middle, order


def test_lost_in_the_middle_puts_best_at_both_ends():
    assert lost_in_the_middle([1, 2, 3, 4, 5]) == [1, 3, 5, 4, 2]
    assert lost_in_the_middle([1, 2, 3, 4]) == [1, 3, 4, 2]
    assert lost_in_the_middle([1, 2]) == [1, 2]
    assert lost_in_the_middle([1]) == [1]
    assert lost_in_the_middle([]) == []


@pytest.mark.parametrize("n", [1, 3, 5, 7, 9])
def test_matches_langchain_long_context_reorder_for_odd_counts(n):
    docs = [Document(page_content=str(i)) for i in range(1, n + 1)]
    theirs = [int(d.page_content) for d in LongContextReorder().transform_documents(docs)]
    assert lost_in_the_middle(list(range(1, n + 1))) == theirs


@pytest.mark.parametrize("n", [2, 4, 6, 8])
def test_even_counts_mirror_langchain_so_the_best_stays_first(n):
    docs = [Document(page_content=str(i)) for i in range(1, n + 1)]
    theirs = [int(d.page_content) for d in LongContextReorder().transform_documents(docs)]
    assert lost_in_the_middle(list(range(1, n + 1))) == theirs[::-1]


def test_weakest_is_in_the_middle():
    out = lost_in_the_middle(list(range(1, 8)))
    assert out[len(out) // 2] == 7


def test_rank_and_reverse():
    assert order([1, 2, 3], "rank") == [1, 2, 3]
    assert order([1, 2, 3], "reverse") == [3, 2, 1]
    assert set(ORDERINGS) == {"lost_in_the_middle", "rank", "reverse"}


def test_ordering_does_not_mutate_input():
    items = [1, 2, 3, 4]
    for name in ORDERINGS:
        order(items, name)
    assert items == [1, 2, 3, 4]
