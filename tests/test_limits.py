"""Limits (issue 16): a per-person rate limit with one polite refusal per minute, never in the console; a
bounded queue of questions per Responder and of clips per Transcriber, past which people are told at once that
Parley is busy."""
from __future__ import annotations

from actors.access import BUSY, QUIET, RATE_LIMITED, RateLimit
import threading
from dataclasses import replace

from actors.commands import ReceiveAudio, ReceiveMessage, TranscribePending
from actors.conversation.actor import ResponderPool
from actors.hearing.actor import TranscriberPool
from tests.conftest import parley_env, replay_json
from tests.fakes.discord_server import BOT_TOKEN
from tests.helpers import wait_for
from tests.test_discord_e2e import Bot, discord_emulator, final_reply  # noqa: F401  (the emulator fixture)
from tests.test_hearing import engine, model_path  # noqa: F401  (the Vosk fixtures)


def test_the_rate_limit_counts_by_when_messages_were_sent_and_tells_once_a_minute():
    limit = RateLimit(2)
    assert [limit.verdict("ann", t) for t in (0, 1, 2, 3, 30)] == ["", "", RATE_LIMITED, QUIET, QUIET]
    assert limit.verdict("bob", 3) == ""  # per person
    assert limit.verdict("ann", 60.5) == ""  # the first two have left the window
    assert limit.verdict("ann", 61.5) == ""
    assert limit.verdict("ann", 62) == RATE_LIMITED  # a new minute: told again


class Told:
    def __init__(self) -> None:
        self.commands: list[object] = []

    def tell(self, command: object, on_done=None) -> None:  # noqa: ANN001
        self.commands.append(command)
        if on_done is not None:
            on_done()  # handled at once


def test_the_responders_answer_the_console_whatever_the_limit():
    member = Told()
    pool = ResponderPool([member], RateLimit(1))  # type: ignore[list-item]

    def says(source: str, n: int) -> None:
        pool.tell(ReceiveMessage(source=source, conversation_id=f"{source}:c", channel_id="c", message_id=f"m{n}",
                                 author_id="ann", author_name="Ann", text="hi", sent_at=100.0 + n))

    for n in range(3):
        says("console", n)
        says("discord", n)
    refusals = [c.refusal for c in member.commands]  # type: ignore[attr-defined]
    assert refusals == ["", "", "", RATE_LIMITED, ""]  # console x3 answered; discord: one, one refusal, then quiet


def test_on_discord_a_person_over_the_limit_is_told_once_and_others_are_answered(tmp_path, llm_server,
                                                                              discord_emulator):  # noqa: F811
    env = parley_env(tmp_path / "data", llm_server, DISCORD_TOKEN=BOT_TOKEN, PARLEY_RATE_LIMIT="2",
                     DISCORD_API_BASE=discord_emulator.api_base, DISCORD_GATEWAY_URL=discord_emulator.gateway_url)
    bot = Bot(env, discord_emulator).start()
    try:
        alice, bob = discord_emulator.user("Alice"), discord_emulator.user("Bob")
        general = discord_emulator.general
        asked = [discord_emulator.user_says(general, alice, f"question {n}", mention_bot=True) for n in range(4)]
        final_reply(discord_emulator, asked[0], "echo: question 0 [turns=1]")
        final_reply(discord_emulator, asked[1], "echo: question 1 [turns=1]")
        told = wait_for(lambda: discord_emulator.replies_to(asked[2]), what="the polite refusal")
        assert "please wait a minute" in told[0]["content"]
        other = discord_emulator.user_says(general, bob, "my turn?", mention_bot=True)
        final_reply(discord_emulator, other, "echo: my turn? [turns=1]")
        assert discord_emulator.replies_to(asked[3]) == []  # quiet for the rest of the minute
        rejected = [e["data"] for e in replay_json(env) if e["type"] == "MessageRejected"]
        assert [(r["message_id"], r["reason"]) for r in rejected] == [(asked[2]["id"], "rate_limited")]
        # Audio counts too, before anything is downloaded: Carol's third piece of work is refused, the rest quiet.
        carol = discord_emulator.user("Carol")
        clip = lambda n: discord_emulator.attachment(f"clip{n}.ogg", b"OggS" + bytes(1000), "audio/ogg")  # noqa: E731
        sent = [discord_emulator.user_says(general, carol, "hi", mention_bot=True),
                *[discord_emulator.user_says(general, carol, "hear this", mention_bot=True, attachments=[clip(n)])
                  for n in range(3)]]
        told = wait_for(lambda: discord_emulator.replies_to(sent[2]), what="the refusal of the audio")
        assert "please wait a minute" in told[0]["content"]
        wait_for(lambda: discord_emulator.replies_to(sent[1]), what="the first clip's reply")
        assert discord_emulator.downloads == 1 and discord_emulator.replies_to(sent[3]) == []
        failed = [e["data"] for e in replay_json(env) if e["type"] == "TranscriptionFailed"]
        assert sorted(f["reason"] for f in failed) == ["no_model", "rate_limited"]
    finally:
        bot.stop()


