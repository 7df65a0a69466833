"""The guild voice session decider: pure, no Discord, no Piper."""
from __future__ import annotations

from actors.voice import decider as vs
from actors.commands import ControlVoice, ReportPlayback, ReportVoiceBack, ReportVoiceLost, SpeakInVoice
from events.catalog.messages import CommandAnswered, CommandRejected
from events.catalog.voice import (PlaybackInterrupted, PlaybackPaused, PlaybackResumed, VoiceChannelJoined,
                                  VoiceChannelLeft)


def control(action: str, n: int = 1, channel: str | None = "v1", name: str = "Lounge") -> ControlVoice:
    return ControlVoice(source="discord", conversation_id="discord:channel:t", channel_id="t", message_id=f"m{n}",
                        author_id="alice", author_name="Alice", action=action, guild_id="g",
                        voice_channel_id=channel, voice_channel_name=name)


def fold(*events) -> vs.VoiceSession:
    state = vs.VoiceSession()
    for e in events:
        state = vs.evolve(state, e)
    return state


def joined(channel: str = "v1", name: str = "Lounge") -> vs.VoiceSession:
    return fold(*vs.decide_control(vs.VoiceSession(), control("join", 0, channel, name), None))


def reason(events) -> str:
    (event,) = events
    assert isinstance(event, CommandRejected)
    return event.reason


def test_join_needs_the_caller_in_voice_and_records_the_channel():
    assert reason(vs.refuse(vs.VoiceSession(), control("join", channel=None), busy=False)) == "not_in_voice"
    assert vs.refuse(vs.VoiceSession(), control("join"), busy=False) is None  # go and connect
    events = vs.decide_control(vs.VoiceSession(), control("join"), None)
    assert isinstance(events[0], VoiceChannelJoined) and events[0].reason == "command" and events[0].by == "alice"
    assert fold(*events).channel_id == "v1"
    failed = vs.decide_control(vs.VoiceSession(), control("join"), "davey library needed")
    assert reason(failed) == "voice_unavailable" and "davey" in failed[0].reply_text


def test_join_elsewhere_moves_unless_it_is_speaking_there():
    state = joined()
    assert reason(vs.refuse(state, control("join", 2, "v2", "Studio"), busy=True)) == "busy"
    assert vs.refuse(state, control("join", 2, "v2", "Studio"), busy=False) is None
    moved = vs.decide_control(state, control("join", 2, "v2", "Studio"), None)
    assert [type(e) for e in moved] == [VoiceChannelLeft, VoiceChannelJoined, CommandAnswered]
    already = vs.refuse(state, control("join", 3), busy=False)
    assert isinstance(already[0], CommandAnswered) and "already" in already[0].text


def test_leave_stop_skip_say_so_when_there_is_nothing_to_do():
    assert reason(vs.refuse(vs.VoiceSession(), control("leave"), busy=False)) == "not_in_voice"
    assert reason(vs.refuse(joined(), control("stop"), busy=False)) == "nothing_playing"
    assert reason(vs.refuse(joined(), control("skip"), busy=False)) == "nothing_playing"
    assert vs.refuse(joined(), control("skip"), busy=True) is None
    assert reason(vs.refuse(joined(), control("loud"), busy=False)) == "unknown"


def test_a_redelivered_command_is_not_answered_twice():
    state = fold(*vs.decide_control(vs.VoiceSession(), control("join", 7), None))
    assert vs.refuse(state, control("join", 7), busy=False) == []


def test_voice_off_keeps_answers_written_only():
    about = SpeakInVoice("discord", "g", "c", "t", "m9", "Hello.")
    state = joined()
    assert vs.speaks(state, about, "Hello.")
    off = fold(*vs.decide_control(vs.VoiceSession(), control("join", 0), None), *vs.refuse(state, control("off", 2), False))
    assert not vs.speaks(off, about, "Hello.") and not vs.speaks(state, about, "")
    assert not vs.speaks(vs.VoiceSession(), about, "Hello.")  # not in a channel


