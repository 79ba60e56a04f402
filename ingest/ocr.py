"""OCR for pages without a text layer: scanned PDF pages and image files (``.png``, ``.jpg``, ``.tiff``).

Offline by construction: RapidOCR (PP-OCRv4 detection and recognition models run by onnxruntime)
ships its ``.onnx`` files inside the ``rapidocr_onnxruntime`` wheel and never downloads anything;
PDF pages are rendered with pypdfium2, image files decoded with Pillow. The heavy imports
(onnxruntime, OpenCV, pypdfium2) happen on the first page that needs OCR, not when ragtrail starts.

Which pages (``ingest.ocr``):

* ``auto`` (default): a PDF page whose text layer holds fewer than ``MIN_TEXT_CHARS`` visible
  characters (none, or just a page number or a scanner's stamp) is rendered and read; the OCR text
  replaces the layer's only when it holds more characters. Image files are always read.
* ``always``: every PDF page is read; the OCR text replaces the layer's unless OCR finds nothing.
* ``off``: no OCR; an image-only PDF and an image file fail with a reason.

How a page is read: rendered at ``ingest.ocr_dpi`` but at most ``MAX_SIDE`` pixels on its long side
(the detector's working size: larger renders cost time and gain nothing), text lines detected and
recognised one line at a time (batching pads short lines and the model then drops their spaces),
boxes scored below ``MIN_SCORE`` dropped, and the rest put in reading order by :func:`assemble`.
The per-line 180° classifier is off: on upright print it flips correct lines (measured), so pages
must be upright (a PDF's ``/Rotate`` is honoured by the renderer).
"""

from __future__ import annotations

import io
import math
import re
import statistics
import time
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.document import LoadedDocument
from rag.config import IngestConfig, OcrMode
from rag.errors import DocumentError

if TYPE_CHECKING:
    import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
MIN_TEXT_CHARS = 20  # auto: a PDF page with fewer visible characters in its text layer is OCR'd
MIN_SCORE = 0.5  # recognition confidence below which a text box is dropped
MAX_SIDE = 2000  # pixels on a page image's long side; larger pages are scaled down before OCR
MAX_IMAGE_PIXELS = 120_000_000  # an image file larger than this is refused (decompression bombs)
LINE_OVERLAP = 0.5  # boxes share a line when their vertical overlap is this share of the lower box
PARAGRAPH_GAP = 0.8  # a gap between lines above this many median line heights starts a paragraph
SPACE_GAP = 0.28  # a blank gap this many line heights wide between two characters is a word space
EDGE_ROWS = 8  # a line image's top and bottom 1/8 may hold a neighbour's descenders: not searched for ink
OCR_VERSION = 1  # bump when the text OCR produces changes, so stored OCR'd documents are re-read
ENGINE = "rapidocr-onnxruntime (PP-OCRv4)"

_NUMBER_O = re.compile(r"(?<=\d)[oO]|(?<=\d[.,/:-])[oO](?=\d)")  # after a digit, or a digit and a separator
_NO_SPACE_BEFORE = frozenset(".,;:!?)]}%/-'\"’”…")  # monospaced punctuation stands apart from its word
_NO_SPACE_AFTER = frozenset("([{/-'\"‘“$€£")
_NUMERIC = re.compile(r"^[(\[]?[\d.,:/%+\-–]+[)\].,;:%]?$")


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def ocr_settings(config: IngestConfig) -> dict[str, Any]:
    """The settings that shape the text of an OCR'd file; stored per PDF and image file in the manifest,
    so changing them re-reads those files (and only those)."""
    return {"mode": config.ocr, "dpi": config.ocr_dpi, "version": OCR_VERSION}


# --- assembling recognised boxes into text -----------------------------------------------------------


@dataclass(frozen=True)
class OcrBox:
    """A recognised text box, axis-aligned in deskewed page coordinates (pixels, y down)."""

    x0: float
    y0: float
    x1: float
    y1: float
    text: str
    score: float = 1.0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    @property
    def center_y(self) -> float:
        return (self.y0 + self.y1) / 2


