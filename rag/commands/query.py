"""``rag ask``, ``rag search`` and ``rag chat``: thin wrappers over :class:`rag.pipeline.Pipeline`.

Heavy modules (the pipeline, models) are imported inside the handlers so ``rag --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TextIO, get_args

from rag.commands.common import add_common_options, positive_int
from rag.config import RetrievalMode, load_config
from rag.prompt import NOT_IN_DOCUMENTS

if TYPE_CHECKING:
    from rag.pipeline import Answer, Pipeline, SearchResult

MODES: tuple[RetrievalMode, ...] = get_args(RetrievalMode)
EXIT_WORDS = {"exit", "quit", ":q"}


def _add_query_options(p: argparse.ArgumentParser, *, json_help: str) -> None:
    add_common_options(p)
    p.add_argument(
        "--top-k",
        type=positive_int,
        metavar="N",
        help="passages retrieved (default: answer.candidates; prompt.top_k with answer.context: passages)",
    )
    p.add_argument("--mode", choices=MODES, help="retriever (default: retrieval.mode)")
    p.add_argument(
        "--rerank",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="cross-encoder reranking (default: on when a reranker is configured and present)",
    )
    p.add_argument(
        "--source", action="append", metavar="GLOB", help="only search documents whose path matches GLOB (repeatable)"
    )
    p.add_argument("--json", action="store_true", help=json_help)


def register(subparsers: argparse._SubParsersAction) -> None:
    ask = subparsers.add_parser("ask", help="answer a question from the index, with [n] citations")
    ask.add_argument("question")
    _add_query_options(ask, json_help="print answer, citations, passages with scores and timings as JSON")
    ask.add_argument("--show-context", action="store_true", help="also show the passages given to the LLM")
    ask.set_defaults(func=run_ask)

    search = subparsers.add_parser("search", help="retrieval only (no LLM): the best passages for a query")
    search.add_argument("query")
    _add_query_options(search, json_help="print hits with every stage's score and timings as JSON")
    search.set_defaults(func=run_search)

    chat = subparsers.add_parser(
        "chat",
        help="ask questions interactively (one per line; 'exit' or EOF ends); follow-ups see the earlier turns",
    )
    _add_query_options(chat, json_help="one JSON answer per line instead of streamed text")
    chat.add_argument("--show-context", action="store_true", help="also show the passages given to the LLM")
    chat.add_argument(
        "--no-memory", action="store_true", help="answer each question on its own (no history, no follow-up rewrite)"
    )
    chat.set_defaults(func=run_chat)


def _open(args: argparse.Namespace) -> Pipeline:
    from rag.pipeline import Pipeline

    config = load_config(args.config)
    pipeline = Pipeline.from_config(config, index_dir=args.index or config.index_dir)
    notice = pipeline.rerank_status.notice
    if notice and args.rerank is None:
        print(f"rag: notice: {notice}", file=sys.stderr)
    return pipeline


def _filters(args: argparse.Namespace) -> Any:
    from rag.retrieval import Filters

    return Filters.of(args.source)


def _print_json(data: dict[str, Any], out: TextIO, *, indent: int | None = 2) -> None:
    out.write(json.dumps(data, ensure_ascii=False, indent=indent) + "\n")


def _scores(scores: dict[str, float]) -> str:
    return " ".join(f"{name}={value:.4g}" for name, value in scores.items())


def _show_context(answer: Answer, out: TextIO) -> None:
    for p in answer.passages:
        where = p.hit.chunk.source + (f", page {p.hit.chunk.page}" if p.hit.chunk.page is not None else "")
        note = " (trimmed)" if p.trimmed else ""
        out.write(f"--- [{p.number}] {where}  rank {p.hit.rank}  {_scores(p.hit.scores)}{note}\n{p.text}\n")
    if answer.prompt.dropped:
        out.write(f"--- {len(answer.prompt.dropped)} passage(s) left out to fit the token budget\n")
    out.write("---\n")


def _print_decision(answer: Answer, out: TextIO) -> None:
    for note in answer.notes:
        print(f"rag: note: {note}", file=sys.stderr)
    decision = answer.decision
    if answer.withdrawn and decision is not None:
        out.write(f"\n[withdrawn] The answer above was taken back: {decision.reason}. {NOT_IN_DOCUMENTS}\n")
    elif decision is not None and decision.stage == "gate":
        print(f"rag: note: declined without asking the LLM: {decision.reason}", file=sys.stderr)
    if answer.added_citations:
        added = ", ".join(f"[{n}]" for n in answer.added_citations)
        print(
            f"rag: note: the LLM cited nothing; {added} added: the excerpt holding most of the sentence's key terms",
            file=sys.stderr,
        )


def _print_sources(answer: Answer, out: TextIO) -> None:
    _print_decision(answer, out)
    if answer.refused:
        return
    if answer.citations.invalid:
        bad = ", ".join(f"[{n}]" for n in answer.citations.invalid)
        print(f"rag: note: dropped citation(s) {bad}: no such source", file=sys.stderr)
    for c in answer.weak_citations:
        print(
            f'rag: note: [{c.number}] may not support "{c.sentence}" '
            f"({c.overlap:.0%} of its key terms; [{c.better}] holds {c.better_overlap:.0%})",
            file=sys.stderr,
        )
    if answer.sources:
        out.write("\nSources:\n" + "".join(f"  {s.label()}\n" for s in answer.sources))
    elif answer.passages:
        out.write("\n(no sources cited) Passages given:\n")
        out.write("".join(f"  [{p.number}] {p.hit.chunk.source}\n" for p in answer.passages))


def answer_one(
    pipeline: Pipeline,
    question: str,
    args: argparse.Namespace,
    out: TextIO,
    *,
    history: list[dict[str, str]] | None = None,
) -> Answer:
    """Ask and print one question the way ``rag ask`` does (streamed unless --json); ``history``: the
    conversation so far (``rag chat``)."""
    options = {
        "top_k": args.top_k,
        "mode": args.mode,
        "rerank": args.rerank,
        "filters": _filters(args),
        "history": history or None,
    }
    if args.json:
        answer = pipeline.ask(question, **options)
        data = answer.to_dict()
        if args.show_context:
            data["prompt"] = answer.prompt.to_dict(messages=True)
        _print_json(data, out, indent=None if args.func is run_chat else 2)
        return answer

    def show(piece: str) -> None:
        out.write(piece)
        out.flush()

    answer = pipeline.ask(question, **options, on_token=show)
    out.write("\n")
    if answer.followup is not None and answer.followup.rewritten:
        print(f"rag: note: searched for the follow-up as: {answer.followup.query}", file=sys.stderr)
    if args.show_context:
        _show_context(answer, out)
    _print_sources(answer, out)
    return answer


def run_ask(args: argparse.Namespace) -> int:
    if not args.question.strip():
        print('rag: error: the question is empty: rag ask "QUESTION"', file=sys.stderr)
        return 2
    answer_one(_open(args), args.question, args, sys.stdout)
    return 0


def _print_hits(result: SearchResult, out: TextIO) -> None:
    state = "reranked" if result.reranked else "not reranked"
    out.write(f"{len(result.hits)} hit(s), mode {result.mode}, {state}, {result.timings.get('total', 0):.1f} ms\n")
    for h in result.hits:
        where = h.chunk.source + (f":p{h.chunk.page}" if h.chunk.page is not None else "")
        where += " (OCR)" if h.chunk.ocr else ""
        snippet = " ".join(h.chunk.text.split())[:160]
        out.write(f"{h.rank:>3}. {h.score:.4f}  {where}  [{_scores(h.scores)}]\n     {snippet}\n")


def run_search(args: argparse.Namespace) -> int:
    pipeline = _open(args)
    result = pipeline.search(args.query, k=args.top_k, mode=args.mode, rerank=args.rerank, filters=_filters(args))
    if args.json:
        _print_json(result.to_dict(), sys.stdout)
    else:
        _print_hits(result, sys.stdout)
    return 0


def read_questions(stream: TextIO, *, prompt: str | None) -> Iterator[str]:
    """Non-empty lines until EOF or an exit word; ``prompt`` is shown on stderr before each read."""
    while True:
        if prompt:
            print(prompt, end="", file=sys.stderr, flush=True)
        line = stream.readline()
        if not line:
            return
        question = line.strip()
        if question.lower() in EXIT_WORDS:
            return
        if question:
            yield question


def run_chat(args: argparse.Namespace) -> int:
    from rag.errors import GenerationError

    pipeline = _open(args)
    interactive = sys.stdin.isatty()
    if interactive:
        print("Ask a question about the indexed documents; 'exit' or Ctrl-D ends.", file=sys.stderr)
    history: list[dict[str, str]] = []
    for question in read_questions(sys.stdin, prompt="\nrag> " if interactive else None):
        try:
            answer = answer_one(pipeline, question, args, sys.stdout, history=history)
        except GenerationError as e:
            print(f"rag: error: {e}", file=sys.stderr)
            continue
        if not args.no_memory:
            history += [{"role": "user", "content": question}, {"role": "assistant", "content": answer.answer}]
    return 0
