"""Real PDFs for the ingestion tests and the sample folder, written with fpdf2.

``write_pdf`` lays out explicit lines per page (so a test can place a hyphen at a line end) and adds a
running header, a running footer and a page number, which the cleaner must remove.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

HANDBOOK_HEADER = "Fernhill Robotics - Annual Report 2025 (fictional)"
HANDBOOK_FOOTER = "Internal use only"

ANNUAL_REPORT_PAGES: list[list[str]] = [
    [
        "Letter from the chief executive",
        "",
        "2025 was the year Fernhill Robotics (a fictional company) became profitable. We",
        "shipped 1,140 warehouse robots to 58 customers in nine countries, up from 610",
        "robots the year before. Our customers picked 212 million parcels with Fernhill",
        "robots, and the average robot worked 21.5 hours per day without a safety inci-",
        "dent. I thank every one of our 312 employees for this result.",
        "",
        "Maren Okafor, chief executive officer",
    ],
    [
        "Products",
        "",
        "The Kestrel K7 is our autonomous picking robot. It lifts totes of up to 35 kg,",
        "drives at 2.4 metres per second and runs for 11 hours on one charge. In 2025 we",
        "released the Heron gripper module, built in our Eindhoven lab, which handles soft",
        "and irregular items such as bags of clothing. The Heron gripper raised the pick",
        "success rate of the Kestrel K7 from 96.1 percent to 99.2 percent.",
        "",
        "Our fleet software, Wren, schedules robots, charging and maintenance. Wren 4.0",
        "added predictive mainte-",
        "nance, which cut unplanned downtime by 38 percent.",
    ],
    [
        "Financial results",
        "",
        "Revenue grew to 48.2 million EUR (2024: 27.9 million EUR). Operating profit was",
        "3.1 million EUR, the first operating profit in the company's history. Research",
        "and development spending was 9.6 million EUR, or 20 percent of revenue. At the",
        "end of the year the company held 14.7 million EUR in cash and had no debt.",
        "",
        "Robot leasing, which customers pay per month, made up 41 percent of revenue.",
    ],
    [
        "Sustainability and outlook",
        "",
        "All Fernhill offices run on renewable electricity. Every Kestrel robot is designed",
        "to be refurbished: in 2025 we refurbished 96 returned robots and sold them again.",
        "",
        "For 2026 we expect revenue between 62 and 68 million EUR. We plan to open a sales",
        "office in Lyon and to hire 70 new employees, most of them engineers.",
    ],
]


def write_pdf(
    path: Path,
    pages: Sequence[Sequence[str]],
    *,
    header: str | None = HANDBOOK_HEADER,
    footer: str | None = HANDBOOK_FOOTER,
    title: str | None = None,
    page_numbers: bool = True,
) -> Path:
    """Write ``pages`` (lists of lines) as a real PDF with a running header, footer and page numbers."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=False)
    if title:
        pdf.set_title(title)
    total = len(pages)
    for number, lines in enumerate(pages, start=1):
        pdf.add_page()
        if header:
            pdf.set_font("Helvetica", size=9)
            pdf.set_xy(15, 10)
            pdf.cell(0, 6, header)
        pdf.set_font("Helvetica", size=11)
        y = 30.0
        for line in lines:
            pdf.set_xy(15, y)
            if line:
                pdf.cell(0, 6, line)
            y += 6.5
        pdf.set_font("Helvetica", size=9)
        if footer:
            pdf.set_xy(15, 280)
            pdf.cell(0, 6, footer)
        if page_numbers:
            pdf.set_xy(170, 280)
            pdf.cell(0, 6, f"Page {number} of {total}")
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(path))
    return path


def write_annual_report(path: Path) -> Path:
    """The multi-page sample PDF committed as ``data/sample/fernhill-annual-report-2025.pdf``."""
    return write_pdf(path, ANNUAL_REPORT_PAGES, title="Fernhill Robotics Annual Report 2025")


if __name__ == "__main__":
    import sys

    write_annual_report(Path(sys.argv[1] if len(sys.argv) > 1 else "data/sample/fernhill-annual-report-2025.pdf"))