def test_playback_is_recorded_once_and_a_kick_interrupts_it():
    about = SpeakInVoice("discord", "g", "c", "t", "m9", "Hello.")
    state = joined()
    started = vs.decide_report(state, ReportPlayback("discord", "g", "m9", "started"), about)
    state = fold(*vs.decide_control(vs.VoiceSession(), control("join", 0), None), *started)
    assert state.playing == {"m9"}
    assert vs.decide_report(state, ReportPlayback("discord", "g", "m9", "started"), about) == []
    lost = vs.decide_lost(state, ReportVoiceLost("discord", "g", "disconnected"))
    assert [type(e) for e in lost] == [PlaybackInterrupted, VoiceChannelLeft]
    assert lost[0].reason == "disconnect" and lost[1].reason == "disconnected"
    after = fold(*vs.decide_control(vs.VoiceSession(), control("join", 0), None), *started, *lost)
    assert after.channel_id is None and after.playing == frozenset()
    assert vs.decide_report(after, ReportPlayback("discord", "g", "m9", "disconnect"), None) == []


def test_after_a_restart_it_rejoins_or_records_that_it_left():
    about = SpeakInVoice("discord", "g", "c", "t", "m9", "Hello.")
    state = joined()
    state = fold(*vs.decide_control(vs.VoiceSession(), control("join", 0), None),
                 *vs.decide_report(state, ReportPlayback("discord", "g", "m9", "started"), about))
    back = vs.decide_rejoin(state, "discord", "g", None)
    assert [type(e) for e in back] == [PlaybackInterrupted, VoiceChannelJoined] and back[0].reason == "restart"
    assert back[1].reason == "rejoined"
    gone = vs.decide_rejoin(state, "discord", "g", "that voice channel is gone")
    assert isinstance(gone[-1], VoiceChannelLeft) and gone[-1].reason == "unavailable"
    assert vs.decide_rejoin(vs.VoiceSession(), "discord", "g", None) == []


def test_a_connection_back_after_it_was_recorded_lost_is_a_return_once():
    state = joined()
    lost = fold(*vs.decide_control(vs.VoiceSession(), control("join", 0), None),
                *vs.decide_lost(state, ReportVoiceLost("discord", "g", "disconnected")))
    assert lost.channel_id is None
    back = vs.decide_back(lost, ReportVoiceBack("discord", "g", "v1", "Lounge"))
    assert [(type(e), e.reason) for e in back] == [(VoiceChannelJoined, "reconnected")]
    assert vs.evolve(lost, back[0]).channel_id == "v1"
    assert vs.decide_back(vs.evolve(lost, back[0]), ReportVoiceBack("discord", "g", "v1", "Lounge")) == []
    # back somewhere else than the log says (it was joined elsewhere meanwhile): a move
    moved = vs.decide_back(joined("v2", "Studio"), ReportVoiceBack("discord", "g", "v1", "Lounge"))
    assert [(type(e), e.reason) for e in moved] == [(VoiceChannelLeft, "moved"), (VoiceChannelJoined, "reconnected")]


def test_moved_by_a_moderator_follows_the_new_channel():
    moved = vs.decide_lost(joined(), ReportVoiceLost("discord", "g", "moved", "v2", "Studio"))
    assert [type(e) for e in moved] == [VoiceChannelLeft, VoiceChannelJoined]
    assert moved[0].reason == "moved" and moved[1].voice_channel_id == "v2"
    assert vs.decide_lost(joined("v2"), ReportVoiceLost("discord", "g", "moved", "v2", "Studio")) == []


def test_a_pause_for_someone_speaking_over_it_and_the_resume_are_recorded_only_while_it_plays():
    about = SpeakInVoice("discord", "g", "c", "t", "m9", "Hello.")
    started = vs.decide_report(joined(), ReportPlayback("discord", "g", "m9", "started"), about)
    state = fold(*vs.decide_control(vs.VoiceSession(), control("join", 0), None), *started)
    paused = vs.decide_report(state, ReportPlayback("discord", "g", "m9", "paused"), about)
    resumed = vs.decide_report(state, ReportPlayback("discord", "g", "m9", "resumed", "backchannel"), about)
    assert [type(e) for e in paused + resumed] == [PlaybackPaused, PlaybackResumed]
    assert resumed[0].reason == "backchannel"
    state = fold(*vs.decide_control(vs.VoiceSession(), control("join", 0), None), *started, *paused, *resumed)
    assert state.playing == {"m9"}  # paused and resumed: still playing
    ended = fold(*vs.decide_control(vs.VoiceSession(), control("join", 0), None), *started,
                 *vs.decide_report(state, ReportPlayback("discord", "g", "m9", "barge_in"), about))
    assert vs.decide_report(ended, ReportPlayback("discord", "g", "m9", "resumed", "undecided"), about) == []
