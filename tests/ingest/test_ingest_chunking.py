"""Chunking: token-sized, overlapping, heading-aware, exact offsets, stable ids, one page per chunk."""

from __future__ import annotations

import itertools

import pytest

from ingest.chunking import Chunker, chunk_id, effective_chunk_tokens, make_chunks
from ingest.clean import CleanDocument
from rag.config import ChunkingConfig
from rag.errors import ConfigError

LONG = " ".join(f"Sentence number {i} talks about greenhouse tomatoes and basil." for i in range(80))


def chunker(embedder, tokens: int = 48, overlap: int = 8, **kw) -> Chunker:
    config = ChunkingConfig(chunk_tokens=tokens, overlap_tokens=overlap, **kw)
    return Chunker(embedder.tokenizer, config, max_tokens=embedder.max_seq_length)


def n_tokens(embedder, text: str) -> int:
    return len(embedder.tokenizer(text, add_special_tokens=False)["input_ids"])


def test_chunks_fit_the_token_budget_and_overlap(embedder) -> None:
    doc = CleanDocument(LONG)
    pieces = chunker(embedder).split(doc)
    assert len(pieces) > 5
    assert all(n_tokens(embedder, p.text) <= 48 for p in pieces)
    assert all(doc.text[p.start : p.end] == p.text for p in pieces)
    assert pieces[0].start == 0 and pieces[-1].end == len(doc.text)
    covered = [p.end for p in pieces]
    assert all(b.start <= a.end + 1 for a, b in itertools.pairwise(pieces)), covered


def test_overlap_when_splitting_inside_a_sentence(embedder) -> None:
    text = " ".join(f"word{i}" for i in range(400))
    pieces = chunker(embedder, tokens=40, overlap=10).split(CleanDocument(text))
    assert len(pieces) > 3
    assert all(b.start < a.end for a, b in itertools.pairwise(pieces)), "consecutive chunks overlap"


def test_default_size_is_capped_to_the_model(embedder) -> None:
    c = Chunker(embedder.tokenizer, ChunkingConfig(), max_tokens=embedder.max_seq_length)
    assert c.chunk_tokens == min(256, embedder.max_seq_length - 2)
    pieces = c.split(CleanDocument(LONG * 3))
    assert all(n_tokens(embedder, p.text) + 2 <= embedder.max_seq_length for p in pieces)


def test_the_model_window_lowers_chunk_tokens_but_never_the_overlap() -> None:
    """A chunk is lowered to fit the model (recorded in the manifest); an overlap that no longer fits half of
    it, or a window too small for a chunk, is a ConfigError naming the setting, not a silent change."""
    config = ChunkingConfig(chunk_tokens=512, overlap_tokens=100)
    assert effective_chunk_tokens(config, None) == 512
    assert effective_chunk_tokens(config, 514) == 512
    assert effective_chunk_tokens(config, 256) == 254
    assert effective_chunk_tokens(config, 202) == 200  # overlap exactly half
    with pytest.raises(ConfigError, match=r"chunking\.overlap_tokens .* 200-token window .* to 99 or less, got 100"):
        effective_chunk_tokens(config, 200)
    with pytest.raises(ConfigError, match=r"reads at most 9 tokens.*embedding\.max_seq_length"):
        effective_chunk_tokens(ChunkingConfig(chunk_tokens=64, overlap_tokens=0), 9)


def test_the_chunker_refuses_an_overlap_the_model_window_cannot_hold(embedder) -> None:
    window = embedder.max_seq_length
    config = ChunkingConfig(chunk_tokens=4 * window, overlap_tokens=window)
    with pytest.raises(ConfigError, match=r"chunking\.overlap_tokens"):
        Chunker(embedder.tokenizer, config, max_tokens=window)


def test_markdown_split_on_headings_first(embedder) -> None:
    text = (
        "# Garden\n\nIntro line.\n\n## Roses\n\nRoses like sun.\n\n### Pruning\n\nCut in March."
        "\n\n## Herbs\n\nMint spreads."
    )
    pieces = chunker(embedder, tokens=200).split(CleanDocument(text, markdown=True))
    assert [p.heading for p in pieces] == ["Garden", "Garden > Roses", "Garden > Roses > Pruning", "Garden > Herbs"]
    assert all(text[p.start : p.end] == p.text for p in pieces)
    assert pieces[1].text.startswith("## Roses")


def test_markdown_splitting_can_be_turned_off(embedder) -> None:
    text = "# A\n\none\n\n## B\n\ntwo"
    pieces = chunker(embedder, tokens=200, split_markdown_headings=False).split(CleanDocument(text, markdown=True))
    assert len(pieces) == 1 and pieces[0].heading is None


def test_pdf_chunks_stay_on_their_page(embedder) -> None:
    page1, page2 = "alpha " * 10, "beta " * 10
    text = page1.strip() + "\n\n" + page2.strip()
    doc = CleanDocument(text, pages=((0, 1), (len(page1.strip()) + 2, 4)))
    chunks = make_chunks("r.pdf", doc, chunker(embedder, tokens=200).split(doc))
    assert [(c.page, c.text.split()[0]) for c in chunks] == [(1, "alpha"), (4, "beta")]


def test_chunk_ids_are_stable_and_depend_on_source_and_text(embedder) -> None:
    doc = CleanDocument(LONG)
    a = make_chunks("x.txt", doc, chunker(embedder).split(doc))
    b = make_chunks("x.txt", doc, chunker(embedder).split(doc))
    c = make_chunks("y.txt", doc, chunker(embedder).split(doc))
    assert [x.id for x in a] == [x.id for x in b]
    assert not {x.id for x in a} & {x.id for x in c}
    assert a[0].id == chunk_id("x.txt", a[0].text)


def test_repeated_text_gets_distinct_ids(embedder) -> None:
    text = "# Same\n\nRepeated paragraph.\n\n# Other\n\nBetween.\n\n# Same\n\nRepeated paragraph."
    doc = CleanDocument(text, markdown=True)
    chunks = make_chunks("r.md", doc, chunker(embedder, tokens=200).split(doc))
    first, _, last = chunks
    assert first.text == last.text and first.id != last.id
    assert last.start > first.start and text[last.start : last.end] == last.text


def test_token_counter_substrings_match_direct_encoding(embedder) -> None:
    from ingest.chunking import TokenCounter

    text = "Ingestion über-fast: naïve tokenisers fail; WordPiece (e.g. ##ing) doesn't! 3.14 or 42%? " * 5
    focused, direct = TokenCounter(embedder.tokenizer), TokenCounter(embedder.tokenizer)
    focused.focus(text)
    words = [i for i, ch in enumerate(text) if ch == " "]
    for a, b in zip(words, words[5:], strict=False):
        piece = text[a + 1 : b]
        assert focused(piece) == direct(piece) == n_tokens(embedder, piece), piece
