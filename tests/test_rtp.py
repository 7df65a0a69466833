"""Discord's voice packets (issue 17), unit by unit: RTP opened in both ``rtpsize`` transport modes, the header
extension and the padding taken off before DAVE, and anything else refused with a reason — fuzzed."""
from __future__ import annotations

import os

import pytest
from hypothesis import given, settings, strategies as st

from adapters.discord.rtp import AES_GCM, XCHACHA, BadPacket, is_rtcp, open_packet, seal_packet

KEY = os.urandom(32)


@pytest.mark.parametrize("mode", [XCHACHA, AES_GCM])
@given(payload=st.binary(min_size=1, max_size=400), words=st.integers(0, 4), padding=st.integers(0, 255),
       sequence=st.integers(0, 65535), ssrc=st.integers(0, 2**32 - 1))
@settings(max_examples=60, deadline=None)
def test_a_sealed_frame_opens_to_the_same_frame_with_extension_and_padding_taken_off(mode, payload, words, padding,
                                                                                    sequence, ssrc):
    datagram = seal_packet(mode, KEY, sequence, 960 * sequence, ssrc, payload, counter=sequence + 7,
                           extension=os.urandom(4 * words), padding=padding)
    packet = open_packet(datagram, mode, KEY)
    assert (packet.payload, packet.sequence, packet.ssrc) == (payload, sequence, ssrc)


def test_a_packet_sealed_with_another_key_or_mode_is_refused_not_garbled():
    datagram = seal_packet(XCHACHA, KEY, 1, 960, 5, b"opus frame", counter=1)
    for mode, key in ((XCHACHA, os.urandom(32)), (AES_GCM, KEY)):
        with pytest.raises(BadPacket) as refused:
            open_packet(datagram, mode, key)
        assert refused.value.reason == "decrypt"
    with pytest.raises(BadPacket) as refused:
        open_packet(datagram, "xsalsa20_poly1305", KEY)  # a mode Parley does not speak
    assert refused.value.reason == "mode"


def test_rtcp_and_video_are_not_audio():
    rtcp = bytes([0x81, 201]) + bytes(30)  # a receiver report
    assert is_rtcp(rtcp)
    with pytest.raises(BadPacket) as refused:
        open_packet(rtcp, XCHACHA, KEY)
    assert refused.value.reason == "rtcp"
    video = bytearray(seal_packet(XCHACHA, KEY, 1, 960, 5, b"frame", counter=1))
    video[1] = 101  # a video payload type
    with pytest.raises(BadPacket) as refused:
        open_packet(bytes(video), XCHACHA, KEY)
    assert refused.value.reason == "not_audio"


@given(st.data())
@settings(max_examples=300, deadline=None)
def test_mutated_or_random_datagrams_are_refused_with_a_reason_and_nothing_else(data):
    sealed = seal_packet(XCHACHA, KEY, 9, 960, 77, data.draw(st.binary(min_size=1, max_size=200)), counter=3,
                         extension=bytes(4 * data.draw(st.integers(0, 2))), padding=data.draw(st.integers(0, 9)))
    mutated = bytearray(sealed)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(mutated) - 1))
        mutated[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(mutated)))
    for datagram in (bytes(mutated), bytes(mutated[:cut]), data.draw(st.binary(max_size=120))):
        try:
            packet = open_packet(datagram, XCHACHA, KEY)
        except BadPacket as e:
            assert e.reason in ("short", "not_rtp", "rtcp", "not_audio", "decrypt", "padding")
        else:  # the AEAD covers every byte: only the packet as it was sealed opens
            assert datagram == sealed and packet.ssrc == 77
