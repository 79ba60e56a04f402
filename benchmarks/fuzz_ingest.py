"""Fuzzing the loaders: a seeded mutation corpus over PDF, DOCX, PPTX, XLSX, HTML and text, ingested
with per-file isolation (``ingest/isolate.py``); prints what became of every mutant.

    flock /tmp/ragtrail-cpu.lock .venv/bin/python benchmarks/fuzz_ingest.py [--seed 1] [--n 100]
        [--formats pdf,docx,pptx,xlsx,html,txt] [--timeout 60] [--memory-mb 4096] [--out FILE.json]

The corpus (``tests/ingest/ingest_fuzz_corpus.py``, shared with the short CI run in
``tests/ingest/test_ingest_fuzz.py``): ``--n`` mutants per format, mutations in turn (truncation, byte
flips, zeroed ranges; for the Office formats also nested zip bombs, a huge declared member size and a
corrupted central directory), offsets and sizes drawn from ``random.Random(seed)``. One real
``ingest`` over all of them, then a table format x mutation -> added / failed by reason class, with
the bug classes (``unexpected``: an exception a loader did not turn into a reason; ``traceback``;
``crashed``: a worker killed by a signal), ``other`` (a reason of no known class, to read), and the
slowest file and peak memory. Exit code 1 when an invariant is broken (a bug class, a file past the
time limit, a file in neither list).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if sys.path and Path(sys.path[0] or ".").resolve() == HERE:
    sys.path[0] = str(HERE.parent)  # the repo, not benchmarks/ (whose ingest.py would shadow the package)
sys.path.insert(1, str(HERE.parent / "tests" / "ingest"))  # the corpus module and the file factories

from ingest_fuzz_corpus import FORMATS, Mutant, build_corpus, mutations_for, reason_class  # noqa: E402

import rag  # noqa: E402, F401 - offline environment first
from rag.config import ChunkingConfig, IngestConfig, PipelineConfig  # noqa: E402

BUG_CLASSES = ("traceback", "unexpected", "crashed")
OUTCOMES = ("added", "corrupt", "zip bomb", "no text", "binary", "encrypted", "ocr", "timeout", "memory", "other")
COLUMNS = (*OUTCOMES, *BUG_CLASSES)


def run(*, seed: int, n: int, formats: tuple[str, ...], timeout_s: float, memory_mb: int, tmp: Path) -> dict[str, Any]:
    from ingest.pipeline import ingest

    start = time.perf_counter()
    mutants = build_corpus(tmp / "corpus", seed=seed, per_format=n, formats=formats)
    build_s = time.perf_counter() - start
    config = PipelineConfig(
        chunking=ChunkingConfig(chunk_tokens=64, overlap_tokens=8),
        ingest=IngestConfig(file_timeout_s=timeout_s, max_file_memory_mb=memory_mb),
    )
    start = time.perf_counter()
    report = ingest(tmp / "corpus", index_dir=tmp / "index", config=config)
    ingest_s = time.perf_counter() - start
    failed = {Path(path).name: reason for path, reason in report.failed}
    outcome = {m.name: reason_class(failed[m.name]) if m.name in failed else "added" for m in mutants}
    counts: Counter[tuple[str, str, str]] = Counter((m.format, m.mutation, outcome[m.name]) for m in mutants)
    loading = {Path(source).name: row for source, row in report.loading.items()}
    slowest = max(loading.items(), key=lambda item: item[1]["seconds"])
    heaviest = max(loading.items(), key=lambda item: item[1].get("peak_mb", 0.0))
    problems = _problems(mutants, outcome, failed, loading, report.added, timeout_s)
    return {
        "seed": seed,
        "per_format": n,
        "formats": list(formats),
        "file_timeout_s": timeout_s,
        "max_file_memory_mb": memory_mb,
        "files": len(mutants),
        "build_s": round(build_s, 1),
        "ingest_s": round(ingest_s, 1),
        "counts": [{"format": f, "mutation": m, "outcome": o, "files": c} for (f, m, o), c in sorted(counts.items())],
        "totals": dict(Counter(outcome.values())),
        "slowest": {"file": slowest[0], **slowest[1]},
        "peak_worker": {"file": heaviest[0], **heaviest[1]},
        "parent_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "bugs": {name: failed[name] for name, cls in outcome.items() if cls in BUG_CLASSES},
        "examples": _examples(outcome, failed),
        "problems": problems,
    }


def _examples(outcome: dict[str, str], failed: dict[str, str], per_class: int = 3) -> dict[str, dict[str, str]]:
    """A few failure reasons of every class, to read (the first files in name order)."""
    out: dict[str, dict[str, str]] = {}
    for name in sorted(failed):
        chosen = out.setdefault(outcome[name], {})
        if len(chosen) < per_class:
            chosen[name] = failed[name]
    return out


def _problems(
    mutants: list[Mutant],
    outcome: dict[str, str],
    failed: dict[str, str],
    loading: dict[str, dict[str, float]],
    added: int,
    timeout_s: float,
) -> list[str]:
    problems = []
    if added != sum(1 for cls in outcome.values() if cls == "added"):
        problems.append(f"report.added = {added}, but {len(mutants) - len(failed)} files were not failed")
    problems += [f"{m.name}: not loaded" for m in mutants if m.name not in loading and m.name not in failed]
    problems += [f"{name}: {cls}: {failed[name]}" for name, cls in outcome.items() if cls in BUG_CLASSES]
    problems += [
        f"{name}: {row['seconds']:.1f} s, past the {timeout_s:g} s limit"
        for name, row in loading.items()
        if row["seconds"] > timeout_s + 3
    ]
    return problems


def table(result: dict[str, Any]) -> str:
    """Format x mutation rows; a column per outcome that occurred."""
    rows: dict[tuple[str, str], Counter[str]] = {}
    for row in result["counts"]:
        rows.setdefault((row["format"], row["mutation"]), Counter())[row["outcome"]] += row["files"]
    for fmt in result["formats"]:
        for mutation in mutations_for(fmt):
            rows.setdefault((fmt, mutation), Counter())
    seen = {o for counter in rows.values() for o in counter}
    columns = [c for c in COLUMNS if c in seen or c in ("added", *BUG_CLASSES[:2], "timeout", "memory")]
    columns += sorted(seen - set(columns))
    header = ["format", "mutation", "files", *columns]
    lines = [header]
    order = {fmt: i for i, fmt in enumerate(FORMATS)}
    for (fmt, mutation), counter in sorted(rows.items(), key=lambda kv: (order.get(kv[0][0], 99), kv[0][1])):
        lines.append([fmt, mutation, str(sum(counter.values())), *(str(counter[c]) for c in columns)])
    totals = Counter(result["totals"])
    lines.append(["all", "", str(result["files"]), *(str(totals[c]) for c in columns)])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for i, line in enumerate(lines):
        out.append(
            "  ".join(
                cell.ljust(w) if j < 2 else cell.rjust(w) for j, (cell, w) in enumerate(zip(line, widths, strict=True))
            )
        )
        if i == 0 or i == len(lines) - 2:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def summary(result: dict[str, Any]) -> str:
    slowest, heaviest = result["slowest"], result["peak_worker"]
    lines = [
        f"seed {result['seed']}, {result['per_format']} mutants per format, {result['files']} files; "
        f"limits: {result['file_timeout_s']:g} s and {result['max_file_memory_mb']:,} MB per file",
        f"corpus built in {result['build_s']} s; ingest {result['ingest_s']} s",
        f"slowest file: {slowest['file']} {slowest['seconds']:.2f} s",
        f"peak worker memory: {heaviest.get('peak_mb', 0):.0f} MB ({heaviest['file']}); "
        f"parent peak RSS {result['parent_peak_rss_mb']:.0f} MB",
        "invariants: "
        + (
            "all hold"
            if not result["problems"]
            else f"{len(result['problems'])} broken:\n  " + "\n  ".join(result["problems"])
        ),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--n", type=int, default=100, help="mutants per format (default 100)")
    parser.add_argument("--formats", default=",".join(FORMATS), help=f"comma-separated subset of {','.join(FORMATS)}")
    parser.add_argument("--timeout", type=float, default=60.0, help="ingest.file_timeout_s (default 60)")
    parser.add_argument("--memory-mb", type=int, default=4096, help="ingest.max_file_memory_mb (default 4096)")
    parser.add_argument("--out", type=Path, help="also write the result as JSON")
    args = parser.parse_args(argv)
    formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown or not formats or args.n < 1:
        parser.error(f"--formats takes {', '.join(FORMATS)} (got {', '.join(unknown) or 'none'}); --n at least 1")
    with tempfile.TemporaryDirectory(prefix="fuzz-ingest-") as tmp:
        result = run(
            seed=args.seed, n=args.n, formats=formats, timeout_s=args.timeout, memory_mb=args.memory_mb, tmp=Path(tmp)
        )
    print(table(result))
    print()
    print(summary(result))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return 1 if result["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
