"""BM25: the sparse-matrix scores equal rank-bm25's BM25Okapi(epsilon=0) exactly (to 1e-6)."""

from __future__ import annotations

import random

import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from ingest.bm25 import build_matrix
from rag.config import BM25Config
from rag.store.bm25 import BM25Tokenizer, top_k

WORDS = (
    "apple banana cherry delta echo foxtrot garden harbour island jungle kettle lemon meadow night "
    "orange pepper quartz river stone tulip umbrella violet walnut xylophone yellow zebra the of and"
).split()


def corpus(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    docs = [" ".join(rng.choices(WORDS, k=rng.randint(1, 40))) for _ in range(n)]
    docs += ["", "The running runner runs; RUNS!", "indexing indexed indexes"]
    return docs


@pytest.mark.parametrize(
    ("config", "k1", "b"),
    [
        (BM25Config(), 1.5, 0.75),
        (BM25Config(k1=0.9, b=0.4, stopwords=None, stemmer=None), 0.9, 0.4),
        (BM25Config(k1=1.2, b=1.0, lowercase=False), 1.2, 1.0),
    ],
)
def test_scores_equal_rank_bm25(config: BM25Config, k1: float, b: float) -> None:
    tokenizer = BM25Tokenizer.from_config(config)
    tokens = tokenizer.tokenize_many(corpus(300))
    ours = build_matrix(tokens, k1=config.k1, b=config.b)
    reference = BM25Okapi(tokens, k1=k1, b=b, epsilon=0)
    rng = random.Random(1)
    queries = [" ".join(rng.choices(WORDS, k=rng.randint(1, 6))) for _ in range(50)]
    queries += ["running index", "apple apple apple", "unknownword", "", "the of and"]
    for query in queries:
        q = tokenizer(query)
        with np.errstate(invalid="ignore"):
            expected = reference.get_scores(q)
        # rank-bm25 computes 0/0 = nan for an empty document when b == 1; its score is 0 by definition.
        expected = np.nan_to_num(expected, nan=0.0)
        assert np.allclose(ours.scores(q), expected, rtol=0, atol=1e-6), query


def test_tokenizer_options() -> None:
    assert BM25Tokenizer.from_config(BM25Config())("The Indexes are INDEXED") == ["index", "index"]
    plain = BM25Tokenizer.from_config(BM25Config(lowercase=False, stopwords=None, stemmer=None))
    assert plain("The Indexes") == ["The", "Indexes"]


def test_unknown_stemmer_is_a_config_error() -> None:
    from rag.errors import ConfigError

    with pytest.raises(ConfigError, match="stemmer"):
        BM25Tokenizer.from_config(BM25Config(stemmer="klingon"))("word")


def test_top_k_orders_by_score_then_id_and_respects_mask() -> None:
    scores = np.array([1.0, 3.0, 3.0, 0.0, 2.0])
    ids = ["e", "d", "c", "b", "a"]
    assert top_k(scores, 3, ids, None) == [(2, 3.0), (1, 3.0), (4, 2.0)]
    assert top_k(scores, 10, ids, None)[-1] == (0, 1.0)  # zero scores never returned
    mask = np.array([True, True, False, True, True])
    assert top_k(scores, 2, ids, mask) == [(1, 3.0), (4, 2.0)]
    assert top_k(scores, 0, ids, None) == [] and top_k(scores, -1, ids, mask) == []
