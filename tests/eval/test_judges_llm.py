"""The faithfulness judge on the real local LLM (short inputs): constrained decoding gives a parsed
verdict on the first attempt, and a blatant contradiction is caught while the supported sentence is not
(also in the verdict-token probabilities)."""

from __future__ import annotations

from typing import Any

import pytest

from eval.judges.base import CallOptions
from eval.judges.faithfulness import FaithfulnessJudge

CONTEXT = ["The Leeds office is open from 07:00 to 20:00 on weekdays. Lunch is served between 11:45 and 13:30."]


@pytest.mark.llm
@pytest.mark.slow
def test_faithfulness_sentences_on_the_local_llm(local_llm: Any) -> None:
    judge = FaithfulnessJudge(
        local_llm, granularity="sentences", top_logprobs=20, options=CallOptions(max_tokens=120, retries=0)
    )
    r = judge.judge("The Leeds office opens at 07:00 on weekdays. Lunch is served from 15:00 to 17:00.", CONTEXT)
    assert r.status == "ok", r.reason
    assert r.usage.calls == 1 and r.usage.completion_tokens > 0
    verdicts = [c["verdict"] for c in r.details["claims"]]
    assert verdicts == ["supported", "unsupported"], r.details
    assert r.score == 0.5
    # the verdicts' probabilities are read from the same generation and agree with the verdicts
    p_supported, p_contradicted = (c["p_unsupported"] for c in r.details["claims"])
    assert p_supported < 0.5 < p_contradicted
    assert r.details["hallucination_prob"] == pytest.approx(p_contradicted, abs=1e-6)