def test_a_flood_of_questions_past_the_queue_bound_is_refused_as_busy_at_once_and_the_rest_answered(
        tmp_path, llm_server):
    from run import build
    from tests.helpers import CapturedConsole, settings_for

    llm_server.answer_delay = 0.3  # each answer takes a while: the queue fills
    console = CapturedConsole()
    system = build(settings_for(tmp_path, llm_server.base_url, responders=1, max_waiting=3), {"chat": console})
    try:
        for n in range(10):
            console.expect(f"m{n}")
            system.router.dispatch(ReceiveMessage(source="chat", conversation_id=f"chat:{n}", channel_id="c",
                                                  message_id=f"m{n}", author_id="ann", author_name="Ann",
                                                  text=f"question {n}"))
        wait_for(lambda: len(console.lines()) == 10, timeout=30, what="a reply to every question")
        busy = [line for line in console.lines() if "busy with many questions" in line]
        answered = [line for line in console.lines() if line.startswith("echo:")]
        assert len(busy) == 7 and len(answered) == 3  # 3 waiting (one in hand), the 7 others told at once
        assert len(llm_server.requests) == 3
        rejected = list(system.store.read_all(types=["MessageRejected"]))
        assert sorted(r.event.message_id for r in rejected if r.event.reason == BUSY) == [f"m{n}" for n in range(3, 10)]
        generated = list(system.store.read_all(types=["ResponseGenerated"]))
        assert max(r.position for r in rejected) < generated[0].position  # told at once, not after the queue
    finally:
        system.stop()


def test_the_console_is_never_refused_as_busy():
    member, reception = Told(), Told()
    member.waiting, member.name = 1000, "responder-0"  # type: ignore[attr-defined]
    pool = ResponderPool([member], max_waiting=1, reception=reception)  # type: ignore[list-item,arg-type]
    for source in ("console", "discord"):
        pool.tell(ReceiveMessage(source=source, conversation_id=f"{source}:c", channel_id="c", message_id="m",
                                 author_id="ann", author_name="Ann", text="hi"))
    assert [c.source for c in member.commands] == ["console"]  # type: ignore[attr-defined]
    assert [(c.source, c.refusal) for c in reception.commands] == [("discord", BUSY)]  # type: ignore[attr-defined]


class GatedEngine:
    """The real Vosk engine behind a gate: clips pile up in the queue until the test opens it."""

    def __init__(self, engine) -> None:
        self.engine, self.model_name, self.gate = engine, engine.model_name, threading.Event()

    def transcribe(self, path: str):
        self.gate.wait(60)
        return self.engine.transcribe(path)


def test_a_flood_of_clips_past_the_queue_bound_is_refused_as_busy_at_once_and_the_rest_transcribed(
        tmp_path, llm_server, engine):
    from run import build
    from tests.helpers import CapturedConsole, settings_for
    from tests.test_hearing import WAV, clip

    console = CapturedConsole()
    gated = GatedEngine(engine)
    system = build(settings_for(tmp_path, llm_server.base_url, transcribers=1, max_waiting_clips=2),
                   {"chat": console}, speech=gated)
    try:
        digest, size = system.audio.save_file(WAV)
        for n in range(6):  # not expected in order: each reply printed as it comes
            system.router.dispatch(replace(clip(n, digest, size), source="chat", conversation_id=f"chat:{n}"))
        wait_for(lambda: len(console.lines()) == 4, what="the four told")
        busy = [line for line in console.lines() if "busy listening to many recordings" in line]
        assert len(busy) == 4 and not [r for r in system.store.read_all(types=["TranscriptionCompleted"])]
        gated.gate.set()  # the two that waited are transcribed and answered
        wait_for(lambda: len([line for line in console.lines() if line.startswith("echo:")]) == 2, timeout=60,
                 what="the two waiting clips answered")
        done = [r.event for r in system.store.read_all(types=["TranscriptionCompleted"])]
        failed = [r.event for r in system.store.read_all(types=["TranscriptionFailed"])]
        assert sorted(e.message_id for e in done) == ["m0", "m1"] and all(e.text for e in done)
        assert sorted((e.message_id, e.reason) for e in failed) == [(f"m{n}", "busy") for n in range(2, 6)]
        assert len(list(system.store.read_all(types=["AudioReceived"]))) == 6  # every clip recorded, none lost
    finally:
        gated.gate.set()
        system.stop()


