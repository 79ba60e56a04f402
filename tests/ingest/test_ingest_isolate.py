"""Per-file isolation (ingest/isolate.py): the worker process, its time limit and memory cap, crashes,
and the configuration keys. Real files and a real worker throughout; nothing is mocked."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from ingest_office_factory import write_office_folder
from ingest_pdf_factory import write_pdf
from ingest_sample_folder import make_folder

from ingest.isolate import FileLoader, LoadLimits, load_and_clean
from rag.config import IngestConfig, PipelineConfig, load_config
from rag.errors import ConfigError, DocumentError

REPO = Path(__file__).resolve().parents[2]
SLACK_S = 3.0  # kill, wait and pipe round trip after the limit


@pytest.fixture(scope="module")
def slow_pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 pages of 40 lines: pypdf needs about 2 s for it on 2 cores, far over the limits used below."""
    lines = [f"Line {n}: the harbour ferry timetable changes on the first Monday of every month." for n in range(40)]
    return write_pdf(tmp_path_factory.mktemp("slow") / "slow.pdf", [lines] * 300)


def _small(tmp_path: Path) -> Path:
    path = tmp_path / "small.txt"
    path.write_text("The night ferry leaves the north pier at 23:40.\n", encoding="utf-8")
    return path


def test_worker_loads_exactly_what_in_process_loading_gives(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "docs")
    write_office_folder(folder / "office")
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    config = IngestConfig()
    with FileLoader(config) as loader:
        for path in files:
            assert loader.load(path, path.read_bytes()) == load_and_clean(path, path.read_bytes(), config), path.name
        stats = [loader.stats[str(p)] for p in files]
    assert len(files) == 7 and all(s.seconds > 0 and s.peak_mb and 20 < s.peak_mb < 1000 for s in stats)


def test_both_limits_off_loads_in_process_without_a_worker(tmp_path: Path) -> None:
    path = _small(tmp_path)
    with FileLoader(IngestConfig(file_timeout_s=0, max_file_memory_mb=0)) as loader:
        assert "23:40" in loader.load(path, path.read_bytes()).text
        assert loader._worker is None and loader.stats[str(path)].peak_mb is None
    assert LoadLimits.from_config(IngestConfig(max_file_memory_mb=0)) == LoadLimits(600.0, None)


def test_a_file_over_the_time_limit_fails_and_the_next_one_loads(tmp_path: Path, slow_pdf: Path) -> None:
    small = _small(tmp_path)
    with FileLoader(IngestConfig(file_timeout_s=0.2)) as loader:
        loader.load(small, small.read_bytes())
        first = loader._worker
        assert first is not None
        with pytest.raises(DocumentError) as caught:
            loader.load(slow_pdf, slow_pdf.read_bytes())
        assert caught.value.reason == "took longer than ingest.file_timeout_s (0.2 s) to load; stopped"
        assert caught.value.path == str(slow_pdf)
        assert 0.2 <= loader.stats[str(slow_pdf)].seconds < 0.2 + SLACK_S
        assert first.process.poll() == -signal.SIGKILL, "the worker is killed, not left running"
        assert "23:40" in loader.load(small, small.read_bytes()).text
        assert loader._worker is not first