@dataclass
class _Line:
    boxes: list[OcrBox] = field(default_factory=list)

    @property
    def y0(self) -> float:
        return statistics.fmean(b.y0 for b in self.boxes)

    @property
    def y1(self) -> float:
        return statistics.fmean(b.y1 for b in self.boxes)

    def text(self) -> str:
        return " ".join(b.text for b in sorted(self.boxes, key=lambda b: (b.x0, b.y0)) if b.text)


def boxes_from_quads(
    quads: Sequence[Sequence[Sequence[float]]], texts: Sequence[str], scores: Sequence[float]
) -> list[OcrBox]:
    """Axis-aligned boxes from the detector's quadrilaterals, after undoing the page's skew: the median
    angle of the top edges of wide boxes (a skewed scan's lines would otherwise overlap in y)."""
    angle = page_skew(quads)
    cos, sin = math.cos(-angle), math.sin(-angle)
    boxes = []
    for quad, text, score in zip(quads, texts, scores, strict=True):
        xs = [x * cos - y * sin for x, y in quad]
        ys = [x * sin + y * cos for x, y in quad]
        boxes.append(OcrBox(min(xs), min(ys), max(xs), max(ys), text, float(score)))
    return boxes


def page_skew(quads: Sequence[Sequence[Sequence[float]]]) -> float:
    """Radians the text lines are rotated by (clockwise positive, as y points down); 0 without wide boxes."""
    angles = []
    for quad in quads:
        (x0, y0), (x1, y1) = quad[0], quad[1]
        height = math.dist(quad[0], quad[3])
        if math.dist(quad[0], quad[1]) > 3 * max(height, 1.0):
            angles.append(math.atan2(y1 - y0, x1 - x0))
    return statistics.median(angles) if angles else 0.0


def assemble(boxes: Sequence[OcrBox]) -> str:
    """Text in reading order: boxes grouped into lines by vertical overlap, each line read left to right,
    lines top to bottom; a blank line where the gap between two lines exceeds ``PARAGRAPH_GAP`` median
    line heights. Numbers misread with the letter O (``2oo5``) are repaired (:func:`fix_numbers`)."""
    lines: list[_Line] = []
    for box in sorted(boxes, key=lambda b: (b.center_y, b.x0)):
        line = _line_for(lines, box)
        if line is None:
            lines.append(_Line([box]))
        else:
            line.boxes.append(box)
    lines.sort(key=lambda line: line.y0)
    if not lines:
        return ""
    height = statistics.median(b.height for b in boxes)
    parts: list[str] = []
    previous: _Line | None = None
    for line in lines:
        text = fix_numbers(line.text())
        if not text:
            continue
        if previous is not None:
            parts.append("\n\n" if line.y0 - previous.y1 > PARAGRAPH_GAP * height else "\n")
        parts.append(text)
        previous = line
    return "".join(parts)


def _line_for(lines: list[_Line], box: OcrBox) -> _Line | None:
    """The most recent of the last few lines that ``box`` overlaps enough to belong to."""
    for line in reversed(lines[-4:]):
        overlap = min(line.y1, box.y1) - max(line.y0, box.y0)
        if overlap >= LINE_OVERLAP * min(box.height, line.y1 - line.y0):
            return line
    return None


