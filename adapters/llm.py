"""The LLM endpoint through the real ``openai`` client (OpenAI, Ollama, llama.cpp, vLLM, ...).

Every request streams and asks for at most ``max_tokens``: a local server given no limit can generate
for minutes, and keeps generating after a client gives up on a request it is not reading. Deadlines are
about progress, not total time: the first words must come within ``first_token_timeout`` and no chunk
may be followed by more than ``idle_timeout`` of silence. An answer that stops progressing, or runs past
the token limit on a server that ignores it, is closed (closing the HTTP stream is what makes
llama.cpp, Ollama and vLLM stop generating) and kept as far as it got, marked ``cut``.

Retries are Parley's own, not the client's, and only for what a retry can fix: a refused connection
(the server never saw the request), 429 (after its Retry-After) and 5xx. A request that timed out or was
cut is never sent again: it would queue behind the generation the server may still be running.

The client is the async one, on one event loop thread shared by all Responders: deadlines on each
chunk are then exact (``asyncio.wait_for``) and cancelling one closes its connection at once.
"""
from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx2

if TYPE_CHECKING:
    from adapters.config import Settings
import openai
from openai.types.chat import ChatCompletionChunk

from actors.ports import ChatMessages, Completion, LLMError

log = logging.getLogger("parley.llm")

PLACEHOLDER_KEY = "not-set"  # local servers need no key, but the client insists on one
CHARS_PER_TOKEN = 4  # OpenAI's rule of thumb; only used to bound servers that ignore max_tokens
MAX_RETRY_AFTER = 60.0  # a longer Retry-After is not waited for: the user is told to come back later


@dataclass(frozen=True)
class LLMLimits:
    max_tokens: int = 1000
    first_token_timeout: float = 60.0
    idle_timeout: float = 30.0
    retries: int = 3
    backoff: float = 0.5  # first retry delay; doubles each time, with jitter


class _Retry(Exception):
    def __init__(self, error: LLMError, delay: float | None = None):
        super().__init__(str(error))
        self.error = error
        self.delay = delay


class _Watchdog:
    """Cancels the running task when no progress comes in time. One timer for the whole answer: each
    chunk only moves a deadline (a timer or a task per chunk would cost more than the chunk)."""

    def __init__(self, first_timeout: float):
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self._deadline = self._loop.time() + first_timeout
        self.expired = False
        self._timer = self._loop.call_at(self._deadline, self._check)

    def progress(self, idle_timeout: float) -> None:
        self._deadline = self._loop.time() + idle_timeout
        if self._deadline < self._timer.when():  # the idle deadline is shorter than the first one
            self._timer.cancel()
            self._timer = self._loop.call_at(self._deadline, self._check)

    def _check(self) -> None:
        if self._loop.time() < self._deadline:  # progress came meanwhile: look again at the new deadline
            self._timer = self._loop.call_at(self._deadline, self._check)
            return
        self.expired = True
        if self._task is not None:
            self._task.cancel()  # the stream's own cleanup closes the connection

    def stop(self) -> None:
        self._timer.cancel()


