"""Scanned pages with known text for the OCR tests and ``benchmarks/ocr.py``.

A page is typeset with fpdf2 (a core PDF font, or a TrueType file), rasterised with pypdfium2 at a
chosen resolution (the "scan", optionally rotated a few degrees), then stored as an image-only PDF,
a PNG or a multi-page TIFF. No system font is needed for the core fonts (pdfium has its own).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

CORE_FONTS = ("Helvetica", "Times", "Courier")
A4 = (595.28, 841.89)  # points


def typeset(
    paragraphs: Sequence[str],
    *,
    font: str = "Helvetica",
    size: float = 11,
    page: tuple[float, float] = A4,
    margin: float = 56,
) -> bytes:
    """A text PDF: the paragraphs left-aligned, a blank line between them. ``font`` is a core font name or
    the path of a ``.ttf`` file."""
    from fpdf import FPDF

    pdf = FPDF(unit="pt", format=page)
    pdf.set_margins(margin, margin, margin)
    pdf.set_auto_page_break(True, margin)
    pdf.add_page()
    if font.lower().endswith(".ttf"):
        pdf.add_font("custom", "", font)
        pdf.set_font("custom", size=size)
    else:
        pdf.set_font(font, size=size)
    for i, paragraph in enumerate(paragraphs):
        if i:
            pdf.ln(size * 1.3)
        pdf.multi_cell(0, size * 1.3, paragraph, align="L")
    return bytes(pdf.output())


def rasterize(pdf: bytes, *, dpi: int, skew_degrees: float = 0.0, page: int = 0) -> Any:
    """One page of a PDF as a grayscale PIL image at ``dpi``, rotated by ``skew_degrees`` on white."""
    import pypdfium2 as pdfium
    from PIL import Image

    document = pdfium.PdfDocument(pdf)
    try:
        image = document[page].render(scale=dpi / 72).to_pil().convert("L")
    finally:
        document.close()
    if skew_degrees:
        image = image.rotate(skew_degrees, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255)
    return image


def image_only_pdf(images: Sequence[Any], *, dpi: int) -> bytes:
    """A PDF whose pages are just these images (no text layer), each page sized to its image at ``dpi``."""
    from fpdf import FPDF

    pdf = FPDF(unit="pt")
    for image in images:
        width, height = image.width * 72 / dpi, image.height * 72 / dpi
        pdf.add_page(format=(width, height))
        pdf.image(image, x=0, y=0, w=width, h=height)
    return bytes(pdf.output())


def text_and_scan_pdf(text_pages: Sequence[Sequence[str]], scans: Sequence[Any], *, dpi: int) -> bytes:
    """A PDF with text pages (core font) followed by image-only pages."""
    from fpdf import FPDF

    pdf = FPDF(unit="pt", format=A4)
    for paragraphs in text_pages:
        pdf.add_page()
        pdf.set_font("Helvetica", size=11)
        for paragraph in paragraphs:
            pdf.multi_cell(0, 14, paragraph, align="L")
    for image in scans:
        width, height = image.width * 72 / dpi, image.height * 72 / dpi
        pdf.add_page(format=(width, height))
        pdf.image(image, x=0, y=0, w=width, h=height)
    return bytes(pdf.output())


def image_bytes(images: Sequence[Any], fmt: str, *, dpi: int = 300) -> bytes:
    """PNG, JPEG or (multi-page) TIFF bytes of the images."""
    out = io.BytesIO()
    first, *rest = images
    if fmt.upper() == "TIFF":
        first.save(out, "TIFF", save_all=True, append_images=rest, dpi=(dpi, dpi), compression="tiff_deflate")
    else:
        first.save(out, fmt.upper(), dpi=(dpi, dpi))
    return out.getvalue()


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