def fix_numbers(text: str) -> str:
    """``2oo5`` → ``2005``, ``4,5o0`` → ``4,500``, ``1o/o3`` → ``10/03``: the letter O after a digit (or after
    a digit and a separator, before a digit), in a token that is a number once repaired. Other tokens
    (``O2``, ``2nd``, ``10am``) are left alone."""
    words = text.split(" ")
    for i, word in enumerate(words):
        if not any(c in "oO" for c in word) or not any(c.isdigit() for c in word):
            continue
        fixed = word
        while True:
            repaired = _NUMBER_O.sub("0", fixed)
            if repaired == fixed:
                break
            fixed = repaired
        if _NUMERIC.match(fixed):
            words[i] = fixed
    return " ".join(words)


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions each cost 1), one numpy row at a time."""
    import numpy as np

    if not a or not b:
        return len(a) or len(b)
    target = np.frombuffer(b.encode("utf-32-le"), dtype=np.uint32)
    steps = np.arange(len(b) + 1)
    row = steps.copy()
    for i, char in enumerate(a, start=1):
        best = np.empty_like(row)
        best[0] = i
        np.minimum(row[1:] + 1, row[:-1] + (target != ord(char)), out=best[1:])
        row = np.minimum.accumulate(best - steps) + steps  # insertions: row[j] = min_k best[k] + (j - k)
    return int(row[-1])


def char_error_rate(hypothesis: str, reference: str) -> float:
    """Character error rate: edit distance over the reference's length, both whitespace-normalised (runs of
    whitespace, line breaks included, count as one space). The reference must not be empty."""
    ref, hyp = " ".join(reference.split()), " ".join(hypothesis.split())
    if not ref:
        raise ValueError("character error rate needs a non-empty reference text")
    return edit_distance(hyp, ref) / len(ref)


# --- the engine and the reader ------------------------------------------------------------------------


@dataclass(frozen=True)
class OcrPage:
    """What OCR read on one page: the assembled text, boxes kept and dropped (low score), and seconds."""

    text: str
    boxes: int
    dropped: int
    seconds: float


@dataclass(frozen=True)
class PdfText:
    """A PDF's pages after OCR: the text of every page, the 1-based numbers of the pages whose text came
    from OCR, and notes for the ingest report."""

    pages: list[str]
    ocr_pages: tuple[int, ...]
    notes: tuple[str, ...] = ()


class OcrReader:
    """Reads page images with RapidOCR. Cheap to construct; the engine loads on the first page (about
    0.7 s) and is kept for the reader's lifetime, so one reader serves a whole ingest run.

    ``max_side`` caps the page image's long side in pixels; ``progress`` draws a per-page bar on stderr
    for documents with pages to OCR."""

    def __init__(
        self,
        *,
        mode: OcrMode = "auto",
        dpi: int = 300,
        progress: bool = False,
        min_score: float = MIN_SCORE,
        max_side: int = MAX_SIDE,
        respace: bool = True,
    ) -> None:
        self.mode = mode
        self.dpi = dpi
        self.progress = progress
        self.min_score = min_score
        self.max_side = max_side
        self.respace = respace

    @classmethod
    def from_config(cls, config: IngestConfig, *, progress: bool = False) -> OcrReader:
        return cls(mode=config.ocr, dpi=config.ocr_dpi, progress=progress)

    @cached_property
    def engine(self) -> Any:
        from rapidocr_onnxruntime import RapidOCR

        engine = RapidOCR(
            use_cls=False,
            rec_batch_num=1,
            text_score=0.0,  # every box comes back; min_score filters (and counts) here
            max_side_len=self.max_side,
            print_verbose=False,
        )
        if self.respace:
            engine.text_rec = _Respacing(engine.text_rec)
        return engine

    def needs_ocr(self, layer_text: str) -> bool:
        """Whether a PDF page with this text layer is OCR'd under the reader's mode."""
        if self.mode == "always":
            return True
        return self.mode == "auto" and _visible(layer_text) < MIN_TEXT_CHARS

    def read(self, image: np.ndarray) -> OcrPage:
        """OCR one page image (``H x W x 3`` RGB, uint8)."""
        start = time.perf_counter()
        bgr = _fit(image, self.max_side)[:, :, ::-1].copy()
        result, _ = self.engine(bgr)
        quads, texts, scores = [], [], []
        dropped = 0
        for quad, text, score in result or []:
            if float(score) < self.min_score or not str(text).strip():
                dropped += 1
                continue
            quads.append(quad)
            texts.append(unicodedata.normalize("NFKC", str(text)).strip())  # the model writes full-width ，（）
            scores.append(float(score))
        text = assemble(boxes_from_quads(quads, texts, scores))
        return OcrPage(text, len(quads), dropped, time.perf_counter() - start)

    def read_pdf(self, path: Path, data: bytes, layer: list[str]) -> PdfText:
        """The PDF's pages with OCR text for the pages :meth:`needs_ocr` picks (``layer``: pypdf's text)."""
        wanted = [n for n, text in enumerate(layer, start=1) if self.needs_ocr(text)]
        if not wanted:
            return PdfText(list(layer), ())
        pages = list(layer)
        used: list[int] = []
        rendered = _render_pdf(path, data, wanted, dpi=self.dpi, max_side=self.max_side)
        for number, image in self._progress(rendered, len(wanted), path):
            page = self.read(image)
            if page.text.strip() and (self.mode == "always" or _visible(page.text) > _visible(layer[number - 1])):
                pages[number - 1] = page.text
                used.append(number)
        notes = (f"{_count(used, 'page')} read by OCR ({_ranges(used)})",) if used else ()
        return PdfText(pages, tuple(used), notes)

    def read_image(self, path: Path, data: bytes) -> LoadedDocument:
        """An image file as a document: one page per frame (a multi-page TIFF is a paged document)."""
        frames = list(_image_frames(path, data))
        pages = [self.read(frame).text for frame in self._progress(iter(frames), len(frames), path)]
        if not any(page.strip() for page in pages):
            raise DocumentError(path, "OCR found no text in the image")
        ocr_pages = tuple(n for n, page in enumerate(pages, start=1) if page.strip())
        return LoadedDocument("image", pages, None, ocr_pages=ocr_pages)

    def _progress(self, items: Iterator[Any], total: int, path: Path) -> Iterator[Any]:
        if not self.progress or total < 1:
            return items
        from tqdm import tqdm

        return iter(tqdm(items, total=total, desc=f"OCR {path.name}", unit="page", leave=False))


@lru_cache(maxsize=4)
def ocr_reader(config: IngestConfig, *, progress: bool = False) -> OcrReader | None:
    """The process's reader for these settings (one engine per process), or None when OCR is off."""
    if config.ocr == "off":
        return None
    return OcrReader.from_config(config, progress=progress)


