"""Scoring a model on held-out examples: exact match and token F1 (as SQuAD scores them), with and
without few-shot examples. The model is asked through ``ask``; everything else is pure."""
from __future__ import annotations

import hashlib
import re
import string
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from actors.learning.examples import Example, normalise
from actors.learning.teaching import few_shot_messages, rank
from actors.learning.decider import Scores

ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalise_answer(text: str) -> str:
    text = "".join(ch for ch in text.lower() if ch not in string.punctuation)
    return " ".join(ARTICLES.sub(" ", text).split())


def exact_match(answer: str, expected: str) -> float:
    return float(normalise_answer(answer) == normalise_answer(expected))


def token_f1(answer: str, expected: str) -> float:
    got, want = normalise_answer(answer).split(), normalise_answer(expected).split()
    if not got or not want:
        return float(got == want)
    common = sum((Counter(got) & Counter(want)).values())
    if not common:
        return 0.0
    precision, recall = common / len(got), common / len(want)
    return 2 * precision * recall / (precision + recall)


def split(examples: Sequence[Example], holdout: float) -> tuple[list[Example], list[Example]]:
    """(teaching, held out): positives whose prompt hashes below ``holdout`` are held out; the same
    examples every time, whatever their order. At least one is held out when there are two or more."""
    positives = [e for e in examples if e.positive]

    def place(e: Example) -> float:
        return int(hashlib.sha1(normalise(e.prompt).encode()).hexdigest()[:8], 16) / 0xFFFFFFFF

    held = [e for e in positives if place(e) < holdout]
    if not held and len(positives) >= 2 and holdout > 0:
        held = [min(positives, key=place)]
    held_prompts = {normalise(e.prompt) for e in held}
    teaching = [e for e in examples if normalise(e.prompt) not in held_prompts]
    return teaching, held


@dataclass(frozen=True)
class Graded:
    prompt: str
    expected: str
    answer: str | None
    answer_few_shot: str | None


def evaluate(examples: Sequence[Example], holdout: float, ask: Callable[[list[dict]], str | None],
             system_prompt: str, few_shot: int,
             progress: Callable[[int, int], None] | None = None) -> tuple[Scores, list[Graded]]:
    """Ask each held-out prompt twice (bare, then with the most similar teaching examples); ``ask``
    returns None when the model gave no answer (counted as a failure and scored 0)."""
    teaching, held = split(examples, holdout)
    system = [{"role": "system", "content": system_prompt}] if system_prompt else []
    graded: list[Graded] = []
    for n, e in enumerate(held, 1):
        question = [{"role": "user", "content": e.prompt}]
        bare = ask(system + question)
        taught = ask(system + few_shot_messages(rank(e.prompt, teaching, few_shot)) + question)
        graded.append(Graded(e.prompt, e.answer, bare, taught))
        if progress is not None:
            progress(n, len(held))
    return scores_of(graded), graded


def scores_of(graded: Sequence[Graded]) -> Scores:
    n = len(graded) or 1

    def mean(score: Callable[[str, str], float], few: bool) -> float:
        return round(sum(score(g.answer_few_shot if few else g.answer or "", g.expected) if
                         (g.answer_few_shot if few else g.answer) is not None else 0.0 for g in graded) / n, 4)

    failures = sum((g.answer is None) + (g.answer_few_shot is None) for g in graded)
    return Scores(len(graded), mean(exact_match, False), mean(token_f1, False), mean(exact_match, True),
                  mean(token_f1, True), failures)
