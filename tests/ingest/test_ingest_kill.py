"""A writer killed with SIGKILL at random moments never leaves an unloadable index.

The child publishes generation after generation as fast as it can (no model needed: the arrays are
synthetic); the parent kills it at random times and then opens the index.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from rag.store import open_index

REPO = Path(__file__).resolve().parents[2]

WRITER = r"""
import sys
from pathlib import Path

import numpy as np

from ingest import store
from ingest.bm25 import build_matrix
from ingest.dense import build_faiss
from rag.config import BM25Config, DenseIndexConfig, to_dict
from rag.store import FORMAT_VERSION
from rag.store.bm25 import BM25Tokenizer
from rag.types import Chunk

root = Path(sys.argv[1])
tokenizer = BM25Tokenizer.from_config(BM25Config())
generation = 0
while True:
    generation += 1
    chunks = [Chunk(id=f"{generation}-{j}", source=f"d{j}.txt", text=f"generation {generation} row{j} words")
              for j in range(300)]
    vectors = np.random.default_rng(generation).random((300, 16), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    manifest = {
        "format_version": FORMAT_VERSION,
        "embedding": {"model": "synthetic", "dimension": 16},
        "bm25": {"config": to_dict(BM25Config()), **tokenizer.to_manifest()},
        "dense_index": to_dict(DenseIndexConfig()),
        "counts": {"documents": 300, "chunks": 300},
        "files": {},
        "chunking": {},
    }
    staged = store.stage_generation(
        root, manifest=manifest, chunks=chunks, embeddings=vectors,
        faiss_index=build_faiss(vectors, DenseIndexConfig()),
        bm25=build_matrix(tokenizer.tokenize_many(c.text for c in chunks), k1=1.5, b=0.75),
    )
    store.publish(root, staged)
    print(generation, flush=True)
"""


def start_writer(root: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", WRITER, str(root)], cwd=REPO, stdout=subprocess.PIPE, text=True)


def check(root: Path) -> str:
    index = open_index(root)
    prefixes = {c.id.split("-")[0] for c in index.chunks}
    assert len(index.chunks) == 300 and len(prefixes) == 1, "rows from two generations mixed"
    assert index.embeddings.shape == (300, 16)
    # "row17" is in one row only; a bare "17" is in every row of generations 17, 117, 170-179, where
    # BM25's (Robertson) idf goes negative and nothing scores above zero
    assert index.bm25_search(["row17"], 3)[0][0][0] == 17, "BM25 unusable after a kill"
    assert index.dense_search(np.asarray(index.embeddings[:1]), 1)[0][0][0] == 0
    return prefixes.pop()


def test_sigkill_at_random_moments_leaves_a_loadable_index(tmp_path: Path) -> None:
    root = tmp_path / "index"
    rng = random.Random(0)
    seen: list[str] = []
    for _ in range(4):
        writer = start_writer(root)
        try:
            assert writer.stdout is not None
            writer.stdout.readline()  # at least one generation is published
            time.sleep(rng.uniform(0.05, 0.6))
        finally:
            writer.send_signal(signal.SIGKILL)
            writer.wait()
        seen.append(check(root))
    assert len(seen) == 4
