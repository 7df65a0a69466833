"""Parley's entry point and composition root: the one place that builds and wires everything.

    python run.py              the Discord bot (or the console when DISCORD_TOKEN is not set)
    python run.py console      answer lines from stdin on stdout
    python run.py replay       print the event log          (every subcommand: python run.py --help)

How it is wired reads in two tables, as in cosmicpython's ``bootstrap.py``: ``CAPABILITIES`` says, room by
room, which actors a capability starts, which commands they own and which events it reacts to (a reaction
returns the command it asks for); ``build`` injects the dependencies (``Wiring``) and routes by that table.
``COMMANDS`` is the command-line table; the subcommands live in ``adapters/cli/``.
"""
from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from actors.access import RateLimit
from actors.commands import (AnswerPending, ApologizeFor, ClearMemory, ControlVoice, ForgetPerson, PollFineTune,
                             PurgeAudio, ReceiveAudio, ReceiveMessage, RecordCatchUp, RecordConnection, RecordCutOff,
                             RecordSynthesis, RejoinVoice, ReportPlayback, ReportVoiceBack, ReportVoiceLost,
                             ResumeFineTunes, Say, SpeakAnswer, SpeakInVoice, TranscribePending, VoteAnswer)
from actors.conversation import decider as conversation
from actors.conversation.actor import ResponderActor, ResponderConfig, ResponderPool, give_up as give_up_answer
from actors.corrections.actor import CORRECTION_COMMANDS, CorrectionLogActor, LookAgain
from actors.corrections.decider import Answered
from actors.desk.actor import DeskActor
from actors.hearing.actor import TranscriberActor, TranscriberPool
from actors.hearing.decider import AudioLimits
from actors.learning.actor import (LEARNING_COMMANDS, AbandonCommand, LearnCorrection, RecordEvaluation,
                                   ReloadLearning, TrainerActor, TrainerConfig, give_up as give_up_command)
from actors.learning.teaching import lookup
from actors.tuning.actor import TUNING_COMMANDS, AbandonTuning, FineTunerActor, ReloadTuning, TunerConfig
from actors.tuning.actor import give_up as give_up_tuning
from actors.tuning.models import ModelChoice
from actors.listening.actor import LISTENING_COMMANDS, ListenerActor
from actors.outbox import Deliver, OutboxActor, reply_from
from actors.policies import approved_correction, speak_answer, turn_heard, turn_said
from actors.ports import ChatModel, ReplyTransport, SpeechToText, TextToSpeech, VoiceChannels
from actors.privacy.actor import PRIVACY_COMMANDS, PrivacyActor
from actors.router import Capability, Handler, Router, wire
from actors.speaking.actor import SpeakerActor, SpeakerQueue
from actors.supervisor import Supervised
from actors.system import Parley
from actors.voice.actor import GuildSpeakerActor, GuildSpeakers
from actors.voice.live import LiveAnswers, LiveSpeech
from adapters.audio_files import AudioStore
from adapters import cli
from adapters.cli import audit, bot, hearing, learning, log, privacy, projections, speaking
from adapters.config import Settings, prepare_data_dir, with_llm_backend
from adapters.forgetting import DiskForgetting
from adapters.learning_files import LearningFiles
from adapters.piper_tts import VoiceChoice
from adapters.turn_model import turn_taking
from events import EventStore, RecordedEvent, open_store
from events.catalog.conversation import ResponseFailed, ResponseGenerated
from events.catalog.corrections import CorrectionRecorded, CorrectionReviewed
from events.catalog.delivery import REPLY_EVENTS
from events.catalog.hearing import TranscriptionCompleted
from events.catalog.learning import ModelActivated
from events.catalog.listening import UtteranceHeard
from events.catalog.privacy import PersonForgotten
from projections.registry import following
from projections.tracking import open_read_models


@dataclass
class Wiring:
    """What the capabilities' actors are started with: the dependencies injected into them."""

    settings: Settings
    data_dir: Path
    store: EventStore
    router: Router
    system: Parley  # it starts and supervises each actor (``system.supervise``)
    llm: ChatModel
    speech: SpeechToText | None
    voice: VoiceChoice  # the Piper voice, loaded on first use
    voices: Mapping[str, VoiceChannels]  # the transports' voice channels
    speech_files: AudioStore  # synthesized speech (speech/<hash>.wav)
    live: LiveSpeech | None = None  # answers said in voice channels while they are written

    def actor(self, name: str, actor_class: type, *args: object, **supervision: object) -> Supervised:
        return self.system.supervise(name, actor_class, *args, **supervision)


