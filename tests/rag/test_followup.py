"""Follow-up questions: the cue heuristic, the turns an answer sees, the rewrite prompt and its parsing, and
the pipeline searching for the rewrite while answering the question as asked (scripted LLM, no models)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from query_fakes import FakeIndex, HashEncoder, ScriptedLLM, chunk, count_words

from rag.config import AnswerConfig, FollowupConfig, PipelineConfig, PromptConfig, RerankConfig, RetrievalConfig
from rag.errors import ConfigError
from rag.followup import REWRITE_SYSTEM, conversation, followup_cue, parse_rewrite, plan_query, rewrite_messages
from rag.llm import Completion
from rag.pipeline import Pipeline

HISTORY = [
    {"role": "user", "content": "What is the Kestrel K7?"},
    {"role": "assistant", "content": "The Kestrel K7 is an autonomous picking robot [1]."},
]


@pytest.mark.parametrize(
    ("question", "cue"),
    [
        ("and how much can it lift?", "opens with 'and'"),
        ("What about sick leave?", "opens with 'what about'"),
        ("How much can it lift?", "refers back with 'it'"),
        ("What is its top speed?", "refers back with 'its'"),
        ("Who pays for them?", "refers back with 'them'"),
        ("How long does that take?", "refers back with 'that'"),
        ("Is that true for children?", "refers back with 'that'"),
        ("What must visitors wear there?", "refers back with 'there'"),
        ("Is alcohol reimbursed too?", "ends with 'too'"),
        ("How much?", "no topic words"),
        ("Why?", "no topic words"),
        ("In Paris?", "two words or fewer"),
    ],
)
def test_followup_cues(question: str, cue: str) -> None:
    assert followup_cue(question) == cue


@pytest.mark.parametrize(
    "question",
    [
        "How many days of paid annual leave does a full-time employee get?",
        "What is BM25?",
        "What is Glycyrrhizin?",
        "Which virus causes the disease that spread in Wuhan?",  # relative "that" after a noun
        "Is there a meal allowance for business travel?",  # existential "there"
        "When did Italy go into lockdown?",
        "",
    ],
)
def test_standalone_questions_have_no_cue(question: str) -> None:
    assert followup_cue(question) is None


def test_conversation_keeps_the_last_turns_within_the_budget_without_citations() -> None:
    history = [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": "one two three"},
        {"role": "assistant", "content": "four five [1]."},
        {"role": "user", "content": "six seven"},
        {"role": "assistant", "content": "eight nine ten [2][3]."},
        {"role": "tool", "content": "ignored"},
        {"role": "user", "content": "   "},
    ]
    turns = conversation(history, max_turns=3, max_tokens=100, count_tokens=count_words)
    assert turns == [
        {"role": "user", "content": "one two three"},
        {"role": "assistant", "content": "four five."},
        {"role": "user", "content": "six seven"},
        {"role": "assistant", "content": "eight nine ten."},
    ]
    assert conversation(history, max_turns=1, max_tokens=100, count_tokens=count_words) == turns[2:]
    # too many tokens: the oldest go first, and what is left starts with the user
    tight = conversation(history, max_turns=3, max_tokens=8, count_tokens=count_words)
    assert tight == turns[2:]
    assert conversation(history, max_turns=0, max_tokens=100, count_tokens=count_words) == []
    assert history[2]["content"] == "four five [1]."  # input not mutated


def test_rewrite_prompt_holds_the_question_the_last_questions_and_the_start_of_the_answer() -> None:
    long_answer = {"role": "assistant", "content": " ".join(f"w{i}" for i in range(100))}
    messages = rewrite_messages("and how much can it lift?", [*HISTORY, {"role": "user", "content": "q2"}, long_answer])
    body = messages[-1]["content"]
    assert messages[0]["role"] == "system" and messages[-1]["role"] == "user"
    assert "User: What is the Kestrel K7?\nUser: q2\nAssistant: w0" in body
    assert "w39 ..." in body and "w40" not in body
    assert body.endswith("Last question: and how much can it lift?")


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("How much can the Kestrel K7 lift?", "How much can the Kestrel K7 lift?"),
        ('Rewritten question: "How much can the Kestrel K7 lift?"\nExtra line', "How much can the Kestrel K7 lift?"),
        ("\n\n  Query: Kestrel K7 payload  ", "Kestrel K7 payload"),
        ("", None),
        ('""', None),
        (" ".join(["word"] * 61), None),
    ],
)
def test_parse_rewrite(reply: str, expected: str | None) -> None:
    assert parse_rewrite(reply) == expected


@dataclass
class RewritingLLM(ScriptedLLM):
    """Rewrite prompts get ``rewrite`` (recorded in ``completions``); answer prompts the scripted reply."""

    rewrite: str = "How much can the Kestrel K7 lift?"
    completions: list[list[dict[str, str]]] = field(default_factory=list)

    def complete(self, messages, **kwargs):
        if messages[0]["content"] != REWRITE_SYSTEM:
            return super().complete(messages, **kwargs)
        self.completions.append(list(messages))
        return Completion(text=self.rewrite, prompt_tokens=10, completion_tokens=5, finish_reason="stop")


def test_plan_query_rewrites_only_follow_ups_and_only_when_allowed() -> None:
    llm = RewritingLLM()
    config = FollowupConfig()
    turns = conversation(HISTORY, max_turns=3, max_tokens=200, count_tokens=count_words)
    plan = plan_query("and how much can it lift?", turns, llm=llm, config=config)
    assert plan.rewritten and plan.query == "How much can the Kestrel K7 lift?" and plan.cue == "opens with 'and'"
    assert len(llm.completions) == 1
    standalone = plan_query("What is the nightly hotel limit in Paris?", turns, llm=llm, config=config)
    assert standalone.query == standalone.question and standalone.cue is None and not standalone.rewritten
    assert len(llm.completions) == 1  # no LLM call for a standalone question
    off = plan_query("and how much can it lift?", turns, llm=llm, config=FollowupConfig(rewrite=False))
    assert off.query == "and how much can it lift?" and off.note and "followup.rewrite is off" in off.note
    assert plan_query("and it?", [], llm=llm, config=config).cue is None  # no history: nothing to follow
    for reply in ("", "It lifts totes of up to 35 kg."):  # nothing, or an answer instead of a question
        bad = plan_query("and how much can it lift?", turns, llm=RewritingLLM(rewrite=reply), config=config)
        assert not bad.rewritten and bad.query == bad.question and bad.note and "unusable rewrite" in bad.note


DOCS = [
    ("kestrel.md", "The Kestrel K7 picking robot lifts totes of up to 35 kg and drives at 2.4 metres per second."),
    ("leave.md", "Full-time employees get 27 days of paid annual leave per year."),
    ("hotels.md", "The nightly hotel limit is 190 EUR in Paris and 140 EUR elsewhere."),
]


def _pipeline(llm: ScriptedLLM, **config) -> Pipeline:
    index = FakeIndex([chunk(i, t, source=s) for i, (s, t) in enumerate(DOCS)])
    cfg = PipelineConfig(
        retrieval=RetrievalConfig(depth=3),
        rerank=RerankConfig(model=None),
        prompt=PromptConfig(top_k=1, ordering="rank"),
        answer=AnswerConfig(candidates=1, min_score=0.0, min_coverage=0.0, max_unsupported=1.0, max_missing_idf=99),
        **config,
    )
    return Pipeline(cfg, index, llm=llm, reranker=None, encoder=HashEncoder())


@pytest.mark.parametrize("context", ["sentences", "passages"])
def test_pipeline_searches_for_the_rewrite_and_answers_the_question_as_asked(context: str) -> None:
    llm = RewritingLLM(reply="It lifts up to 35 kg [1].")
    pipe = _pipeline(llm)
    if context == "passages":
        pipe = Pipeline(
            pipe.config.replace(answer=AnswerConfig(context="passages")),
            pipe.index,
            llm=llm,
            reranker=None,
            encoder=HashEncoder(),
        )
    answer = pipe.ask("and how much can it lift?", history=HISTORY)
    assert answer.question == "and how much can it lift?"
    assert answer.search.query == "How much can the Kestrel K7 lift?"
    assert answer.search.hits[0].chunk.source == "kestrel.md"
    assert answer.followup is not None and answer.followup.rewritten
    assert answer.to_dict()["followup"]["query"] == "How much can the Kestrel K7 lift?"
    assert "rewrite" in answer.timings
    messages = llm.seen[-1]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[1]["content"] == "What is the Kestrel K7?"
    assert messages[2]["content"] == "The Kestrel K7 is an autonomous picking robot."  # citation removed
    assert "Question: and how much can it lift?" in messages[-1]["content"]


def test_pipeline_without_history_or_with_a_standalone_question_does_not_rewrite() -> None:
    llm = RewritingLLM(reply="27 days [1].")
    pipe = _pipeline(llm)
    first = pipe.ask("How many days of annual leave do employees get?")
    assert first.followup is None and first.to_dict()["followup"] is None and not llm.completions
    second = pipe.ask("How many days of annual leave do employees get?", history=HISTORY)
    assert second.followup is not None and not second.followup.rewritten and not llm.completions
    assert second.search.query == second.question


def test_pipeline_history_can_be_switched_off_in_the_config() -> None:
    llm = RewritingLLM(reply="35 kg [1].")
    pipe = _pipeline(llm, followup=FollowupConfig(history_turns=0))
    answer = pipe.ask("and how much can it lift?", history=HISTORY)
    assert answer.followup is None and [m["role"] for m in llm.seen[-1]] == ["system", "user"]


def test_followup_and_serve_configs_validate() -> None:
    from rag.config import ServeConfig, load_config

    with pytest.raises(ConfigError, match="rewrite_tokens"):
        FollowupConfig(rewrite_tokens=0)
    with pytest.raises(ConfigError, match="history_turns"):
        FollowupConfig(history_turns=-1)
    with pytest.raises(ConfigError, match="max_queue"):
        ServeConfig(max_queue=-1)
    with pytest.raises(ConfigError, match="request_timeout_s"):
        ServeConfig(request_timeout_s=0)
    with pytest.raises(ConfigError, match="port"):
        ServeConfig(port=70000)
    overrides = {"serve": {"cors_origins": ["http://localhost:3000"]}, "followup": {"rewrite": False}}
    config = load_config(overrides=overrides)
    assert config.serve.cors_origins == ("http://localhost:3000",) and not config.followup.rewrite
    assert PipelineConfig.from_dict(config.to_dict()) == config


def test_rag_chat_remembers_the_conversation(capsys, query_index, monkeypatch, tmp_path) -> None:
    import io
    import json

    from rag.cli import main

    llm = RewritingLLM(reply="The Kestrel K7 reaches 14 km/h [1].", rewrite="What is the battery of the Kestrel K7?")
    monkeypatch.setattr("rag.llm.create_llm", lambda config: llm)
    monkeypatch.setattr("sys.stdin", io.StringIO("What is the Kestrel K7?\nand what battery does it have?\n"))
    open_gate = tmp_path / "open-gate.yaml"
    open_gate.write_text("answer:\n  gate: false\n", encoding="utf-8")
    code = main(["chat", "--index", str(query_index), "--no-rerank", "--json", "--config", str(open_gate)])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert code == 0 and len(lines) == 2 and lines[0]["followup"] is None
    followup = lines[1]["followup"]
    assert followup["rewritten"] and followup["query"] == "What is the battery of the Kestrel K7?"
    assert len(llm.completions) == 1 and "User: What is the Kestrel K7?" in llm.completions[0][-1]["content"]
    assert [m["role"] for m in llm.seen[-1]] == ["system", "user", "assistant", "user"]

    llm.completions.clear()
    monkeypatch.setattr("sys.stdin", io.StringIO("What is the Kestrel K7?\nand what battery does it have?\n"))
    code = main(["chat", "--index", str(query_index), "--no-rerank", "--json", "--no-memory"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert code == 0 and [x["followup"] for x in lines] == [None, None] and not llm.completions
