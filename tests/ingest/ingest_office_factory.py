"""Real Office files for the ingestion tests, written with python-docx, python-pptx and openpyxl.

Each writer builds a small document about a fictional ferry company with headings, a table, a
header/footer (docx), speaker notes (pptx) and a formula whose value is cached (xlsx), so a test can
check that every part reaches the text.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

DOCX_HEADER = "Harbour Ferries Ltd - operations manual"
DOCX_FOOTER = "Printed copies are not controlled"


def write_docx(path: Path, *, title: str = "Ferry operations") -> Path:
    """Title, two headings, paragraphs, a list, a table, a header and a footer over two sections."""
    from docx import Document
    from docx.enum.section import WD_SECTION

    document = Document()
    document.core_properties.title = title
    document.sections[0].header.paragraphs[0].text = DOCX_HEADER
    document.sections[0].footer.paragraphs[0].text = DOCX_FOOTER
    document.add_heading("Ferry operations", level=0)
    document.add_paragraph("The harbour ferry leaves the north pier every 20 minutes from 06:00.")
    document.add_heading("Timetable", level=1)
    table = document.add_table(rows=3, cols=3)
    for row, values in zip(
        table.rows,
        [("Route", "First", "Last"), ("North-South", "06:00", "23:40"), ("East | West", "07:15", "22:10")],
        strict=True,
    ):
        for cell, value in zip(row.cells, values, strict=True):
            cell.text = value
    document.add_heading("Safety", level=2)
    document.add_paragraph("Life jackets are stored under every seat.", style="List Bullet")
    document.add_paragraph("The crew counts passengers at every departure.", style="List Bullet")
    document.add_section(WD_SECTION.NEW_PAGE)  # the second section repeats the same header and footer
    document.add_paragraph("Lost property is kept at the ticket office for 30 days.")
    document.save(str(path))
    return path


def write_pptx(path: Path) -> Path:
    """Three slides: title slide, bullet slide with notes, table slide; and an empty fourth slide."""
    from pptx import Presentation
    from pptx.util import Inches

    presentation = Presentation()
    presentation.core_properties.title = "Ferry fleet review"
    slide = presentation.slides.add_slide(presentation.slide_layouts[0])
    slide.shapes.title.text = "Ferry fleet review"
    slide.placeholders[1].text = "Quarterly report of the harbour ferry fleet"
    slide = presentation.slides.add_slide(presentation.slide_layouts[1])
    slide.shapes.title.text = "Fuel use"
    frame = slide.placeholders[1].text_frame
    frame.text = "The MV Kittiwake burns 95 litres of diesel per hour."
    frame.add_paragraph().text = "The MV Puffin switched to battery power in March."
    slide.notes_slide.notes_text_frame.text = "Mention the battery supplier by name when presenting."
    slide = presentation.slides.add_slide(presentation.slide_layouts[5])
    slide.shapes.title.text = "Passengers"
    rows = [("Ship", "Passengers"), ("Kittiwake", "41,200"), ("Puffin", "38,950")]
    shape = slide.shapes.add_table(len(rows), 2, Inches(1), Inches(2), Inches(6), Inches(2))
    for r, values in enumerate(rows):
        for c, value in enumerate(values):
            shape.table.cell(r, c).text = value
    presentation.slides.add_slide(presentation.slide_layouts[6])
    presentation.save(str(path))
    return path


def write_xlsx(path: Path, *, big_rows: int = 0) -> Path:
    """Two sheets (one with a formula), an empty third sheet, and optionally a large fourth one.

    openpyxl writes formulas without cached values, so the formula's cached value is added to the
    sheet XML by hand, as a spreadsheet program would have saved it.
    """
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Tickets"
    for row in [("Ticket", "Price EUR", "Sold"), ("Single", 3.5, 1200), ("Return", 6, 800), ("Total", None, "=C2+C3")]:
        sheet.append(row)
    crew = workbook.create_sheet("Crew")
    crew.append(("Name", "Role"))
    crew.append(("Ines Varga", "Captain"))
    workbook.create_sheet("Empty")
    if big_rows:
        big = workbook.create_sheet("Log")
        for n in range(big_rows):
            big.append((n, f"entry {n}"))
    workbook.save(str(path))
    _cache_formula_value(path, sheet_xml="xl/worksheets/sheet1.xml", formula="C2+C3", value="2000")
    return path


def _cache_formula_value(path: Path, *, sheet_xml: str, formula: str, value: str) -> None:
    with zipfile.ZipFile(path) as archive:
        parts = {name: archive.read(name) for name in archive.namelist()}
    xml = parts[sheet_xml].decode("utf-8")
    assert f"<f>{formula}</f><v></v>" in xml or f"<f>{formula}</f><v />" in xml, xml
    xml = xml.replace(f"<f>{formula}</f><v></v>", f"<f>{formula}</f><v>{value}</v>")
    xml = xml.replace(f"<f>{formula}</f><v />", f"<f>{formula}</f><v>{value}</v>")
    parts[sheet_xml] = xml.encode("utf-8")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)


def write_office_folder(root: Path) -> Path:
    """One file of each Office format, for pipeline and retrieval tests."""
    root.mkdir(parents=True, exist_ok=True)
    write_docx(root / "operations.docx")
    write_pptx(root / "fleet.pptx")
    write_xlsx(root / "tickets.xlsx")
    return root
