"""Splitting a long answer into Discord messages (2,000 characters each).

Cuts at line boundaries first, then sentence boundaries, then spaces; never inside a code block when
a cut outside one exists. A code block longer than one message is closed at the cut and reopened
(with its language) in the next message, so every message renders on its own.
"""
from __future__ import annotations

import re

DISCORD_LIMIT = 2000
_FENCE = re.compile(r"^\s*```")
_SENTENCE_END = re.compile(r"(?<=[.!?。])\s+")


def split_message(text: str, limit: int = DISCORD_LIMIT) -> list[str]:
    if len(text) <= limit:
        return [text] if text else []
    chunks: list[str] = []
    current: list[str] = []  # lines of the chunk being built
    open_fence: str | None = None  # the fence line of a code block open at the end of `current`
    safe_cut = 0  # lines in `current` that end outside any code block

    def size(lines: list[str], extra: str = "") -> int:
        return len("\n".join(lines + ([extra] if extra else [])))

    for line in _lines_fitting(text, limit):
        fence_after = _fence_state(open_fence, line)
        closing = "```" if fence_after else ""
        if current and size(current + [line], closing) > limit:
            if 0 < safe_cut and (open_fence is not None or fence_after is not None):
                # Cut at the last point outside a code block and carry the rest over.
                chunks.append("\n".join(current[:safe_cut]).strip("\n"))
                current = current[safe_cut:]
                safe_cut = 0
            else:
                if open_fence is not None:
                    chunks.append("\n".join(current + ["```"]))
                    current = [open_fence]
                else:
                    chunks.append("\n".join(current).strip("\n"))
                    current = []
                    safe_cut = 0
            if current and size(current + [line], closing) > limit:
                # Still too long after carrying: cut inside the block (it is longer than a message).
                if open_fence is not None:
                    chunks.append("\n".join(current + ["```"]))
                    current = [open_fence]
                else:
                    chunks.append("\n".join(current))
                    current = []
        current.append(line)
        open_fence = fence_after
        if open_fence is None:
            safe_cut = len(current)
    if current and "\n".join(current).strip():
        chunks.append("\n".join(current).strip("\n"))
    return [c for c in chunks if c.strip()]


def _fence_state(open_fence: str | None, line: str) -> str | None:
    if _FENCE.match(line):
        return None if open_fence is not None else line.strip()
    return open_fence


def _lines_fitting(text: str, limit: int) -> list[str]:
    """The text's lines, with any line too long for a message broken at sentences, then spaces."""
    room = limit - 8  # leave space for a closing fence
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