def test_the_console_and_a_restart_s_clips_are_never_refused_as_busy():
    member, reception = Told(), Told()
    member.waiting, member.name = 1000, "transcriber-0"  # type: ignore[attr-defined]
    pool = TranscriberPool([member], max_waiting=1, reception=reception)  # type: ignore[list-item,arg-type]
    for source in ("console", "discord"):
        pool.tell(ReceiveAudio(source=source, conversation_id=f"{source}:c", channel_id="c", message_id="m",
                               author_id="ann", author_name="Ann", audio_hash="h", content_type="audio/ogg",
                               size_bytes=1))
    pool.tell(TranscribePending("discord", "m0"))
    assert [type(c).__name__ + ":" + c.source for c in member.commands] == [  # type: ignore[attr-defined]
        "ReceiveAudio:console", "TranscribePending:discord"]
    assert [(c.source, c.refused) for c in reception.commands] == [("discord", "busy")]  # type: ignore[attr-defined]


class GatedVoice:
    """The real Piper voice behind a gate: voice answers pile up for the Speaker until the test opens it."""

    def __init__(self, engine) -> None:
        self.engine, self.voice_name, self.gate = engine, engine.voice_name, threading.Event()

    def synthesize(self, text: str):
        self.gate.wait(60)
        return self.engine.synthesize(text)


def test_voice_answers_past_the_speakers_bound_go_out_in_writing_only_and_are_not_spoken_after_a_restart(
        tmp_path, llm_server, engine):
    from run import build
    from tests.helpers import CapturedConsole, settings_for
    from tests.test_hearing import WAV, clip

    from adapters.piper_tts import PiperEngine, default_voice

    console = CapturedConsole()
    gated = GatedVoice(PiperEngine(default_voice()))
    settings = settings_for(tmp_path, llm_server.base_url, transcribers=1, max_waiting_speech=2)
    system = build(settings, {"chat": console}, speech=engine, tts=gated)
    try:
        digest, size = system.audio.save_file(WAV)
        for n in range(4):
            system.router.dispatch(replace(clip(n, digest, size), source="chat", conversation_id=f"chat:{n}",
                                           voice_message=True))
        wait_for(lambda: len(list(system.store.read_all(types=["VoiceReplySkipped"]))) == 2, timeout=60,
                 what="two voice answers skipped")
        answered = [r.event for r in system.store.read_all(types=["ResponseGenerated"])]
        assert len(answered) == 4 and all(e.heard for e in answered)  # every one answered in writing
        assert not list(system.store.read_all(types=["VoiceReplyPrepared"]))
        gated.gate.set()  # the two that waited are spoken
        wait_for(lambda: len(list(system.store.read_all(types=["VoiceReplyPrepared"]))) == 2, timeout=60,
                 what="the two waiting voice answers")
        skipped = sorted((r.event.message_id, r.event.reason) for r in system.store.read_all(
            types=["VoiceReplySkipped"]))
        spoken = sorted(r.event.message_id for r in system.store.read_all(types=["VoiceReplyPrepared"]))
        assert spoken == ["m0", "m1"] and skipped == [(f"m{n}", "busy") for n in range(2, 4)]
        assert system.settle()
        assert system.clips.unspoken() == []  # a restart speaks none of the skipped answers late
    finally:
        gated.gate.set()
        system.stop()


def test_the_console_is_never_refused_by_the_speaker():
    from actors.commands import Say, SpeakAnswer
    from actors.speaking.actor import SpeakerQueue

    speaker, reception = Told(), Told()
    speaker.waiting = 1000  # type: ignore[attr-defined]
    queue = SpeakerQueue(speaker, max_waiting=1, reception=reception)  # type: ignore[arg-type]
    for source in ("console", "discord"):
        queue.tell(Say(source=source, conversation_id=f"{source}:c", channel_id="c", message_id="m",
                       author_id="ann", author_name="Ann", text="hi"))
        queue.tell(SpeakAnswer(source, f"{source}:c", "c", "m2", "hello"))
    assert [(type(c).__name__, c.source) for c in speaker.commands] == [  # type: ignore[attr-defined]
        ("Say", "console"), ("SpeakAnswer", "console")]
    assert [(type(c).__name__, c.refused) for c in reception.commands] == [  # type: ignore[attr-defined]
        ("Say", "busy"), ("SpeakAnswer", "busy")]


def test_one_persons_flood_never_queues_ahead_of_anyone_elses_work():
    from actors.fair_share import FairShare

    share, inbox, finish = FairShare(per_person=2), [], {}

    def job(name: str):  # noqa: ANN202
        def start(done) -> None:  # noqa: ANN001
            inbox.append(name)
            finish[name] = done
        return start

    for n in range(100):
        share.submit("mallory", job(f"m{n}"))
    share.submit("alice", job("a0"))
    assert inbox == ["m0", "m1", "a0"]  # Alice's question is third in line, not 101st
    assert share.waiting("mallory") == 98 and share.waiting("alice") == 0
    finish["m0"]()
    assert inbox[-1] == "m2"  # Mallory's next goes in only as one of hers finishes, in her order
    finish["a0"]()
    share.submit("alice", job("a1"))
    assert inbox[-1] == "a1"
