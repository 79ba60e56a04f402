"""Top-k token log-probabilities from llama.cpp, recorded while it generates.

llama-cpp-python returns log-probabilities only for a model loaded with ``logits_all`` (n_ctx x vocab
floats, ~2.5 GB here). :class:`LogprobRecorder` instead rides along as a logits processor: at every
sampling step it keeps the top-k of the model's own distribution (before penalties and the JSON
grammar act on it) and returns the logits unchanged, so the output is the same as without it. The
cost is one log-softmax per token; a second pass over the output used to double a judge call."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np


class Vocab(Protocol):
    """The part of ``llama_cpp.Llama`` this module uses."""

    def detokenize(self, tokens: list[int]) -> bytes: ...

    def tokenize(self, text: bytes, add_bos: bool = ..., special: bool = ...) -> list[int]: ...

Step = tuple[str, dict[str, float]]  # (chosen token's text, {token text: log-probability})


class LogprobRecorder:
    """Pass as ``logits_processor=LogitsProcessorList([recorder])``; then :meth:`steps`. Step ``j``'s
    chosen token is read from step ``j + 1``'s input (the token llama.cpp fed back)."""

    def __init__(self, k: int) -> None:
        self.k = k
        self._top: list[tuple[np.ndarray, np.ndarray]] = []  # (token ids, log-probabilities) per step
        self._chosen: list[tuple[int, float]] = []  # (token id, log-probability) of every step but the newest
        self._last: np.ndarray | None = None  # the newest step's full log-probabilities

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if self._last is not None:
            token = int(input_ids[-1])
            self._chosen.append((token, float(self._last[token])))
        logits = np.asarray(scores, dtype=np.float64)
        logp = logits - logits.max()
        logp -= np.log(np.exp(logp).sum())
        k = min(self.k, logp.size)
        top = np.argpartition(-logp, k - 1)[:k]
        top = top[np.argsort(-logp[top], kind="stable")]
        self._top.append((top, logp[top]))
        self._last = logp
        return scores

    def steps(self, llama: Vocab, text: str, n_tokens: int) -> list[Step] | None:
        """One step per generated token of ``text`` (``n_tokens`` of them, the end-of-generation token
        excluded), or None when the processor was not called for each of them."""
        if len(self._top) < n_tokens or self._last is None:
            return None
        out: list[Step] = []
        for j in range(n_tokens):
            ids, lps = self._top[j]
            step = {piece(llama, int(t)): float(v) for t, v in zip(ids, lps, strict=True)}
            if j < len(self._chosen):
                token, lp = self._chosen[j]
                text_j = piece(llama, token)
            else:  # stopped by max_tokens: the last token was sampled but never fed back; its text is what is left
                text_j = text[len("".join(p for p, _ in out)) :]
                if text_j in step:
                    lp = step[text_j]
                else:
                    ids_rest = llama.tokenize(text_j.encode("utf-8"), add_bos=False, special=False)
                    if len(ids_rest) != 1:
                        break
                    lp = float(self._last[ids_rest[0]])
            step.setdefault(text_j, lp)
            out.append((text_j, step))
        return out


def piece(llama: Vocab, token: int) -> str:
    return llama.detokenize([token]).decode("utf-8", errors="replace")
