"""OCR benchmark: character error rate and seconds per page on scanned pages of known English text.

    flock /tmp/ragtrail-cpu.lock .venv/bin/python benchmarks/ocr.py [--dpi 150 300] [--max-side 2000]
        [--fonts Helvetica Times Courier DejaVuSans LiberationSerif] [--skew 2.0] [--png-font Helvetica]
        [--no-full-page] [--no-ablation] [--out DIR]

Each page is typeset with fpdf2 (11 pt, left-aligned, A4), rasterised with pypdfium2 at the scan
resolution (150 and 300 dpi; one extra 300 dpi page rotated by ``--skew`` degrees) and read back through
the ingest path (``load_document`` with an ``OcrReader``). Most pages are stored as image-only PDFs: the
page has no text layer, so it is rendered at ``ingest.ocr_dpi`` = 300 capped at ``--max-side`` pixels,
recognised and assembled. The ``--png-font`` pages are PNG files instead (read at their own resolution,
capped at ``--max-side``). One more 300 dpi page holds the text twice (a full page, about 2,400
characters, for seconds per page on a dense page). CER = Levenshtein distance / reference length on
whitespace-normalised text; "CER no ws" is the same with all whitespace removed (the error that is not
word spacing or line breaks); "no respace" is the CER of the same page read without
:func:`ingest.ocr.respace` (the recogniser's own word spaces), skipped with ``--no-ablation``. Seconds
per page exclude the one-off engine load (reported apart) and include rendering; onnxruntime uses every
core it is given (on this machine 2).

Prints a table and writes ``results.json`` and ``pages/*.txt`` (what OCR read) under
``benchmarks/results/ocr/``. The target is CER <= 3 % at 300 dpi on clean printed English.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if sys.path and Path(sys.path[0] or ".").resolve() == HERE:
    sys.path[0] = str(HERE.parent)  # the repo, not benchmarks/ (whose ingest.py would shadow the package)
sys.path.insert(1, str(HERE.parent / "tests" / "ingest"))  # the page factory shared with the tests

from ingest_ocr_factory import image_bytes, image_only_pdf, rasterize, typeset  # noqa: E402

import rag  # noqa: E402, F401 - offline environment first
from ingest.loaders import load_document  # noqa: E402
from ingest.ocr import MAX_SIDE, OcrReader, char_error_rate  # noqa: E402

TARGET_CER = 0.03
SYSTEM_FONTS = {
    "DejaVuSans": "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "DejaVuSerif": "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf",
    "LiberationSerif": "/usr/share/fonts/truetype/liberation/LiberationSerif-Regular.ttf",
    "LiberationSans": "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
}
DEFAULT_FONTS = ("Helvetica", "Times", "Courier", "DejaVuSans", "LiberationSerif")

# Clean printed English: ordinary prose with digits, capitals and punctuation (written for this benchmark).
PARAGRAPHS = [
    "The pump station on the north bank was built in 1962 and rebuilt after the flood of 1998. It lifts "
    "water from the river into two settling basins, each holding about 4,500 cubic metres. Operators check "
    "the intake screens every morning and record the flow rate, the pressure at the outlet and the "
    "temperature of the bearings.",
    "When the river rises above the warning mark, the night shift opens the bypass valve and calls the "
    "engineer on duty. A spare motor is kept in the workshop; changing it takes roughly six hours with a "
    "crew of three. The maintenance log lists every repair since 2005, including the cost of parts and the "
    "time the station was offline.",
    "Quality samples are taken at noon. The laboratory tests them for turbidity, chlorine and nitrate, and "
    "the results are published each Friday on the notice board near the gate. In March 2024 the nitrate "
    "level reached 38 mg/l, below the legal limit of 50 mg/l but the highest value in ten years.",
    "Visitors must sign in at the office and wear a helmet beyond the yellow line. School groups are "
    "welcome on the first Tuesday of each month (maximum 25 pupils). Questions about the tours can be sent "
    "to the station manager, Ms. Alvarez, who has worked here since 1987.",
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dpi", type=int, nargs="+", default=[150, 300], help="scan resolutions")
    parser.add_argument("--fonts", nargs="+", default=list(DEFAULT_FONTS))
    parser.add_argument("--skew", type=float, default=2.0, help="degrees of the skewed 300 dpi page (0: none)")
    parser.add_argument("--png-font", default="Helvetica", help="font of the PNG pages, one per dpi ('': none)")
    parser.add_argument("--max-side", type=int, default=MAX_SIDE, help="OcrReader max_side (pixels)")
    parser.add_argument("--no-full-page", dest="full_page", action="store_false", help="skip the full page")
    parser.add_argument("--no-ablation", action="store_true", help="skip the reads without respacing")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "ocr")
    return parser.parse_args(argv)


def font_source(name: str) -> str | None:
    """A core font name, or the path of an installed TrueType file (None when it is not installed)."""
    if name in SYSTEM_FONTS:
        return SYSTEM_FONTS[name] if Path(SYSTEM_FONTS[name]).is_file() else None
    return name


def cases(args: argparse.Namespace) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for font in args.fonts:
        for dpi in args.dpi:
            out.append({"font": font, "dpi": dpi, "skew": 0.0, "input": "pdf", "copies": 1})
    if args.skew:
        out.append({"font": args.fonts[0], "dpi": max(args.dpi), "skew": args.skew, "input": "pdf", "copies": 1})
    if args.png_font:
        out.extend({"font": args.png_font, "dpi": dpi, "skew": 0.0, "input": "png", "copies": 1} for dpi in args.dpi)
    if args.full_page:
        out.append({"font": args.fonts[0], "dpi": max(args.dpi), "skew": 0.0, "input": "pdf", "copies": 2})
    return out


def page_text(case: dict[str, Any]) -> list[str]:
    """The paragraphs of a case's page: the text once, or twice for the full page."""
    return PARAGRAPHS * case["copies"]


