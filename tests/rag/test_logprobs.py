"""LogprobRecorder on a scripted decode: what it records is what the sampler saw, step by step."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from rag.logprobs import LogprobRecorder

VOCAB = ["<eos>", "{", '"', "un", "supported", "}", "x"]


class FakeLlama:
    def detokenize(self, tokens: list[int]) -> bytes:
        return "".join(VOCAB[t] for t in tokens).encode()

    def tokenize(self, text: bytes, add_bos: bool = False, special: bool = False) -> list[int]:
        return [VOCAB.index(text.decode())] if text.decode() in VOCAB else [6, 6]


def _decode(recorder: LogprobRecorder, chosen: list[int], logits: Sequence[Sequence[float]], prompt: list[int]) -> None:
    """What llama-cpp's generate loop does: call the processor on the current input, feed back the choice."""
    ids = list(prompt)
    for token, row in zip(chosen, logits, strict=True):
        scores = np.array(row, dtype=np.float32)
        assert recorder(np.array(ids), scores) is scores  # logits pass through unchanged
        ids.append(token)


def test_steps_pair_each_token_with_the_distribution_it_was_sampled_from() -> None:
    rows = [[0, 5, 0, 0, 0, 0, 0], [0, 0, 0, 3, 2, 0, 0], [0, 0, 0, 0, 0, 4, 0], [6, 0, 0, 0, 0, 0, 0]]
    rec = LogprobRecorder(2)
    _decode(rec, [1, 3, 5, 0], rows, prompt=[6, 6])  # "{", "un", "}", then end of generation
    steps = rec.steps(FakeLlama(), "{un}", 3)
    assert steps is not None and [t for t, _ in steps] == ["{", "un", "}"]
    second = steps[1][1]
    assert list(second) == ["un", "supported"]
    z = math.log(math.exp(3) + math.exp(2) + 5)
    assert math.isclose(second["un"], 3 - z, rel_tol=1e-9) and math.isclose(second["supported"], 2 - z, rel_tol=1e-9)


def test_a_chosen_token_outside_the_top_k_is_added_and_max_tokens_stop_is_handled() -> None:
    rows = [[0, 0, 0, 3, 2, 0, 0], [0, 0, 0, 0, 0, 4, 1]]
    rec = LogprobRecorder(1)
    _decode(rec, [4, 6], rows, prompt=[1])  # "supported" although "un" was likelier; then stopped by length
    steps = rec.steps(FakeLlama(), "supportedx", 2)
    assert steps is not None and [t for t, _ in steps] == ["supported", "x"]
    assert set(steps[0][1]) == {"un", "supported"} and steps[0][1]["un"] > steps[0][1]["supported"]
    assert set(steps[1][1]) == {"}", "x"}
    assert LogprobRecorder(3).steps(FakeLlama(), "x", 1) is None  # never called: no log-probabilities


def test_log_softmax_is_a_distribution_per_row() -> None:
    import numpy as np

    from rag.logprobs import log_softmax

    logits = np.array([[1000.0, 1001.0, 999.0], [0.0, 0.0, 0.0]])
    logp = log_softmax(logits)
    assert np.allclose(np.exp(logp).sum(axis=1), 1.0)
    assert np.allclose(logp[1], np.log(1 / 3)) and logp[0].argmax() == 1