# -- each capability's actors ------------------------------------------------------------------------
def start_responders(w: Wiring) -> Handler:
    s = w.settings
    # With a known context window, the prompt leaves room for a whole answer (4 characters a token).
    prompt_chars = max(s.llm_context_tokens - s.max_answer_tokens, 1) * 4 if s.llm_context_tokens else 0
    config = ResponderConfig(s.system_prompt, s.context_turns, conversation.Limits(s.max_input_chars), prompt_chars,
                             s.few_shot)
    def responder(name: str) -> Supervised:
        drafts = lambda d: (w.system.draft(d), w.live.draft(d))  # noqa: E731  # shown, and said while written
        return w.actor(name, ResponderActor, w.llm, config, w.system.model, drafts, w.system.wants_drafts,
                       lookup(w.system.datasets.similar), give_up=give_up_answer)
    return ResponderPool([responder(f"responder-{i}") for i in range(s.responders)], w.system.rate, s.max_waiting,
                         responder("reception") if s.max_waiting else None)


def start_transcribers(w: Wiring) -> Handler:
    s, limits = w.settings, AudioLimits(w.settings.max_audio_mb, w.settings.max_audio_seconds)
    transcriber = lambda name: w.actor(name, TranscriberActor, w.speech, w.system.audio, limits)  # noqa: E731
    return TranscriberPool([transcriber(f"transcriber-{i}") for i in range(s.transcribers)], s.max_waiting_clips,
                           transcriber("transcriber-reception") if s.max_waiting_clips else None)


def start_speaker(w: Wiring) -> Handler:
    from adapters.audio_out import voice_note
    speaker = lambda name: w.actor(name, SpeakerActor, w.voice, w.speech_files, w.settings.max_spoken_chars,  # noqa: E731
                                   w.system.voice_notes, voice_note)
    return SpeakerQueue.started(speaker, w.settings.max_waiting_speech)


def start_guild_speakers(w: Wiring) -> Handler:  # one per guild, started when it is first spoken to
    return GuildSpeakers(lambda key: w.actor(f"voice-{key}", GuildSpeakerActor, w.voices[key.split(":", 1)[0]],
                                             w.voice, w.speech_files, w.settings.max_spoken_chars, w.router.dispatch))


def start_trainer(w: Wiring) -> Handler:
    s, config = w.settings, TrainerConfig(w.settings.command_prefix, w.settings.system_prompt, w.settings.few_shot)
    return w.actor("trainer", TrainerActor, LearningFiles(w.data_dir, s.max_import_mb * 1024 * 1024), w.llm,
                   w.system.model, config, w.system.later, give_up=give_up_command)


def start_finetuner(w: Wiring) -> Handler:
    from adapters.fine_tuning import on_first_use
    s = w.settings
    config = TunerConfig(s.system_prompt, s.training_poll_s, s.chat_model, max_example_tokens=s.training_max_tokens)
    return w.actor("finetuner", FineTunerActor, LearningFiles(w.data_dir, s.max_import_mb * 1024 * 1024),
                   on_first_use(s), config, w.system.later, w.system.draft, w.system.wants_drafts,
                   give_up=give_up_tuning)


def start_correction_log(w: Wiring) -> Handler:
    def find_answer(source: str, message_id: str, by_question: bool) -> tuple[Answered | None, str]:
        row, why = w.system.answers.find(source, message_id, by_question)
        return (Answered(source, *row), "") if row else (None, why)

    return w.actor("corrections", CorrectionLogActor, find_answer, w.system.later, w.system.answers.suggestions)


def start_privacy(w: Wiring) -> Handler:
    return w.actor("privacy", PrivacyActor, DiskForgetting(w.store, w.data_dir, w.system.audio))


# -- what an event asks of another capability: the command it returns (None: nothing) ------------------
def turn_of_transcript(w: Wiring, r: RecordedEvent) -> object:
    return turn_heard(r.event, w.store.read_stream)  # type: ignore[arg-type]


def voice_message_of_answer(w: Wiring, r: RecordedEvent) -> object:
    return speak_answer(r.event) if w.settings.voice_replies else None  # type: ignore[arg-type]


def use_activated_model(w: Wiring, r: RecordedEvent) -> None:
    w.system.model.activate(r)


