"""Generic report helpers shared by the evaluation suites.

Terminal tables, atomic JSON/JSONL writers, charts rendered to PNG bytes (matplotlib's Agg canvas,
no pyplot global state) and a self-contained HTML page with those PNGs embedded as base64.
Nothing here knows about retrieval or judges; the suites assemble their pages from these parts.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

PALETTE = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C")


# ---- terminal -----------------------------------------------------------------------------------


def format_cell(value: Any, *, precision: int = 4) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.{precision}f}"
    return str(value)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, precision: int = 4) -> str:
    """A plain-text table: first column left-aligned, the others right-aligned; floats to ``precision``."""
    cells = [[format_cell(v, precision=precision) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        pairs = enumerate(zip(values, widths, strict=True))
        return "  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in pairs)

    return "\n".join([line(headers), "  ".join("-" * w for w in widths), *(line(r) for r in cells)])


# ---- files --------------------------------------------------------------------------------------


def _atomic_write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.fchmod(fd, 0o644)  # mkstemp creates 0600; reports are meant to be shared
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def write_text(path: Path, text: str) -> Path:
    """Write text atomically (temporary file in the same folder, then rename)."""
    return _atomic_write(path, text)


def write_json(path: Path, obj: Any) -> Path:
    """Pretty JSON, keys sorted, written atomically; NaN is written as ``null``."""
    return _atomic_write(path, json.dumps(_finite(obj), indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def write_jsonl(path: Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    """One JSON object per line, written atomically; NaN is written as ``null``."""
    return _atomic_write(path, "".join(json.dumps(_finite(r), ensure_ascii=False) + "\n" for r in rows))


def _finite(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Mapping):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


# ---- charts -------------------------------------------------------------------------------------


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


def bar_chart_png(
    series: Mapping[str, Mapping[str, float]],
    *,
    title: str = "",
    ylabel: str = "",
    ylim: tuple[float, float] | None = (0.0, 1.0),
    annotate: bool = True,
) -> bytes:
    """Grouped bars: one group per category (the inner keys, in first-seen order), one bar per series."""
    categories: list[str] = []
    for values in series.values():
        categories.extend(c for c in values if c not in categories)
    n = max(1, len(series))
    width = 0.8 / n
    fig = _figure(max(6.0, 1.1 * len(categories) * max(1, n / 2)), 4.2)
    ax = fig.add_subplot(1, 1, 1)
    for i, (name, values) in enumerate(series.items()):
        xs = [j + (i - (n - 1) / 2) * width for j in range(len(categories))]
        ys = [values.get(c, math.nan) for c in categories]
        bars = ax.bar(xs, ys, width=width, label=name, color=PALETTE[i % len(PALETTE)])
        if annotate and len(categories) * n <= 40:
            ax.bar_label(bars, fmt="%.3f", fontsize=7, rotation=90, padding=2)
    crowded = len(categories) > 6
    ax.set_xticks(range(len(categories)), categories,
                  rotation=30 if crowded else 0, ha="right" if crowded else "center")
    if ylim is not None:
        ax.set_ylim(ylim[0], ylim[1] * (1.12 if annotate else 1.0))
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, ncols=min(n, 4), loc="upper left")
    return _png(fig)


def stacked_bar_png(
    rows: Mapping[str, Mapping[str, float]],
    *,
    title: str = "",
    xlabel: str = "",
    colors: Sequence[str] = ("#55A868", "#BBBBBB", "#C44E52"),
) -> bytes:
    """Horizontal stacked bars, one per row (e.g. wins / ties / losses of one comparison)."""
    labels = list(rows)
    parts: list[str] = []
    for values in rows.values():
        parts.extend(p for p in values if p not in parts)
    fig = _figure(7.5, max(2.0, 0.55 * len(labels) + 1.2))
    ax = fig.add_subplot(1, 1, 1)
    left = [0.0] * len(labels)
    for i, part in enumerate(parts):
        widths = [rows[label].get(part, 0.0) for label in labels]
        bars = ax.barh(labels, widths, left=left, label=part, color=colors[i % len(colors)])
        ax.bar_label(bars, labels=[f"{w:g}" if w else "" for w in widths], label_type="center", fontsize=8)
        left = [a + b for a, b in zip(left, widths, strict=True)]
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.legend(fontsize=8, ncols=len(parts), loc="upper center", bbox_to_anchor=(0.5, -0.22), frameon=False)
    return _png(fig)


def sorted_differences_png(diffs: Mapping[str, Sequence[float]], *, title: str = "", ylabel: str = "") -> bytes:
    """Per-item differences sorted from largest gain to largest loss, one line per comparison."""
    fig = _figure(7.5, 4.0)
    ax = fig.add_subplot(1, 1, 1)
    for i, (name, values) in enumerate(diffs.items()):
        ys = sorted(values, reverse=True)
        ax.plot(range(1, len(ys) + 1), ys, label=name, color=PALETTE[i % len(PALETTE)], linewidth=1.5)
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_xlabel("queries, sorted by difference")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


# ---- HTML ---------------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:0.8em 0;font-size:0.9em}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:right}th{background:#f4f4f4}
td:first-child,th:first-child{text-align:left}
img{max-width:100%;height:auto}.note{color:#555;font-size:0.9em}code{background:#f4f4f4;padding:0 3px}
"""


def html_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, precision: int = 4) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(format_cell(v, precision=precision))}</td>" for v in row) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def html_image(png: bytes, *, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="{png_data_uri(png)}">'


def html_paragraph(text: str, *, css_class: str | None = None) -> str:
    cls = f' class="{css_class}"' if css_class else ""
    return f"<p{cls}>{html.escape(text)}</p>"


def html_section(heading: str, *parts: str) -> str:
    """A titled section; ``parts`` are HTML fragments built with the helpers above (already escaped)."""
    return f"<section><h2>{html.escape(heading)}</h2>{''.join(parts)}</section>"


def html_page(title: str, sections: Sequence[str], *, subtitle: str = "") -> str:
    """A complete, self-contained HTML document (inline CSS, images as data URIs, no scripts)."""
    sub = html_paragraph(subtitle, css_class="note") if subtitle else ""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{sub}{''.join(sections)}</body></html>\n"
    )
