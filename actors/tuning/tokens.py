"""Counting the tokens of training examples, as a fine-tuning service will (pure: no I/O, no network).

With ``bpe-openai`` installed (a dependency: its wheel carries OpenAI's encodings, so nothing is fetched at run
time) the counts are exact for OpenAI's models: o200k_base, or the model's own encoding when the package knows
it. Without it they are an estimate, said as such: one token for every 4 characters. Messages cost what OpenAI's
cookbook counts: 3 tokens each, 1 more for a name, 3 to prime the answer.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from actors.learning.examples import Example

CHARS_PER_TOKEN = 4
PER_MESSAGE, PER_NAME, PER_REPLY = 3, 1, 3
DEFAULT_ENCODING = "o200k_base"
# Tokens one training example may have, by base model (longest prefix wins): what the services document.
EXAMPLE_LIMITS = {"gpt-4o-mini": 65_536, "gpt-4o": 65_536, "gpt-4.1": 65_536, "gpt-3.5-turbo": 16_385,
                  "davinci-002": 16_384, "babbage-002": 16_384}
UNKNOWN_MODEL_LIMIT = 4_096  # the OpenAI cookbook's check, for a model whose limit Parley does not know
EPOCHS = 3  # what a job runs by default on a small dataset, for the estimate of training tokens


@dataclass(frozen=True)
class TokenCounter:
    text: Callable[[str], int]
    how: str  # "o200k_base", or "estimated: 4 characters a token"

    @property
    def exact(self) -> bool:
        return not self.how.startswith("estimated")

    def messages(self, messages: Iterable[Mapping[str, object]]) -> int:
        total = PER_REPLY
        for m in messages:
            total += PER_MESSAGE + self.text(str(m.get("content") or "")) + (PER_NAME if m.get("name") else 0)
        return total


def _estimate(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


@functools.cache
def counter_for(model: str = "") -> TokenCounter:
    """The counter for ``model``'s encoding (o200k_base for a model the tokenizer does not know). The
    tokenizer is loaded here, on first use (0.5-1 s and ~150 MB): most runs never count a token."""
    try:
        import bpe_openai
    except ImportError:  # the stated estimate
        return TokenCounter(_estimate, f"estimated: {CHARS_PER_TOKEN} characters a token")
    try:
        name = bpe_openai.encoding_name_for_model(model) if model else DEFAULT_ENCODING
    except Exception:  # noqa: BLE001  (a fine-tuned or local model: OpenAI's newest encoding is the best guess)
        name = DEFAULT_ENCODING
    encoding = bpe_openai.get_encoding(name)
    return TokenCounter(lambda text: len(encoding.encode(text)), name)


def example_limit(model: str, configured: int = 0) -> int:
    """Tokens one example may have when fine-tuning ``model`` (``PARLEY_TRAINING_MAX_TOKENS`` when set)."""
    if configured > 0:
        return configured
    name = model.lower().removeprefix("ft:")
    known = [prefix for prefix in EXAMPLE_LIMITS if name.startswith(prefix)]
    return EXAMPLE_LIMITS[max(known, key=len)] if known else UNKNOWN_MODEL_LIMIT


def record_tokens(record: Mapping[str, object], counter: TokenCounter) -> int:
    """The tokens of one training record: an SFT chat, or a DPO input with the longer of its two answers."""
    if "messages" in record:
        return counter.messages(record["messages"])  # type: ignore[arg-type]
    source = record.get("input")
    asked = counter.messages(source.get("messages", []) if isinstance(source, Mapping) else [])  # type: ignore[arg-type]
    outputs = [counter.messages(record.get(side) or []) - PER_REPLY  # type: ignore[arg-type]
               for side in ("preferred_output", "non_preferred_output")]
    return asked + max(outputs, default=0)


def example_tokens(e: Example) -> int:
    """The tokens of one example as a training chat (its own turns, or the bare prompt, and the answer)."""
    asked = list(e.turns) if e.turns else [{"role": "user", "content": e.prompt}]
    return counter_for().messages(asked + [e.answer_message()])


@dataclass(frozen=True)
class TokenStats:
    """What ``dataset show`` says of a dataset's size in tokens."""

    total: int  # every example as a training chat (without the system prompt Parley adds to bare ones)
    training: int  # the positive ones: what one epoch of SFT reads
    longest: tuple[int, str]  # the longest example's tokens, and its prompt
    how: str

    def text(self) -> str:
        tokens, prompt = self.longest
        start = prompt[:40] + ("…" if len(prompt) > 40 else "")
        longest = f"; the longest {tokens:,} (\"{start}\")" if tokens else ""
        return (f"{self.total:,} tokens ({self.how}){longest}; about {self.training * EPOCHS:,} training tokens "
                f"for SFT at {EPOCHS} epochs")


def token_stats(examples: Iterable[Example]) -> TokenStats:
    counted = [(example_tokens(e), e) for e in examples]
    return TokenStats(sum(n for n, _ in counted), sum(n for n, e in counted if e.positive),
                      max([(0, "")] + [(n, e.prompt) for n, e in counted]), counter_for().how)
