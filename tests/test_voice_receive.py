"""The receive path of a voice channel (issue 17), on real ``davey`` sessions and real RTP, without a network:
``VoiceReceiver`` fed datagrams as discord.py's socket reader would. Each person's decoded audio must be exactly
the reference decode of the Opus they sent, through re-keys, reconnects, early frames and unknown SSRCs; what
cannot be read is held, then dropped and counted, and never reaches the Opus decoder."""
from __future__ import annotations

import time

import pytest

from actors.commands import HearSpeech, SpeechEnded
from adapters.discord.listening import HOLD_S, ListeningPolicy, VoiceReceiver
from adapters.opus_audio import SILENCE_FRAME
from tests.fakes.dave_call import Call
from tests.helpers import wait_for
from tests.test_listening import QUESTION, reference_pcm

GUILD = 77


class Heard:
    def __init__(self) -> None:
        self.commands: list[object] = []

    def __call__(self, command: object) -> None:
        self.commands.append(command)

    def pcm(self, user_id: int) -> bytes:
        return b"".join(c.pcm for c in self.commands if isinstance(c, HearSpeech) and c.user_id == str(user_id))

    def ended(self, user_id: int) -> list[str]:
        return [c.utterance_id for c in self.commands if isinstance(c, SpeechEnded) and c.user_id == str(user_id)]


@pytest.fixture
def call():
    return Call()


def receiver(call: Call, heard: Heard, opted_out: frozenset[str] = frozenset(), silence_s: float = 0.3,
             listening: bool = True, **options: float) -> VoiceReceiver:
    policy = ListeningPolicy()
    policy.set(str(GUILD), listening, opted_out)
    return VoiceReceiver(GUILD, lambda: call.state, policy, heard, lambda user: f"user{user}", silence_s, call.bot_id,
                         **options)


def speaking(r: VoiceReceiver, person) -> None:  # noqa: ANN001
    r.on_voice_message({"op": 5, "d": {"user_id": str(person.user_id), "ssrc": person.ssrc, "speaking": 1}})


def test_two_people_speaking_at_once_are_each_heard_exactly(call):
    heard = Heard()
    a, b = call.join(2, 2002), call.join(3, 3003)  # b's join re-keys the group a is in
    r = receiver(call, heard)
    speaking(r, a), speaking(r, b)
    for n, packet in enumerate(QUESTION):  # interleaved, with header extensions and padding on some
        r.on_datagram(call.datagram(a, packet, extension=bytes(8) if n % 3 == 0 else b""))
        r.on_datagram(call.datagram(b, QUESTION[-1 - n], padding=5 if n % 4 == 0 else 0))
    r.on_datagram(call.datagram(a, SILENCE_FRAME, e2ee=False))  # silence goes in the clear: not speech
    wait_for(lambda: heard.ended(a.user_id) and heard.ended(b.user_id), what="both utterances ended")
    r.close()
    assert heard.pcm(a.user_id) == reference_pcm(QUESTION)
    assert heard.pcm(b.user_id) == reference_pcm(QUESTION[::-1])
    assert r.counts["heard"] == 2 * len(QUESTION) and r.counts["silence"] == 1
    assert len(heard.ended(a.user_id)) == 1 and heard.ended(a.user_id) != heard.ended(b.user_id)


