"""The ``rag eval qa`` report: the summary table (terminal and HTML) and ``report.html`` beside
``items.jsonl`` (:mod:`eval.qa` holds the metrics and the run)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from eval.qa import QARun, score_row

SUMMARY_ROWS: tuple[tuple[str, str], ...] = (
    ("answerable_refusal_rate", "answerable refused"),
    ("gold_token_recall", "gold-token recall"),
    ("token_f1", "token F1"),
    ("context_recall", "context recall (gold in passages)"),
    ("cited_rate", "answers citing a passage"),
    ("citation_precision", "citation precision"),
    ("unanswerable_decline_rate", "unanswerable declined"),
)
LATENCY_ROWS: tuple[tuple[str, str], ...] = (
    ("first_token_s", "first token (s)"),
    ("total_s", "total (s)"),
)


def summary_table_rows(summary: Mapping[str, Any]) -> list[list[Any]]:
    """``[metric, value, 95 % CI, n]`` rows for the terminal and the HTML report."""
    rows: list[list[Any]] = []
    for key, label in SUMMARY_ROWS:
        value, ci = summary.get(key), summary.get(f"{key}_ci95")
        rows.append(
            [
                label,
                value if value is not None else "n/a",
                f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "",
                summary.get(f"{key}_n", 0),
            ]
        )
    for key, label in LATENCY_ROWS:
        p50, p95 = summary.get(f"{key}_p50"), summary.get(f"{key}_p95")
        rows.append([f"{label} p50 / p95", f"{p50:.2f} / {p95:.2f}" if p50 is not None else "n/a", "", ""])
    mean_prompt = summary.get("mean_prompt_tokens")
    rows.append(["mean prompt tokens", mean_prompt if mean_prompt is not None else "n/a", "", summary["llm_calls"]])
    return rows


# ---- report --------------------------------------------------------------------------------------


def write_report(run: QARun, out: Path, *, title: str, notes: Iterable[str] = ()) -> list[Path]:
    """``summary.json`` and ``report.html`` beside ``items.jsonl``."""
    from eval.report import format_cell, html_page, html_paragraph, html_section, html_table, write_json, write_text

    summary = run.summary()
    scored = {s["id"]: s for s in (score_row(r) for r in run.rows)}
    item_rows = [
        [
            r["id"],
            "answerable" if r["answers"] else "unanswerable",
            "declined" if r["refused"] else "answered",
            format_cell(scored[r["id"]].get("gold_token_recall", math.nan), precision=2),
            ", ".join(f"[{n}]" for n in r["citations"]),
            r["question"],
            r["answer"][:400],
            "; ".join(r["answers"])[:200],
        ]
        for r in run.rows
    ]
    page = html_page(
        title,
        [
            html_section(
                "Summary",
                html_table(["metric", "value", "95 % CI", "n"], summary_table_rows(summary), precision=3),
                *(html_paragraph(n, css_class="note") for n in notes),
            ),
            html_section(
                "Per question",
                html_table(
                    ["id", "kind", "outcome", "gold recall", "cited", "question", "answer", "gold"],
                    item_rows,
                    precision=3,
                ),
            ),
        ],
        subtitle=f"{summary['answerable']} answerable and {summary['unanswerable']} unanswerable questions",
    )
    return [write_json(out / "summary.json", summary), write_text(out / "report.html", page)]
