"""The LLM endpoint through the real ``openai`` client (OpenAI, Ollama, llama.cpp, vLLM, ...).

Retries with exponential backoff on 408/409/429/5xx and connection errors are the client's own
(``max_retries``; it honours ``Retry-After``); what is left after them becomes an ``LLMError`` with a
short reason the Responder records in ``ResponseFailed``.
"""
from __future__ import annotations

from collections.abc import Callable

import openai

from actors.ports import ChatMessages, LLMError

PLACEHOLDER_KEY = "not-set"  # local servers need no key, but the client insists on one


class OpenAIChat:
    def __init__(self, base_url: str | None, api_key: str | None, timeout: float, max_retries: int):
        self.client = openai.OpenAI(base_url=base_url or None, api_key=api_key or PLACEHOLDER_KEY,
                                    timeout=timeout, max_retries=max_retries)

    def complete(self, messages: ChatMessages, model: str, on_text: Callable[[str], None] | None = None) -> str:
        try:
            if on_text is None:
                response = self.client.chat.completions.create(model=model, messages=messages)  # type: ignore[arg-type]
                return (response.choices[0].message.content or "") if response.choices else ""
            parts: list[str] = []
            stream = self.client.chat.completions.create(model=model, messages=messages, stream=True)  # type: ignore[arg-type]
            with stream:
                for chunk in stream:
                    delta = chunk.choices[0].delta.content if chunk.choices else None
                    if delta:
                        parts.append(delta)
                        on_text("".join(parts))
            return "".join(parts)
        except openai.APITimeoutError as e:
            raise LLMError("timeout", str(e)) from e
        except openai.APIConnectionError as e:
            raise LLMError("unreachable", str(e)) from e
        except openai.RateLimitError as e:
            raise LLMError("rate_limited", str(e)) from e
        except (openai.AuthenticationError, openai.PermissionDeniedError) as e:
            raise LLMError("unauthorized", f"HTTP {e.status_code}: check OPENAI_API_KEY") from e
        except openai.NotFoundError as e:
            raise LLMError("model_not_found", "HTTP 404: check PARLEY_CHAT_MODEL and OPENAI_BASE_URL") from e
        except openai.APIStatusError as e:
            reason = "unreachable" if e.status_code >= 500 else "rejected"
            raise LLMError(reason, f"HTTP {e.status_code}: {e.message}") from e
        except openai.OpenAIError as e:
            raise LLMError("rejected", str(e)) from e
