"""LLM backends behind one small protocol.

* ``llama_cpp`` (default): llama-cpp-python running the embedded Qwen2.5-Coder-1.5B-Instruct Q4_K_M
  GGUF (assembled from PyPI parts by :func:`rag.models.ensure_llm_model`) or any GGUF at
  ``llm.model_path``. JSON-schema constrained decoding through ``response_format``; consecutive calls
  that share a prompt prefix (system prompt, few-shot examples) reuse llama.cpp's KV cache.
* ``openai``: any OpenAI-compatible HTTP endpoint (OpenAI, vLLM, Ollama, llama.cpp server) at
  ``llm.base_url`` with ``llm.model``; the key comes from the environment variable ``llm.api_key_env``.
  Timeouts and retries with exponential backoff are the ``openai`` client's own.

Another backend registers a factory (``LLMConfig -> LLM``) under its own name with
:func:`register_llm_backend`, from its own package, and is chosen with ``llm.backend: NAME``.

Messages are ``{"role": "system" | "user" | "assistant", "content": str}`` dicts.
"""

from __future__ import annotations

import atexit
import json
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from rag.config import LLMConfig
from rag.errors import ConfigError, GenerationError, ModelError
from rag.logprobs import LogprobRecorder, forced_logprobs, piece
from rag.models import ensure_llm_model

if TYPE_CHECKING:
    from llama_cpp import Llama

Message = dict[str, str]


