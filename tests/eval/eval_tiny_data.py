"""A tiny BEIR dataset (10 documents, 5 judged queries) written by the tests that need one."""

from __future__ import annotations

import json
from pathlib import Path

TINY_DOCS = {
    "d1": ("Photosynthesis", "Plants turn sunlight, water and carbon dioxide into glucose and oxygen in chloroplasts."),
    "d2": ("Volcanoes", "Magma rises through the crust and erupts as lava, ash and volcanic gases."),
    "d3": ("Black holes", "A black hole is a region of spacetime where gravity prevents even light from escaping."),
    "d4": ("Insulin", "The pancreas secretes insulin, a hormone that lowers blood glucose levels."),
    "d5": ("Tides", "Ocean tides are caused by the gravitational pull of the moon and the sun on the oceans."),
    "d6": ("Antibiotics", "Penicillin and other antibiotics kill bacteria or stop them from multiplying."),
    "d7": ("Glaciers", "Glaciers are slow rivers of ice that carve valleys as they move downhill."),
    "d8": ("Vaccines", "Vaccines train the immune system to recognise a virus without causing the disease."),
    "d9": ("Chloroplasts", "Chloroplasts are the organelles in plant cells where photosynthesis happens."),
    "d10": ("Diabetes", "Type 1 diabetes is an autoimmune disease in which the pancreas makes little insulin."),
}
TINY_QUERIES = {
    "q1": "how do plants make glucose from sunlight",
    "q2": "what hormone lowers blood sugar",
    "q3": "why does the sea level rise and fall every day",
    "q4": "how do vaccines protect against viruses",
    "q5": "a question about medieval poetry with no answer here",
}
TINY_QRELS = {"q1": {"d1": 2, "d9": 1}, "q2": {"d4": 2, "d10": 1}, "q3": {"d5": 1}, "q4": {"d8": 1}, "q5": {"d2": 0}}


def write_beir(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    with (root / "corpus.jsonl").open("w", encoding="utf-8") as fh:
        for doc_id, (title, text) in TINY_DOCS.items():
            fh.write(json.dumps({"_id": doc_id, "title": title, "text": text, "metadata": {}}) + "\n")
    with (root / "queries.jsonl").open("w", encoding="utf-8") as fh:
        for qid, text in {**TINY_QUERIES, "q-unjudged": "not in the qrels"}.items():
            fh.write(json.dumps({"_id": qid, "text": text, "metadata": {}}) + "\n")
    (root / "qrels").mkdir(exist_ok=True)
    judged = [f"{q}\t{d}\t{g}" for q, docs in TINY_QRELS.items() for d, g in docs.items()]
    lines = ["query-id\tcorpus-id\tscore", *judged]
    (root / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root