def scanned_file(case: dict[str, Any], source: str) -> tuple[Path, bytes]:
    scan = rasterize(typeset(page_text(case), font=source), dpi=case["dpi"], skew_degrees=case["skew"])
    if case["input"] == "png":
        return Path("scan.png"), image_bytes([scan], "PNG", dpi=case["dpi"])
    return Path("scan.pdf"), image_only_pdf([scan], dpi=case["dpi"])


def read(reader: OcrReader, path: Path, data: bytes) -> tuple[str, tuple[int, ...], float]:
    start = time.perf_counter()
    doc = load_document(path, data, ocr=reader)
    return "\n\n".join(doc.pages), doc.ocr_pages, time.perf_counter() - start


def run_case(reader: OcrReader, plain: OcrReader | None, case: dict[str, Any]) -> dict[str, Any]:
    source = font_source(case["font"])
    if source is None:
        return {**case, "skipped": f"font {case['font']} not installed"}
    reference = "\n\n".join(page_text(case))
    path, data = scanned_file(case, source)
    text, ocr_pages, seconds = read(reader, path, data)
    row = {
        **case,
        "characters": len(" ".join(reference.split())),
        "cer": char_error_rate(text, reference),
        "cer_no_whitespace": char_error_rate("".join(text.split()), "".join(reference.split())),
        "seconds_per_page": seconds,
        "ocr_pages": list(ocr_pages),
        "text": text,
    }
    if plain is not None:
        row["cer_without_respacing"] = char_error_rate(read(plain, path, data)[0], reference)
    return row


def format_row(r: dict[str, Any]) -> str:
    start = f"{r['font']:<16} {r['input']:<5} {r['dpi']:>4} {r['skew']:>5.1f} {r.get('characters', 0):>6}"
    if "skipped" in r:
        return f"{start}  skipped: {r['skipped']}"
    plain = f"{r['cer_without_respacing']:>11.2%}" if "cer_without_respacing" in r else f"{'-':>11}"
    return f"{start} {r['cer']:>7.2%} {r['cer_no_whitespace']:>10.2%} {plain} {r['seconds_per_page']:>7.2f}"


