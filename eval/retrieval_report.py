"""Everything a retrieval evaluation writes: terminal table, metrics.json, per-query JSONL, TREC runs,
report.json (settings, notes, comparisons, timings) and a self-contained HTML page with charts."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from eval.metrics import METRIC_NAMES, metric_key, rank_run
from eval.report import (
    bar_chart_png,
    format_table,
    html_image,
    html_page,
    html_paragraph,
    html_section,
    html_table,
    sorted_differences_png,
    stacked_bar_png,
    write_json,
    write_jsonl,
    write_text,
)
from eval.retrieval import RetrievalEvalResult
from eval.runs import write_run

LABELS = {"ndcg": "nDCG", "recall": "Recall", "precision": "P", "mrr": "MRR", "map": "MAP", "hit_rate": "Hit"}
TOP_DOCS_IN_JSONL = 10


def label(key: str) -> str:
    name, _, k = key.partition("@")
    return f"{LABELS.get(name, name)}@{k}"


def headline_keys(ks: Sequence[int]) -> list[str]:
    """The metrics shown on the terminal: the usual @10 set plus recall at the deepest cut-off."""
    k10 = 10 if 10 in ks else max([k for k in ks if k <= 10] or [min(ks)])
    keys = [metric_key(m, k10) for m in ("ndcg", "recall", "mrr", "map", "precision", "hit_rate")]
    if max(ks) != k10:
        keys.append(metric_key("recall", max(ks)))
    return keys


def all_keys(ks: Sequence[int]) -> list[str]:
    return [metric_key(m, k) for m in METRIC_NAMES for k in sorted(ks)]


def aggregation_note(result: RetrievalEvalResult) -> str:
    if result.dataset.kind == "beir" or any(result.dataset.unit(q) == "document" for q in result.dataset.qrels):
        return (f"Documents are judged, chunks are retrieved: {result.chunk_depth} chunks per query are collapsed "
                f"to documents by the {result.config.aggregation} of each document's chunk scores before scoring.")
    return f"Chunks are judged directly ({result.chunk_depth} retrieved per query); no aggregation."


def metrics_table(
    result: RetrievalEvalResult, keys: Sequence[str], *, with_time: bool = True
) -> tuple[list[str], list[list[Any]]]:
    headers = ["mode", *(label(k) for k in keys)] + (["seconds"] if with_time else [])
    rows = [[mode, *(r.means[k] for k in keys)] + ([round(r.seconds, 1)] if with_time else [])
            for mode, r in result.modes.items()]
    return headers, rows


def comparison_table(result: RetrievalEvalResult) -> tuple[list[str], list[list[Any]]]:
    metric = label(result.config.significance_metric)
    headers = ["b vs a", f"{metric} a", f"{metric} b", "mean(b-a)", "wins/ties/losses",
               "p rand.", "p rand. Holm", "p t-test"]
    rows = [[f"{c.b} vs {c.a}", c.mean_a, c.mean_b, c.mean_diff, f"{c.wins}/{c.ties}/{c.losses}",
             c.p_randomization, c.p_randomization_holm, c.p_ttest] for c in result.comparisons]
    return headers, rows


def terminal_summary(result: RetrievalEvalResult) -> str:
    ds = result.dataset
    lines = [f"{ds.name} ({ds.split}): {len(ds.qrels)} judged queries, index {result.index_dir}", ""]
    lines.append(format_table(*metrics_table(result, headline_keys(result.config.ks))))
    if result.comparisons:
        lines += ["", f"Paired tests on per-query {label(result.config.significance_metric)} "
                      f"(randomisation, {result.config.n_resamples} resamples; t-test):",
                  format_table(*comparison_table(result))]
    lines += ["", aggregation_note(result), *result.notes]
    return "\n".join(lines)


def per_query_rows(result: RetrievalEvalResult) -> Iterator[dict[str, Any]]:
    """One row per (mode, judged query): scores, relevant ids, the top documents and the first hit's rank."""
    ds = result.dataset
    for mode, r in result.modes.items():
        for qid, judged in ds.qrels.items():
            ranking = rank_run(r.run.get(qid, {}))
            relevant = {d for d, g in judged.items() if g >= 1}
            first = next((i for i, d in enumerate(ranking, start=1) if d in relevant), None)
            yield {"mode": mode, "qid": qid, "query": ds.queries.get(qid, ""), "unit": ds.unit(qid),
                   **r.per_query[qid], "first_relevant_rank": first, "retrieved": len(ranking),
                   "relevant": dict(sorted(judged.items())), "top": ranking[:TOP_DOCS_IN_JSONL]}


