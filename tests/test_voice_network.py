"""Voice receive on a real network (issue 31): packets reordered, repeated, in bursts, RTCP of any length, audio
before the SPEAKING that names its SSRC. The datagrams are built here from the byte layout the specifications give
(RFC 3550's fixed header, Discord's ``aead_xchacha20_poly1305_rtpsize`` mode: the header is the additional data,
the 32-bit nonce counter trails the datagram), with the DAVE frames from davey's own encryptor: not with Parley's
sealing code. What is heard is compared with the decode of what was sent."""
from __future__ import annotations

import random
import struct

import nacl.bindings

from adapters.discord.listening import ListeningPolicy, VoiceReceiver
from tests.fakes.dave_call import Call
from tests.helpers import wait_for
from tests.test_listening import QUESTION, reference_pcm
from tests.test_voice_receive import GUILD, Heard

OPUS = 120  # the payload type Discord's audio uses


def rtp_datagram(call: Call, person, sequence: int, opus: bytes, counter: int) -> bytes:  # noqa: ANN001
    """RFC 3550: V=2, no padding, no extension, no CSRC; M=0, PT=120; sequence, timestamp (48 kHz: 960 a 20 ms
    frame), SSRC; then the payload sealed with XChaCha20-Poly1305 (the header as additional data, the nonce the
    4-byte counter padded with zeros to 24), then the counter."""
    header = struct.pack(">BBHII", 0x80, OPUS, sequence % 65536, (960 * sequence) % 2 ** 32, person.ssrc)
    frame = person.session.encrypt_opus(opus)
    nonce = struct.pack(">I", counter)
    sealed = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(frame, header, nonce + bytes(20), call.key)
    return header + sealed + nonce


def receiver_for(call: Call, heard: Heard, **options: float) -> VoiceReceiver:
    policy = ListeningPolicy()
    policy.set(str(GUILD), True, frozenset())
    return VoiceReceiver(GUILD, lambda: call.state, policy, heard, lambda user: f"user{user}", 5.0, call.bot_id,
                         **options)


def sent(call: Call, person, frames: list[bytes], first: int = 40000) -> list[bytes]:  # noqa: ANN001
    """The datagrams of ``frames``, in the order they were sent (DAVE encrypts each in that order, as a client)."""
    return [rtp_datagram(call, person, first + n, opus, 7 + n) for n, opus in enumerate(frames)]


def speaking(r: VoiceReceiver, person) -> None:  # noqa: ANN001
    r.on_voice_message({"op": 5, "d": {"user_id": str(person.user_id), "ssrc": person.ssrc, "speaking": 1}})


def test_packets_reordered_by_one_to_three_every_ten_are_heard_exactly(call=None):
    call, heard = Call(), Heard()
    a = call.join(2, 2002)
    r = receiver_for(call, heard)
    speaking(r, a)
    datagrams = sent(call, a, QUESTION, first=65536 - 40)  # the sequence wraps on the way
    arrived = list(datagrams)
    # ordinary internet: one packet late by 1-3 every ten (from the fifth on: the first packet heard starts the stream)
    for start in range(5, len(arrived) - 4, 10):
        late = 1 + start // 10 % 3
        arrived[start:start + late + 1] = arrived[start + 1:start + late + 1] + [arrived[start]]
    for datagram in arrived:
        r.on_datagram(datagram)
    r.close()
    assert heard.pcm(a.user_id) == reference_pcm(QUESTION)  # every block right (it used to lose 27 of 151)
    assert r.counts["heard"] == len(QUESTION) and r.counts["reordered"] >= len(QUESTION) // 10 - 1
    assert r.counts["late"] == r.counts["lost"] == r.counts["concealed"] == 0


def test_a_repeated_packet_is_dropped_before_dave_and_never_counted_as_a_failure_or_a_loss():
    call, heard = Call(), Heard()
    a = call.join(2, 2002)
    r = receiver_for(call, heard)
    speaking(r, a)
    datagrams = sent(call, a, QUESTION)
    for n, datagram in enumerate(datagrams):
        r.on_datagram(datagram)
        if n % 7 == 0:
            r.on_datagram(datagram)  # the network delivered it twice
        if n % 11 == 5:
            r.on_datagram(datagrams[n - 3])  # and an older one again, after others
    r.close()
    repeats = len(range(0, len(QUESTION), 7)) + len(range(5, len(QUESTION), 11))
    assert heard.pcm(a.user_id) == reference_pcm(QUESTION)
    assert r.counts["duplicate"] == repeats and not any(k.startswith("e2ee:") for k in r.counts)
    assert r.counts["lost"] == r.counts["late"] == 0 and not r.failures


