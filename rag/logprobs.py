"""Token log-probabilities from llama.cpp: top-k recorded while it generates, or forced over given text.

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
        logp = log_softmax(np.asarray(scores, dtype=np.float64))
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


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Log-probabilities over the last axis (float64 in, float64 out)."""
    top = logits.max(axis=-1, keepdims=True)
    return logits - (top + np.log(np.exp(logits - top).sum(axis=-1, keepdims=True)))


def forced_logprobs(llama: Any, prompt: list[int], target: list[int]) -> list[float]:
    """Log-probability of each token of ``target`` after ``prompt`` and the target tokens before it, on a
    ``llama_cpp.Llama`` loaded without ``logits_all``: the prompt prefix already in the KV cache is reused,
    the rest of the prompt is evaluated without logits, and the target is fed in batches that ask llama.cpp
    for logits at every position. Raises ``RuntimeError`` when llama.cpp cannot decode (the cache is then
    marked empty)."""
    cached = llama.input_ids[: llama.n_tokens].tolist()
    common = 0
    for a, b in zip(cached, prompt[:-1], strict=False):
        if a != b:
            break
        common += 1
    llama.n_tokens = common
    llama.eval(prompt[common:-1])
    # position i of `feed` predicts target[i]: the last prompt token predicts the first target token
    feed = [prompt[-1], *target[:-1]]
    n_vocab = llama.n_vocab()
    out: list[float] = []
    try:
        for start in range(0, len(feed), llama.n_batch):
            chunk = feed[start : start + llama.n_batch]
            n_past = llama.n_tokens
            llama._ctx.kv_cache_seq_rm(-1, n_past, -1)
            llama._batch.set_batch(batch=chunk, n_past=n_past, logits_all=True)
            llama._ctx.decode(llama._batch)
            logits = np.ctypeslib.as_array(llama._ctx.get_logits(), shape=(len(chunk), n_vocab))
            logp = log_softmax(logits.astype(np.float64))
            out.extend(logp[np.arange(len(chunk)), target[start : start + len(chunk)]].tolist())
            llama.input_ids[n_past : n_past + len(chunk)] = chunk
            llama.n_tokens += len(chunk)
    except RuntimeError:
        llama.n_tokens = 0
        raise
    return out
