"""OCR (ingest/ocr.py): line assembly, word respacing, the CER metric, and real RapidOCR runs on small scanned
pages: image-only PDFs, mixed text/scan PDFs, PNG/JPEG/TIFF files, ``ingest.ocr`` auto/always/off, ``ocr: true``
on chunks and in ``rag search --json``, re-reading when the OCR settings change, progress, and a fresh process
that reads a scan with every socket refused."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ingest_ocr_factory import image_bytes, image_only_pdf, rasterize, text_and_scan_pdf, typeset, write
from PIL import Image

from ingest.loaders import load_document
from ingest.ocr import (
    OcrBox,
    OcrReader,
    assemble,
    boxes_from_quads,
    char_error_rate,
    edit_distance,
    fix_numbers,
    respace,
)
from rag.config import ChunkingConfig, IngestConfig, PipelineConfig, load_config
from rag.errors import ConfigError, DocumentError

SMALL_PAGE = (320.0, 110.0)  # points: two short lines, so a page takes about a second to read
DPI = 200
SCAN_LINES = ["The heron gripper lifts 35 kg totes.", "Pumps deliver 450 litres per minute."]
IMAGE_LINES = ["Quince harvest starts in October.", "The cellar stays at 9 degrees."]


def scan(lines: list[str], *, dpi: int = DPI, skew: float = 0.0, size: float = 13) -> Image.Image:
    return rasterize(
        typeset(lines, font="Helvetica", size=size, page=SMALL_PAGE, margin=16), dpi=dpi, skew_degrees=skew
    )


def words(text: str) -> set[str]:
    return {w.strip(".,").lower() for w in text.split()}


@pytest.fixture(scope="module")
def reader() -> OcrReader:
    return OcrReader()


@pytest.fixture(scope="module")
def scan_pdf() -> bytes:
    return image_only_pdf([scan(SCAN_LINES), scan(IMAGE_LINES)], dpi=DPI)


# --- pure functions --------------------------------------------------------------------------------------


def box(x0: float, y0: float, x1: float, y1: float, text: str) -> OcrBox:
    return OcrBox(x0, y0, x1, y1, text)


def test_assemble_reads_lines_left_to_right_and_splits_paragraphs_at_gaps() -> None:
    boxes = [
        box(300, 102, 500, 130, "right half"),  # same line as "left half", slightly lower
        box(10, 100, 280, 128, "left half"),
        box(10, 140, 400, 168, "second line"),
        box(10, 240, 300, 268, "new paragraph"),  # a gap of 2.6 line heights
    ]
    assert assemble(boxes) == "left half right half\nsecond line\n\nnew paragraph"
    assert assemble([]) == ""


def test_boxes_from_skewed_quads_keep_lines_apart() -> None:
    """Three long lines rotated by 3 degrees: their axis-aligned boxes would overlap; deskewed they do not."""
    import math

    angle = math.radians(3)
    quads, texts = [], []
    for i, text in enumerate(["first line", "second line", "third line"]):
        y = 100 + 40 * i
        corners = [(0, y), (1000, y), (1000, y + 28), (0, y + 28)]
        quads.append(
            [
                (x * math.cos(angle) - yy * math.sin(angle), x * math.sin(angle) + yy * math.cos(angle))
                for x, yy in corners
            ]
        )
        texts.append(text)
    straight = [
        OcrBox(min(p[0] for p in q), min(p[1] for p in q), max(p[0] for p in q), max(p[1] for p in q), t)
        for q, t in zip(quads, texts, strict=True)
    ]
    assert assemble(straight) != "first line\nsecond line\nthird line"  # the naive boxes merge lines
    assert assemble(boxes_from_quads(quads, texts, [0.9] * 3)) == "first line\nsecond line\nthird line"


@pytest.mark.parametrize(
    ("text", "fixed"),
    [
        ("since 2oo5, the", "since 2005, the"),
        ("about 4,5o0 cubic", "about 4,500 cubic"),
        ("O2 and CO2 levels", "O2 and CO2 levels"),
        ("the 2nd room", "the 2nd room"),
        ("on 1o/o3/2024", "on 10/03/2024"),
        ("room 1on", "room 1on"),
    ],
)
def test_fix_numbers_repairs_o_only_inside_numbers(text: str, fixed: str) -> None:
    assert fix_numbers(text) == fixed


LINE_HEIGHT = 40  # pixels of a synthetic line image
STEP = 8  # crop pixels per CTC column in the synthetic lines


def inked_line(
    words_: list[str], *, word_gap: int, letter_gap: int = 3, glyph: int = 14
) -> tuple[np.ndarray, list[int]]:
    """A white line image with one black block per character (``glyph`` px wide, ``letter_gap`` apart inside a
    word, ``word_gap`` between words), and the CTC column of each character (its block's left edge)."""
    width = sum(len(w) * (glyph + letter_gap) for w in words_) + word_gap * len(words_) + 40
    crop = np.full((LINE_HEIGHT, width, 3), 255, dtype=np.uint8)
    columns, x = [], 20
    for i, word in enumerate(words_):
        if i:
            x += word_gap
        for _ in word:
            crop[8:32, x : x + glyph] = 0
            columns.append(x // STEP)
            x += glyph + letter_gap
    return crop, columns


def test_respace_puts_back_a_dropped_word_space_where_the_print_has_a_gap() -> None:
    crop, columns = inked_line(["water", "from"], word_gap=16)  # 19 px blank: 0.48 line heights
    assert respace("waterfrom", columns, crop.shape[1] / STEP, crop) == "water from"
    tight, tight_columns = inked_line(["water", "from"], word_gap=0)  # letter spacing only: one word
    assert respace("waterfrom", tight_columns, tight.shape[1] / STEP, tight) == "waterfrom"


def test_respace_keeps_numbers_punctuation_and_existing_spaces_whole() -> None:
    crop, columns = inked_line(["4", "5", "0", "0"], word_gap=16)  # a wide-set number
    assert respace("4500", columns, crop.shape[1] / STEP, crop) == "4500"
    crop, columns = inked_line(["4,", "500"], word_gap=16)
    assert respace("4,500", columns, crop.shape[1] / STEP, crop) == "4,500"
    crop, columns = inked_line(["end", ".", ")"], word_gap=16)  # closing punctuation stays on its word
    assert respace("end.)", columns, crop.shape[1] / STEP, crop) == "end.)"
    crop, columns = inked_line(["(", "see"], word_gap=16)
    assert respace("(see", columns, crop.shape[1] / STEP, crop) == "(see"
    crop, columns = inked_line(["a", " ", "b"], word_gap=16)  # the model's own space is not doubled
    assert respace("a b", columns, crop.shape[1] / STEP, crop) == "a b"
    crop, columns = inked_line(["ab", "cd"], word_gap=16)
    assert respace("abcd", columns[:3], crop.shape[1] / STEP, crop) == "abcd"  # columns do not match: as read


def test_respace_ignores_a_neighbouring_lines_descenders_in_the_gap() -> None:
    crop, columns = inked_line(["water", "from"], word_gap=16)
    gap = slice(columns[4] * STEP + 18, columns[5] * STEP)
    crop[: LINE_HEIGHT // 8, gap] = 0  # ink in the top eighth: the line above reaching in
    assert respace("waterfrom", columns, crop.shape[1] / STEP, crop) == "water from"
    crop[LINE_HEIGHT // 2, gap] = 0  # ink in the middle of the gap: not blank
    assert respace("waterfrom", columns, crop.shape[1] / STEP, crop) == "waterfrom"


def reference_distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def test_edit_distance_matches_the_textbook_recurrence() -> None:
    rng = random.Random(7)
    for _ in range(500):
        a = "".join(rng.choice("ab c") for _ in range(rng.randint(0, 15)))
        b = "".join(rng.choice("ab cé") for _ in range(rng.randint(0, 15)))
        assert edit_distance(a, b) == reference_distance(a, b), (a, b)
    assert edit_distance("kitten", "sitting") == 3


def test_char_error_rate_normalises_whitespace_and_needs_a_reference() -> None:
    assert char_error_rate("pump  station\nnorth", "pump station north") == 0.0
    assert char_error_rate("pump statoin", "pump station") == pytest.approx(2 / 12)
    assert char_error_rate("", "abcd") == 1.0
    with pytest.raises(ValueError, match="non-empty reference"):
        char_error_rate("text", " \n ")


def test_config_validates_ocr_settings(tmp_path: Path) -> None:
    assert IngestConfig().ocr == "auto" and IngestConfig().ocr_dpi == 300
    with pytest.raises(ConfigError, match="'sometimes' is not one of 'auto', 'off', 'always'"):
        load_config(overrides={"ingest": {"ocr": "sometimes"}})
    with pytest.raises(ConfigError, match="ocr_dpi must be between 72 and 600"):
        load_config(overrides={"ingest": {"ocr_dpi": 1200}})
    config = load_config(overrides={"ingest": {"ocr": "always", "ocr_dpi": 150}})
    assert PipelineConfig.from_dict(config.to_dict()) == config


def test_cli_start_up_imports_no_ocr_machinery() -> None:
    code = (
        "import sys; import rag.cli, ingest.pipeline, ingest.isolate; rag.cli.build_parser(); "
        "print([m for m in ('rapidocr_onnxruntime', 'onnxruntime', 'cv2', 'pypdfium2') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --- real OCR -----------------------------------------------------------------------------------------------


def test_image_only_pdf_is_read_page_by_page(reader: OcrReader, scan_pdf: bytes) -> None:
    doc = load_document(Path("scan.pdf"), scan_pdf, ocr=reader)
    assert doc.ocr_pages == (1, 2)
    assert char_error_rate(doc.pages[0], " ".join(SCAN_LINES)) <= 0.05
    assert char_error_rate(doc.pages[1], " ".join(IMAGE_LINES)) <= 0.05
    assert doc.notes == ("2 pages read by OCR (pages 1-2)",)


def test_without_ocr_an_image_only_pdf_fails_with_the_reason(scan_pdf: bytes) -> None:
    with pytest.raises(DocumentError, match=r"no extractable text .*OCR is off"):
        load_document(Path("scan.pdf"), scan_pdf)
    with pytest.raises(DocumentError, match=r"no extractable text .*OCR is off"):
        load_document(Path("scan.pdf"), scan_pdf, ocr=OcrReader(mode="off"))


def test_blank_scan_fails_saying_ocr_found_nothing(reader: OcrReader) -> None:
    blank = image_only_pdf([Image.new("L", (400, 200), 255)], dpi=DPI)
    with pytest.raises(DocumentError, match="no text layer, and OCR found no text on its 1 page"):
        load_document(Path("blank.pdf"), blank, ocr=reader)


def layered_pdf() -> bytes:
    """Page 1: a picture of VISIBLE text over an invisible text layer saying something else (as OCR'd scans
    carry); page 2: a scan whose only text layer is the page number "2" (fewer than 20 characters)."""
    from fpdf import FPDF
    from fpdf.enums import TextMode

    pdf = FPDF(unit="pt", format=SMALL_PAGE)
    for picture, layer in (
        (scan(SCAN_LINES), "Hidden layer words about a silver spoon and a teapot."),
        (scan(IMAGE_LINES), "2"),
    ):
        pdf.add_page()
        pdf.image(picture, x=0, y=0, w=SMALL_PAGE[0], h=SMALL_PAGE[1])
        pdf.set_font("Helvetica", size=8)
        pdf.text_mode = TextMode.INVISIBLE
        pdf.text(20, 100, layer)
        pdf.text_mode = TextMode.FILL
    return bytes(pdf.output())


def test_auto_reads_only_pages_without_text_and_always_reads_every_page() -> None:
    data = layered_pdf()
    auto = load_document(Path("mixed.pdf"), data, ocr=OcrReader(mode="auto"))
    assert auto.ocr_pages == (2,)
    assert "silver spoon" in auto.pages[0] and "quince" in words(auto.pages[1])
    always = load_document(Path("mixed.pdf"), data, ocr=OcrReader(mode="always"))
    assert always.ocr_pages == (1, 2)
    assert "silver" not in always.pages[0] and {"heron", "gripper"} <= words(always.pages[0])
    off = load_document(Path("mixed.pdf"), data)
    assert off.ocr_pages == () and off.pages[1].strip() == "2"


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_image_files_are_read_by_ocr(reader: OcrReader, fmt: str) -> None:
    data = image_bytes([scan(IMAGE_LINES)], fmt)
    doc = load_document(Path(f"note.{fmt.lower()}"), data, ocr=reader)
    assert doc.kind == "image" and doc.ocr_pages == (1,)
    assert char_error_rate(doc.pages[0], " ".join(IMAGE_LINES)) <= 0.05


def test_multi_page_tiff_gives_one_page_per_frame(reader: OcrReader) -> None:
    data = image_bytes([scan(SCAN_LINES), scan(IMAGE_LINES)], "TIFF")
    doc = load_document(Path("fax.tiff"), data, ocr=reader)
    assert doc.ocr_pages == (1, 2) and len(doc.pages) == 2
    assert {"heron", "gripper"} <= words(doc.pages[0]) and {"quince", "cellar"} <= words(doc.pages[1])


def test_transparent_png_is_read_on_white(reader: OcrReader) -> None:
    gray = scan(IMAGE_LINES)
    rgba = Image.new("RGBA", gray.size, (0, 0, 0, 0))
    rgba.putalpha(Image.eval(gray, lambda v: 255 - v))  # black text on a fully transparent background
    doc = load_document(Path("alpha.png"), image_bytes([rgba], "PNG"), ocr=reader)
    assert {"quince", "cellar"} <= words(doc.pages[0])


def test_skewed_scan_keeps_its_lines_in_order(reader: OcrReader) -> None:
    lines = ["First line about copper kettles.", "Second line about iron pans.", "Third line about tin cups."]
    page = rasterize(typeset(lines, font="Times", size=13, page=(360, 150), margin=16), dpi=DPI, skew_degrees=3)
    text = load_document(Path("skew.png"), image_bytes([page], "PNG"), ocr=reader).pages[0]
    firsts = [line.split()[0] for line in text.splitlines() if line.strip()]
    assert firsts == ["First", "Second", "Third"], text


def test_bad_images_fail_with_a_reason(reader: OcrReader) -> None:
    png = image_bytes([scan(IMAGE_LINES)], "PNG")
    with pytest.raises(DocumentError, match="corrupt image"):
        load_document(Path("cut.png"), png[: len(png) // 2], ocr=reader)
    with pytest.raises(DocumentError, match="not an image Pillow can read"):
        load_document(Path("fake.png"), b"this is not a picture at all" * 10, ocr=reader)
    with pytest.raises(DocumentError, match=r"read by OCR, and ingest\.ocr is off"):
        load_document(Path("note.png"), png)


def test_progress_bar_per_page_only_when_enabled(scan_pdf: bytes, capsys) -> None:
    OcrReader(progress=True).read_pdf(Path("scan.pdf"), scan_pdf, ["", ""])
    err = capsys.readouterr().err
    assert "OCR scan.pdf" in err and "2/2" in err
    OcrReader(progress=False).read_pdf(Path("scan.pdf"), scan_pdf, ["", ""])
    assert capsys.readouterr().err == ""


TIGHT_PARAGRAPH = (
    "The pump station on the north bank was built in 1962 and rebuilt after the flood of 1998. It lifts "
    "water from the river into two settling basins, each holding about 4,500 cubic metres."
)


def test_reader_puts_back_the_word_spaces_the_recogniser_drops(reader: OcrReader) -> None:
    """On this 150 dpi scan PP-OCRv4 alone runs words together (``settlingbasins,eachholding``); the reader's
    hook into the engine (``respace`` on every recognised line) restores the spaces from the line image."""
    page = typeset([TIGHT_PARAGRAPH], font="Helvetica", size=11, page=(595.28, 110), margin=20)
    pdf = image_only_pdf([rasterize(page, dpi=150)], dpi=150)
    plain = load_document(Path("tight.pdf"), pdf, ocr=OcrReader(respace=False)).pages[0]
    assert " ".join(plain.split()) != TIGHT_PARAGRAPH and char_error_rate(plain, TIGHT_PARAGRAPH) > 0
    spaced = load_document(Path("tight.pdf"), pdf, ocr=reader).pages[0]
    assert " ".join(spaced.split()) == TIGHT_PARAGRAPH


OFFLINE_PROBE = """
import json, sys
from pathlib import Path

network = []


def audit(event, args):
    if event.startswith(("socket.", "urllib.", "http.", "ftplib.", "smtplib.")):
        network.append(f"{event} {args!r}")
        raise PermissionError(f"network access attempted: {event}")


sys.addaudithook(audit)  # from here on, any socket or URL opened in this process is recorded and refused
import rapidocr_onnxruntime.utils.infer_engine as infer_engine

models = []
real_session = infer_engine.InferenceSession


def recording_session(path, *args, **kwargs):
    models.append(str(path))
    return real_session(path, *args, **kwargs)


infer_engine.InferenceSession = recording_session
from ingest.loaders import load_document
from ingest.ocr import OcrReader

doc = load_document(Path(sys.argv[1]), Path(sys.argv[1]).read_bytes(), ocr=OcrReader())
print(json.dumps({"text": doc.pages[0], "models": models, "network": network}))
"""


def test_models_come_from_the_installed_wheel_and_nothing_is_fetched(tmp_path: Path) -> None:
    """A fresh process with an audit hook that records and refuses every socket and URL (Python's own
    ``socket.*``/``urllib.*`` audit events, so no library can get round it) loads the engine and reads a
    scan: no network event, and the three ONNX models are opened from the installed wheel's ``models/``."""
    import rapidocr_onnxruntime

    png = write(tmp_path / "note.png", image_bytes([scan(IMAGE_LINES)], "PNG"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    run = subprocess.run(
        [sys.executable, "-c", OFFLINE_PROBE, str(png)],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    probe = json.loads(run.stdout.strip().splitlines()[-1])
    assert probe["network"] == []
    assert {"quince", "cellar"} <= words(probe["text"])
    package = Path(rapidocr_onnxruntime.__file__).resolve().parent / "models"
    assert len(probe["models"]) == 3  # detection, direction classifier (loaded, unused), recognition
    for model in map(Path, probe["models"]):
        assert model.resolve().is_relative_to(package) and model.suffix == ".onnx" and model.is_file()


def test_the_offline_probe_catches_a_network_call(tmp_path: Path) -> None:
    """The probe's audit hook does see a connection attempt (to a closed local port), so the test above
    cannot pass because the hook is blind."""
    code = OFFLINE_PROBE.split("import rapidocr_onnxruntime")[0] + (
        "import socket\n"
        "try:\n"
        "    socket.create_connection(('127.0.0.1', 9), timeout=1)\n"
        "except OSError:\n"
        "    pass\n"
        "print(json.dumps(network))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert any(event.startswith("socket.") for event in json.loads(run.stdout))


# --- through the ingest pipeline ------------------------------------------------------------------------------


def ocr_config(mode: str = "auto") -> PipelineConfig:
    extensions = (*IngestConfig().extensions, ".png", ".jpg", ".tiff")
    return PipelineConfig(
        chunking=ChunkingConfig(chunk_tokens=64, overlap_tokens=8),
        ingest=IngestConfig(extensions=extensions, ocr=mode),  # type: ignore[arg-type]
    )


def scanned_folder(root: Path, scan_pdf: bytes) -> Path:
    write(root / "scan.pdf", scan_pdf)
    write(root / "photos" / "note.png", image_bytes([scan(IMAGE_LINES)], "PNG"))
    jpeg = image_bytes([scan(IMAGE_LINES)], "JPEG")
    write(root / "photos" / "broken.jpg", jpeg[: len(jpeg) // 2])
    (root / "guide.md").write_text("# Garden\n\nTomatoes need eight hours of sun.\n", encoding="utf-8")
    return root


def test_ingest_marks_ocr_chunks_and_search_shows_them(tmp_path: Path, scan_pdf: bytes, embedder, capsys) -> None:
    from ingest.pipeline import ingest
    from rag.cli import main
    from rag.store import open_index

    folder = scanned_folder(tmp_path / "docs", scan_pdf)
    report = ingest(folder, index_dir=tmp_path / "index", config=ocr_config())
    assert report.added == 3
    assert [(Path(path).name, reason) for path, reason in report.failed] == [("broken.jpg", report.failed[0][1])]
    assert "corrupt image" in report.failed[0][1]
    assert "scan.pdf: 2 pages read by OCR (pages 1-2)" in report.notes
    index = open_index(tmp_path / "index")
    by_source = {c.source: c for c in index.chunks}
    assert by_source["scan.pdf"].ocr and by_source["photos/note.png"].ocr and not by_source["guide.md"].ocr
    assert {c.page for c in index.chunks if c.source == "scan.pdf"} == {1, 2}
    assert by_source["photos/note.png"].page == 1
    assert index.manifest["files"]["scan.pdf"]["ocr"] == {"mode": "auto", "dpi": 300, "version": 1}
    assert "ocr" not in index.manifest["files"]["guide.md"]

    capsys.readouterr()
    argv = ["search", "heron gripper totes", "--index", str(tmp_path / "index"), "--mode", "bm25", "--json"]
    assert main([*argv, "--no-rerank"]) == 0
    top = json.loads(capsys.readouterr().out)["hits"][0]
    assert top["source"] == "scan.pdf" and top["page"] == 1 and top["ocr"] is True


def test_only_the_scanned_page_of_a_text_pdf_is_read_and_marked(tmp_path: Path, embedder) -> None:
    """Two pages with a text layer and one scan: auto reads only the scan, and only its chunks say ``ocr``.
    Image files are not ingested unless ``ingest.extensions`` lists them (the default does not)."""
    from ingest.pipeline import ingest
    from rag.store import open_index

    text_pages = [
        ["Copper kettles are polished every spring by the kitchen staff before the summer fair opens."],
        ["Iron pans are seasoned with linseed oil and stored upside down on the lowest shelf."],
    ]
    folder = tmp_path / "docs"
    write(folder / "manual.pdf", text_and_scan_pdf(text_pages, [scan(SCAN_LINES)], dpi=DPI))
    write(folder / "note.png", image_bytes([scan(IMAGE_LINES)], "PNG"))
    config = PipelineConfig(chunking=ChunkingConfig(chunk_tokens=24, overlap_tokens=0))
    assert ".png" not in config.ingest.extensions and config.ingest.ocr == "auto"
    report = ingest(folder, index_dir=tmp_path / "index", config=config)
    assert (report.added, report.failed) == (1, [])  # note.png is not listed: neither read nor failed
    assert "manual.pdf: 1 page read by OCR (page 3)" in report.notes
    chunks = [c for c in open_index(tmp_path / "index").chunks if c.source == "manual.pdf"]
    assert {c.page for c in chunks} == {1, 2, 3}
    assert {(c.page, c.ocr) for c in chunks} == {(1, False), (2, False), (3, True)}
    assert "heron" in " ".join(c.text.lower() for c in chunks if c.page == 3)


def test_changing_ingest_ocr_rereads_only_pdfs_and_images(tmp_path: Path, embedder) -> None:
    from ingest.pipeline import ingest

    folder = tmp_path / "docs"
    write(folder / "scan.pdf", layered_pdf())
    (folder / "guide.md").write_text("# Garden\n\nTomatoes need eight hours of sun.\n", encoding="utf-8")
    index = tmp_path / "index"
    first = ingest(folder, index_dir=index, config=ocr_config("auto"))
    assert first.added == 2
    again = ingest(folder, index_dir=index, config=ocr_config("auto"))
    assert again.unchanged == 2 and not again.written
    always = ingest(folder, index_dir=index, config=ocr_config("always"))
    assert (always.updated, always.unchanged) == (1, 1)
    off = ingest(folder, index_dir=index, config=ocr_config("off"))
    assert (off.updated, off.unchanged) == (1, 1)
    from rag.store import open_index

    chunks = [c for c in open_index(index).chunks if c.source == "scan.pdf"]
    assert chunks and not any(c.ocr for c in chunks)  # off: the text layers ("silver spoon", "2") only
    assert "silver spoon" in " ".join(c.text for c in chunks)


def test_image_only_pdf_with_ocr_off_is_a_per_file_failure(tmp_path: Path, scan_pdf: bytes, embedder) -> None:
    from ingest.pipeline import ingest

    folder = scanned_folder(tmp_path / "docs", scan_pdf)
    report = ingest(folder, index_dir=tmp_path / "index", config=ocr_config("off"))
    reasons = {Path(path).name: reason for path, reason in report.failed}
    assert report.added == 1  # guide.md
    assert "OCR is off" in reasons["scan.pdf"] and "ingest.ocr is off" in reasons["note.png"]
