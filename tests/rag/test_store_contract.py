"""The contract every store keeps, run against each registered store (``rag.store.STORES``).

The in-memory store of ``memory_store.py`` is registered here, from this test module, the way a third-party
package would register its own; the suite then checks it (and the reference ``plain`` store) against the
plain-file reader on a small ingested corpus: the same hits for vector and keyword searches and through every
retrieval mode, filters applied before the top ``k``, deletes after a re-ingest, reload, and ``rag search``
served from the store the configuration names.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest
from memory_store import MemoryStore, open_memory_store

from rag.cli import main
from rag.config import ChunkingConfig, PipelineConfig, RerankConfig
from rag.errors import ConfigError
from rag.pipeline import Pipeline
from rag.retrieval import RETRIEVERS, SentenceTransformerEncoder
from rag.store import STORES, Index, ScoredChunk, SearchIndex, VectorStore, open_index, open_store, register_store
from rag.types import Filters

register_store("memory", open_memory_store)

CONFIG = PipelineConfig(chunking=ChunkingConfig(chunk_tokens=64, overlap_tokens=8), rerank=RerankConfig(model=None))
DOCS = {
    "guides/beekeeping.md": (
        "# Beekeeping\n\nHoney is extracted in late summer, once the bees have capped the frames with wax. "
        "The frames are uncapped with a warm knife and spun in a centrifugal extractor. A strong colony needs "
        "two brood boxes for the winter and about twenty kilograms of stored honey.\n\n## Swarming\n\n"
        "Swarming happens in May and June when the hive runs out of room. Adding a super early in spring and "
        "removing queen cells every nine days keeps most colonies from swarming."
    ),
    "guides/compost.md": (
        "# Compost\n\nCompost is turned every three weeks so that air reaches the middle of the heap. "
        "A good heap mixes green material such as grass clippings with brown material such as dry leaves and "
        "shredded cardboard. When the heap smells of ammonia it holds too much green material.\n\n"
        "Finished compost is dark and crumbly and smells of forest soil; it takes six months to a year."
    ),
    "guides/orchard.md": (
        "# Orchard\n\nPlum trees are pruned in summer, never in winter, because silver leaf disease enters "
        "through fresh cuts in cold wet weather. Apple trees are pruned in winter while they are dormant. "
        "Young trees are staked for their first two years and watered weekly in dry spells.\n\n"
        "Codling moth larvae tunnel into apples; pheromone traps hung in May show when the moths fly."
    ),
    "notes/weather.txt": (
        "Rain is expected tomorrow with strong winds from the north. The storm should pass by Friday evening, "
        "after which the week turns dry and mild. Frost is possible on Sunday night in low-lying gardens, so "
        "tender seedlings should stay under fleece."
    ),
    "notes/robots.txt": (
        "The Kestrel K7 delivery robot has a top speed of 14 km/h. Its battery holds 2.3 kWh, enough for "
        "about forty kilometres of deliveries on one charge. The robot recharges in three hours at the depot "
        "and reports its position every ten seconds."
    ),
    "notes/cafeteria.txt": (
        "The office cafeteria opens at half past seven and closes at three in the afternoon. Every Thursday "
        "it serves blue lentil soup. Visitors pay with a guest card from the front desk; staff pay with "
        "their badge."
    ),
}
NEW_DOC = (
    "notes/greenhouse.txt",
    "The greenhouse vents open automatically above twenty-six degrees. Tomatoes in the greenhouse are fed "
    "with seaweed fertiliser every week once the first truss has set.",
)
QUERIES = [
    "when is honey extracted",
    "how often should compost be turned",
    "pruning plum trees",
    "robot battery and top speed",
    "rain and wind tomorrow",
    "lentil soup on Thursday",
    "swarming queen cells",
    "quantum chromodynamics",  # matches no keyword of the corpus
]
STORE_NAMES = sorted(STORES)
VECTOR_TOLERANCE = 1e-5  # float32 inner products summed in another order
KEYWORD_TOLERANCE = 1e-9  # rank-bm25 and the plain store agree to about 1e-12


def _write_corpus(folder: Path, docs: dict[str, str]) -> None:
    for name, text in docs.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")


def _ingest(folder: Path, index_dir: Path) -> None:
    from ingest.pipeline import ingest

    report = ingest(folder, index_dir=index_dir, config=CONFIG)
    assert report.exit_code == 0, report.to_dict()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("store-contract") / "docs"
    _write_corpus(folder, DOCS)
    return folder


@pytest.fixture(scope="module")
def index_dir(corpus: Path, embedder) -> Path:
    index_dir = corpus.parent / "index"
    _ingest(corpus, index_dir)
    return index_dir


@pytest.fixture(scope="module")
def encoder() -> SentenceTransformerEncoder:
    return SentenceTransformerEncoder(CONFIG.embedding.model)


@pytest.fixture(params=STORE_NAMES)
def store_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _open(name: str, location: Path) -> VectorStore:
    return open_store(location, CONFIG.replace(store=name))


def _as_search_index(store: VectorStore) -> SearchIndex:
    assert isinstance(store, SearchIndex), f"{type(store).__name__} has no keyword search"
    return store


def _assert_same(got: Sequence[ScoredChunk], expected: Sequence[ScoredChunk], tolerance: float, what: str) -> None:
    """The same chunks in the same order with the same scores; chunks whose scores tie within ``tolerance``
    may come in either order."""
    assert len(got) == len(expected), f"{what}: {len(got)} hits, the reference store {len(expected)}"
    for (chunk, score), (_, reference_score) in zip(got, expected, strict=True):
        assert score == pytest.approx(reference_score, abs=tolerance), (
            f"{what}: {chunk.id} {score} vs {reference_score}"
        )
    groups_got = _tie_groups(got, tolerance)
    assert groups_got == _tie_groups(expected, tolerance), f"{what}: other chunks or another order"
    by_id = {chunk.id: chunk for chunk, _ in expected}
    assert all(chunk == by_id[chunk.id] for chunk, _ in got), f"{what}: chunk text or metadata differ"


def _assert_same_searches(
    store: SearchIndex, reference: Index, vectors, k: int, *, filters: Filters | None = None, what: str = ""
) -> None:
    """Every query of :data:`QUERIES`, by vector and by keyword: the same hits as the reference store."""
    got, expected = (
        store.vector_search(vectors, k, filters=filters),
        reference.vector_search(vectors, k, filters=filters),
    )
    for query, g, e in zip(QUERIES, got, expected, strict=True):
        _assert_same(g, e, VECTOR_TOLERANCE, f"{what}vector {query!r} k={k}")
    got, expected = (
        store.keyword_search(QUERIES, k, filters=filters),
        reference.keyword_search(QUERIES, k, filters=filters),
    )
    for query, g, e in zip(QUERIES, got, expected, strict=True):
        assert all(score > 0 for _, score in g), f"{what}keyword {query!r}: a hit without any query term"
        _assert_same(g, e, KEYWORD_TOLERANCE, f"{what}keyword {query!r} k={k}")


def _tie_groups(found: Sequence[ScoredChunk], tolerance: float) -> list[frozenset[str]]:
    groups: list[list[ScoredChunk]] = []
    for item in found:
        if groups and abs(groups[-1][0][1] - item[1]) <= tolerance:
            groups[-1].append(item)
        else:
            groups.append([item])
    return [frozenset(chunk.id for chunk, _ in g) for g in groups]


# ---- the store as a whole --------------------------------------------------------------------------


def test_it_is_a_search_index_holding_the_ingested_chunks(store_name: str, index_dir: Path) -> None:
    store = _open(store_name, index_dir)
    reference = open_index(index_dir)
    assert isinstance(store, VectorStore) and isinstance(store, SearchIndex)
    assert store.embedding_model == reference.embedding_model
    chunks = list(store.iter_chunks())
    assert len(store) == len(chunks) == len(reference) and len(chunks) > len(DOCS)
    assert {c.id: c for c in chunks} == {c.id: c for c in reference.chunks}
    assert {c.source for c in chunks} == set(DOCS)


@pytest.mark.parametrize("k", [1, 5, 100])
def test_same_hits_as_the_reference_store(store_name: str, index_dir: Path, encoder, k: int) -> None:
    store, reference = _as_search_index(_open(store_name, index_dir)), open_index(index_dir)
    vectors = encoder.encode(QUERIES)
    assert [len(found) for found in store.vector_search(vectors, k)] == [min(k, len(reference))] * len(QUERIES)
    keyword = store.keyword_search(QUERIES, k)
    assert keyword[-1] == [] and all(keyword[:-1]), "only the off-topic query finds nothing"
    _assert_same_searches(store, reference, vectors, k)


def test_hits_are_best_first_and_k_zero_finds_nothing(store_name: str, index_dir: Path, encoder) -> None:
    store = _as_search_index(_open(store_name, index_dir))
    vectors = encoder.encode(QUERIES)
    for found in (*store.vector_search(vectors, 7), *store.keyword_search(QUERIES, 7)):
        scores = [score for _, score in found]
        assert scores == sorted(scores, reverse=True) and len(found) <= 7
        assert len({chunk.id for chunk, _ in found}) == len(found)
    assert store.vector_search(vectors, 0) == [[] for _ in QUERIES]
    assert store.keyword_search(QUERIES, 0) == [[] for _ in QUERIES]


def test_same_hits_through_every_retrieval_mode(store_name: str, index_dir: Path, encoder) -> None:
    config = CONFIG.replace(store=store_name)
    piped = Pipeline(config, _open(store_name, index_dir), reranker=None, encoder=encoder)
    reference = Pipeline(CONFIG, open_index(index_dir), reranker=None, encoder=encoder)
    for mode in RETRIEVERS:
        got = piped.search_many(QUERIES, k=6, mode=mode)
        expected = reference.search_many(QUERIES, k=6, mode=mode)
        for query, g, e in zip(QUERIES, got, expected, strict=True):
            assert [h.chunk.id for h in g] == [h.chunk.id for h in e], f"{mode} {query!r}"
            assert [h.score for h in g] == pytest.approx([h.score for h in e], abs=VECTOR_TOLERANCE)


# ---- filters -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "filters",
    [Filters.of("notes/*"), Filters.of(["guides/compost.md", "notes/weather.txt"]), Filters.of("guides/orchard.md")],
    ids=["glob", "two-files", "one-file"],
)
def test_filters_apply_before_the_top_k(store_name: str, index_dir: Path, encoder, filters: Filters) -> None:
    store, reference = _as_search_index(_open(store_name, index_dir)), open_index(index_dir)
    k = min(3, sum(1 for c in reference.chunks if filters.matches(c)))
    vectors = encoder.encode(QUERIES)
    for found in store.vector_search(vectors, k, filters=filters):
        assert len(found) == k and all(filters.matches(chunk) for chunk, _ in found)
    for found in store.keyword_search(QUERIES, k, filters=filters):
        assert all(filters.matches(chunk) for chunk, _ in found)
    _assert_same_searches(store, reference, vectors, k, filters=filters, what="filtered ")


def test_a_filter_matching_nothing_finds_nothing(store_name: str, index_dir: Path, encoder) -> None:
    store = _as_search_index(_open(store_name, index_dir))
    nothing = Filters.of("*.docx")
    assert store.vector_search(encoder.encode(QUERIES), 5, filters=nothing) == [[] for _ in QUERIES]
    assert store.keyword_search(QUERIES, 5, filters=nothing) == [[] for _ in QUERIES]


# ---- deletes and reload ----------------------------------------------------------------------------


def test_a_reingest_after_a_delete_reaches_the_store_on_reload(
    store_name: str, corpus: Path, tmp_path: Path, encoder
) -> None:
    folder, index = tmp_path / "docs", tmp_path / "index"
    shutil.copytree(corpus, folder)
    _ingest(folder, index)
    store = _as_search_index(_open(store_name, index))
    assert store.reload() is store, "nothing changed: reload keeps the store"
    orchard = [c for c in store.iter_chunks() if c.source == "guides/orchard.md"]
    probe = ["plum trees pruned in summer silver leaf"]
    probe_vector = encoder.encode(probe)
    assert store.keyword_search(probe, 1)[0][0][0].source == "guides/orchard.md"
    assert store.vector_search(probe_vector, 1)[0][0][0].source == "guides/orchard.md"

    (folder / "guides" / "orchard.md").unlink()
    _write_corpus(folder, dict([NEW_DOC]))
    _ingest(folder, index)
    fresh = _as_search_index(store.reload())
    reference = open_index(index)

    sources = {c.source for c in fresh.iter_chunks()}
    assert "guides/orchard.md" not in sources and NEW_DOC[0] in sources
    added = sum(1 for c in reference.chunks if c.source == NEW_DOC[0])
    assert len(fresh) == len(store) - len(orchard) + added == len(reference)
    assert {c.id: c for c in fresh.iter_chunks()} == {c.id: c for c in reference.chunks}
    assert all(chunk.source != "guides/orchard.md" for chunk, _ in fresh.keyword_search(probe, 100)[0])
    assert all(chunk.source != "guides/orchard.md" for chunk, _ in fresh.vector_search(probe_vector, 100)[0])
    _assert_same_searches(fresh, reference, encoder.encode(QUERIES), 5, what="after the delete: ")
    assert fresh.reload() is fresh
    # the store reload was called on keeps answering (a server finishes its running requests with it)
    assert len(store.keyword_search(probe, 3)[0]) >= 1 and len(store.vector_search(probe_vector, 3)[0]) == 3


# ---- the registry and the CLI ----------------------------------------------------------------------


def test_an_unknown_store_is_a_config_error_naming_the_registered_ones(index_dir: Path) -> None:
    with pytest.raises(ConfigError, match=r"store: 'nope' is not a registered store; registered: .*memory.*plain"):
        open_store(index_dir, CONFIG.replace(store="nope"))


def test_a_taken_name_needs_replace() -> None:
    with pytest.raises(ConfigError, match="'plain' is already registered"):
        register_store("plain", open_memory_store)
    register_store("memory", open_memory_store)  # the same factory again: a no-op
    with pytest.raises(ConfigError, match="non-empty string"):
        register_store("", open_memory_store)


def test_pipeline_from_config_opens_the_configured_store(index_dir: Path) -> None:
    MemoryStore.opened.clear()
    pipeline = Pipeline.from_config(CONFIG.replace(store="memory"), index_dir=index_dir)
    assert isinstance(pipeline.index, MemoryStore) and MemoryStore.opened == [str(index_dir)]
    assert isinstance(Pipeline.from_config(CONFIG, index_dir=index_dir).index, Index)


def _search_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    code = main(["search", *argv, "--json", "--no-rerank", "--top-k", "4"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_a_registered_store_serves_rag_search(capsys, index_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "memory.yaml"
    config.write_text("store: memory\nrerank:\n  model: null\n", encoding="utf-8")
    MemoryStore.opened.clear()
    served = _search_json(capsys, "how often is compost turned", "--index", str(index_dir), "--config", str(config))
    assert MemoryStore.opened == [str(index_dir)]
    plain = _search_json(capsys, "how often is compost turned", "--index", str(index_dir))
    assert [h["id"] for h in served["hits"]] == [h["id"] for h in plain["hits"]]
    assert served["hits"][0]["source"] == "guides/compost.md"
    assert [h["score"] for h in served["hits"]] == pytest.approx([h["score"] for h in plain["hits"]], abs=1e-6)
    filtered = _search_json(
        capsys, "compost", "--index", str(index_dir), "--config", str(config), "--source", "notes/*"
    )
    assert filtered["hits"] and all(h["source"].startswith("notes/") for h in filtered["hits"])


def test_rag_search_names_an_unknown_store(capsys, index_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "nope.yaml"
    config.write_text("store: nope\n", encoding="utf-8")
    code = main(["search", "compost", "--index", str(index_dir), "--config", str(config)])
    _, err = capsys.readouterr()
    assert code != 0 and "store: 'nope' is not a registered store" in err
