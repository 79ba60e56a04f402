"""The small real sample folder the ingestion tests share (Markdown, text, HTML, a 3-page PDF)."""

from __future__ import annotations

from pathlib import Path

from ingest_pdf_factory import write_pdf

GUIDE_MD = """# Greenhouse guide

Tomatoes need at least eight hours of sun and a night temperature above ten degrees.

## Watering

Water the basil every morning; the cacti only once a fortnight.

## Pests

Aphids are removed with a soap solution. Whiteflies are caught with yellow sticky traps.
"""

NOTES_TXT = """Orchard notes

The pear trees were pruned in February. The apple harvest starts in late September and the
quince harvest in October.
"""

PAGE_HTML = """<html><head><title>Beekeeping</title><style>p {color: red}</style>
<script>var secret = "javascript must not be indexed";</script></head>
<body><h1>Beekeeping</h1><p>The hives stand at the south wall.</p>
<h2>Honey</h2><p>Honey is extracted in July with the centrifuge.</p></body></html>
"""

REPORT_PAGES = [
    ["Soil analysis", "", "The clay soil in bed four holds water well but compacts easily."],
    ["Compost", "", "Compost is turned every three weeks and is ready after six months."],
    ["Irrigation", "", "The drip irrigation uses 40 litres per bed per day in summer."],
]


def make_folder(root: Path) -> Path:
    """Four real documents of four formats, one in a subfolder."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "guide.md").write_text(GUIDE_MD, encoding="utf-8")
    (root / "notes.txt").write_text(NOTES_TXT, encoding="utf-8")
    (root / "sub").mkdir(exist_ok=True)
    (root / "sub" / "page.html").write_text(PAGE_HTML, encoding="utf-8")
    write_pdf(root / "report.pdf", REPORT_PAGES, header="Garden Report 2026", footer="Allotment club")
    return root
