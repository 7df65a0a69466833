"""Training examples as data: what ``!train`` and an attached file mean, as pure functions. No I/O here; the
Trainer shell reads the attachment and hands its bytes in.

An example is a prompt and an answer, positive (answer like this) or negative (never answer like this). One
imported from a chat file keeps the whole chat before its answer (``turns``: the file's own system message,
earlier turns, the prompt), so an export gives the file back. A positive and a negative answer to the same
prompt form a preference pair (for DPO); a pair read from one preference line (or one ``.txt`` block) is
tied by its ``pair`` id, so each line comes back as it was.

Every parser returns its problems, each naming its line or row, for any bytes at all: never an exception.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import re
import sys
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

MAX_PROMPT_CHARS = 8000
MAX_ANSWER_CHARS = 16000
MAX_TURNS_CHARS = 200_000  # a whole multi-turn chat before its answer
MAX_TURNS = 500
INT_RANGE = 2 ** 63  # what a stored event can hold (orjson: 64-bit integers)
Scalar = str | int | float | bool | None


@dataclass(frozen=True)
class Example:
    prompt: str
    answer: str
    positive: bool = True
    turns: tuple[dict[str, Scalar], ...] = ()  # the chat before the answer, as a file gave it; () for a bare prompt
    answer_extra: dict[str, Scalar] = field(default_factory=dict)  # other fields of the answer's message (weight)
    pair: str = ""  # ties the two answers of one preference line

    @property
    def key(self) -> tuple[str, str, bool, str, str]:
        """Two examples with the same key are duplicates: counted, not stored twice."""
        return normalise(self.prompt), normalise(self.answer), self.positive, self.context, self.pair

    @property
    def context(self) -> str:
        """What the prompt was asked in: "" for a bare prompt, else a digest of the turns before the answer."""
        if not self.turns:
            return ""
        return hashlib.sha1(json.dumps(self.turns, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]

    def answer_message(self) -> dict[str, Scalar]:
        return {"role": "assistant", "content": self.answer, **self.answer_extra}

    def to_record(self) -> dict[str, Any]:
        """How an example is stored in ``ExamplesAdded`` (v3)."""
        record: dict[str, Any] = {"prompt": self.prompt, "answer": self.answer, "positive": self.positive,
                                  "turns": [dict(t) for t in self.turns]}
        if self.answer_extra:
            record["answer_extra"] = dict(self.answer_extra)
        if self.pair:
            record["pair"] = self.pair
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Example:
        return cls(record["prompt"], record["answer"], bool(record["positive"]),
                   tuple(record.get("turns") or ()), dict(record.get("answer_extra") or {}), record.get("pair", ""))


@dataclass(frozen=True)
class Parsed:
    examples: tuple[Example, ...]
    problems: tuple[str, ...]  # one line per record that could not be read, with where it is


def normalise(text: str) -> str:
    """Case, Unicode form and runs of whitespace do not make a different example."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text)).strip().casefold()


def clean(text: str) -> str:
    """Text that can be stored: a lone surrogate (``"\\ud800"`` is valid JSON) becomes U+FFFD."""
    return text.encode("utf-8", "replace").decode("utf-8") if not text.isascii() else text


def _checked(prompt: str, answer: str, positive: bool, where: str, problems: list[str],
             turns: tuple[dict[str, Scalar], ...] = (), answer_extra: dict[str, Scalar] | None = None,
             pair: str = "") -> Example | None:
    prompt, answer = clean(prompt).strip(), clean(answer).strip()
    if not prompt or not answer:
        problems.append(f"{where}: needs both a prompt and an answer")
        return None
    if len(prompt) > MAX_PROMPT_CHARS or len(answer) > MAX_ANSWER_CHARS:
        problems.append(f"{where}: longer than {MAX_PROMPT_CHARS:,} characters (prompt) or "
                        f"{MAX_ANSWER_CHARS:,} (answer)")
        return None
    return Example(prompt, answer, positive, turns, answer_extra or {}, pair)


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


# -- JSONL: OpenAI's chat and preference fine-tuning formats -----------------------------------------
class Unfit(ValueError):
    """A record that cannot be an example; the message says why."""


