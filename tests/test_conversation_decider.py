"""Unit tests of the pure domain: the conversation decider and the command desk."""
from __future__ import annotations

from functools import reduce

from actors.conversation import decider as conversation
from actors.desk import decider as desk
from actors.commands import AbandonMessage, CompleteResponse, FailResponse, InvokeCommand, ReceiveMessage
from events.catalog.conversation import MessageReceived, MessageRejected, ResponseFailed, ResponseGenerated
from events.catalog.messages import CommandAnswered, CommandRejected


def receive(mid: str, text: str = "hello") -> ReceiveMessage:
    return ReceiveMessage(source="discord", conversation_id="c", channel_id="1", message_id=mid, author_id="u",
                          author_name="Ada", text=text)


def run(state, command, **kw):
    events = conversation.decide(state, command, **kw)
    return reduce(conversation.evolve, events, state), events


def test_a_message_is_received_then_answered():
    state, events = run(conversation.Conversation(), receive("1", "  hi there  "))
    assert [type(e) for e in events] == [MessageReceived] and events[0].text == "hi there"
    assert state.pending == ("1",) and state.version == 1
    state, events = run(state, CompleteResponse("c", "1", "hello!", "m"))
    assert isinstance(events[0], ResponseGenerated) and events[0].channel_id == "1" and events[0].source == "discord"
    assert state.pending == () and [t.role for t in state.turns] == ["user", "assistant"]


def test_the_same_message_twice_is_recorded_once():
    state, _ = run(conversation.Conversation(), receive("1"))
    assert conversation.decide(state, receive("1")) == []


def test_empty_and_too_long_messages_are_rejected_with_a_reason():
    _, [empty] = run(conversation.Conversation(), receive("1", "   "))
    assert isinstance(empty, MessageRejected) and empty.reason == "empty"
    _, [long] = run(conversation.Conversation(), receive("2", "x" * 101), limits=conversation.Limits(100))
    assert long.reason == "too_long" and "101 characters" in long.reply_text


def test_an_answer_for_a_message_not_pending_is_ignored():
    assert conversation.decide(conversation.Conversation(), CompleteResponse("c", "9", "late", "m")) == []


def test_an_empty_llm_answer_is_a_failure():
    state, _ = run(conversation.Conversation(), receive("1"))
    [failed] = conversation.decide(state, CompleteResponse("c", "1", "  ", "m"))
    assert isinstance(failed, ResponseFailed) and failed.reason == "empty_answer"


def test_failures_carry_a_clear_reply():
    state, _ = run(conversation.Conversation(), receive("1"))
    [failed] = conversation.decide(state, FailResponse("c", "1", "rate_limited"))
    assert failed.reason == "rate_limited" and "busy" in failed.reply_text


def test_an_abandoned_message_is_answered_with_an_apology_whether_or_not_it_was_recorded():
    state, _ = run(conversation.Conversation(), receive("1"))
    [failed] = conversation.decide(state, AbandonMessage("discord", "c", "1", "1", "u", "boom"))
    assert isinstance(failed, ResponseFailed) and failed.reason == "internal_error"
    [rejected] = conversation.decide(conversation.Conversation(), AbandonMessage("discord", "c", "1", "2", "u", "boom"))
    assert isinstance(rejected, MessageRejected) and rejected.reason == "internal_error"


def test_the_prompt_has_the_system_prompt_and_recent_turns_up_to_the_message():
    state = conversation.Conversation()
    for n in range(1, 4):
        state, _ = run(state, receive(str(n), f"q{n}"))
        state, _ = run(state, CompleteResponse("c", str(n), f"a{n}", "m"))
    state, _ = run(state, receive("4", "q4"))
    messages = conversation.prompt(state, "4", "be nice", context_turns=3)
    assert messages == [{"role": "system", "content": "be nice"}, {"role": "user", "content": "q3"},
                        {"role": "assistant", "content": "a3"}, {"role": "user", "content": "q4"}]
    # Answering an older pending message never shows it turns that came after it.
    assert conversation.prompt(state, "2", "", context_turns=10)[-1] == {"role": "user", "content": "q2"}