# Each room: its actors, the commands they own, {event type(s): reaction}, the bot commands it answers by name,
# and the reactions to events that any process (several on one PostgreSQL store) appends.
CAPABILITIES: dict[str, Capability[Wiring]] = {
    "conversation": Capability(start_responders, (ReceiveMessage, AnswerPending, ClearMemory, RecordCutOff), {
        TranscriptionCompleted: turn_of_transcript, UtteranceHeard: lambda w, r: turn_said(r.event)},  # type: ignore[arg-type]
        everywhere={PersonForgotten: lambda w, r: ClearMemory()}),
    "hearing": Capability(start_transcribers, (ReceiveAudio, TranscribePending, PurgeAudio)),
    "speaking": Capability(start_speaker, (Say, SpeakAnswer), {
        ResponseGenerated: voice_message_of_answer}),
    "voice": Capability(start_guild_speakers, (ControlVoice, SpeakInVoice, ReportPlayback, RecordSynthesis,
                                               ReportVoiceLost, ReportVoiceBack, RejoinVoice), {
        ResponseGenerated: lambda w, r: w.live.answered(r.event), ResponseFailed: lambda w, r: w.live.failed(r.event)}),  # type: ignore
    "learning": Capability(start_trainer, (RecordEvaluation, AbandonCommand, LearnCorrection, ReloadLearning), {
        CorrectionRecorded: lambda w, r: LearnCorrection(r.event),  # type: ignore[arg-type]
        CorrectionReviewed: lambda w, r: approved_correction(r.event, w.store.read_stream)},  # type: ignore[arg-type]
        named=LEARNING_COMMANDS, everywhere={PersonForgotten: lambda w, r: ReloadLearning()}),
    "tuning": Capability(start_finetuner, (PollFineTune, ResumeFineTunes, AbandonTuning, ReloadTuning),
                         named=TUNING_COMMANDS, everywhere={ModelActivated: use_activated_model,
                                                            PersonForgotten: lambda w, r: ReloadTuning()}),
    "corrections": Capability(start_correction_log, (VoteAnswer, LookAgain), named=CORRECTION_COMMANDS),
    "privacy": Capability(start_privacy, (ForgetPerson,), named=PRIVACY_COMMANDS, everywhere={
        PersonForgotten: lambda w, r: w.store.forgotten(r.event.person)}),  # no copy of their key in memory
    "listening": Capability(lambda w: w.actor("listener", ListenerActor, w.speech, w.system.audio, w.voices,
                                              *turn_taking(w.settings, w.speech, w.system.turn_times)), LISTENING_COMMANDS),
    "desk": Capability(lambda w: w.actor("desk", DeskActor, w.system.status, w.settings.command_prefix),
                       (RecordConnection, RecordCatchUp, ApologizeFor)),  # and every bot command not named above
    "outbox": Capability(lambda w: w.actor("outbox", OutboxActor, w.system.transports), (Deliver,),
                         {REPLY_EVENTS: lambda w, r: Deliver(reply_from(r.event))}),  # type: ignore[arg-type]
}


def build(settings: Settings, transports: dict[str, ReplyTransport], llm: ChatModel | None = None,
          speech: SpeechToText | None = None, tts: TextToSpeech | None = None,
          voices: dict[str, VoiceChannels] | None = None) -> Parley:
    """Open the store, rebuild the read models, start the actors, and wire them to ``transports`` (and
    to ``voices``, the transports' voice channels)."""
    settings, data_dir = with_llm_backend(settings), prepare_data_dir(settings.data_dir)
    store = open_store(settings.event_store, data_dir)
    if llm is None:
        from adapters.llm import chat_for

        llm = chat_for(settings)
    read = following(store, open_read_models(store, data_dir), applies=settings.read_models == "here")
    router = Router()
    system = Parley(settings, store, router, read.conversations, read.pending_replies,
                    ModelChoice(settings.chat_model, read.datasets.active_models()), transports, read.runner, llm,
                    audio=AudioStore(data_dir, settings.max_audio_mb * 1024 * 1024),
                    voice_notes=AudioStore(data_dir, 64 * 1024 * 1024, folder="speech", suffix=".ogg"),
                    voice_sessions=read.voice_sessions, datasets=read.datasets, answers=read.answers,
                    clips=read.clips, rate=RateLimit(settings.rate_limit) if settings.rate_limit else None)
    if speech is None and settings.vosk_model_path is not None:
        from adapters.speech import VoskEngine

        speech = VoskEngine(settings.vosk_model_path, settings.max_audio_seconds)
        speech.preload()  # the first voice message need not wait for the model
    speech_files = AudioStore(data_dir, 512 * 1024 * 1024, folder="speech", suffix=".wav")
    deps = Wiring(settings, data_dir, store, router, system, llm, speech, VoiceChoice(settings.piper_voice, tts),
                  voices or {}, speech_files)
    deps.live = LiveSpeech(LiveAnswers(), deps.voices, router.dispatch, system.turn_times)
    wire(router, CAPABILITIES, deps, answers_the_rest="desk", follow_log=system.follow_log)
    if not settings.shard_count:  # a shard finishes its own channels' work once it knows its guilds
        system.finish()
    if settings.audio_retention_days > 0:
        system.start_retention(settings.audio_retention_days)
    return system


# -- the command line: subcommand -> function (settings, args) -> exit status ------------------------------
COMMANDS: dict[str | None, Callable[[Settings, argparse.Namespace], int]] = {
    None: functools.partial(bot.bot, build=build), "bot": functools.partial(bot.bot, build=build),
    "console": functools.partial(bot.console, build=build),
    "replay": log.replay, "status": log.status,
    "transcribe": hearing.transcribe, "models": hearing.models,
    "purge-audio": functools.partial(hearing.purge_audio, build=build), "say": speaking.say,
    "evaluate": learning.evaluate_command, "finetune": learning.finetune_command, "audit": audit.audit,
    "projections": projections.projections_command, "corrections": projections.list_command,
    "feedback": projections.list_command, "forget": privacy.forget_command,
}


def main(argv: list[str] | None = None) -> int:
    return cli.main(COMMANDS, argv)


if __name__ == "__main__":
    sys.exit(main())