def _message(m: object, roles: tuple[str, ...]) -> dict[str, Scalar]:
    """One chat message kept whole (every field), if it is a text message with one of ``roles``."""
    if not isinstance(m, dict) or m.get("role") not in roles:
        raise Unfit(f"each message needs a role among {', '.join(roles)}")
    if not isinstance(m.get("content"), str):
        raise Unfit("a message has no text (messages with tool calls or parts are not supported)")
    kept: dict[str, Scalar] = {}
    for k, v in m.items():
        if isinstance(v, bool) or v is None or isinstance(v, str):
            kept[clean(k)] = clean(v) if isinstance(v, str) else v
        elif isinstance(v, int) and -INT_RANGE < v < INT_RANGE or isinstance(v, float) and math.isfinite(v):
            kept[clean(k)] = v
        else:
            raise Unfit(f"the field {clean(str(k))[:40]!r} of a message is not text or a number")
    return kept


def _chat(messages: object, roles: tuple[str, ...] = ("system", "user", "assistant")) -> tuple[dict, ...]:
    if not isinstance(messages, list) or not messages:
        raise Unfit("there are no messages")
    if len(messages) > MAX_TURNS:
        raise Unfit(f"more than {MAX_TURNS} messages")
    chat = tuple(_message(m, roles) for m in messages)
    if sum(len(str(m.get("content"))) for m in chat) > MAX_TURNS_CHARS:
        raise Unfit(f"the chat is longer than {MAX_TURNS_CHARS:,} characters")
    return chat


def _prompt_of(turns: tuple[dict, ...]) -> str:
    users = [m["content"] for m in turns if m["role"] == "user"]
    if not users:
        raise Unfit("there is no user turn")
    return str(users[-1])


def _answer(output: object, side: str) -> dict[str, Scalar]:
    if not isinstance(output, list) or len(output) != 1:
        raise Unfit(f"{side} must be one assistant message")
    return _message(output[0], ("assistant",))


def _jsonl_examples(record: object, where: str, problems: list[str]) -> list[Example | None]:
    if not isinstance(record, dict):
        raise Unfit("not a JSON object")
    if "preferred_output" in record or "non_preferred_output" in record:
        source = record.get("input")
        if not isinstance(source, dict) or not source.get("messages"):
            raise Unfit("a preference needs input.messages with a user turn, and an assistant message in "
                        "preferred_output and in non_preferred_output")
        turns = _chat(source["messages"])
        if turns[-1]["role"] != "user":
            raise Unfit("input.messages must end with the user's turn")
        prompt = _prompt_of(turns)
        good, bad = _answer(record.get("preferred_output"), "preferred_output"), \
            _answer(record.get("non_preferred_output"), "non_preferred_output")
        pair = hashlib.sha1(json.dumps([turns, good, bad], sort_keys=True).encode()).hexdigest()[:16]
        return [_checked(prompt, str(m["content"]), positive, where, problems, turns, _extra(m), pair)
                for m, positive in ((good, True), (bad, False))]
    chat = _chat(record.get("messages")) if record.get("messages") else ()
    if len(chat) < 2 or chat[-1]["role"] != "assistant" or not any(m["role"] == "user" for m in chat[:-1]):
        raise Unfit("needs messages with a user turn and ending with the assistant's answer")
    turns = chat[:-1]
    return [_checked(_prompt_of(turns), str(chat[-1]["content"]), True, where, problems, turns, _extra(chat[-1]))]


def _extra(message: dict[str, Scalar]) -> dict[str, Scalar]:
    return {k: v for k, v in message.items() if k not in ("role", "content")}


def parse_jsonl(data: bytes) -> Parsed:
    """OpenAI chat format (``messages`` ending with the assistant's answer) and the preference format
    (``input.messages``, ``preferred_output``, ``non_preferred_output``): a pair gives two examples. Every
    turn is kept, the file's own system message included."""
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
        except (RecursionError, ValueError) as e:  # nested too deep, or an integer of thousands of digits
            problems.append(f"{where}: not JSON that can be read ({type(e).__name__})")
            continue
        try:
            found = _jsonl_examples(record, where, problems)
        except Unfit as e:
            problems.append(f"{where}: {e}")
            continue
        examples += [x for x in found if x is not None]
    return Parsed(tuple(examples), tuple(problems))


