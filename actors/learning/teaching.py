"""Few-shot teaching: which words of a question look for similar examples, and how examples become
chat turns. Pure; the datasets read model does the full-text search with these terms."""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from actors.learning.examples import Example

# Words that make every question look alike; left out of the search (on SQLite and PostgreSQL alike).
STOPWORDS = frozenset("""a an and are as at be been but by can could did do does for from had has have how i if in
into is it its me my no not of on or our so than that the their them then there these they this to too was we
were what when where which who whom why will with would you your yours he she him her his hers do does am""".split())
MAX_TERMS = 24
MAX_EXAMPLE_CHARS = 2000  # an example longer than this is cut in the prompt


def terms(text: str) -> list[str]:
    """The distinct searchable words of ``text``, lower-cased, in order."""
    seen: dict[str, None] = {}
    for word in re.findall(r"[^\W_]+", text.lower()):
        if len(word) > 1 and word not in STOPWORDS and not word.isdigit() or len(word) > 3 and word.isdigit():
            seen.setdefault(word, None)
    return list(seen)[:MAX_TERMS]


def few_shot_messages(examples: Sequence[Example]) -> list[dict[str, str]]:
    """Positives as earlier user/assistant turns; the answers to avoid in one system message."""
    messages: list[dict[str, str]] = []
    avoid = [e for e in examples if not e.positive]
    if avoid:
        lines = "\n\n".join(f"Question: {_cut(e.prompt)}\nAnswer to avoid: {_cut(e.answer)}" for e in avoid)
        messages.append({"role": "system", "content": "Do not answer like these examples:\n\n" + lines})
    for e in examples:
        if e.positive:
            messages += [{"role": "user", "content": _cut(e.prompt)}, {"role": "assistant", "content": _cut(e.answer)}]
    return messages


def lookup(similar: Callable[[str, str, list[str], int], list[tuple[str, str, bool]]]) -> \
        Callable[[str, str, str, int], list[Example]]:
    """The Responder's few-shot lookup over a full-text search of examples (the datasets read model), in the
    asker's scope only."""
    def find(scope: str, channel: str, question: str, limit: int) -> list[Example]:
        return [Example(p, a, pos) for p, a, pos in similar(scope, channel, terms(question), limit)]
    return find


def rank(question: str, examples: Sequence[Example], k: int) -> list[Example]:
    """The ``k`` examples sharing the most (rarer) words with ``question``, in memory: for evaluation,
    where the held-out examples must not teach."""
    wanted = set(terms(question))
    if not wanted or k <= 0:
        return []
    documents = [(e, set(terms(e.prompt))) for e in examples]
    frequency: dict[str, int] = {}
    for _, words in documents:
        for w in words & wanted:
            frequency[w] = frequency.get(w, 0) + 1
    scored = [(sum(1.0 / frequency[w] for w in words & wanted), i, e) for i, (e, words) in enumerate(documents)
              if words & wanted]
    scored.sort(key=lambda s: (-s[0], s[1]))
    return [e for _, _, e in scored[:k]]


def _cut(text: str) -> str:
    return text if len(text) <= MAX_EXAMPLE_CHARS else text[:MAX_EXAMPLE_CHARS] + "…"
