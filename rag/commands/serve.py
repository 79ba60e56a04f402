"""``rag serve``: the OpenAI-compatible HTTP API and the web page (:mod:`rag.serve`) on uvicorn.

Options override the config file's ``serve:`` section. FastAPI, uvicorn and the models are imported only when
the command runs.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from dataclasses import replace
from typing import Any

from rag.commands.common import add_common_options, non_negative_int, positive_int


def _positive_float(value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {value!r}") from None
    if not x > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {value!r}")
    return x


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve",
        help="serve an OpenAI-compatible API (/v1/chat/completions, /v1/search, /v1/index) and a web page",
        description="Answer questions over HTTP: any OpenAI-compatible chat client can use "
        "http://HOST:PORT/v1 as its base URL; the page at / asks in the browser. Listens on 127.0.0.1 unless "
        "told otherwise; one answer is generated at a time.",
    )
    add_common_options(p)
    p.add_argument("--host", help="address to listen on (default: serve.host, 127.0.0.1)")
    p.add_argument("--port", type=non_negative_int, help="port (default: serve.port, 8000; 0 picks a free one)")
    p.add_argument(
        "--api-key-env",
        metavar="VAR",
        help="require 'Authorization: Bearer <key>' with the key in environment variable VAR (default: no auth)",
    )
    p.add_argument("--max-queue", type=non_negative_int, metavar="N", help="answers that may wait (default: 4)")
    p.add_argument("--timeout", type=_positive_float, metavar="S", help="per-request time limit (default: 120 s)")
    p.add_argument("--max-body", type=positive_int, metavar="BYTES", help="request body limit (default: 1000000)")
    p.add_argument(
        "--cors-origin",
        action="append",
        metavar="ORIGIN",
        help="allow browser calls from ORIGIN, e.g. http://localhost:3000 (repeatable; default: CORS off)",
    )
    p.add_argument("--reports", metavar="DIR", help="folder of rag eval runs the page links (default: runs)")
    p.set_defaults(func=run_serve)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    given = {
        "host": args.host,
        "port": args.port,
        "api_key_env": args.api_key_env,
        "max_queue": args.max_queue,
        "request_timeout_s": args.timeout,
        "max_body_bytes": args.max_body,
        "cors_origins": tuple(args.cors_origin) if args.cors_origin else None,
        "reports_dir": args.reports,
    }
    return {k: v for k, v in given.items() if v is not None}


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from rag.config import load_config
    from rag.pipeline import Pipeline
    from rag.serve import create_app
    from rag.serve.app import api_key

    config = load_config(args.config)
    serve = replace(config.serve, **_overrides(args))
    config = config.replace(serve=serve)
    api_key(serve)  # a missing key fails now, before the models load
    index_dir = args.index or config.index_dir
    pipeline = Pipeline.from_config(config, index_dir=index_dir)  # a missing index fails here, before listening
    notice = pipeline.rerank_status.notice
    if notice:
        print(f"rag serve: notice: {notice}", file=sys.stderr)
    app = create_app(pipeline, serve)
    if not _loopback(serve.host) and serve.api_key_env is None:
        print(
            f"rag serve: warning: listening on {serve.host} without --api-key-env: anyone who can reach this port "
            "can query the index",
            file=sys.stderr,
        )
    print(
        f"rag serve: index {index_dir}; OpenAI base URL http://{serve.host}:{serve.port}/v1 (model "
        f"{serve.model_name!r}); page http://{serve.host}:{serve.port}/",
        file=sys.stderr,
    )
    uvicorn.run(app, host=serve.host, port=serve.port, log_level="info", timeout_graceful_shutdown=5)
    return 0