# -- CSV -------------------------------------------------------------------------------------------
def _csv_rows(text: str, problems: list[str]) -> Iterator[tuple[int, list[str]]]:
    """(row number, row) for each row csv can read; one it cannot is named by its line and skipped."""
    reader = csv.reader(io.StringIO(text, newline=None))  # any line endings: \n, \r\n, \r (old Macs)
    number = 0
    while True:
        number += 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            problems.append(f"row {number} (line {reader.line_num}): not CSV that can be read ({e})")
            continue
        yield number, row


def parse_csv(data: bytes) -> Parsed:
    """Columns prompt, completion and an optional label (``negative``/``bad``/``0``/``-1`` for an answer
    to avoid); a header row naming them is optional."""
    examples: list[Example] = []
    problems: list[str] = []
    csv.field_size_limit(min(sys.maxsize, 2 ** 31 - 1))  # a long answer is a long field: the checks below bound it
    first = True
    for n, row in _csv_rows(data.decode("utf-8-sig", errors="replace").replace("\0", ""), problems):
        if first and [c.strip().lower() for c in row[:2]] == ["prompt", "completion"]:
            first = False
            continue
        first = False
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


# -- TXT: Q:/A: blocks -------------------------------------------------------------------------------
def parse_txt(data: bytes) -> Parsed:
    """Blocks of ``Q: ...`` then ``A: ...`` (either may run over several lines); ``A-:`` marks an answer to
    avoid. A block with both ``A:`` and ``A-:`` is a preference pair; each answer at most once per block."""
    examples: list[Example] = []
    problems: list[str] = []
    blocks: list[tuple[int, list[str], list[tuple[bool, int, list[str]]]]] = []  # line, question, answers
    for n, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
        if line.startswith("Q:"):
            blocks.append((n, [line[2:].strip()], []))
        elif line.startswith(("A:", "A-:")):
            if not blocks:
                problems.append(f"line {n}: an answer before any question (start a block with Q:)")
                continue
            blocks[-1][2].append((not line.startswith("A-:"), n, [line.split(":", 1)[1].strip()]))
        elif blocks and blocks[-1][2]:
            blocks[-1][2][-1][2].append(line)
        elif blocks:
            blocks[-1][1].append(line)
    for start, question, answers in blocks:
        where = f"line {start}"
        if not answers:
            problems.append(f"{where}: a question without an answer")
            continue
        kinds = [positive for positive, _, _ in answers]
        if kinds.count(True) > 1 or kinds.count(False) > 1:
            again = next(n for i, (p, n, _) in enumerate(answers) if p in kinds[:i])
            problems.append(f"line {again}: a second {'A:' if kinds.count(True) > 1 else 'A-:'} in the block of "
                            f"{where} (one answer and at most one answer to avoid per question)")
            continue
        text = "\n".join(question)
        pair = hashlib.sha1(repr((text, [a for _, _, a in answers])).encode()).hexdigest()[:16] \
            if len(answers) == 2 else ""
        for positive, n, answer in answers:
            if (example := _checked(text, "\n".join(answer), positive, where, problems, pair=pair)) is not None:
                examples.append(example)
    return Parsed(tuple(examples), tuple(problems))


PARSERS = {".jsonl": parse_jsonl, ".csv": parse_csv, ".txt": parse_txt}


def parse_file(filename: str, data: bytes) -> Parsed:
    suffix = "." + filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    parser = PARSERS.get(suffix)
    if parser is None:
        return Parsed((), (f"{filename}: use a .jsonl, .csv or .txt file",))
    return parser(data)


def preference_pairs(examples: Iterable[Example]) -> list[tuple[str, str, str]]:
    """(prompt, preferred, not preferred) of each pair (``preference_examples``)."""
    return [(good.prompt, good.answer, bad.answer) for good, bad in preference_examples(examples)]


def preference_examples(examples: Iterable[Example]) -> list[tuple[Example, Example]]:
    """(preferred, not preferred): the two answers of each preference line, then, for examples not tied to
    one, the first answer of each kind to the same prompt asked in the same chat."""
    tied: dict[str, dict[bool, Example]] = {}
    good: dict[tuple[str, str], Example] = {}
    bad: dict[tuple[str, str], Example] = {}
    for e in examples:
        if e.pair:
            tied.setdefault(e.pair, {}).setdefault(e.positive, e)
        else:
            (good if e.positive else bad).setdefault((e.context, normalise(e.prompt)), e)
    pairs = [(sides[True], sides[False]) for sides in tied.values() if len(sides) == 2]
    return pairs + [(g, bad[k]) for k, g in good.items() if k in bad]