class OpenAIChat:
    def __init__(self, base_url: str | None, api_key: str | None, limits: LLMLimits = LLMLimits(),
                 keep_alive: bool = True):
        self.limits = limits
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="llm", daemon=True)
        self._thread.start()
        # The per-chunk deadlines are ours; the client only bounds connecting and sending.
        timeout = httpx2.Timeout(connect=min(10.0, limits.first_token_timeout), read=None, write=30.0, pool=None)

        async def make_client() -> openai.AsyncOpenAI:
            # Without keep-alive, each request has a connection of its own: a server that closes idle or
            # used-up connections (llama.cpp's does) can never close one under a request just sent on it,
            # which fails as "disconnected" and, the request perhaps seen, must not be sent again.
            pooled = {} if keep_alive else {"http_client": openai.DefaultAsyncHttpxClient(
                timeout=timeout, limits=httpx2.Limits(max_keepalive_connections=0))}
            return openai.AsyncOpenAI(base_url=base_url or None, api_key=api_key or PLACEHOLDER_KEY,
                                      timeout=timeout, max_retries=0, **pooled)

        self.client = asyncio.run_coroutine_threadsafe(make_client(), self._loop).result()
        self._token_field = "max_tokens"  # what most servers know; newer OpenAI models want max_completion_tokens

    def complete(self, messages: ChatMessages, model: str,
                 on_text: Callable[[str], None] | None = None) -> Completion:
        """Blocking, for actor threads (never call it on an event loop)."""
        future = asyncio.run_coroutine_threadsafe(self._complete(messages, model, on_text), self._loop)
        return future.result()

    def close(self) -> None:
        if self._loop.is_closed():
            return

        async def close() -> None:
            await self.client.close()
            await asyncio.sleep(0.05)  # the connections' own clean-up tasks run before the loop stops
            await self._loop.shutdown_asyncgens()

        try:
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(5)
        except Exception:  # closing at exit: nothing to save
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _complete(self, messages: ChatMessages, model: str,
                        on_text: Callable[[str], None] | None) -> Completion:
        attempt = 0
        while True:
            try:
                return await self._stream(messages, model, on_text)
            except _Retry as r:
                if attempt >= self.limits.retries:
                    raise r.error from None
                delay = r.delay if r.delay is not None else self.limits.backoff * 2 ** attempt * random.uniform(0.8, 1.2)
                attempt += 1
                log.warning("LLM request failed (%s); retry %d of %d in %.1fs", r.error, attempt,
                            self.limits.retries, delay)
                await asyncio.sleep(delay)

    async def _stream(self, messages: ChatMessages, model: str,
                      on_text: Callable[[str], None] | None) -> Completion:
        limits = self.limits
        budget_chars = limits.max_tokens * CHARS_PER_TOKEN
        parts: list[str] = []
        size = chunks = 0
        cut = ""
        watchdog = _Watchdog(limits.first_token_timeout)
        stream = None
        try:
            stream = await self._create(messages, model)
            async for chunk in stream:
                if chunk.choices:
                    choice = chunk.choices[0]
                    delta = choice.delta.content if choice.delta else None
                    if delta:
                        watchdog.progress(limits.idle_timeout)
                        chunks += 1
                        parts.append(delta)
                        size += len(delta)
                        if chunks > limits.max_tokens or size > budget_chars:
                            # The server ignores max_tokens: stop it here, at that many tokens' worth.
                            text = "".join(parts)[:budget_chars]
                            parts, cut = [text], "length"
                            if on_text is not None:
                                on_text(text)
                            break
                        if on_text is not None:
                            on_text("".join(parts))
                    if choice.finish_reason == "length":
                        cut = "length"
                elif parts:
                    watchdog.progress(limits.idle_timeout)
        except asyncio.CancelledError:
            if not watchdog.expired:
                raise
            asyncio.current_task().uncancel()  # type: ignore[union-attr]  # ours, handled here
            if not parts:
                raise LLMError("timeout", f"no answer within {limits.first_token_timeout:g}s") from None
            cut = "stalled"
            log.warning("LLM stopped progressing (%gs without a chunk); keeping the partial answer",
                        limits.idle_timeout)
        except openai.APIError as e:
            if not parts:
                raise _classify(e) from e
            log.warning("LLM stream broke mid-answer (%s); keeping the partial answer", e)
            cut = "stalled"  # the connection broke mid-answer: keep what came, never ask again
        except ValueError as e:  # a chunk that is not JSON (a proxy's error page, a server bug)
            if not parts:
                raise LLMError("malformed", f"the LLM server sent a stream that is not JSON: {e}") from None
            log.warning("LLM stream turned malformed mid-answer (%s); keeping the partial answer", e)
            cut = "stalled"
        finally:
            watchdog.stop()
            if stream is not None:
                await stream.close()  # closing the HTTP stream stops the server's generation
        return Completion("".join(parts), cut)

    def _extra(self, model: str) -> dict:
        """More of the request for ``model``, as a subclass's server wants it (the local runtime: its LoRA adapter)."""
        return {}

    async def _create(self, messages: ChatMessages, model: str) -> openai.AsyncStream[ChatCompletionChunk]:
        for _ in range(2):
            body = {"model": model, "messages": messages, "stream": True, self._token_field: self.limits.max_tokens,
                    **self._extra(model)}
            try:
                # The client's own request path without ``create()``'s parameter transform, which walks
                # every message against the typed-dict unions and cost half of a short answer's time
                # (our messages are plain role/content dicts already).
                return await self.client.post("/chat/completions", body=body, cast_to=ChatCompletionChunk,
                                              stream=True, stream_cls=openai.AsyncStream[ChatCompletionChunk])
            except openai.BadRequestError as e:
                # Newer OpenAI models refuse max_tokens and name its successor; nothing was generated.
                if self._token_field == "max_tokens" and "max_completion_tokens" in str(e.message):
                    self._token_field = "max_completion_tokens"
                    continue
                raise _classify(e) from e
            except openai.APIError as e:
                raise _classify(e) from e
        raise LLMError("rejected", "the server refused both max_tokens and max_completion_tokens")