def command(name: str, mid: str = "1", **extra) -> InvokeCommand:
    return InvokeCommand(source="console", conversation_id="c", channel_id="x", message_id=mid, author_id="u",
                         author_name="Ada", name=name, **extra)


def test_desk_answers_known_commands_and_rejects_unknown_ones():
    [hi] = desk.decide(desk.CommandLog(), command("HI"), None)
    assert isinstance(hi, CommandAnswered) and "Ada" in hi.text and hi.command == "hi"
    [helped] = desk.decide(desk.CommandLog(), command("help"), None, prefix="?")
    assert "`?status`" in helped.text
    report = desk.StatusReport("sqlite:x", 42, 5, 6, 1, "gpt")
    [status] = desk.decide(desk.CommandLog(), command("status", is_admin=True, is_operator=True), report)
    assert "position 42" in status.text and "5/6" in status.text and "gpt" in status.text
    [public] = desk.decide(desk.CommandLog(), command("status"), report)  # not an admin: no paths, no counts
    assert "sqlite:x" not in public.text and "42" not in public.text and "gpt" in public.text
    [owner] = desk.decide(desk.CommandLog(), command("status", is_admin=True), report)  # a guild's admin only
    assert "sqlite:x" not in owner.text and "42" not in owner.text
    [unknown] = desk.decide(desk.CommandLog(), command("x" * 100), None)
    assert isinstance(unknown, CommandRejected) and len(unknown.reply_text) < 120


def test_desk_answers_a_command_message_once():
    state = reduce(desk.evolve, desk.decide(desk.CommandLog(), command("hi"), None), desk.CommandLog())
    assert desk.decide(state, command("hi"), None) == []


def test_a_long_conversation_keeps_bounded_state_and_recognises_recent_messages():
    # 20,000 events: the state stays bounded (recent turns), so folding is linear in the stream.
    state = conversation.Conversation()
    events = []
    for n in range(10_000):
        events.append(MessageReceived(conversation_id="c", message_id=str(n), channel_id="1", author_id="u",
                                      author_name="Ada", text=f"q{n}", source="discord"))
        events.append(ResponseGenerated(conversation_id="c", message_id=str(n), channel_id="1", source="discord",
                                        text=f"a{n}", model="m"))
    state = reduce(conversation.evolve, events, state)
    assert len(state.turns) == conversation.KEEP_TURNS and state.version == 20_000
    assert conversation.decide(state, receive("9999")) == []  # a redelivery of a recent message
    assert isinstance(conversation.decide(state, receive("10000"))[0], MessageReceived)


# -- access ------------------------------------------------------------------------------------------
from actors.access import DMS_OFF, NOT_ALLOWED, QUIET, AccessPolicy, Person


def test_operators_are_the_listed_ids_and_a_guilds_admins_its_owner_managers_and_role():
    owner = Person("1", is_guild_owner=True)
    assert AccessPolicy().is_admin(owner) and not AccessPolicy().is_admin(Person("2"))
    listed = AccessPolicy(admin_ids=frozenset({"2"}), admin_role="Mods")
    assert listed.is_admin(Person("2")) and listed.is_admin(Person("3", role_names=frozenset({"Mods"})))
    assert listed.is_admin(owner) and not listed.is_operator(owner)  # its guild's admin, nobody else's
    assert listed.is_operator(Person("2")) and AccessPolicy().is_operator(Person("you", local=True))
    assert AccessPolicy().is_admin(Person("4", manages_guild=True))
    assert not AccessPolicy().is_admin(Person("1", is_guild_owner=True, in_dm=True))  # no guild in DMs


def test_a_guilds_admin_acts_on_that_guild_only_and_operators_everywhere():
    from actors.access import may_act_on
    assert may_act_on("guild:1", where="guild:1", is_admin=True, is_operator=False)
    assert not may_act_on("guild:1", where="guild:2", is_admin=True, is_operator=False)
    assert not may_act_on("operators", where="operators", is_admin=True, is_operator=False)
    assert not may_act_on("guild:1", where="guild:1", is_admin=False, is_operator=False)
    assert may_act_on("guild:1", where="guild:2", is_admin=False, is_operator=True)


