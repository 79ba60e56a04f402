"""``rag serve`` under load, against the real models: searches alone, then 8 chat clients beside 50 search clients.

    flock /tmp/ragtrail-cpu.lock .venv/bin/python benchmarks/serve.py [--index DIR] [--duration 120]

Starts ``rag serve`` (a subprocess, default settings: hybrid retrieval + reranking, one answer at a time, 4
waiting) on the sample documents (ingested into ``--index`` first if it is missing), then runs three phases,
each followed by a drain (requests in flight when the phase ends are waited for and counted):

1. **search**: ``--search-clients`` (50) clients calling ``POST /v1/search`` back to back for
   ``--search-duration`` seconds (60), with the questions of ``data/sample_questions.jsonl``;
2. **search, rerank off**: the same with ``"rerank": false`` for ``--plain-duration`` seconds (20; 0 skips it):
   what the HTTP layer, the query encoder and the first-stage retrieval cost without the cross-encoder;
3. **mixed**: ``--chat-clients`` (8) clients asking through ``POST /v1/chat/completions`` with ``stream: true``
   for ``--duration`` seconds (120) beside the search clients. A 429 is the documented answer of a full
   queue: the client waits ``Retry-After`` seconds and asks again (counted apart, not as a failure).

Any other non-200 answer, a search without hits, a stream that does not end in ``data: [DONE]`` with a final
answer, or a transport error is a failed request. Per phase: requests per second (those completed inside the
phase's window, over its length), p50/p95 latency of all completed requests (chat: first token and whole
answer), the latency of ``GET /healthz`` polled every 0.25 s (it does no work: a slow one means a blocked
event loop, not a busy CPU), the CPU the server used (of ``cores x seconds``) and what other processes used,
and the server's peak resident memory (``VmHWM``). Prints the table and writes
``benchmarks/results/serve/summary.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if sys.path and Path(sys.path[0] or ".").resolve() == HERE:
    sys.path[0] = str(HERE.parent)  # the repo, not benchmarks/ (whose ingest.py would shadow the package)

import httpx  # noqa: E402

REPO = HERE.parent
PROBE_S = 0.25
TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Stats:
    latencies_ms: list[float] = field(default_factory=list)
    first_token_ms: list[float] = field(default_factory=list)
    done_at: list[float] = field(default_factory=list)  # monotonic time each successful request completed
    rejected: int = 0  # 429 with Retry-After: the documented answer of a full queue
    failed: int = 0
    failures: list[str] = field(default_factory=list)

    def success(self, start: float, first: float | None = None) -> None:
        now = time.monotonic()
        self.done_at.append(now)
        self.latencies_ms.append((now - start) * 1000)
        if first is not None:
            self.first_token_ms.append((first - start) * 1000)

    def fail(self, why: str) -> None:
        self.failed += 1
        if len(self.failures) < 20:
            self.failures.append(why)


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


def questions(path: Path) -> list[str]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line)["question"] for line in fh if line.strip()]


async def chat_client(
    http: httpx.AsyncClient, qs: list[str], offset: int, until: float, stats: Stats, model: str
) -> None:
    i = offset
    while time.monotonic() < until:
        body = {"model": model, "messages": [{"role": "user", "content": qs[i % len(qs)]}], "stream": True}
        start = time.monotonic()
        first: float | None = None
        final = done = errored = False
        try:
            async with http.stream("POST", "/v1/chat/completions", json=body) as r:
                if r.status_code == 429:
                    stats.rejected += 1
                    await r.aread()
                    await asyncio.sleep(min(float(r.headers.get("retry-after", "1")), max(0.0, until - start)))
                    continue
                if r.status_code != 200:
                    stats.fail(f"chat HTTP {r.status_code}: {(await r.aread())[:200]!r}")
                    i += 1
                    continue
                async for line in r.aiter_lines():
                    if not line.startswith("data: "):
                        continue
                    data = line[6:]
                    if data == "[DONE]":
                        done = True
                        break
                    event = json.loads(data)
                    if "error" in event:
                        stats.fail(f"chat stream error: {event['error']['message']}")
                        errored = True
                        break
                    delta = event["choices"][0]["delta"] if event.get("choices") else {}
                    if first is None and delta.get("content"):
                        first = time.monotonic()
                    final = final or "ragtrail" in event
        except httpx.HTTPError as e:
            stats.fail(f"chat transport error: {e!r}")
            i += 1
            continue
        if done and final:
            stats.success(start, first)
        elif not errored:
            stats.fail("chat stream ended without [DONE] and a final answer")
        i += 1


async def search_client(
    http: httpx.AsyncClient, qs: list[str], offset: int, until: float, stats: Stats, extra: dict[str, Any]
) -> None:
    i = offset
    while time.monotonic() < until:
        start = time.monotonic()
        try:
            r = await http.post("/v1/search", json={"query": qs[i % len(qs)], **extra})
        except httpx.HTTPError as e:
            stats.fail(f"search transport error: {e!r}")
        else:
            if r.status_code == 200 and r.json().get("hits"):
                stats.success(start)
            else:
                stats.fail(f"search HTTP {r.status_code}: {r.text[:200]}")
        i += 1


async def health_probe(http: httpx.AsyncClient, until: float, stats: Stats) -> None:
    while time.monotonic() < until:
        start = time.monotonic()
        try:
            r = await http.get("/healthz")
        except httpx.HTTPError as e:
            stats.fail(f"healthz transport error: {e!r}")
        else:
            if r.status_code == 200:
                stats.success(start)
            else:
                stats.fail(f"healthz HTTP {r.status_code}")
        await asyncio.sleep(PROBE_S)


def proc_field_mb(pid: int, name: str) -> float:
    with open(f"/proc/{pid}/status", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith(name + ":"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def cpu_seconds(pid: int) -> tuple[float, float, float]:
    """(the server's CPU seconds, this process's, the whole machine's busy seconds) so far."""
    with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    server = (int(fields[11]) + int(fields[12])) / TICK  # utime, stime
    me = resource.getrusage(resource.RUSAGE_SELF)
    with open("/proc/stat", encoding="utf-8") as fh:
        ticks = [int(x) for x in fh.readline().split()[1:9]]
    busy = (sum(ticks) - ticks[3] - ticks[4]) / TICK  # all but idle and iowait
    return server, me.ru_utime + me.ru_stime, busy


def summary(stats: Stats, window_start: float, window_end: float) -> dict[str, Any]:
    inside = sum(window_start <= t <= window_end for t in stats.done_at)
    return {
        "ok": len(stats.done_at),
        "ok_in_window": inside,
        "rejected_429": stats.rejected,
        "failed": stats.failed,
        "failures": stats.failures,
        "per_s": inside / (window_end - window_start),
        "p50_ms": percentile(stats.latencies_ms, 50),
        "p95_ms": percentile(stats.latencies_ms, 95),
        "first_token_p50_ms": percentile(stats.first_token_ms, 50),
        "first_token_p95_ms": percentile(stats.first_token_ms, 95),
    }


async def run_phase(
    http: httpx.AsyncClient,
    pid: int,
    qs: list[str],
    model: str,
    *,
    name: str,
    duration: float,
    chat_clients: int,
    search_clients: int,
    search_extra: dict[str, Any],
) -> dict[str, Any]:
    chat, search, health = Stats(), Stats(), Stats()
    server0, me0, busy0 = cpu_seconds(pid)
    start = time.monotonic()
    until = start + duration
    tasks = [chat_client(http, qs, i, until, chat, model) for i in range(chat_clients)]
    tasks += [search_client(http, qs, i, until, search, search_extra) for i in range(search_clients)]
    tasks.append(health_probe(http, until, health))
    await asyncio.gather(*tasks)
    elapsed = time.monotonic() - start
    server1, me1, busy1 = cpu_seconds(pid)
    cores = os.cpu_count() or 1
    queue = (await http.get("/v1/index")).json()["server"]["queue"]
    result = {
        "phase": name,
        "duration_s": duration,
        "elapsed_s": elapsed,  # the window and the drain of the requests in flight at its end
        "chat_clients": chat_clients,
        "search_clients": search_clients,
        "search_request": search_extra,
        "search": summary(search, start, until),
        "healthz": summary(health, start, until),
        "healthz_max_ms": max(health.latencies_ms, default=float("nan")),
        "server_cpu_s": server1 - server0,
        "server_cpu_share": (server1 - server0) / (elapsed * cores),
        "benchmark_cpu_share": (me1 - me0) / (elapsed * cores),
        "others_cpu_share": max(0.0, (busy1 - busy0) - (server1 - server0) - (me1 - me0)) / (elapsed * cores),
        "server_queue": queue,
        "peak_rss_mb": proc_field_mb(pid, "VmHWM"),
    }
    if chat_clients:
        result["chat"] = summary(chat, start, until)
    return result


async def load(url: str, pid: int, args: argparse.Namespace) -> dict[str, Any]:
    qs = questions(args.questions)
    limits = httpx.Limits(max_connections=args.chat_clients + args.search_clients + 4)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=httpx.Timeout(300.0)) as http:
        model = (await http.get("/v1/models")).json()["data"][0]["id"]
        server = (await http.get("/v1/index")).json()["server"]
        idle_rss = proc_field_mb(pid, "VmRSS")
        phases = []
        plan = [
            ("search", args.search_duration, 0, {}),
            ("search, rerank off", args.plain_duration, 0, {"rerank": False}),
            ("mixed", args.duration, args.chat_clients, {}),
        ]
        for name, duration, chat_clients, extra in plan:
            if duration <= 0:
                continue
            print(f"phase {name!r}: {duration:g} s ...", file=sys.stderr, flush=True)
            phases.append(
                await run_phase(
                    http,
                    pid,
                    qs,
                    model,
                    name=name,
                    duration=duration,
                    chat_clients=chat_clients,
                    search_clients=args.search_clients,
                    search_extra=extra,
                )
            )
    return {
        "phases": phases,
        "rerank": server["rerank"],
        "llm": server["llm"],
        "idle_rss_mb": idle_rss,
        "peak_rss_mb": max(p["peak_rss_mb"] for p in phases) if phases else idle_rss,
    }


