from adapters.discord.addressing import MessageFacts, addressed, is_command

BOT = "999"


def facts(**kw):
    base = dict(message_id="10", channel_id="1", channel_kind="guild", parent_id=None, author_is_bot=False,
                content="hello", mentions_bot=False, reply_to_id=None, reply_to_bot=False)
    base.update(kw)
    return MessageFacts(**base)


def nobody(_):
    return None


def test_plain_channel_chatter_is_ignored():
    assert addressed(facts(), BOT, frozenset(), nobody) is None


def test_a_mention_starts_its_own_conversation_without_the_mention_text():
    a = addressed(facts(content=f"<@{BOT}> what is 2+2?", mentions_bot=True), BOT, frozenset(), nobody)
    assert a.conversation_id == "discord:chain:10" and a.text == "what is 2+2?"


def test_a_reply_to_the_bot_continues_that_answers_conversation():
    a = addressed(facts(reply_to_id="20", reply_to_bot=True), BOT, frozenset(),
                  lambda mid: "discord:chain:5" if mid == "20" else None)
    assert a.conversation_id == "discord:chain:5"


def test_dms_threads_and_listening_channels_have_their_own_conversations():
    assert addressed(facts(channel_kind="dm"), BOT, frozenset(), nobody).conversation_id == "discord:dm:1"
    assert addressed(facts(), BOT, frozenset({"1"}), nobody).conversation_id == "discord:channel:1"
    thread = facts(channel_id="7", channel_kind="thread", parent_id="1")
    assert addressed(thread, BOT, frozenset({"1"}), nobody).conversation_id == "discord:thread:7"
    assert addressed(thread, BOT, frozenset(), nobody) is None


def test_bots_are_ignored_even_in_dms():
    assert addressed(facts(channel_kind="dm", author_is_bot=True), BOT, frozenset(), nobody) is None


def test_command_detection():
    assert is_command("!hi", "!") and not is_command("! hi", "!") and not is_command("!", "!")