def test_a_file_over_the_memory_cap_fails_and_the_next_one_loads(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_bytes(b"The harbour ferry leaves every twenty minutes from the north pier.\n" * 300_000)  # 20 MB
    small = _small(tmp_path)
    with FileLoader(IngestConfig(max_file_memory_mb=400)) as loader:
        with pytest.raises(DocumentError, match=r": needs more memory than ingest\.max_file_memory_mb \(400 MB\)"):
            loader.load(big, big.read_bytes())
        assert "23:40" in loader.load(small, small.read_bytes()).text
    with FileLoader(IngestConfig(max_file_memory_mb=0, file_timeout_s=60)) as loader:
        assert len(loader.load(big, big.read_bytes()).text) > 19_000_000, "uncapped, the same file loads"


def test_a_cap_below_the_workers_own_size_is_a_config_error(tmp_path: Path) -> None:
    path = _small(tmp_path)
    with FileLoader(IngestConfig(max_file_memory_mb=100)) as loader:
        with pytest.raises(ConfigError, match=r"ingest\.max_file_memory_mb \(100 MB\) is too small: .* allow at least"):
            loader.load(path, path.read_bytes())


def test_a_crashed_worker_is_reported_and_replaced(tmp_path: Path, slow_pdf: Path) -> None:
    small = _small(tmp_path)
    with FileLoader(IngestConfig(file_timeout_s=60)) as loader:
        loader.load(small, small.read_bytes())
        worker = loader._worker
        assert worker is not None
        errors: list[DocumentError] = []

        def load_slow() -> None:
            try:
                loader.load(slow_pdf, slow_pdf.read_bytes())
            except DocumentError as e:
                errors.append(e)

        thread = threading.Thread(target=load_slow)
        thread.start()
        time.sleep(0.3)
        os.kill(worker.process.pid, signal.SIGSEGV)
        thread.join(30)
        assert [e.reason for e in errors] == ["the loader process crashed while reading it (killed by SIGSEGV)"]
        assert "23:40" in loader.load(small, small.read_bytes()).text


PARENT = r"""
import sys
from pathlib import Path
from ingest.isolate import FileLoader
from rag.config import IngestConfig

slow = Path(sys.argv[1])
loader = FileLoader(IngestConfig(file_timeout_s=0))
loader.load(Path(sys.argv[2]), Path(sys.argv[2]).read_bytes())
print(loader._worker.process.pid, flush=True)
while True:
    loader.load(slow, slow.read_bytes())
"""


def test_the_worker_exits_when_its_parent_is_killed(tmp_path: Path, slow_pdf: Path) -> None:
    """No orphan keeps parsing after ``rag ingest`` is killed, even in the middle of a file."""
    small = _small(tmp_path)
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(slow_pdf), str(small)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    worker = int(parent.stdout.readline())
    time.sleep(0.5)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _running(worker):
        time.sleep(0.1)
    assert not _running(worker)


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_limits_are_validated_and_round_trip(tmp_path: Path) -> None:
    for key, value in [("file_timeout_s", -1), ("max_file_memory_mb", -5)]:
        with pytest.raises(ConfigError, match=f"ingest.{key} must not be negative"):
            load_config(overrides={"ingest": {key: value}})
    with pytest.raises(ConfigError, match="expected an integer"):
        load_config(overrides={"ingest": {"max_file_memory_mb": 1.5}})
    config = load_config(overrides={"ingest": {"file_timeout_s": 30, "max_file_memory_mb": 0}})
    assert config.ingest.file_timeout_s == 30.0 and config.ingest.max_file_memory_mb == 0
    assert PipelineConfig.from_dict(config.to_dict()) == config
    defaults = load_config(REPO / "configs" / "default.yaml")
    assert (defaults.ingest.file_timeout_s, defaults.ingest.max_file_memory_mb) == (600.0, 4096)


def test_ingest_reports_the_timed_out_file_and_keeps_the_rest(tmp_path: Path, slow_pdf: Path, config) -> None:
    from ingest.pipeline import ingest

    folder = make_folder(tmp_path / "docs")
    (folder / "slow.pdf").write_bytes(slow_pdf.read_bytes())
    limited = config.replace(ingest=IngestConfig(file_timeout_s=0.3))
    report = ingest(folder, index_dir=tmp_path / "index", config=limited)
    assert report.failed == [
        (str(folder / "slow.pdf"), "took longer than ingest.file_timeout_s (0.3 s) to load; stopped")
    ]
    assert report.added == 4 and report.exit_code == 1
    assert set(report.loading) == {"guide.md", "notes.txt", "sub/page.html", "report.pdf", "slow.pdf"}
    assert report.loading["slow.pdf"]["seconds"] < 0.3 + SLACK_S
    assert all(row["peak_mb"] > 0 for name, row in report.loading.items() if name != "slow.pdf")
    assert report.to_dict()["loading"] == report.loading


def test_a_cap_too_small_for_the_worker_stops_rag_ingest_with_exit_2(tmp_path: Path, capsys) -> None:
    from rag.cli import main

    folder = make_folder(tmp_path / "docs")
    (tmp_path / "tight.yaml").write_text("ingest:\n  max_file_memory_mb: 100\n", encoding="utf-8")
    code = main(["ingest", str(folder), "--index", str(tmp_path / "index"), "--config", str(tmp_path / "tight.yaml")])
    err = capsys.readouterr().err
    assert code == 2 and "ingest.max_file_memory_mb (100 MB) is too small" in err
    assert not (tmp_path / "index").exists() or not any((tmp_path / "index").rglob("manifest.json"))


def test_reasons_from_the_worker_are_one_short_line() -> None:
    from ingest.isolate import MAX_REASON_CHARS, one_line

    assert one_line("corrupt PDF:\n  bad   xref\n") == "corrupt PDF: bad xref"
    long = one_line("unexpected ValueError: " + "x " * 1000)
    assert len(long) <= MAX_REASON_CHARS and long.endswith("…") and "\n" not in long