def test_a_join_mid_sentence_and_a_reconnect_lose_nothing(call):
    heard = Heard()
    a = call.join(2, 2002)
    r = receiver(call, heard, silence_s=5)
    speaking(r, a)
    half = len(QUESTION) // 2
    for packet in QUESTION[:half // 2]:
        r.on_datagram(call.datagram(a, packet))
    call.join(3, 3003)  # someone joins: a new epoch, new keys for everyone
    for packet in QUESTION[half // 2:half]:
        r.on_datagram(call.datagram(a, packet))
    old = call.rotate_key()  # a reconnect: a new transport key from the voice server
    stale = call.datagram(a, QUESTION[0], key=old)
    a.sequence -= 1  # that one never counted as sent
    for packet in QUESTION[half:]:
        r.on_datagram(call.datagram(a, packet))
    r.on_datagram(stale)  # a packet still sealed with the old key is refused, never decoded
    r.close()
    assert heard.pcm(a.user_id) == reference_pcm(QUESTION)
    assert r.counts["decrypt"] == 1 and r.counts["undecodable"] == 0


def test_frames_before_the_welcome_are_held_and_heard_once_the_keys_arrive(call):
    heard = Heard()
    a = call.join(2, 2002, welcome=False)  # a already encrypts; Parley has not processed its commit yet
    r = receiver(call, heard, silence_s=5)
    speaking(r, a)
    for packet in QUESTION[:10]:
        r.on_datagram(call.datagram(a, packet))
    assert heard.pcm(a.user_id) == b"" and r.counts["held:e2ee"] >= 10
    call.welcome()
    for packet in QUESTION[10:]:
        r.on_datagram(call.datagram(a, packet))
    r.close()
    assert heard.pcm(a.user_id) == reference_pcm(QUESTION)  # in order, none lost
    assert r.counts["recovered"] >= 10 and r.counts["dropped"] == 0


def test_an_unknown_ssrc_is_held_until_mapped_or_dropped_never_decoded(call):
    heard = Heard()
    a, b = call.join(2, 2002), call.join(3, 3003)
    r = receiver(call, heard, silence_s=5, unknown_ssrc_hold_s=HOLD_S)
    for packet in QUESTION[:20]:  # a's packets arrive before Discord says whose SSRC it is
        r.on_datagram(call.datagram(a, packet))
    speaking(r, a)
    for packet in QUESTION[20:]:
        r.on_datagram(call.datagram(a, packet))
    for packet in QUESTION[:5]:  # b's SSRC is never announced
        r.on_datagram(call.datagram(b, packet))
    time.sleep(HOLD_S + 0.3)  # the receiver's own tick gives up on them
    r.close()
    assert heard.pcm(a.user_id) == reference_pcm(QUESTION)
    assert heard.pcm(b.user_id) == b"" and r.counts["dropped"] == 5 and r.counts["heard"] == len(QUESTION)


def test_plain_frames_pass_only_where_the_session_allows_and_ciphertext_never_reaches_the_decoder(call):
    heard = Heard()
    a = call.join(2, 2002)
    r = receiver(call, heard, silence_s=5)
    speaking(r, a)
    for packet in QUESTION[:5]:  # unencrypted while DAVE is on and passthrough is not allowed: never heard
        r.on_datagram(call.datagram(a, packet, e2ee=False))
    time.sleep(HOLD_S + 0.3)
    assert heard.pcm(a.user_id) == b"" and r.counts["dropped"] == 5
    call.state.dave_protocol_version, call.state.dave_session = 0, None  # a downgrade: DAVE off for the call
    plain = [call.datagram(a, packet, e2ee=False) for packet in QUESTION]
    for datagram in plain + plain[-2:]:  # the last two arrive twice: heard once
        r.on_datagram(datagram)
    encrypted = call.datagram(a, QUESTION[0])  # DAVE ciphertext after the downgrade: not Opus, never decoded
    r.on_datagram(encrypted)
    r.close()
    assert heard.pcm(a.user_id) == reference_pcm(QUESTION)
    assert r.counts["undecodable"] == 0 and r.counts["held:e2ee"] == 6 and r.counts["duplicate"] == 2


def test_a_person_who_opted_out_and_parley_itself_are_never_decoded(call):
    heard = Heard()
    a, b = call.join(2, 2002), call.join(3, 3003)
    r = receiver(call, heard, opted_out=frozenset({"3"}), silence_s=5)
    speaking(r, a), speaking(r, b)
    r.on_voice_message({"op": 5, "d": {"user_id": str(call.bot_id), "ssrc": 1111, "speaking": 1}})
    for packet in QUESTION[:30]:
        r.on_datagram(call.datagram(a, packet))
        r.on_datagram(call.datagram(b, packet))
    r.close()
    assert heard.pcm(a.user_id) == reference_pcm(QUESTION[:30]) and heard.pcm(b.user_id) == b""
    assert r.counts["not_listening"] == 30 and r.counts["heard"] == 30


def test_someone_who_leaves_ends_their_utterance_and_loses_their_ssrc(call):
    heard = Heard()
    a = call.join(2, 2002)
    r = receiver(call, heard, silence_s=5)
    speaking(r, a)
    for packet in QUESTION[:10]:
        r.on_datagram(call.datagram(a, packet))
    r.on_voice_message({"op": 13, "d": {"user_id": str(a.user_id)}})  # CLIENT_DISCONNECT
    assert len(heard.ended(a.user_id)) == 1
    r.on_datagram(call.datagram(a, QUESTION[10]))  # their SSRC is nobody's now: held, not decoded as theirs
    r.close()
    assert heard.pcm(a.user_id) == reference_pcm(QUESTION[:10]) and r.counts["held:unknown_ssrc"] == 1


def test_a_repeated_or_late_frame_is_not_heard_twice_and_a_restarted_stream_is_heard(call):
    heard = Heard()
    a = call.join(2, 2002)
    r = receiver(call, heard, silence_s=5)
    speaking(r, a)
    first = [call.datagram(a, p) for p in QUESTION[:10]]
    for datagram in first + first[3:5]:  # two arrive again
        r.on_datagram(datagram)
    a.sequence = (a.sequence - 5000) % 65536  # the stream starts over far behind: heard, not dropped as late
    for packet in QUESTION[10:]:
        r.on_datagram(call.datagram(a, packet))
    r.close()
    assert heard.pcm(a.user_id) == reference_pcm(QUESTION) and r.counts["heard"] == len(QUESTION)
    # the repeats are dropped as such before DAVE (whose replay protection would refuse them as failures)
    assert r.counts["duplicate"] == 2 and r.counts["held:e2ee"] == 0 and not r.failures


def test_the_clients_silence_frames_end_the_utterance_without_waiting_for_the_timeout(call):
    heard = Heard()
    a = call.join(2, 2002)
    r = receiver(call, heard, silence_s=60)  # the timeout alone would take a minute
    speaking(r, a)
    for packet in QUESTION[:20]:
        r.on_datagram(call.datagram(a, packet))
    for _ in range(5):
        r.on_datagram(call.datagram(a, SILENCE_FRAME, e2ee=False))
    wait_for(lambda: heard.ended(a.user_id), what="the utterance ended by the silence frames")
    for packet in QUESTION[20:40]:  # speaking again: a new utterance
        r.on_datagram(call.datagram(a, packet))
    r.close()
    utterances = {c.utterance_id for c in heard.commands if isinstance(c, HearSpeech)}
    assert len(utterances) == 2 and heard.pcm(a.user_id) == reference_pcm(QUESTION[:20]) + reference_pcm(QUESTION[20:40])


def test_a_run_of_frames_that_will_not_decrypt_re_initialises_the_session_once(call):
    from tests.fakes.dave_call import Call as OtherCall

    heard, stuck = Heard(), []
    a = call.join(2, 2002)
    stranger = OtherCall().join(2, 2002)  # the same person, but keyed in a group Parley is not in
    policy = ListeningPolicy()
    policy.set(str(GUILD), True, frozenset())
    r = VoiceReceiver(GUILD, lambda: call.state, policy, heard, str, 5, call.bot_id, on_stuck=lambda: stuck.append(1))
    speaking(r, a)
    for n in range(120):  # over two seconds of frames the session cannot open
        payload = stranger.session.encrypt_opus(QUESTION[n % len(QUESTION)])
        r.on_datagram(seal(call, a, payload))
    r.close()
    assert stuck == [1] and r.counts["reinit"] == 1  # once: the next is not before REINIT_EVERY_S
    assert heard.pcm(a.user_id) == b"" and r.counts["undecodable"] == 0


def test_frames_lost_are_reported_while_hearing_and_retries_are_not_counted_as_more_frames(call, monkeypatch,
                                                                                            caplog):
    import logging

    from adapters.discord import listening
    from tests.fakes.dave_call import Call as OtherCall

    monkeypatch.setattr(listening, "REPORT_EVERY_S", 0.2)
    monkeypatch.setattr(listening, "HOLD_S", 0.5)
    caplog.set_level(logging.WARNING, "parley.listening")
    heard = Heard()
    a = call.join(2, 2002)
    stranger = OtherCall().join(2, 2002)  # keyed in a group Parley is not in: never readable
    r = receiver(call, heard, silence_s=5)
    speaking(r, a)
    for n in range(10):
        r.on_datagram(seal(call, a, stranger.session.encrypt_opus(QUESTION[n])))
    for _ in range(3):
        r.on_datagram(b"\x80\x78\x00")  # cut short
    for n in range(10, 40):  # and then a stretch that is heard
        r.on_datagram(seal(call, a, a.session.encrypt_opus(QUESTION[n])))

    def reported() -> list[str]:
        return [m for m in caplog.messages if "lost since the last report" in m]
    # The cut-short ones at once, the unreadable ones once they were held too long (one line, or two).
    lines = wait_for(lambda: [m for m in reported() if "dropped" in m], what="a report of the frames dropped")
    said = " | ".join(reported())
    assert "short 3" in said and "dropped 10" in lines[0] and "e2ee:NoValidCryptorFound 10" in said, said
    # Retried on every tick while held, they were still 10 frames, not 10 times the retries.
    assert sum(n for k, n in r.counts.items() if k.startswith("e2ee:")) == 10 and r.counts["reinit"] == 0
    for n in range(40, 60):
        r.on_datagram(seal(call, a, a.session.encrypt_opus(QUESTION[n])))
    before = len(reported())
    time.sleep(0.6)  # reports came and went: nothing lost, nothing said
    r.close()
    assert len(reported()) == before and r.counts["heard"] == 50


def seal(call: Call, person, payload: bytes) -> bytes:  # noqa: ANN001
    from adapters.discord.rtp import seal_packet

    call.counter += 1
    person.sequence += 1
    return seal_packet(call.mode, call.key, person.sequence, 960 * person.sequence, person.ssrc, payload, call.counter)


def test_frames_lost_inside_an_utterance_keep_their_time_as_silence(call):
    from adapters.opus_audio import OpusDecoder

    heard = Heard()
    a = call.join(2, 2002)
    r = receiver(call, heard, silence_s=5)
    speaking(r, a)
    for n, packet in enumerate(QUESTION[:40]):
        datagram = call.datagram(a, packet)
        if not 10 <= n < 15:  # five never arrive
            r.on_datagram(datagram)
    r.close()
    decoder = OpusDecoder()
    expected = b"".join(decoder.decode(p) for p in QUESTION[:10]) + OpusDecoder.silence(5) \
        + b"".join(decoder.decode(p) for p in QUESTION[15:40])
    assert heard.pcm(a.user_id) == expected and r.counts["concealed"] == 5