def format_table(rows: list[dict[str, Any]]) -> str:
    header = (
        f"{'font':<16} {'input':<5} {'dpi':>4} {'skew':>5} {'chars':>6} {'CER':>7} {'CER no ws':>10} "
        f"{'no respace':>11} {'s/page':>7}"
    )
    return "\n".join([header, "-" * len(header), *(format_row(r) for r in rows)])


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per dpi over the straight PDF pages (every font), the skewed page, the PNG pages and the full page."""
    done = [r for r in rows if "skipped" not in r]
    out: dict[str, Any] = {}
    for dpi in sorted({r["dpi"] for r in done}):
        flat = [r for r in done if r["dpi"] == dpi and not r["skew"] and r["input"] == "pdf" and r["copies"] == 1]
        if flat:
            out[f"{dpi}dpi"] = {
                "mean_cer": statistics.fmean(r["cer"] for r in flat),
                "max_cer": max(r["cer"] for r in flat),
                "worst_font": max(flat, key=lambda r: r["cer"])["font"],
                "mean_seconds_per_page": statistics.fmean(r["seconds_per_page"] for r in flat),
                "pages": len(flat),
            }
            ablated = [r["cer_without_respacing"] for r in flat if "cer_without_respacing" in r]
            if ablated:
                out[f"{dpi}dpi"]["mean_cer_without_respacing"] = statistics.fmean(ablated)
                out[f"{dpi}dpi"]["max_cer_without_respacing"] = max(ablated)
    for r in done:
        if r["copies"] > 1:
            out["full_page"] = {k: r[k] for k in ("font", "dpi", "characters", "cer", "seconds_per_page")}
        elif r["skew"]:
            out["skewed"] = {k: r[k] for k in ("font", "dpi", "skew", "cer", "seconds_per_page")}
        elif r["input"] == "png":
            out[f"png_{r['dpi']}dpi"] = {k: r[k] for k in ("font", "cer", "seconds_per_page")}
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    reader = OcrReader(mode="auto", dpi=300, max_side=args.max_side)
    plain = None if args.no_ablation else OcrReader(mode="auto", dpi=300, max_side=args.max_side, respace=False)
    start = time.perf_counter()
    reader.engine  # noqa: B018 - load the engine outside the per-page timings
    load_s = time.perf_counter() - start
    if plain is not None:
        plain.engine  # noqa: B018
    header = format_table([]).splitlines()
    print("\n".join(header), flush=True)
    rows = []
    for case in cases(args):
        row = run_case(reader, plain, case)
        rows.append(row)
        print(format_row(row), flush=True)
    totals = summary(rows)
    print()
    for dpi in args.dpi:
        if f"{dpi}dpi" in totals:
            t = totals[f"{dpi}dpi"]
            print(
                f"{dpi} dpi ({t['pages']} fonts): mean CER {t['mean_cer']:.2%}, worst {t['max_cer']:.2%} "
                f"({t['worst_font']}), {t['mean_seconds_per_page']:.1f} s/page"
            )
    at_300 = totals.get("300dpi")
    if at_300:
        verdict = "meets" if at_300["max_cer"] <= TARGET_CER else "misses"
        print(f"300 dpi worst font {at_300['max_cer']:.2%}: {verdict} the {TARGET_CER:.0%} target")
    for key, label in (("skewed", "skewed page"), ("full_page", "full page")):
        if key in totals:
            t = totals[key]
            print(f"{label} ({t['font']}, {t['dpi']} dpi): CER {t['cer']:.2%}, {t['seconds_per_page']:.1f} s/page")
    cores = len(os.sched_getaffinity(0))
    print(f"engine load {load_s:.2f} s; {cores} cores; max side {args.max_side} px")
    args.out.mkdir(parents=True, exist_ok=True)
    pages = args.out / "pages"
    pages.mkdir(exist_ok=True)
    for r in rows:
        if "text" in r:
            kind = "-skew" if r["skew"] else "-full" if r["copies"] > 1 else ""
            name = f"{r['font']}-{r['input']}-{r['dpi']}dpi{kind}.txt"
            (pages / name).write_text(r["text"] + "\n", encoding="utf-8")
    result = {
        "command": "benchmarks/ocr.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "engine": f"rapidocr-onnxruntime {metadata.version('rapidocr-onnxruntime')}",
        "onnxruntime": metadata.version("onnxruntime"),
        "machine": {"cores": cores, "cpu": platform.processor() or platform.machine()},
        "engine_load_seconds": load_s,
        "max_side": args.max_side,
        "target_cer": TARGET_CER,
        "summary": totals,
        "pages": [{k: v for k, v in r.items() if k != "text"} for r in rows],
    }
    (args.out / "results.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