def no_text_reason(reader: OcrReader | None, pages: int) -> str:
    """Why a PDF yields no text, saying whether OCR ran."""
    if reader is None or reader.mode == "off":
        return "PDF has no extractable text (scanned images or empty pages; OCR is off: set ingest.ocr to auto)"
    return f"PDF has no extractable text: no text layer, and OCR found no text on its {_count(range(pages), 'page')}"


class _Respacing:
    """RapidOCR's line recogniser, with the word spaces it dropped put back (:func:`respace`).

    Wraps ``RapidOCR.text_rec`` (rapidocr-onnxruntime 1.4.x): asks it for the CTC column of every character
    and answers ``(text, score)`` per line image as the engine expects."""

    def __init__(self, recognise: Any) -> None:
        self.recognise = recognise

    def __call__(self, crops: list[np.ndarray], return_word_box: bool = False) -> tuple[list[tuple[str, float]], float]:
        results, elapse = self.recognise(crops, True)
        lines = []
        for crop, (text, score, info) in zip(crops, results, strict=True):
            columns = [col for word in info[2] for col in word]
            lines.append((respace(text, columns, info[0], crop), score))
        return lines, elapse


def respace(text: str, columns: Sequence[int], n_columns: float, crop: np.ndarray) -> str:
    """``text`` with a space wherever two neighbouring characters stand apart by a blank gap of at least
    ``SPACE_GAP`` line heights in the line image ``crop`` (the recogniser reads ``waterfrom`` where the print
    says ``water from`` on tightly set lines). Two digits are never split (a ``1`` stands wide in its cell).
    ``columns``: the CTC column of each character of ``text``; ``n_columns``: how many span the crop's width."""
    if len(columns) != len(text) or len(text) < 2 or n_columns <= 0:
        return text
    height, width = crop.shape[:2]
    step = width / n_columns  # crop pixels per CTC column
    blank = _blank_columns(crop)
    out = [text[0]]
    for i in range(1, len(text)):
        before, char = text[i - 1], text[i]
        if _may_split(text[i - 2] if i >= 2 else "", before, char):
            start = int((columns[i - 1] + 0.5) * step)
            end = min(int((columns[i] + 0.5) * step), width)
            if _longest_run(blank[start:end]) >= SPACE_GAP * height:
                out.append(" ")
        out.append(char)
    return "".join(out)


def _may_split(previous: str, before: str, char: str) -> bool:
    """Whether a word space may go between ``before`` and ``char``: not next to a space, not before closing or
    after opening punctuation, not between two digits or inside a number (``4,500``, ``3.5``, ``1/2``)."""
    if before.isspace() or char.isspace() or char in _NO_SPACE_BEFORE or before in _NO_SPACE_AFTER:
        return False
    return not (char.isdigit() and (before.isdigit() or (before in ",.:/" and previous.isdigit())))


