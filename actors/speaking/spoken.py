"""What of an answer is spoken, as a pure function: the prose, not code, links or emoji.

Code blocks become "code block omitted", links "link", emoji and Markdown marks disappear; at most
``max_chars`` are spoken, cut at a sentence end when one is near (the rest is only written).
"""
from __future__ import annotations

import re

_CODE_BLOCK = re.compile(r"```.*?(```|$)", re.DOTALL)
_INLINE_CODE = re.compile(r"`([^`]*)`")
_URL = re.compile(r"<?https?://\S+>?")
_MARKDOWN_LINK = re.compile(r"\[([^\]]+)\]\((?:[^)]+)\)")
_EMOJI = re.compile("[\U0001F000-\U0001FAFF\u2600-\u27BF\uFE0F\u200D]|<a?:\\w+:\\d+>")
_MARKS = re.compile(r"(\*\*|__|~~|\*|_|^#+\s*|^>\s*|^\s*[-•]\s+)", re.MULTILINE)
_SENTENCE_END = re.compile(r"[.!?。](\s|$)")


def spoken_text(answer: str, max_chars: int = 1500) -> str:
    text = _CODE_BLOCK.sub(" (code block omitted) ", answer)
    text = _MARKDOWN_LINK.sub(r"\1", text)
    text = _URL.sub("link", text)
    text = _INLINE_CODE.sub(r"\1", text)
    text = _EMOJI.sub("", text)
    text = _MARKS.sub("", text)
    text = re.sub(r"[ \t]+", " ", text)
    text = re.sub(r"\s*\n\s*", "\n", text).strip()
    if len(text) <= max_chars:
        return text
    window = text[:max_chars]
    ends = [m.end() for m in _SENTENCE_END.finditer(window)]
    cut = ends[-1] if ends and ends[-1] > max_chars // 2 else window.rfind(" ") if " " in window else max_chars
    return window[:cut].strip()


def sentence_count(*pieces: str) -> int:
    """How many sentences ``pieces``, said one after another, hold: each sentence end, and words after the last
    one. A piece may end mid-sentence (an answer said while it is written): the next one finishes that sentence."""
    text = " ".join(piece.strip() for piece in pieces)
    ends = list(_SENTENCE_END.finditer(text))
    return len(ends) + (1 if text[ends[-1].end() if ends else 0:].strip() else 0)


_CLAUSE_END = re.compile(r"[,;:—–](\s|$)")
FIRST_PART_CHARS = 40  # a first sentence longer than this is spoken from its first clause on


def sentences(text: str) -> list[str]:
    """``text`` in its sentences (what follows the last sentence end is one more)."""
    out, start = [], 0
    for end in _SENTENCE_END.finditer(text):
        out.append(text[start:end.end()].strip())
        start = end.end()
    rest = text[start:].strip()
    return [s for s in out if s] + ([rest] if rest else [])


def first_part(text: str) -> tuple[str, str]:
    """(what to synthesize first, the rest): the first clause of a long first sentence, so that the first audio
    of an answer leaves after a few words are synthesized rather than a whole sentence. ("", text) when the
    first sentence is short or has no clause break early on."""
    end = _SENTENCE_END.search(text)
    sentence_end = end.end() if end else len(text)
    if sentence_end <= FIRST_PART_CHARS:
        return "", text
    clause = _CLAUSE_END.search(text, 0, min(sentence_end, 2 * FIRST_PART_CHARS))
    if clause is None or clause.end() < 4:
        return "", text
    return text[:clause.end()].strip(), text[clause.end():].strip()
