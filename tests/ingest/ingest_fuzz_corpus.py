"""A seeded mutation corpus for fuzzing the loaders (``tests/ingest/test_ingest_fuzz.py`` runs a short
one in CI, ``benchmarks/fuzz_ingest.py`` a long one).

Seeds are real files written here: a PDF (fpdf2), DOCX, PPTX, XLSX (the Office factories), HTML and
text. Every mutant is one seed with one mutation, chosen by a ``random.Random(seed)``:

* every format: ``truncate`` (cut at a random offset), ``flip`` (1-32 random bytes XOR-ed),
  ``zero`` (a random range of up to a quarter of the file zeroed);
* Office (zip) formats also: ``nested_bomb`` (a zip of zips, 1-4 deep, holding 100 MB members of
  zeros, added as an embedded object), ``huge_size`` (one member's declared uncompressed size raised
  to 10 MB-4 GB in the local header and the central directory) and ``bad_directory`` (bytes of the
  central directory flipped).

:func:`reason_class` sorts a failure reason into a fixed set of classes; ``unexpected`` (an exception
the loader did not anticipate) and ``traceback`` are the bugs the fuzzer looks for.
"""

from __future__ import annotations

import io
import random
import re
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ingest_office_factory import write_docx, write_pptx, write_xlsx
from ingest_pdf_factory import write_pdf

FORMATS = ("pdf", "docx", "pptx", "xlsx", "html", "txt")
ZIP_FORMATS = ("docx", "pptx", "xlsx")
COMMON_MUTATIONS = ("truncate", "flip", "zero")
ZIP_MUTATIONS = ("nested_bomb", "huge_size", "bad_directory")
BOMB_MEMBER_BYTES = 100_000_000

PDF_PAGES = [
    ["Pump station manual", "", "Section 1: The pump station runs at 120 litres per minute in winter."],
    ["Maintenance", "", "Section 2: The filters are changed every six weeks by the night shift."],
]
HTML = """<!doctype html><html><head><title>Lighthouse log</title><style>p {margin: 0}</style></head>
<body><h1>Lighthouse log</h1><p>The lamp was cleaned on Monday and the fog horn tested on Tuesday.</p>
<h2>Supplies</h2><ul><li>Lamp oil: 40 litres</li><li>Batteries: 12</li></ul>
<table><tr><th>Day</th><th>Wind</th></tr><tr><td>Monday</td><td>force 6</td></tr></table></body></html>
"""
TEXT = (
    "Tide table notes\n\nHigh water at the harbour mouth is 40 minutes earlier than at the town quay.\n"
    "Spring tides reach 5.2 metres; neap tides 3.1 metres. Pilots board two miles out.\n"
)

# (class, pattern on the reason); first match wins. "unexpected" is the pipeline's wording for an
# exception no loader turned into a reason.
REASON_CLASSES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("traceback", re.compile(r"Traceback \(most recent call last\)|\n\s+File \"")),
    ("unexpected", re.compile(r"^unexpected ")),
    ("timeout", re.compile(r"longer than ingest\.file_timeout_s")),
    ("memory", re.compile(r"ingest\.max_file_memory_mb")),
    ("crashed", re.compile(r"loader process crashed")),
    ("zip bomb", re.compile(r"^zip bomb: ")),
    ("encrypted", re.compile(r"encrypted|password", re.IGNORECASE)),
    ("binary", re.compile(r"^binary content")),
    ("no text", re.compile(r"no (extractable )?text|has no pages|OCR found no text")),
    ("ocr", re.compile(r"for OCR|by OCR")),
    ("corrupt", re.compile(r"^(corrupt|truncated|not a|old binary|macro-enabled|unsupported)")),
)


def reason_class(reason: str) -> str:
    """The class of a failure reason (see ``REASON_CLASSES``); ``other`` when none matches."""
    for name, pattern in REASON_CLASSES:
        if pattern.search(reason):
            return name
    return "other"


@dataclass(frozen=True)
class Mutant:
    path: Path
    format: str
    mutation: str

    @property
    def name(self) -> str:
        return self.path.name


@cache
def seed_bytes(fmt: str) -> bytes:
    """One valid file of ``fmt`` (written once per process)."""
    import tempfile

    if fmt == "html":
        return HTML.encode("utf-8")
    if fmt == "txt":
        return TEXT.encode("utf-8")
    writers: dict[str, Callable[[Path], Path]] = {
        "pdf": lambda p: write_pdf(p, PDF_PAGES, title="Pump station manual"),
        "docx": write_docx,
        "pptx": write_pptx,
        "xlsx": write_xlsx,
    }
    with tempfile.TemporaryDirectory() as tmp:
        return writers[fmt](Path(tmp) / f"seed.{fmt}").read_bytes()


def mutations_for(fmt: str) -> tuple[str, ...]:
    return COMMON_MUTATIONS + (ZIP_MUTATIONS if fmt in ZIP_FORMATS else ())


def mutate(data: bytes, mutation: str, rng: random.Random, *, fmt: str) -> bytes:
    return MUTATIONS[mutation](data, rng, fmt)