def _classify(e: openai.APIError) -> Exception:
    """The error to raise for a failed request: a ``_Retry`` when resending it can help."""
    if isinstance(e, openai.APITimeoutError):
        return LLMError("timeout", str(e))
    if isinstance(e, openai.APIConnectionError):
        error = LLMError("unreachable", f"{e}: {e.__cause__ or ''}".strip(": "))
        # Only a refused connection proves the server never saw the request.
        refused = isinstance(e.__cause__, httpx2.ConnectError)
        return _Retry(error) if refused else error
    if isinstance(e, openai.RateLimitError):
        delay = _retry_after(e.response)
        error = LLMError("rate_limited", "HTTP 429")
        return error if delay is not None and delay > MAX_RETRY_AFTER else _Retry(error, delay)
    if isinstance(e, (openai.AuthenticationError, openai.PermissionDeniedError)):
        return LLMError("unauthorized", f"HTTP {e.status_code}: check OPENAI_API_KEY")
    if isinstance(e, openai.NotFoundError):
        return LLMError("model_not_found", "HTTP 404: check PARLEY_CHAT_MODEL and OPENAI_BASE_URL")
    if isinstance(e, openai.APIStatusError):
        if e.status_code >= 500:
            return _Retry(LLMError("unreachable", f"HTTP {e.status_code}: {e.message}"))
        if e.status_code == 408:
            return LLMError("timeout", "HTTP 408")
        return LLMError("rejected", f"HTTP {e.status_code}: {e.message}")
    return LLMError("rejected", str(e))


def _retry_after(response: httpx2.Response) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    headers = response.headers
    try:
        if "retry-after-ms" in headers:
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError, OverflowError):
        return None


def chat_for(settings: "Settings") -> OpenAIChat:
    """The chat client as the settings describe it (the bot and ``evaluate`` use the same): the local model in
    this process, or an OpenAI-compatible endpoint."""
    limits = LLMLimits(max_tokens=settings.max_answer_tokens, first_token_timeout=settings.llm_timeout,
                       idle_timeout=settings.llm_idle_timeout, retries=settings.llm_retries)
    if settings.llm_backend == "local":
        from adapters.config import ConfigError
        from adapters.local_llm import LocalChat, LocalModelError, plan

        try:
            return LocalChat(plan(settings), limits, settings.data_dir / "models")
        except LocalModelError as e:
            raise ConfigError(str(e)) from None
    return OpenAIChat(settings.openai_base_url, settings.openai_api_key, limits)