def _blank_columns(crop: np.ndarray) -> np.ndarray:
    """Per pixel column of a line image: True where its middle band (the text, not a neighbour's
    descenders) holds no ink. Ink is darker than Otsu's threshold."""
    import cv2

    gray = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if crop.ndim == 3 else crop
    _, ink = cv2.threshold(gray, 0, 1, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    height = ink.shape[0]
    margin = height // EDGE_ROWS
    band = ink[margin : height - margin] if margin else ink
    blank: np.ndarray = band.sum(axis=0) == 0
    return blank


def _longest_run(flags: np.ndarray) -> int:
    best = run = 0
    for flag in flags.tolist():
        run = run + 1 if flag else 0
        best = max(best, run)
    return best


# --- page images --------------------------------------------------------------------------------------


def _render_pdf(
    path: Path, data: bytes, numbers: list[int], *, dpi: int, max_side: int
) -> Iterator[tuple[int, np.ndarray]]:
    """``(page number, RGB image)`` for each 1-based page number, rendered one at a time at ``dpi`` but no
    larger than ``max_side`` pixels on the long side."""
    import numpy as np
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as e:
        raise DocumentError(path, f"cannot render the PDF for OCR: {e}") from e
    try:
        for number in numbers:
            if number > len(pdf):
                break
            try:
                page = pdf[number - 1]
                width, height = page.get_size()
                scale = min(dpi / 72, max_side / max(width, height, 1.0))
                image = page.render(scale=scale).to_pil().convert("RGB")
            except pdfium.PdfiumError as e:
                raise DocumentError(path, f"cannot render page {number} for OCR: {e}") from e
            yield number, np.asarray(image)
    finally:
        pdf.close()


def _fit(image: np.ndarray, max_side: int) -> np.ndarray:
    """Scale an image down (area interpolation) so its long side is at most ``max_side`` pixels."""
    height, width = image.shape[:2]
    if max(height, width) <= max_side:
        return image
    import cv2

    scale = max_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _image_frames(path: Path, data: bytes) -> Iterator[np.ndarray]:
    """RGB frames of an image file (every page of a multi-page TIFF), upright per EXIF, on white."""
    import numpy as np
    from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as e:
        raise DocumentError(path, "not an image Pillow can read (unknown or corrupt format)") from e
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise DocumentError(path, f"corrupt image ({type(e).__name__}: {e})") from e
    with image:
        width, height = image.size
        if width * height > MAX_IMAGE_PIXELS:
            raise DocumentError(
                path, f"image too large for OCR: {width} x {height} pixels (limit {MAX_IMAGE_PIXELS:,})"
            )
        try:
            for frame in ImageSequence.Iterator(image):
                yield np.asarray(_rgb(ImageOps.exif_transpose(frame)))
        except DocumentError:
            raise
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
            raise DocumentError(path, f"corrupt image ({type(e).__name__}: {e})") from e


def _rgb(frame: Any) -> Any:
    """Any Pillow mode as 8-bit RGB; transparency becomes white, 16-bit and float images are stretched."""
    from PIL import Image

    if frame.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        import numpy as np

        values = np.asarray(frame, dtype=np.float64)
        low, high = float(values.min()), float(values.max())
        scaled = (values - low) * (255.0 / (high - low)) if high > low else np.zeros_like(values)
        frame = Image.fromarray(scaled.astype(np.uint8), "L")
    if frame.mode in ("RGBA", "LA", "PA") or (frame.mode == "P" and "transparency" in frame.info):
        rgba = frame.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        frame = Image.alpha_composite(background, rgba)
    return frame.convert("RGB")


def _visible(text: str) -> int:
    return sum(1 for c in text if not c.isspace())


def _count(items: Sequence[Any] | range, noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def _ranges(numbers: Sequence[int]) -> str:
    """``1, 2, 3, 5`` → ``pages 1-3, 5``."""
    spans: list[list[int]] = []
    for n in numbers:
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    text = ", ".join(f"{a}-{b}" if b > a else str(a) for a, b in spans)
    return f"page{'s' if len(numbers) > 1 else ''} {text}"