def build_corpus(root: Path, *, seed: int, per_format: int, formats: tuple[str, ...] = FORMATS) -> list[Mutant]:
    """``per_format`` mutants of each format in ``root`` (mutations in turn, offsets random), plus nothing else."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    mutants: list[Mutant] = []
    for fmt in formats:
        names = mutations_for(fmt)
        for i in range(per_format):
            mutation = names[i % len(names)]
            path = root / f"{fmt}-{i:04d}-{mutation}.{fmt}"
            path.write_bytes(mutate(seed_bytes(fmt), mutation, rng, fmt=fmt))
            mutants.append(Mutant(path, fmt, mutation))
    return mutants


def write_seeds(root: Path, formats: tuple[str, ...] = FORMATS) -> list[Path]:
    """The unmutated seeds, which must be ``added``."""
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = root / f"{fmt}-seed.{fmt}"
        path.write_bytes(seed_bytes(fmt))
        paths.append(path)
    return paths


# --- mutations ------------------------------------------------------------------------------------


def truncate(data: bytes, rng: random.Random, fmt: str) -> bytes:
    return data[: rng.randrange(1, len(data))]


def flip(data: bytes, rng: random.Random, fmt: str) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 32)):
        out[rng.randrange(len(out))] ^= rng.randint(1, 255)
    return bytes(out)


def zero(data: bytes, rng: random.Random, fmt: str) -> bytes:
    length = rng.randint(1, max(1, len(data) // 4))
    start = rng.randrange(0, len(data) - length + 1)
    return data[:start] + b"\x00" * length + data[start + length :]


def nested_bomb(data: bytes, rng: random.Random, fmt: str) -> bytes:
    """The package with ``<dir>/embeddings/objectN.bin``: zips nested 1-4 deep around 100 MB members."""
    depth = rng.randint(1, 4)
    copies = rng.randint(1, 12)
    folder = {"docx": "word", "pptx": "ppt", "xlsx": "xl"}[fmt]
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        parts = [(info, archive.read(info)) for info in archive.infolist()]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for info, content in parts:
            archive.writestr(info, content)
        archive.writestr(f"{folder}/embeddings/object{depth}x{copies}.bin", _bomb(depth, copies))
    return out.getvalue()


@cache
def _bomb(depth: int, copies: int) -> bytes:
    """``copies`` members of ``BOMB_MEMBER_BYTES`` zeros, zipped, then zipped again ``depth - 1`` times."""
    deflated, crc = _deflated_zeros(BOMB_MEMBER_BYTES)
    layer = _raw_zip([(f"zeros{i}.bin", deflated, crc, BOMB_MEMBER_BYTES) for i in range(copies)])
    for level in range(1, depth):
        layer = _stored_zip(f"layer{level}.zip", layer)
    return layer


@cache
def _deflated_zeros(size: int) -> tuple[bytes, int]:
    """Raw deflate of ``size`` zero bytes and their CRC-32, made in 1 MB steps."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = b"\x00" * 1_000_000
    crc = 0
    chunks = []
    for _ in range(size // len(block)):
        chunks.append(compressor.compress(block))
        crc = zlib.crc32(block, crc)
    chunks.append(compressor.flush())
    return b"".join(chunks), crc


def _raw_zip(members: list[tuple[str, bytes, int, int]]) -> bytes:
    """A zip of already deflated members ``(name, deflated, crc, size)``, written by hand (local headers,
    central directory, end record), so a 100 MB member costs no compression per copy."""
    out = io.BytesIO()
    central = io.BytesIO()
    for name, deflated, crc, size in members:
        offset = out.tell()
        encoded = name.encode()
        out.write(struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0, crc, len(deflated), size, len(encoded), 0))
        out.write(encoded + deflated)
        fields = (20, 20, 0, 8, 0, 0, crc, len(deflated), size, len(encoded), 0, 0, 0, 0, 0, offset)
        central.write(struct.pack("<4s6H3L5H2L", b"PK\x01\x02", *fields) + encoded)
    start = out.tell()
    directory = central.getvalue()
    out.write(directory)
    out.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members), len(directory), start, 0))
    return out.getvalue()


def _stored_zip(name: str, content: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(name, content)
    return out.getvalue()


def huge_size(data: bytes, rng: random.Random, fmt: str) -> bytes:
    """One member declares a random uncompressed size of 10 MB-4 GB (local header and central directory)."""
    out = bytearray(data)
    entries = _central_entries(out)
    local, central = rng.choice(entries)
    size = rng.randint(10_000_000, 0xFFFFFFFE)
    struct.pack_into("<L", out, local + 22, size)
    struct.pack_into("<L", out, central + 24, size)
    return bytes(out)


def bad_directory(data: bytes, rng: random.Random, fmt: str) -> bytes:
    """1-16 random bytes of the central directory flipped."""
    out = bytearray(data)
    start, end = _central_range(out)
    for _ in range(rng.randint(1, 16)):
        out[rng.randrange(start, end)] ^= rng.randint(1, 255)
    return bytes(out)


def _central_range(data: bytearray) -> tuple[int, int]:
    eocd = data.rfind(b"PK\x05\x06")
    size, offset = struct.unpack_from("<2L", data, eocd + 12)
    return offset, offset + size


def _central_entries(data: bytearray) -> list[tuple[int, int]]:
    """(local header offset, central entry offset) of every member."""
    start, end = _central_range(data)
    entries = []
    position = start
    while position < end:
        name_len, extra_len, comment_len = struct.unpack_from("<3H", data, position + 28)
        (local,) = struct.unpack_from("<L", data, position + 42)
        entries.append((local, position))
        position += 46 + name_len + extra_len + comment_len
    return entries


MUTATIONS: dict[str, Callable[[bytes, random.Random, str], bytes]] = {
    "truncate": truncate,
    "flip": flip,
    "zero": zero,
    "nested_bomb": nested_bomb,
    "huge_size": huge_size,
    "bad_directory": bad_directory,
}
