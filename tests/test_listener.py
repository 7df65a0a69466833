"""The Listener in process (issue 17), on the real Vosk engine: speech handed in as a voice transport hands it
(``HearSpeech`` chunks, then ``SpeechEnded``) is recognized while it arrives, recorded once as ``UtteranceHeard``
only with consent, answered like a message, and its audio kept as a clip that retention and forget-me delete."""
from __future__ import annotations

import wave
from datetime import datetime, timedelta, timezone

from actors.commands import ControlListening, ForgetPerson, HearSpeech, PurgeAudio, SpeechEnded
from tests.helpers import CapturedConsole, settings_for, wait_for
from tests.test_hearing import WAV, engine, model_path  # noqa: F401  (fixtures: engine needs model_path)

PCM = wave.open(str(WAV)).readframes(10**9)  # 16 kHz mono: what the voice transport hands in


def listen(action: str, person: str = "admin", admin: bool = True, n: int = 0) -> ControlListening:
    return ControlListening(source="chat", conversation_id="chat:text", channel_id="text", message_id=f"c{n}{person}{action}",
                            author_id=person, author_name=person.title(), action=action, guild_id="g",
                            is_admin=admin)


def speak(system, utterance: str, person: str = "ann") -> None:  # noqa: ANN001
    for at in range(0, len(PCM), 3200):  # 100 ms chunks
        system.router.dispatch(HearSpeech("chat", "g", "lounge", person, person.title(), utterance, PCM[at:at + 3200]))
    system.router.dispatch(SpeechEnded("chat", "g", person, utterance))


def test_speech_is_heard_only_with_consent_answered_and_its_clip_follows_retention_and_forget_me(
        tmp_path, llm_server, engine):  # noqa: F811
    from run import build

    console = CapturedConsole()
    system = build(settings_for(tmp_path, llm_server.base_url), {"chat": console}, speech=engine)
    try:
        speak(system, "u1")  # listening is off here: nothing recognized, nothing kept
        system.router.dispatch(listen("on", "bob", admin=False))
        system.router.dispatch(listen("on"))
        wait_for(lambda: any("I'm listening" in line for line in console.lines()), what="the announcement")
        assert any("Only this server's admins" in line for line in console.lines())
        assert system.settle()
        assert not list(system.store.read_all(types=["UtteranceHeard"])) and not list((tmp_path / "audio").glob("*"))

        speak(system, "u2")
        heard = wait_for(lambda: [r.event for r in system.store.read_all(types=["UtteranceHeard"])], timeout=30,
                         what="the utterance")[0]
        assert heard.transcript and (heard.message_id, heard.channel_id, heard.speaker_id) == ("u2", "text", "ann")
        assert heard.conversation_id == "chat:voice:lounge" and abs(heard.duration_s - len(PCM) / 32000) < 0.01
        wait_for(lambda: any(line.startswith("echo: " + heard.transcript) for line in console.lines()),
                 what="the answer")
        clip = tmp_path / "audio" / heard.audio_hash
        assert clip.is_file() and wave.open(str(clip)).readframes(10**9) == PCM

        system.router.dispatch(listen("me off", "ann", admin=False, n=1))
        speak(system, "u3")  # opted out: dropped
        system.router.dispatch(listen("me on", "ann", admin=False, n=2))
        speak(system, "u4")
        wait_for(lambda: len(list(system.store.read_all(types=["UtteranceHeard"]))) == 2, timeout=30, what="u4")
        assert system.settle()
        assert [r.event.message_id for r in system.store.read_all(types=["UtteranceHeard"])] == ["u2", "u4"]

        system.router.dispatch(PurgeAudio((datetime.now(timezone.utc) + timedelta(days=1)).isoformat()))
        wait_for(lambda: not clip.is_file(), what="the clip purged")  # the words stay in the log
        def purges() -> list:
            return sorted((r.stream, r.event.audio_hash) for r in system.store.read_all(types=["AudioPurged"]))
        # Recorded once per utterance (u2 and u4 said the same, so they share one content-addressed file).
        assert wait_for(lambda: len(purges()) == 2 and purges(), what="AudioPurged") == \
            [("clip:chat:u2", heard.audio_hash), ("clip:chat:u4", heard.audio_hash)]
        system.router.dispatch(PurgeAudio((datetime.now(timezone.utc) + timedelta(days=1)).isoformat()))
        assert system.settle() and len(purges()) == 2  # a second run records nothing again
        speak(system, "u5")
        wait_for(lambda: len(list(system.store.read_all(types=["UtteranceHeard"]))) == 3, timeout=30, what="u5")
        fifth = [r.event for r in system.store.read_all(types=["UtteranceHeard"])][-1]
        assert (tmp_path / "audio" / fifth.audio_hash).is_file()
        system.router.dispatch(ForgetPerson("ann"))
        wait_for(lambda: not (tmp_path / "audio" / fifth.audio_hash).is_file(), what="forget-me deletes the clip")
        assert system.settle()
        assert {r.event.transcript for r in system.store.read_all(types=["UtteranceHeard"])} == {"(forgotten)"}
    finally:
        system.stop()
