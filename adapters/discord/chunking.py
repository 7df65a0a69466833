"""Splitting a long answer into Discord messages (2,000 characters each).

Cuts at line boundaries first, then sentence boundaries, then spaces; never inside a code block when
a cut outside one exists. A code block longer than one message is closed at the cut and reopened
(with its language) in the next message, so every message renders on its own. Every part fits, no part
is blank, and no text is lost or changed: only the closing and reopening fences are added (property-tested).
"""
from __future__ import annotations

import re

DISCORD_LIMIT = 2000
_FENCE = re.compile(r"^\s*```")
_LANGUAGE = re.compile(r"^\s*```([^\s`]{1,20})(?:\s|$)")
_BARE_FENCE = re.compile(r"\s*```[^\s`]{0,20}\s*")
_SENTENCE_END = re.compile(r"(?<=[.!?。])\s+")
CLOSE = "```"
ROOM_FOR_FENCES = 32  # a reopening fence (``` and a language of up to 20 characters), a closing one, newlines


def split_message(text: str, limit: int = DISCORD_LIMIT) -> list[str]:
    if len(text) <= limit:
        return [text] if text.strip() else []
    chunks: list[str] = []
    current: list[str] = []  # lines of the part being built
    inside: str | None = None  # the fence that reopens the code block open at the end of `current`
    safe_cut = 0  # lines of `current` that end outside any code block

    def size(lines: list[str], open_block: str | None) -> int:
        return len("\n".join(lines)) + (len(CLOSE) + 1 if open_block is not None else 0)

    def flush(lines: list[str], open_block: str | None) -> None:
        part = "\n".join(lines + ([CLOSE] if open_block is not None else [])).strip("\n")
        if _has_text(part):
            chunks.append(part)

    for line in _lines_fitting(text, limit - ROOM_FOR_FENCES):
        after = _fence_after(inside, line)
        if current and size(current + [line], after) > limit:
            if (inside is not None or after is not None) and 0 < safe_cut < len(current):
                # Cut at the last point outside a code block and carry the block over whole.
                flush(current[:safe_cut], None)
                current, safe_cut = current[safe_cut:], 0
            if current and size(current + [line], after) > limit:  # a block longer than a message
                flush(current, inside)
                current, safe_cut = ([inside] if inside is not None else []), 0
        current.append(line)
        inside = after
        if inside is None:
            safe_cut = len(current)
    flush(current, None)  # a block the answer left open stays as the answer wrote it
    return chunks


def _has_text(part: str) -> bool:
    """Something to read: not blank, and not only fences (an empty code block)."""
    return any(line.strip() and not _BARE_FENCE.fullmatch(line) for line in part.split("\n"))


def _fence_after(inside: str | None, line: str) -> str | None:
    """The code block open after ``line``: a fence line opens one (reopened later as ```language), or closes it."""
    if not _FENCE.match(line):
        return inside
    if inside is not None:
        return None
    language = _LANGUAGE.match(line)
    return CLOSE + (language.group(1) if language else "")


def _lines_fitting(text: str, room: int) -> list[str]:
    """The text's lines, with any line longer than ``room`` broken at sentences, then spaces."""
    out: list[str] = []
    for line in text.split("\n"):
        while len(line) > room:
            cut = _best_cut(line, room)
            out.append(line[:cut].rstrip())
            line = line[cut:].lstrip()
        out.append(line)
    return out


def _best_cut(line: str, room: int) -> int:
    window = line[:room]
    ends = [m.end() for m in _SENTENCE_END.finditer(window)]
    if ends and ends[-1] > room // 2:
        return ends[-1]
    space = window.rfind(" ")
    if space > room // 2:
        return space + 1
    return room