def test_a_burst_after_a_stall_and_a_gap_never_filled_keep_their_time():
    call, heard = Call(), Heard()
    a = call.join(2, 2002)
    r = receiver_for(call, heard, jitter_s=0.05)
    speaking(r, a)
    datagrams = sent(call, a, QUESTION)
    gone = {30, 31}  # never arrive
    burst = [d for n, d in enumerate(datagrams) if n not in gone]
    random.Random(7).shuffle(burst[40:50])  # a burst after a stall, shuffled on its way
    for datagram in burst:
        r.on_datagram(datagram)
    r.close()
    from adapters.opus_audio import OpusDecoder
    expected = reference_pcm(QUESTION[:30]) + OpusDecoder.silence(2)  # the gap concealed: its time kept as silence
    assert heard.pcm(a.user_id).startswith(expected)
    assert len(heard.pcm(a.user_id)) == len(reference_pcm(QUESTION))  # the length of what was said
    assert r.counts["lost"] == 2 and r.counts["concealed"] == 2 and r.counts["heard"] == len(QUESTION) - 2


def test_rtcp_of_any_length_is_recognised_and_not_counted_as_a_lost_frame():
    call, heard = Call(), Heard()
    a = call.join(2, 2002)
    r = receiver_for(call, heard)
    speaking(r, a)
    receiver_report = struct.pack(">BBHI", 0x80, 201, 1, a.ssrc)  # RFC 3550 RR with no report blocks: 8 bytes
    sender_report = struct.pack(">BBHI", 0x80, 200, 6, a.ssrc) + bytes(20)  # SR, no blocks: 28 bytes
    for datagram in sent(call, a, QUESTION[:20]):
        r.on_datagram(datagram)
        r.on_datagram(receiver_report)
    r.on_datagram(sender_report)
    r.close()
    assert heard.pcm(a.user_id) == reference_pcm(QUESTION[:20])
    assert r.counts["rtcp"] == 21 and r.counts["short"] == 0 and r.counts["lost"] == 0


def test_audio_seconds_before_the_speaking_that_names_its_ssrc_is_heard_whole():
    call, heard = Call(), Heard()
    a = call.join(2, 2002)
    r = receiver_for(call, heard)
    datagrams = sent(call, a, QUESTION)
    for datagram in datagrams[:120]:  # 2.4 s of audio, whose SSRC nobody has named yet
        r.on_datagram(datagram)
    wait_for(lambda: r.counts["held:unknown_ssrc"] == 120, what="held")
    import time
    time.sleep(2.3)  # longer than a frame waits for its keys (HOLD_S): an unnamed SSRC waits longer
    speaking(r, a)  # the SPEAKING message, late
    for datagram in datagrams[120:]:
        r.on_datagram(datagram)
    r.close()
    assert heard.pcm(a.user_id) == reference_pcm(QUESTION)  # its beginning too
    assert r.counts["recovered"] == 120 and r.counts["dropped"] == 0


from hypothesis import given, settings
from hypothesis import strategies as st


@settings(max_examples=300, deadline=None)
@given(arrivals=st.lists(st.tuples(st.integers(0, 65535), st.floats(0, 0.2)), max_size=80),
       start=st.integers(0, 65535))
def test_whatever_the_network_delivers_the_buffer_passes_each_packet_once_in_order_within_its_window(arrivals, start):
    """Sequence numbers as the network may deliver them (any order, repeats, wraps, jumps), at any times: nothing
    goes on twice, what goes on between two restarts goes in sequence order, and nothing waits past the window."""
    from collections import Counter

    from adapters.discord.jitter import RESTART, JitterBuffer
    from adapters.discord.rtp import RtpPacket

    counts: Counter[str] = Counter()
    buffer: JitterBuffer[RtpPacket] = JitterBuffer(0.06, counts=counts)
    now, passed, arrived_at = 0.0, [], {}
    for offset, gap in arrivals:
        now += gap
        packet = RtpPacket((start + offset) % 65536, 0, 7, b"")
        arrived_at[id(packet)] = (now, packet)  # (the packet kept: its id stays its own)
        for ready in buffer.tick(now) + buffer.push(packet, now):
            passed.append(ready.sequence)
            assert now - arrived_at[id(ready)][0] <= 0.06 + 0.2  # at most the window (and one gap of arrivals)
    passed += [p.sequence for p in buffer.tick(float("inf"))]
    assert len(passed) == len(set(passed))  # never twice
    for a, b in zip(passed, passed[1:]):  # in order, unless the stream started over (a jump past RESTART)
        ahead = (b - a) % 65536
        assert 0 < ahead or ahead > RESTART, (a, b)
    assert len(passed) + counts["duplicate"] + counts["late"] == len(arrivals)  # each arrival accounted for