def ensure_index(index: Path) -> None:
    """Ingest ``data/sample`` into ``index`` unless it holds an index already."""
    if (index / "CURRENT").is_file():
        return
    from ingest.pipeline import ingest
    from rag.config import PipelineConfig

    print(f"ingesting data/sample into {index} ...", file=sys.stderr)
    report = ingest(REPO / "data" / "sample", index_dir=index, config=PipelineConfig())
    if report.exit_code != 0:
        raise SystemExit(f"ingesting data/sample into {index} failed: {report.to_dict()}")


def start_server(args: argparse.Namespace, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    command = [sys.executable, "-m", "rag.cli", "serve", "--index", str(args.index), "--port", str(port)]
    if args.config:
        command += ["--config", str(args.config)]
    with open(log, "w", encoding="utf-8") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"rag serve did not start; its log:\n{log.read_text(encoding='utf-8')}")
        time.sleep(0.5)


def print_table(result: dict[str, Any]) -> None:
    from eval.report import format_table

    rows: list[list[Any]] = []
    for p in result["phases"]:
        if "chat" in p:
            c = p["chat"]
            rows.append(
                [
                    f"{p['phase']}: chat (stream)",
                    p["chat_clients"],
                    c["ok"],
                    c["rejected_429"],
                    c["failed"],
                    c["per_s"],
                    c["first_token_p50_ms"] / 1000,
                    c["first_token_p95_ms"] / 1000,
                    c["p50_ms"] / 1000,
                    c["p95_ms"] / 1000,
                ]
            )
        s = p["search"]
        rows.append(
            [
                f"{p['phase']}: search",
                p["search_clients"],
                s["ok"],
                s["rejected_429"],
                s["failed"],
                s["per_s"],
                "-",
                "-",
                s["p50_ms"] / 1000,
                s["p95_ms"] / 1000,
            ]
        )
    headers = ["requests", "clients", "ok", "429", "failed", "per s", "1st token p50 s", "p95 s", "p50 s", "p95 s"]
    print(format_table(headers, rows, precision=2))
    print()
    rows = [
        [
            p["phase"],
            p["duration_s"],
            p["elapsed_s"],
            p["healthz"]["p50_ms"],
            p["healthz"]["p95_ms"],
            p["healthz_max_ms"],
            100 * p["server_cpu_share"],
            100 * p["benchmark_cpu_share"],
            100 * p["others_cpu_share"],
            p["peak_rss_mb"],
        ]
        for p in result["phases"]
    ]
    headers = [
        "phase",
        "window s",
        "with drain s",
        "healthz p50 ms",
        "p95 ms",
        "max ms",
        "server CPU %",
        "client CPU %",
        "others CPU %",
        "peak RSS MB",
    ]
    print(format_table(headers, rows, precision=1))
    print(
        f"\n{result['cpus']} cores; reranking {'on' if result['rerank']['enabled'] else 'off'}; "
        f"LLM {result['llm']}; server RSS after start-up {result['idle_rss_mb']:.0f} MB"
    )
    for p in result["phases"]:
        for why in p.get("chat", {}).get("failures", []) + p["search"]["failures"] + p["healthz"]["failures"]:
            print(f"failure ({p['phase']}): {why}")


