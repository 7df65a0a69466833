"""Parley's own voice coming back (issue 27, point 4), on real speech: the Piper voice's answer, through Opus twice
(Parley's encoder, then the listener's microphone and client), is recognised as what Parley played; other speech,
in the same voice, is not. And the stages of a spoken turn, as status reports them."""
from __future__ import annotations

import numpy as np

from actors.listening.timing import TurnTimes
from adapters.audio_out import discord_frames
from adapters.discord.listening import ECHO_SIMILARITY
from adapters.echo import EchoReference
from adapters.opus_audio import OpusDecoder
from tests.speech_clips import FINISHED, opus_frames, said

ANSWER = ("This is sentence number one of a long answer that takes a while to say. And here is another one, with "
          "more words in it, said after the first.")


def through_opus(pcm: bytes, times: int) -> bytes:
    for _ in range(times):
        decoder = OpusDecoder()
        pcm = b"".join(decoder.decode(frame) for frame in opus_frames(pcm))
    return pcm


def played(text: str) -> EchoReference:
    reference = EchoReference()
    for frame in discord_frames([(said(text), 16000)]):  # what the player hands on: 48 kHz stereo, 20 ms
        reference.played(frame)
    return reference


def test_its_own_voice_coming_back_is_recognised_anywhere_in_what_it_said_and_at_any_loudness():
    reference = played(ANSWER)
    assert reference.recent()
    echo = through_opus(said(ANSWER), 2)
    for start_s in (0.3, 2.0, 4.5):
        stretch = echo[int(start_s * 32000):int((start_s + 0.3) * 32000)]
        quieter = (np.frombuffer(stretch, "<i2") // 5).astype("<i2").tobytes()  # a microphone far from the speaker
        assert reference.similarity(stretch) >= ECHO_SIMILARITY + 0.15, start_s
        assert reference.similarity(quieter) >= ECHO_SIMILARITY + 0.15, start_s


def test_other_speech_in_the_same_voice_and_silence_are_not_its_echo():
    reference = played(ANSWER)
    for question in FINISHED[:6]:
        other = through_opus(said(question), 1)
        for start_s in (0.1, 0.4):
            assert reference.similarity(other[int(start_s * 32000):int((start_s + 0.3) * 32000)]) < ECHO_SIMILARITY
    assert reference.similarity(bytes(9600)) == 0.0  # digital silence matches everything: it means nothing
    assert EchoReference().similarity(through_opus(said(ANSWER), 1)[:9600]) == 0.0  # nothing played yet


def test_status_gives_the_median_of_each_stage_from_the_end_of_speech():
    now = [0.0]
    times = TurnTimes(keep=3, clock=lambda: now[0])
    for n, (transcript, token, audio) in enumerate([(0.2, 0.3, 0.6), (0.4, 0.5, 0.9), (0.3, 0.35, 0.7)]):
        turn = f"u{n}"
        now[0] = 10.0 * n
        times.speech_ended(turn)
        for stage, after in (("transcript", transcript), ("first_token", token), ("first_audio", audio)):
            now[0] = 10.0 * n + after
            times.mark(turn, stage)
            times.mark(turn, stage)  # a later draft of the same answer: the first counts
    times.mark("typed-question", "first_token")  # not a spoken turn: not counted
    assert times.summary() == ("Last 3 voice turns, median from the end of speech: transcript 0.30 s, "
                               "first token 0.35 s, first audio 0.70 s")
    now[0] = 40.0
    times.speech_ended("u3")  # a fourth: the oldest goes
    assert len(times.last()) == 3 and times.last()[-1] == {}
    assert TurnTimes().summary() == ""
