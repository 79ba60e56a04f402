"""The web page in a real browser: Playwright drives Debian's Chromium against ``rag serve`` started from the
command line on the sample documents, with the real embedded LLM. The question goes in with the keyboard, the
answer streams in, its citation (clicked, then from the keyboard) opens the passage, a phone-width screen does
not scroll sideways, and the console stays free of errors. The screenshot is left in the test's tmp dir.
Without Debian's chromium the test is skipped, saying so (outside CI; in CI it fails)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from serve_helpers import free_socket

pytestmark = [pytest.mark.slow, pytest.mark.llm]

QUESTION = "How many days of paid annual leave does a full-time Fernhill Robotics employee get?"


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        reason = "Debian's chromium is not installed (apt-get install -y chromium; .ci/setup.sh does it as root)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return path


@pytest.fixture(scope="module")
def sample_index(repo_root: Path, tmp_path_factory: pytest.TempPathFactory, embedder) -> Path:
    from ingest.pipeline import ingest
    from rag.config import PipelineConfig

    index_dir = tmp_path_factory.mktemp("sample-index") / "ix"
    report = ingest(repo_root / "data" / "sample", index_dir=index_dir, config=PipelineConfig())
    assert report.exit_code == 0, report.to_dict()
    return index_dir


@pytest.fixture(scope="module")
def served(sample_index: Path, tmp_path_factory: pytest.TempPathFactory):
    """``rag serve`` in a subprocess on a free port; its log is printed if the test fails."""
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    reports = tmp_path_factory.mktemp("reports")
    (reports / "eval-qa-sample").mkdir()
    (reports / "eval-qa-sample" / "report.html").write_text("<h1>qa report</h1>", encoding="utf-8")
    log = tmp_path_factory.mktemp("serve-log") / "serve.log"
    command = [sys.executable, "-m", "rag.cli", "serve", "--index", str(sample_index), "--port", str(port)]
    with open(log, "w", encoding="utf-8") as out:
        proc = subprocess.Popen([*command, "--reports", str(reports)], stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"rag serve did not start:\n{log.read_text(encoding='utf-8')}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        print(log.read_text(encoding="utf-8"))


def test_the_page_streams_a_cited_answer_and_opens_the_passage(chromium: str, served: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone-width screen
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
            page.goto(served)
            expect(page.locator("#stats")).to_contain_text("8 documents", timeout=30_000)
            expect(page.locator("#reports a")).to_have_text("eval-qa-sample")
            expect(page.locator("#question")).to_be_focused()
            # count the answer's updates while it is still marked pending: a streamed answer has many
            page.evaluate(
                """() => {
                window.__streamed = 0;
                new MutationObserver(() => {
                    const a = document.querySelector('.answer.pending');
                    if (a && a.textContent.length > 0) window.__streamed += 1;
                }).observe(document.querySelector('#conversation'),
                           {subtree: true, childList: true, characterData: true});
            }"""
            )
            page.keyboard.type(QUESTION)
            page.keyboard.press("Enter")
            expect(page.locator("#stop")).to_be_enabled()
            cite = page.locator(".answer a.cite").first
            cite.wait_for(timeout=240_000)
            answer = page.locator(".answer").first.text_content() or ""
            assert "27" in answer, answer
            assert page.evaluate("window.__streamed") >= 3, "the answer did not stream"
            expect(page.locator("#ask")).to_be_enabled()
            panel = page.locator("#passage")
            expect(panel).to_be_hidden()
            cite.click()  # with the mouse: the passage opens, its file named and the excerpt highlighted
            expect(panel).to_be_visible()
            expect(panel).to_be_focused()
            expect(page.locator("#passage-title")).to_contain_text("leave-policy.md")
            expect(page.locator("#passage-text mark").first).to_contain_text("27")
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "sideways scrolling"
            page.screenshot(path=str(tmp_path / "answer.png"), full_page=True)
            page.locator("#close-passage").click()
            expect(panel).to_be_hidden()
            cite.focus()  # and with the keyboard: Enter opens it, Escape closes it and gives the focus back
            page.keyboard.press("Enter")
            expect(panel).to_be_visible()
            expect(page.locator("#passage-title")).to_contain_text("leave-policy.md")
            page.keyboard.press("Escape")
            expect(panel).to_be_hidden()
            expect(cite).to_be_focused()
        finally:
            browser.close()
    assert (tmp_path / "answer.png").stat().st_size > 10_000
    assert problems == []