def failed(result: dict[str, Any]) -> int:
    return sum(
        p.get("chat", {}).get("failed", 0) + p["search"]["failed"] + p["healthz"]["failed"] for p in result["phases"]
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--index", type=Path, default=REPO / ".ragtrail-qa-data-sample", help="index to serve")
    p.add_argument("--config", type=Path, help="config file for rag serve")
    p.add_argument("--questions", type=Path, default=REPO / "data" / "sample_questions.jsonl")
    p.add_argument("--search-duration", type=float, default=60.0, help="seconds of searches alone (default: 60)")
    p.add_argument("--plain-duration", type=float, default=20.0, help="seconds of searches without reranking")
    p.add_argument("--duration", type=float, default=120.0, help="seconds of chat + search (default: 120)")
    p.add_argument("--chat-clients", type=int, default=8)
    p.add_argument("--search-clients", type=int, default=50)
    p.add_argument("--out", type=Path, default=HERE / "results" / "serve")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    ensure_index(args.index)
    log = Path(tempfile.gettempdir()) / "ragtrail-serve-benchmark.log"  # uvicorn's access log: one line a request
    proc, url = start_server(args, log)
    try:
        result = asyncio.run(load(url, proc.pid, args))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    result["index"] = str(args.index)
    result["cpus"] = os.cpu_count()
    result["command"] = " ".join(["benchmarks/serve.py", *(argv if argv is not None else sys.argv[1:])])
    (args.out / "summary.json").write_text(json.dumps(result, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print_table(result)
    return 1 if failed(result) else 0


if __name__ == "__main__":
    sys.exit(main())