def test_blocked_people_and_channels_are_ignored_quietly_and_others_told():
    policy = AccessPolicy(block_users=frozenset({"9"}), block_roles=frozenset({"Muted"}),
                          allow_channels=frozenset({"100"}), block_channels=frozenset({"101"}), allow_dms=False,
                          allow_roles=frozenset({"Members"}))
    member = frozenset({"Members"})
    assert policy.verdict(Person("9", role_names=member, channel_id="100")) == QUIET
    assert policy.verdict(Person("5", role_names=frozenset({"Muted", "Members"}), channel_id="100")) == QUIET
    assert policy.verdict(Person("5", role_names=member, channel_id="101")) == QUIET
    assert policy.verdict(Person("5", role_names=member, channel_id="102")) == QUIET  # not an allowed channel
    assert policy.verdict(Person("5", role_names=member, channel_id="7", parent_channel_id="100")) == ""  # thread
    assert policy.verdict(Person("5", channel_id="100")) == NOT_ALLOWED
    assert policy.verdict(Person("5", role_names=member, in_dm=True)) == DMS_OFF
    assert AccessPolicy().verdict(Person("5", in_dm=True)) == ""


def test_a_refused_message_is_recorded_without_its_text_and_the_person_told():
    refused = ReceiveMessage(source="discord", conversation_id="c", channel_id="1", message_id="5", author_id="u",
                             author_name="Ada", text="secret question", refusal=NOT_ALLOWED)
    [event] = conversation.decide(conversation.Conversation(), refused)
    assert isinstance(event, MessageRejected) and event.reason == NOT_ALLOWED and "allow list" in event.reply_text
    assert "secret question" not in str(event.to_data())
    [rejected] = desk.decide(desk.CommandLog(), command("status", refusal=DMS_OFF), None)
    assert isinstance(rejected, CommandRejected) and "direct messages" in rejected.reply_text


def test_a_prompt_bound_leaves_out_the_oldest_turns_first_and_always_keeps_the_question():
    state = conversation.Conversation()
    for n in range(1, 4):
        state, _ = run(state, receive(str(n), f"question {n} " + "x" * 100))
        state, _ = run(state, CompleteResponse("c", str(n), "a" * 100, "m"))
    state, _ = run(state, receive("4", "the question"))
    everything = conversation.prompt(state, "4", "sys", context_turns=20)
    bounded = conversation.prompt(state, "4", "sys", context_turns=20, max_chars=3 + 12 + 250)
    assert len(everything) == 8 and [m["content"] for m in bounded[-3:]] == [
        "question 3 " + "x" * 100, "a" * 100, "the question"]
    assert bounded[0] == {"role": "system", "content": "sys"} and len(bounded) == 4
    tiny = conversation.prompt(state, "4", "sys", context_turns=20, max_chars=5)
    assert [m["content"] for m in tiny] == ["sys", "the question"]


def test_an_answer_cut_off_aloud_is_remembered_as_what_was_said_whether_it_was_recorded_before_or_after():
    from actors.commands import RecordCutOff
    from events.catalog.conversation import AnswerCutOff

    said, whole = "Paris is the capital.", "Paris is the capital. It has 2 million people. Its river is the Seine."
    for cut_first in (False, True):  # said aloud while written: the cut-off may come before the answer is recorded
        state, _ = run(conversation.Conversation(), receive("1", "tell me about Paris"))
        steps = [RecordCutOff("c", "1", said), CompleteResponse("c", "1", whole, "m")]
        for step in steps if cut_first else steps[::-1]:
            state, events = run(state, step)
            if isinstance(step, RecordCutOff):
                assert [type(e) for e in events] == [AnswerCutOff] and events[0].asker_id == "u"
        assert run(state, RecordCutOff("c", "1", said))[1] == []  # once
        assert run(state, RecordCutOff("c", "9", said))[1] == []  # not this conversation's answer
        state, _ = run(state, receive("2", "and?"))
        remembered = conversation.prompt(state, "2", "", context_turns=10)[1]
        assert remembered["role"] == "assistant" and remembered["content"].startswith(said), remembered
        assert "the rest of it was never said" in remembered["content"] and "Seine" not in remembered["content"]
