"""Training files as OpenAI's fine-tuning API wants them, and its rules, checked line by line before
anything is uploaded (so a bad dataset gets clear errors here, not a failed job an hour later)."""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence

from actors.learning.examples import Example, preference_examples
from actors.tuning.tokens import TokenCounter, record_tokens

MIN_RECORDS = 10  # OpenAI refuses a training file with fewer examples
MAX_RECORD_TOKENS = 65_536
CHARS_PER_TOKEN = 4  # a cautious estimate without the provider's tokenizer
ROLES = ("system", "user", "assistant")


def _system(system_prompt: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": system_prompt}] if system_prompt else []


def _asked(e: Example, system: list[dict[str, str]]) -> list[dict]:
    """The chat before the answer: as the imported file had it, else Parley's system prompt and the prompt."""
    return [dict(t) for t in e.turns] if e.turns else system + [{"role": "user", "content": e.prompt}]


def sft_records(examples: Iterable[Example], system_prompt: str = "") -> Iterator[dict]:
    """One chat per positive example (the answers to avoid only teach through DPO)."""
    system = _system(system_prompt)
    for e in examples:
        if e.positive:
            yield {"messages": _asked(e, system) + [e.answer_message()]}


def dpo_records(examples: Sequence[Example], system_prompt: str = "") -> Iterator[dict]:
    system = _system(system_prompt)
    for good, bad in preference_examples(examples):
        yield {"input": {"messages": _asked(good, system)}, "preferred_output": [good.answer_message()],
               "non_preferred_output": [bad.answer_message()]}


def _message_problem(m: object, allowed: Sequence[str]) -> str:
    if not isinstance(m, dict) or m.get("role") not in allowed:
        return f"each message needs a role among {', '.join(allowed)}"
    if not isinstance(m.get("content"), str) or not m["content"].strip():
        return "a message has no text"
    return ""


def record_problem(record: object, method: str) -> str:
    """What is wrong with one training record for ``method`` ("sft" or "dpo"), or ""."""
    if not isinstance(record, dict):
        return "not a JSON object"
    if method == "dpo":
        messages = (record.get("input") or {}).get("messages") if isinstance(record.get("input"), dict) else None
        if not isinstance(messages, list) or not messages:
            return "input.messages is missing"
        for m in messages:
            if problem := _message_problem(m, ("system", "user", "assistant")):
                return problem
        if messages[-1].get("role") != "user":
            return "input.messages must end with the user's turn"
        for side in ("preferred_output", "non_preferred_output"):
            output = record.get(side)
            if not isinstance(output, list) or len(output) != 1:
                return f"{side} must be one assistant message"
            if problem := _message_problem(output[0], ("assistant",)):
                return f"{side}: {problem}"
        if record["preferred_output"][0]["content"].strip() == record["non_preferred_output"][0]["content"].strip():
            return "the preferred and non-preferred answers are the same"
    else:
        messages = record.get("messages")
        if not isinstance(messages, list) or not messages:
            return "messages is missing"
        for m in messages:
            if problem := _message_problem(m, ROLES):
                return problem
        if not any(m["role"] == "user" for m in messages):
            return "there is no user turn"
        if messages[-1]["role"] != "assistant":
            return "the last message must be the assistant's answer"
    if len(json.dumps(record, ensure_ascii=False)) > MAX_RECORD_TOKENS * CHARS_PER_TOKEN:
        return f"longer than {MAX_RECORD_TOKENS:,} tokens"
    return ""


def _asked_text(record: dict) -> str:
    messages = record.get("messages") or (record.get("input") or {}).get("messages") or []
    users = [m.get("content") for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    text = str(users[-1]) if users else ""
    return text[:40] + ("…" if len(text) > 40 else "")


def validate(lines: Iterable[bytes | str], method: str, counter: TokenCounter | None = None, limit: int = 0,
             model: str = "") -> tuple[int, list[str]]:
    """(records, problems) of a JSONL training file; problems name their line. With a ``counter``, a record
    over ``limit`` tokens (what ``model`` takes in one example) is named with its count."""
    records, problems = 0, []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        records += 1
        try:
            record = json.loads(line)
            problem = record_problem(record, method)
        except json.JSONDecodeError as e:
            problem = f"not JSON ({e.msg})"
        if not problem and counter is not None and limit and (tokens := record_tokens(record, counter)) > limit:
            problem = (f"{tokens:,} tokens (\"{_asked_text(record)}\"), over the {limit:,} that one example may "
                       f"have for {model or 'this model'}")
        if problem:
            problems.append(f"line {n}: {problem}")
    if records < MIN_RECORDS:
        what = "preference pairs (a prompt with an answer and an answer to avoid)" if method == "dpo" else "examples"
        problems.insert(0, f"fine-tuning needs at least {MIN_RECORDS} {what}; this dataset has {records}")
    return records, problems


def within_limit(lines: Iterable[bytes], counter: TokenCounter, limit: int) -> tuple[list[bytes], int]:
    """The lines of a training file whose records fit in ``limit`` tokens, and how many were left out."""
    kept, dropped = [], 0
    for line in lines:
        try:
            fits = not line.strip() or record_tokens(json.loads(line), counter) <= limit
        except json.JSONDecodeError:
            fits = True  # ``validate`` names it
        kept, dropped = (kept + [line], dropped) if fits else (kept, dropped + 1)
    return kept, dropped