@dataclass(frozen=True)
class Completion:
    """One generation. ``logprobs`` holds, per generated token, ``{token_text: logprob}`` of the top
    alternatives (the chosen token included) when ``top_logprobs > 0`` was asked for; ``tokens`` holds
    the chosen token's text at each of those positions (so ``"".join(tokens) == text``)."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None = None
    logprobs: list[dict[str, float]] | None = None
    tokens: list[str] | None = None


@dataclass(frozen=True)
class TokenScores:
    """A given text scored under a prompt: its tokens (as text) and each one's log-probability given the
    prompt and the tokens before it; ``prompt_tokens`` counts the prompt."""

    tokens: list[str]
    logprobs: list[float]
    prompt_tokens: int


@runtime_checkable
class ContinuationScorer(Protocol):
    """A backend that can score text it did not generate (prompt log-probabilities)."""

    name: str

    def score_continuation(self, messages: Sequence[Message], continuation: str) -> TokenScores: ...


@runtime_checkable
class LLM(Protocol):
    name: str
    context_window: int

    def complete(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int = 512,
        temperature: float = 0.0,
        seed: int | None = 0,
        json_schema: dict[str, Any] | None = None,
        top_logprobs: int = 0,
        stop: Sequence[str] | None = None,
    ) -> Completion: ...

    def stream(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int = 512,
        temperature: float = 0.0,
        seed: int | None = 0,
        stop: Sequence[str] | None = None,
    ) -> Iterator[str]: ...

    def count_tokens(self, text: str) -> int: ...


class LlamaCppLLM:
    """The embedded local model. Loads lazily on first use; one instance is safe to share across threads."""

    def __init__(self, config: LLMConfig) -> None:
        self.config = config
        model = os.path.basename(config.model_path) if config.model_path else "qwen2.5-coder-1.5b-instruct-q4_k_m"
        self.name = f"llama_cpp:{model}"
        self.context_window = config.n_ctx
        self._llama: Llama | None = None
        self._lock = threading.RLock()

    @property
    def llama(self) -> Llama:
        with self._lock:
            if self._llama is None:
                self._llama = self._load()
            return self._llama

    def _load(self) -> Llama:
        try:
            from llama_cpp import Llama  # heavy: loads when the model does
        except ImportError as e:
            raise ModelError("llama-cpp-python is not installed (the README's install command builds it)") from e
        path = self.config.model_path or str(ensure_llm_model())
        if not os.path.isfile(path):
            raise ModelError(f"llm.model_path {path}: no such GGUF file")
        try:
            llama = Llama(
                model_path=str(path),
                n_ctx=self.config.n_ctx,
                n_threads=self.config.n_threads or os.cpu_count() or 1,
                seed=self.config.seed,
                verbose=False,
            )
        except (ValueError, RuntimeError) as e:
            raise ModelError(f"{path}: could not load the GGUF model: {e}") from e
        # Free the model before interpreter teardown; llama-cpp's own finaliser fails once modules are gone.
        atexit.register(llama.close)
        return llama

    def count_tokens(self, text: str) -> int:
        return len(self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def complete(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int = 512,
        temperature: float = 0.0,
        seed: int | None = 0,
        json_schema: dict[str, Any] | None = None,
        top_logprobs: int = 0,
        stop: Sequence[str] | None = None,
    ) -> Completion:
        kwargs: dict[str, Any] = {}
        if json_schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": json_schema}
        recorder = None
        if top_logprobs > 0:
            from llama_cpp import LogitsProcessorList  # heavy: loads with the model

            recorder = LogprobRecorder(top_logprobs)
            kwargs["logits_processor"] = LogitsProcessorList([recorder])
        with self._lock:
            try:
                out = self.llama.create_chat_completion(
                    messages=list(messages),  # type: ignore[arg-type]
                    max_tokens=max_tokens,
                    temperature=temperature,
                    seed=seed,
                    stop=list(stop) if stop else None,
                    **kwargs,
                )
            except ValueError as e:  # e.g. "Requested tokens (...) exceed context window of ..."
                raise GenerationError(f"{self.name}: {e}") from e
            choice = out["choices"][0]  # type: ignore[index]
            text = choice["message"]["content"] or ""
            usage = out.get("usage") or {}  # type: ignore[union-attr]
            n_out = int(usage.get("completion_tokens", 0))
            scored = recorder.steps(self.llama, text, n_out) if recorder is not None else None
        return Completion(
            text=text,
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=n_out,
            finish_reason=choice.get("finish_reason"),
            logprobs=[step for _, step in scored] if scored is not None else None,
            tokens=[token for token, _ in scored] if scored is not None else None,
        )

    def render_prompt(self, messages: Sequence[Message]) -> str:
        """The prompt text the model sees for ``messages``: the GGUF's own chat template with the
        generation prompt added (what ``create_chat_completion`` renders)."""
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter  # heavy: loads with the model

        llama = self.llama
        template = llama.metadata.get("tokenizer.chat_template")
        if not template:
            raise ModelError(f"{self.name}: the GGUF carries no chat template")
        eos = llama.detokenize([llama.token_eos()]).decode("utf-8", errors="ignore")
        bos = llama.detokenize([llama.token_bos()]).decode("utf-8", errors="ignore")
        formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
        return formatter(messages=list(messages)).prompt  # type: ignore[arg-type]

    def score_continuation(self, messages: Sequence[Message], continuation: str) -> TokenScores:
        """Log-probability of each token of ``continuation`` as the assistant's reply to ``messages``, in
        one forward pass (prefill speed, no decoding; :func:`rag.logprobs.forced_logprobs`)."""
        with self._lock:
            llama = self.llama
            prompt = llama.tokenize(self.render_prompt(messages).encode("utf-8"), add_bos=False, special=True)
            target = llama.tokenize(continuation.encode("utf-8"), add_bos=False, special=False)
            if len(prompt) + len(target) > llama.n_ctx():
                raise GenerationError(
                    f"{self.name}: prompt ({len(prompt)} tokens) and text ({len(target)} tokens) exceed the "
                    f"context window of {llama.n_ctx()} (raise llm.n_ctx)"
                )
            if not target:
                return TokenScores([], [], len(prompt))
            try:
                logprobs = forced_logprobs(llama, prompt, target)
            except RuntimeError as e:  # llama_decode failed
                raise GenerationError(f"{self.name}: scoring failed: {e}") from e
            pieces = [piece(llama, t) for t in target]
        return TokenScores(pieces, logprobs, len(prompt))

    def stream(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int = 512,
        temperature: float = 0.0,
        seed: int | None = 0,
        stop: Sequence[str] | None = None,
    ) -> Iterator[str]:
        with self._lock:
            try:
                chunks = self.llama.create_chat_completion(
                    messages=list(messages),  # type: ignore[arg-type]
                    max_tokens=max_tokens,
                    temperature=temperature,
                    seed=seed,
                    stop=list(stop) if stop else None,
                    stream=True,
                )
                for chunk in chunks:
                    delta: dict[str, Any] = chunk["choices"][0]["delta"]  # type: ignore[index,assignment]
                    content = delta.get("content")
                    if isinstance(content, str) and content:
                        yield content
            except ValueError as e:
                raise GenerationError(f"{self.name}: {e}") from e


class OpenAICompatLLM:
    """Any OpenAI-compatible chat-completions endpoint."""

    def __init__(self, config: LLMConfig) -> None:
        if not config.model:
            raise ConfigError("llm.model is required for the openai backend (the model name the server knows)")
        self.config = config
        self.name = f"openai:{config.model}"
        self.context_window = config.n_ctx
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            import openai  # loads on first use (httpx, pydantic): rag works without a server

            api_key = os.environ.get(self.config.api_key_env) or "not-needed"
            self._client = openai.OpenAI(
                base_url=self.config.base_url,
                api_key=api_key,
                timeout=self.config.timeout_s,
                max_retries=self.config.max_retries,
            )
        return self._client

    def count_tokens(self, text: str) -> int:
        """Remote tokenizers are unknown (and tiktoken cannot fetch encodings offline): a conservative
        estimate of one token per 3.5 characters, which over-counts English BPE slightly."""
        return max(1, int(len(text) / 3.5) + 1) if text else 0

    def _call(self, **kwargs: Any) -> Any:
        import openai  # loads on first use (httpx, pydantic): rag works without a server

        try:
            return self.client.chat.completions.create(model=self.config.model, **kwargs)
        except openai.APITimeoutError as e:
            raise GenerationError(
                f"{self.name} at {self.config.base_url}: timed out after {self.config.timeout_s}s"
            ) from e
        except openai.APIConnectionError as e:
            raise GenerationError(f"{self.name}: cannot connect to {self.config.base_url}: {e}") from e
        except openai.APIStatusError as e:
            raise GenerationError(f"{self.name}: HTTP {e.status_code}: {e.message}") from e

    def complete(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int = 512,
        temperature: float = 0.0,
        seed: int | None = 0,
        json_schema: dict[str, Any] | None = None,
        top_logprobs: int = 0,
        stop: Sequence[str] | None = None,
    ) -> Completion:
        kwargs: dict[str, Any] = {
            "messages": list(messages),
            "max_tokens": max_tokens,
            "temperature": temperature,
        }
        if seed is not None:
            kwargs["seed"] = seed
        if stop:
            kwargs["stop"] = list(stop)
        if top_logprobs > 0:
            kwargs["logprobs"] = True
            kwargs["top_logprobs"] = top_logprobs
        if json_schema is not None:
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "response", "schema": json_schema},
            }
        try:
            out = self._call(**kwargs)
        except GenerationError as e:
            if json_schema is None or "response_format" not in str(e):
                raise
            # Servers without json_schema support usually accept plain JSON mode.
            kwargs["response_format"] = {"type": "json_object"}
            kwargs["messages"] = [*messages[:-1], _with_schema_hint(messages[-1], json_schema)]
            out = self._call(**kwargs)
        choice = out.choices[0]
        logprobs = tokens = None
        if top_logprobs > 0 and choice.logprobs and choice.logprobs.content:
            logprobs = [
                {alt.token: alt.logprob for alt in (tok.top_logprobs or [])} | {tok.token: tok.logprob}
                for tok in choice.logprobs.content
            ]
            tokens = [tok.token for tok in choice.logprobs.content]
        usage = out.usage
        return Completion(
            text=choice.message.content or "",
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            finish_reason=choice.finish_reason,
            logprobs=logprobs,
            tokens=tokens,
        )

    def stream(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int = 512,
        temperature: float = 0.0,
        seed: int | None = 0,
        stop: Sequence[str] | None = None,
    ) -> Iterator[str]:
        kwargs: dict[str, Any] = {"messages": list(messages), "max_tokens": max_tokens, "temperature": temperature}
        if seed is not None:
            kwargs["seed"] = seed
        if stop:
            kwargs["stop"] = list(stop)
        for chunk in self._call(stream=True, **kwargs):
            if chunk.choices and chunk.choices[0].delta.content:
                yield chunk.choices[0].delta.content


def _with_schema_hint(message: Message, schema: dict[str, Any]) -> Message:
    hint = "\n\nRespond with one JSON object that matches this JSON schema:\n" + json.dumps(schema)
    return {**message, "content": message["content"] + hint}


LLMFactory = Callable[[LLMConfig], LLM]
LLM_BACKENDS: dict[str, LLMFactory] = {
    "llama_cpp": LlamaCppLLM,
    "openai": OpenAICompatLLM,
}
_shared: dict[LLMConfig, LLM] = {}
_shared_lock = threading.Lock()


def register_llm_backend(name: str, factory: LLMFactory, *, replace: bool = False) -> None:
    """Make ``factory`` the backend ``llm.backend: NAME`` chooses; a taken name needs ``replace=True``."""
    if not name or not isinstance(name, str):
        raise ConfigError(f"an LLM backend name must be a non-empty string, got {name!r}")
    if name in LLM_BACKENDS and not replace and LLM_BACKENDS[name] is not factory:
        raise ConfigError(f"LLM backend {name!r} is already registered; pass replace=True to replace it")
    LLM_BACKENDS[name] = factory


def create_llm(config: LLMConfig) -> LLM:
    """The backend named by ``config.backend``. Instances are shared per config within a process, so the
    2 GB local model is loaded once however many stages use it."""
    factory = LLM_BACKENDS.get(config.backend)
    if factory is None:
        raise ConfigError(
            f"llm.backend: {config.backend!r} is not a registered backend; registered: "
            f"{', '.join(sorted(LLM_BACKENDS))} (a third-party backend registers itself with "
            "rag.llm.register_llm_backend)"
        )
    with _shared_lock:
        if config not in _shared:
            _shared[config] = factory(config)
        return _shared[config]
