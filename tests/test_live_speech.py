"""Answers said while they are written: the first sentence is spoken while the model writes the next. Pure
tests of the sentence stream, and end to end on the emulator's voice channel with a slowly streaming server."""
from __future__ import annotations

import threading

from actors.speaking.spoken import sentence_count
from actors.voice.live import LiveAnswer, LiveAnswers, complete_part
from tests.conftest import replay_json
from tests.fakes.openai_server import Scripted
from tests.helpers import wait_for
from tests.test_discord_e2e import Bot
from tests.test_voice_channel import command, voice_emulator, voice_env, wait_event  # noqa: F401  (a fixture)


def test_only_finished_sentences_are_ready_and_never_inside_a_code_block():
    assert complete_part("Hello there") == 0
    assert complete_part("Hello there. How") == len("Hello there.")
    assert complete_part("One. Two! Three? Fou") == len("One. Two! Three?")
    assert complete_part("Run this:\n```\nprint(1). x\n") == len("Run this:\n")  # the block is not closed yet
    assert complete_part("Run:\n```\nx. y\n```\nDone. Next") == len("Run:\n```\nx. y\n```\nDone.")
    assert complete_part("Version 2.5 is out") == 0  # a decimal point ends no sentence
    rambling = "a model that never ends a sentence but goes on and on with words for a long while"
    assert complete_part(rambling) == rambling.rfind(" ")  # after a long run, up to the last word
    listing = "first the water, then the salt, then the fish and the boats that sail on it all day"
    assert complete_part(listing) == listing.index("salt,") + len("salt,")  # or the last clause


def test_sentences_come_as_they_are_finished_once_each_and_the_end_says_the_rest():
    answer, got = LiveAnswer(patience=5), []
    reader = threading.Thread(target=lambda: got.extend(answer.sentences()))
    reader.start()
    for draft in ("The sea", "The sea is wide. It is", "The sea is wide. It is deep. And", "The sea is wide. It is deep. And"):
        answer.grow(draft)
    wait_for(lambda: "".join(got) == "The sea is wide. It is deep.", 5, "the finished sentences")
    assert reader.is_alive()  # "And" is not a sentence yet: it waits
    answer.end("The sea is wide. It is deep. And blue")
    reader.join(5)
    assert got[-1] == " And blue" and "".join(got) == "The sea is wide. It is deep. And blue"


def test_the_first_words_leave_after_six_pieces_at_a_word_break():
    """A model spending many tokens a character (Korean for a small English model) is not waited on for 24."""
    answer = LiveAnswer(patience=5)
    for n in range(1, 6):
        answer.grow("아염파 아워드"[:n])
    assert not answer.ready()  # five pieces: still waiting
    answer.grow("아염파 아워드")
    assert answer.ready()
    said = answer.sentences()
    assert next(said) == "아염파"  # said now, up to the last word break
    answer.end("아염파 아워드 어워드")
    assert list(said) == [" 아워드 어워드"]


def test_sentences_said_in_pieces_are_counted_as_sentences_however_the_stream_was_cut():
    """The log's count of sentences spoken does not depend on how fast the model wrote (six pieces before the
    first sentence end cut it at a word break: CI once recorded 5 sentences for a 4-sentence answer)."""
    text = "Parley speaks in voice channels now. It synthesizes every sentence offline. That is all."
    answer = LiveAnswer(patience=5)
    for n in range(6):  # a slow model: six pieces (tokens) and the first sentence is not finished
        answer.grow("Parley speaks in voice channels"[:6 * n])
    said = answer.sentences()
    first = next(said)
    assert first == "Parley speaks in voice"  # said at once, up to the last word break
    answer.end(text)
    pieces = [first, *said]
    assert "".join(pieces) == text and len(pieces) == 2  # counted piece by piece: 1 + 3 sentences
    assert sentence_count(*pieces) == sentence_count(text) == 3
    assert sentence_count("Version 2.5 is out") == 1 and sentence_count("") == 0 and sentence_count("Hi! Bye") == 2


def test_a_failed_answer_ends_after_what_was_finished():
    answer = LiveAnswer(patience=5)
    answer.grow("First part. Second")
    answer.end(None)
    assert list(answer.sentences()) == ["First part."]


def test_answers_not_for_a_voice_channel_are_decided_once_and_forgotten_in_bounds():
    answers = LiveAnswers()
    assert answers.follow("m1", spoken=False) is None and answers.decided("m1")
    live = answers.follow("m2", spoken=True)
    assert answers.get("m2") is live and answers.finish("m2", "Done.") is live and answers.get("m2") is None
    for n in range(5000):
        answers.follow(f"x{n}", spoken=False)
    assert not answers.decided("x0") and answers.decided("x4999")


SENTENCES = ("The first sentence is said at once. The second one follows while the model is still writing. "
             "A third sentence ends the answer.")


def test_a_streaming_answer_starts_speaking_before_it_is_finished(tmp_path, llm_server, voice_emulator):  # noqa: F811
    em = voice_emulator
    env = voice_env(tmp_path, llm_server, em)
    bot = Bot(env, em).start()
    try:
        alice = em.user("Alice")
        em.user_joins_voice(alice, em.lounge)
        assert "Joined" in command(em, alice, "!join")["content"]
        llm_server.script.append(Scripted(text=SENTENCES, chunk_delay=0.3))  # ~5 s of writing, 8 characters a chunk
        asked = em.user_says(em.general, alice, "say three sentences", mention_bot=True)
        wait_event(env, "PlaybackFinished", utterance_id=asked["id"], timeout=60)
        log = replay_json(env)
        position = {e["type"]: e["position"] for e in log if e["data"].get("message_id", e["data"].get("utterance_id"))
                    == asked["id"] and e["type"] in ("PlaybackStarted", "ResponseGenerated")}
        assert position["PlaybackStarted"] < position["ResponseGenerated"]  # speaking while it was written
        synthesized = [e["data"] for e in log if e["type"] == "SpeechSynthesized"]
        assert len(synthesized) == 1 and synthesized[0]["sentences"] >= 3  # said once, whole
        assert synthesized[0]["spoken_chars"] == len(SENTENCES)
        assert sum(e["type"] == "PlaybackStarted" for e in log) == 1
        assert em.replies_to(asked)[0]["content"] == SENTENCES
    finally:
        log_text = bot.stop()
    assert "Traceback" not in log_text


from hypothesis import given, settings as hypothesis_settings, strategies as st  # noqa: E402

TEXT = st.lists(st.sampled_from(list("ab .!?,\n`가") + ["```", "...", ". ", "word "]), max_size=60).map("".join)


@hypothesis_settings(max_examples=200, deadline=None)
@given(final=TEXT, cuts=st.lists(st.integers(0, 120), max_size=12), failed=st.booleans())
def test_whatever_the_model_writes_is_said_once_in_order_and_nothing_is_invented(final, cuts, failed):
    """Any text, streamed in any pieces: what is said is a prefix of the answer (all of it when it ends well),
    each part once, and the reader never waits past the end."""
    answer, said = LiveAnswer(patience=5), []
    reader = threading.Thread(target=lambda: said.extend(answer.sentences()))
    reader.start()
    for cut in sorted(cuts):
        answer.grow(final[:cut])
    answer.end(None if failed else final)
    reader.join(5)
    assert not reader.is_alive()
    bare = lambda text: "".join(text.split())  # noqa: E731  (pieces of only spaces are not said)
    spoken = bare("".join(said))
    assert bare(final).startswith(spoken) and all(piece.strip() for piece in said)
    if not failed:
        assert spoken == bare(final)
