"""Training examples as data (issue 8, first part): what ``!train`` and an attached file mean, as pure
functions. No I/O here; the Trainer shell reads the attachment and hands its bytes in.

An example is a prompt and an answer, positive (answer like this) or negative (never answer like
this). A positive and a negative answer to the same prompt form a preference pair (for DPO).
"""
from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from dataclasses import dataclass

MAX_PROMPT_CHARS = 8000
MAX_ANSWER_CHARS = 16000


@dataclass(frozen=True)
class Example:
    prompt: str
    answer: str
    positive: bool = True

    @property
    def key(self) -> tuple[str, str, bool]:
        """Two examples with the same key are duplicates: counted, not stored twice."""
        return normalise(self.prompt), normalise(self.answer), self.positive


@dataclass(frozen=True)
class Parsed:
    examples: tuple[Example, ...]
    problems: tuple[str, ...]  # one line per record that could not be read, with where it is


def normalise(text: str) -> str:
    """Case, Unicode form and runs of whitespace do not make a different example."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text)).strip().casefold()


def _checked(prompt: str, answer: str, positive: bool, where: str, problems: list[str]) -> Example | None:
    prompt, answer = prompt.strip(), answer.strip()
    if not prompt or not answer:
        problems.append(f"{where}: needs both a prompt and an answer")
        return None
    if len(prompt) > MAX_PROMPT_CHARS or len(answer) > MAX_ANSWER_CHARS:
        problems.append(f"{where}: longer than {MAX_PROMPT_CHARS:,} characters (prompt) or "
                        f"{MAX_ANSWER_CHARS:,} (answer)")
        return None
    return Example(prompt, answer, positive)


def parse_train_command(args: str) -> Parsed:
    """``PROMPT => ANSWER`` (positive) or ``-PROMPT => ANSWER`` (negative: an answer to avoid)."""
    problems: list[str] = []
    text = args.strip()
    positive = not text.startswith("-")
    if not positive:
        text = text[1:]
    if "=>" not in text:
        return Parsed((), ("write it as `!train PROMPT => ANSWER` (or `!train -PROMPT => ANSWER` for an answer "
                           "to avoid)",))
    prompt, answer = text.split("=>", 1)
    example = _checked(prompt, answer, positive, "the example", problems)
    return Parsed((example,) if example else (), tuple(problems))


def _assistant_text(messages: object) -> str | None:
    if isinstance(messages, list) and messages and isinstance(messages[-1], dict) \
            and messages[-1].get("role") == "assistant" and isinstance(messages[-1].get("content"), str):
        return messages[-1]["content"]
    return None


def _last_user(messages: object) -> str | None:
    if not isinstance(messages, list):
        return None
    users = [m.get("content") for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    return users[-1] if users and isinstance(users[-1], str) else None


def parse_jsonl(data: bytes) -> Parsed:
    """OpenAI chat format (``messages`` ending with the assistant's answer) and the preference format
    (``input.messages``, ``preferred_output``, ``non_preferred_output``): a pair gives two examples."""
    examples: list[Example] = []
    problems: list[str] = []
    for n, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        where = f"line {n}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            problems.append(f"{where}: not JSON ({e.msg})")
            continue
        if not isinstance(record, dict):
            problems.append(f"{where}: not a JSON object")
            continue
        if "preferred_output" in record or "non_preferred_output" in record:
            prompt = _last_user((record.get("input") or {}).get("messages") if isinstance(record.get("input"), dict)
                                else None)
            good, bad = _assistant_text(record.get("preferred_output")), _assistant_text(record.get("non_preferred_output"))
            if prompt is None or good is None or bad is None:
                problems.append(f"{where}: a preference needs input.messages with a user turn, and an assistant "
                                "message in preferred_output and in non_preferred_output")
                continue
            for answer, positive in ((good, True), (bad, False)):
                if (example := _checked(prompt, answer, positive, where, problems)) is not None:
                    examples.append(example)
            continue
        messages = record.get("messages")
        prompt, answer = _last_user(messages[:-1] if isinstance(messages, list) else None), _assistant_text(messages)
        if prompt is None or answer is None:
            problems.append(f"{where}: needs messages with a user turn and ending with the assistant's answer")
            continue
        if (example := _checked(prompt, answer, True, where, problems)) is not None:
            examples.append(example)
    return Parsed(tuple(examples), tuple(problems))


def parse_csv(data: bytes) -> Parsed:
    """Columns prompt, completion and an optional label (``negative``/``bad``/``0``/``-1`` for an answer
    to avoid); a header row naming them is optional."""
    examples: list[Example] = []
    problems: list[str] = []
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig", errors="replace"))))
    if rows and [c.strip().lower() for c in rows[0][:2]] == ["prompt", "completion"]:
        rows = rows[1:]
        first = 2
    else:
        first = 1
    for n, row in enumerate(rows, first):
        if not any(c.strip() for c in row):
            continue
        if len(row) < 2:
            problems.append(f"row {n}: needs a prompt and a completion")
            continue
        label = row[2].strip().lower() if len(row) > 2 else ""
        positive = label not in ("negative", "bad", "0", "-1", "false", "no")
        if (example := _checked(row[0], row[1], positive, f"row {n}", problems)) is not None:
            examples.append(example)
    return Parsed(tuple(examples), tuple(problems))


def parse_txt(data: bytes) -> Parsed:
    """Blocks of ``Q: ...`` then ``A: ...`` (either may run over several lines); ``A-:`` marks an
    answer to avoid."""
    examples: list[Example] = []
    problems: list[str] = []
    question: list[str] | None = None
    answer: list[str] | None = None
    positive, start = True, 0

    def flush() -> None:
        if question is not None:
            if answer is None:
                problems.append(f"line {start}: a question without an answer")
            elif (example := _checked("\n".join(question), "\n".join(answer), positive, f"line {start}",
                                      problems)) is not None:
                examples.append(example)

    for n, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
        if line.startswith("Q:"):
            flush()
            question, answer, positive, start = [line[2:].strip()], None, True, n
        elif line.startswith(("A:", "A-:")) and question is not None:
            positive = not line.startswith("A-:")
            answer = [line.split(":", 1)[1].strip()]
        elif answer is not None:
            answer.append(line)
        elif question is not None:
            question.append(line)
    flush()
    return Parsed(tuple(examples), tuple(problems))


PARSERS = {".jsonl": parse_jsonl, ".csv": parse_csv, ".txt": parse_txt}


def parse_file(filename: str, data: bytes) -> Parsed:
    suffix = "." + filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    parser = PARSERS.get(suffix)
    if parser is None:
        return Parsed((), (f"{filename}: use a .jsonl, .csv or .txt file",))
    return parser(data)


def preference_pairs(examples: list[Example]) -> list[tuple[str, str, str]]:
    """(prompt, preferred, not preferred) for each prompt with both kinds of answer (first of each)."""
    good: dict[str, Example] = {}
    bad: dict[str, Example] = {}
    for e in examples:
        (good if e.positive else bad).setdefault(normalise(e.prompt), e)
    return [(g.prompt, g.answer, bad[k].answer) for k, g in good.items() if k in bad]
