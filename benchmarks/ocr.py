"""OCR benchmark: character error rate and seconds per page on scanned pages of known English text.

    flock /tmp/ragtrail-cpu.lock .venv/bin/python benchmarks/ocr.py [--dpi 150 300] [--max-side 2000]
        [--fonts Helvetica Times Courier DejaVuSans LiberationSerif] [--skew 2.0] [--out DIR]

Each page is typeset with fpdf2 (11 pt, left-aligned, A4), rasterised with pypdfium2 at the scan
resolution (150 and 300 dpi; one extra 300 dpi page rotated by ``--skew`` degrees), stored as an
image-only PDF and read back through the ingest path (``load_document`` with an ``OcrReader``: the
page has no text layer, so it is rendered at ``ingest.ocr_dpi`` = 300 capped at ``--max-side``
pixels, recognised and assembled). CER = Levenshtein distance / reference length on
whitespace-normalised text; "CER no spaces" is the same with every space removed (how much of the
error is word spacing). Seconds per page exclude the one-off engine load (reported apart) and include
rendering. onnxruntime uses every core it is given: on this machine 2.

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

from ingest_ocr_factory import image_only_pdf, rasterize, typeset  # noqa: E402

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
    parser.add_argument("--max-side", type=int, default=MAX_SIDE, help="OcrReader max_side (pixels)")
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
            out.append({"font": font, "dpi": dpi, "skew": 0.0})
    if args.skew:
        out.append({"font": args.fonts[0], "dpi": max(args.dpi), "skew": args.skew})
    return out


def run_case(reader: OcrReader, case: dict[str, Any], reference: str) -> dict[str, Any]:
    source = font_source(case["font"])
    if source is None:
        return {**case, "skipped": f"font {case['font']} not installed"}
    scan = rasterize(typeset(PARAGRAPHS, font=source), dpi=case["dpi"], skew_degrees=case["skew"])
    pdf = image_only_pdf([scan], dpi=case["dpi"])
    start = time.perf_counter()
    doc = load_document(Path("scan.pdf"), pdf, ocr=reader)
    seconds = time.perf_counter() - start
    text = "\n\n".join(doc.pages)
    return {
        **case,
        "cer": char_error_rate(text, reference),
        "cer_no_spaces": char_error_rate(text.replace(" ", ""), reference.replace(" ", "")),
        "seconds_per_page": seconds,
        "ocr_pages": list(doc.ocr_pages),
        "text": text,
    }


def format_table(rows: list[dict[str, Any]]) -> str:
    header = f"{'font':<16} {'dpi':>4} {'skew':>5} {'CER':>7} {'CER no spaces':>14} {'s/page':>7}"
    lines = [header, "-" * len(header)]
    for r in rows:
        if "skipped" in r:
            lines.append(f"{r['font']:<16} {r['dpi']:>4} {r['skew']:>5.1f}  skipped: {r['skipped']}")
            continue
        lines.append(
            f"{r['font']:<16} {r['dpi']:>4} {r['skew']:>5.1f} {r['cer']:>7.2%} {r['cer_no_spaces']:>14.2%} "
            f"{r['seconds_per_page']:>7.2f}"
        )
    return "\n".join(lines)


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    done = [r for r in rows if "skipped" not in r]
    out: dict[str, Any] = {}
    for dpi in sorted({r["dpi"] for r in done}):
        flat = [r for r in done if r["dpi"] == dpi and not r["skew"]]
        if flat:
            out[f"{dpi}dpi"] = {
                "mean_cer": statistics.fmean(r["cer"] for r in flat),
                "max_cer": max(r["cer"] for r in flat),
                "mean_seconds_per_page": statistics.fmean(r["seconds_per_page"] for r in flat),
                "pages": len(flat),
            }
    skewed = [r for r in done if r["skew"]]
    if skewed:
        out["skewed"] = {"cer": skewed[0]["cer"], "seconds_per_page": skewed[0]["seconds_per_page"]}
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    reference = "\n\n".join(PARAGRAPHS)
    reader = OcrReader(mode="auto", dpi=300, max_side=args.max_side)
    start = time.perf_counter()
    reader.engine  # noqa: B018 - load the engine outside the per-page timings
    load_s = time.perf_counter() - start
    rows = []
    for case in cases(args):
        row = run_case(reader, case, reference)
        rows.append(row)
        print(format_table([row]).splitlines()[-1], flush=True)
    print()
    print(format_table(rows))
    totals = summary(rows)
    at_300 = totals.get("300dpi")
    if at_300:
        verdict = "meets" if at_300["max_cer"] <= TARGET_CER else "misses"
        print(f"\n300 dpi: mean CER {at_300['mean_cer']:.2%}, worst {at_300['max_cer']:.2%}: {verdict} the 3 % target")
    print(f"engine load {load_s:.2f} s; cores available {len(os.sched_getaffinity(0))}; max side {args.max_side} px")
    args.out.mkdir(parents=True, exist_ok=True)
    pages = args.out / "pages"
    pages.mkdir(exist_ok=True)
    for r in rows:
        if "text" in r:
            name = f"{r['font']}-{r['dpi']}dpi{'-skew' if r['skew'] else ''}.txt"
            (pages / name).write_text(r["text"] + "\n", encoding="utf-8")
    result = {
        "command": "benchmarks/ocr.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "engine": f"rapidocr-onnxruntime {metadata.version('rapidocr-onnxruntime')}",
        "onnxruntime": metadata.version("onnxruntime"),
        "machine": {"cores": len(os.sched_getaffinity(0)), "cpu": platform.processor() or platform.machine()},
        "engine_load_seconds": load_s,
        "max_side": args.max_side,
        "summary": totals,
        "pages": [{k: v for k, v in r.items() if k != "text"} for r in rows],
    }
    (args.out / "results.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