def report_dict(result: RetrievalEvalResult) -> dict[str, Any]:
    ds = result.dataset
    return {
        "dataset": {"name": ds.name, "kind": ds.kind, "split": ds.split, "corpus": str(ds.corpus),
                    "queries": len(ds.qrels), "judgments": sum(len(q) for q in ds.qrels.values())},
        "index": str(result.index_dir),
        "chunk_depth": result.chunk_depth,
        "aggregation": result.config.aggregation,
        "aggregation_note": aggregation_note(result),
        "ks": list(result.config.ks),
        "metrics": result.metrics(),
        "comparisons": [c.to_dict() for c in result.comparisons],
        "seconds": result.seconds,
        "timings_ms": {m: r.timings_ms for m, r in result.modes.items()},
        "notes": list(result.notes),
        "pipeline": result.pipeline.to_dict(),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def html_report(result: RetrievalEvalResult) -> str:
    ds = result.dataset
    ks = result.config.ks
    headline = headline_keys(ks)
    sig = result.config.significance_metric
    ndcg_by_k = {m: {label(metric_key("ndcg", k)): r.means[metric_key("ndcg", k)] for k in sorted(ks)}
                 for m, r in result.modes.items()}
    sections = [
        html_section(
            "Summary",
            html_paragraph(f"{len(ds.qrels)} judged queries, split {ds.split!r}, "
                           f"{sum(len(q) for q in ds.qrels.values())} judgments. Scores are means over every judged "
                           "query; a query with nothing relevant retrieved scores 0."),
            html_paragraph(aggregation_note(result)),
            html_table(*metrics_table(result, headline)),
            html_image(bar_chart_png({m: {label(k): r.means[k] for k in headline} for m, r in result.modes.items()},
                                     title="Metrics per mode", ylabel="mean over queries"), alt="metrics per mode"),
            html_image(bar_chart_png(ndcg_by_k, title="nDCG by cut-off", ylabel="nDCG"), alt="nDCG by cut-off"),
        ),
    ]
    if result.comparisons:
        wtl = {f"{c.b} vs {c.a}": {"wins": float(c.wins), "ties": float(c.ties), "losses": float(c.losses)}
               for c in result.comparisons}
        base = next(iter(result.modes))
        diffs = {f"{m} - {base}": [r.per_query[q][sig] - result.modes[base].per_query[q][sig] for q in ds.qrels]
                 for m, r in result.modes.items() if m != base}
        sections.append(html_section(
            f"Paired comparisons on {label(sig)}",
            html_paragraph(f"Two-sided paired randomisation test ({result.config.n_resamples} sign flips, seed "
                           f"{result.config.seed}), Holm-adjusted over the {len(result.comparisons)} pairs, "
                           "and a paired t-test. Wins are queries where b scores higher than a."),
            html_table(*comparison_table(result)),
            html_image(stacked_bar_png(wtl, title=f"Per-query wins / ties / losses on {label(sig)}", xlabel="queries"),
                       alt="wins ties losses"),
            html_image(sorted_differences_png(diffs, title=f"Per-query {label(sig)} difference against {base}",
                                              ylabel=f"{label(sig)} difference"), alt="per-query differences"),
        ))
    sections.append(html_section("All metrics", html_table(*metrics_table(result, all_keys(ks), with_time=False))))
    stages = ("embed", "bm25", "dense", "fusion", "rerank")
    timing_rows = [[m, round(r.seconds, 2), *(round(r.timings_ms.get(s, 0.0) / 1000, 2) for s in stages)]
                   for m, r in result.modes.items()]
    sections.append(html_section(
        "Run details",
        html_table(["mode", "total s", *(f"{s} s" for s in stages)], timing_rows, precision=2),
        *(html_paragraph(n, css_class="note") for n in result.notes),
        html_paragraph(f"Index: {result.index_dir}; embedding model {result.pipeline.embedding.model}; "
                       f"hybrid fusion {result.pipeline.retrieval.fusion} "
                       f"(rrf_k {result.pipeline.retrieval.rrf_k}); "
                       f"BM25 k1 {result.pipeline.bm25.k1}, b {result.pipeline.bm25.b}; "
                       f"chunks of {result.pipeline.chunking.chunk_tokens} tokens.", css_class="note"),
    ))
    return html_page(f"Retrieval evaluation: {ds.name}", sections,
                     subtitle=f"ragtrail · {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")


def write_outputs(result: RetrievalEvalResult, out_dir: Path) -> dict[str, Path]:
    """Write every output file under ``out_dir``; returns them by kind."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "metrics": write_json(out_dir / "metrics.json", result.metrics()),
        "report_json": write_json(out_dir / "report.json", report_dict(result)),
        "per_query": write_jsonl(out_dir / "per_query.jsonl", per_query_rows(result)),
        "html": write_text(out_dir / "report.html", html_report(result)),
    }
    for mode, r in result.modes.items():
        paths[f"run:{mode}"] = write_run(out_dir / "runs" / f"{mode}.trec", r.run, name=f"ragtrail-{mode}")
    return paths
