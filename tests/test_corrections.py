"""Corrections and feedback: the pure decider, the console in-process and as a program, the read
models from the command line, and rebuilding every read model to the same rows."""
from __future__ import annotations

import json
import sqlite3

from actors.commands import InvokeCommand, VoteAnswer
from actors.corrections.decider import AnswerLog, Answered, decide_correction, decide_vote, evolve
from events.catalog.corrections import CorrectionRecorded, FeedbackRecorded
from events.catalog.learning import ExamplesAdded
from events.catalog.messages import CommandRejected
from tests.conftest import parley_env, run_parley
from tests.helpers import wait_for
from tests.test_learning import CONVERSATION, Session

ANSWERED = Answered("discord", "discord:channel:1", "1", "q1", "What is the capital of Australia?", "Sydney.")


def command(text: str, message_id: str = "c1", **extra: object) -> InvokeCommand:
    return InvokeCommand(source="discord", conversation_id="discord:channel:1", channel_id="1", message_id=message_id,
                         author_id="u1", author_name="Uma", name="correct", args=text, **extra)


def fold(events) -> AnswerLog:
    state = AnswerLog()
    for e in events:
        state = evolve(state, e)
    return state


def test_the_decider_records_a_correction_once_and_refuses_what_is_not_one():
    [correction, reply] = decide_correction(AnswerLog(), command("Canberra."), ANSWERED, "", "Canberra.")
    assert isinstance(correction, CorrectionRecorded)
    assert (correction.question, correction.original, correction.corrected, correction.by, correction.via) == (
        "What is the capital of Australia?", "Sydney.", "Canberra.", "u1", "reply")
    state = fold([correction, reply])
    assert decide_correction(state, command("Canberra."), ANSWERED, "", "Canberra.") == []  # redelivered
    for answered, why, text, reason in ((None, "not_parleys", "x", "not_parleys"), (None, "unknown", "x", "unknown"),
                                        (ANSWERED, "", "  ", "empty_correction"),
                                        (ANSWERED, "", "sydney. ", "same_answer")):
        [refused] = decide_correction(AnswerLog(), command(text, "c2"), answered, why, text)
        assert isinstance(refused, CommandRejected) and refused.reason == reason


def test_one_vote_per_person_per_answer():
    def vote(who: str, rating: str, message_id: str) -> VoteAnswer:
        return VoteAnswer(source="discord", conversation_id="discord:channel:1", channel_id="1", message_id=message_id,
                          author_id=who, author_name=who, target_message_id="a1", rating=rating)

    first = decide_vote(AnswerLog(), vote("u1", "up", "i1"), ANSWERED, "")
    assert isinstance(first[0], FeedbackRecorded) and first[0].rating == "up"
    state = fold(first)
    [again] = decide_vote(state, vote("u1", "down", "i2"), ANSWERED, "")
    assert isinstance(again, CommandRejected) and again.reason == "already_voted"
    assert isinstance(decide_vote(state, vote("u2", "down", "i3"), ANSWERED, "")[0], FeedbackRecorded)


def test_a_correction_changes_the_next_similar_answer(tmp_path, llm_server):
    session = Session(tmp_path, llm_server)
    try:
        session.ask("What is the capital of Australia?")
        reply = session.command("correct", "The capital of Australia is Canberra.", target_message_id="m1",
                                via="console")
        assert reply.startswith("Thanks, noted")
        [correction] = session.events(CorrectionRecorded)
        assert correction.original == "echo: What is the capital of Australia? [turns=1]"
        [pair] = session.events(ExamplesAdded)
        assert [(x["answer"], x["positive"]) for x in pair.examples] == [
            ("The capital of Australia is Canberra.", True), (correction.original, False)]
        wait_for(lambda: len(session.taught("capital Australia")) == 2, what="the pair in the read model")
        messages = session.ask("Which city is the capital of Australia?")["messages"]
        assert {"role": "assistant", "content": "The capital of Australia is Canberra."} in messages
        avoid = next(m["content"] for m in messages if m["role"] == "system" and "Do not answer" in m["content"])
        assert correction.original in avoid
        assert "Which answer?" in session.command("correct", "x", via="console")  # no target
        assert "Write the better answer" in session.command("correct", " ", target_message_id="m1", via="console")
        assert "Write your feedback" in session.command("feedback", "")
        assert "Thanks for the feedback" in session.command("feedback", "Answers are too long.")
        [feedback] = session.events(FeedbackRecorded)
        assert (feedback.text, feedback.question_message_id, feedback.rating) == ("Answers are too long.", "", "")
        assert session.system.answers is not None
        wait_for(lambda: session.system.answers.corrections(), what="the corrections read model")
    finally:
        session.stop()


def test_the_console_corrects_the_last_or_an_earlier_answer_and_the_lists_print_them(tmp_path, llm_server):
    env = parley_env(tmp_path / "data", llm_server)
    out = run_parley(["console"], env, stdin="Where is the Eiffel Tower?\nWho wrote Hamlet?\n"
                                             "!correct William Shakespeare.\n!correct 2 In Paris.\n!correct 9 nope\n"
                                             "!feedback Great bot\n")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[2].startswith("Thanks, noted") and lines[3].startswith("Thanks, noted")
    assert lines[4].startswith("Which answer?") and lines[5].startswith("Thanks for the feedback")
    listed = run_parley(["corrections", "list", "--json"], env)
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["question"], r["corrected"], r["via"]) for r in rows] == [
        ("Who wrote Hamlet?", "William Shakespeare.", "console"), ("Where is the Eiffel Tower?", "In Paris.", "console")]
    text = run_parley(["corrections", "list"], env).stdout
    assert "asked:     Who wrote Hamlet?" in text and "corrected: In Paris." in text
    feedback = run_parley(["feedback", "list"], env).stdout
    assert ": Great bot" in feedback


def dump(path) -> dict[str, list]:
    db = sqlite3.connect(path)
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE "
                                       "'examples_fts_%' AND name != 'read_model_tracking'")]
    rows = {t: sorted(map(repr, db.execute(f"SELECT * FROM {t}").fetchall())) for t in tables}
    rows["fts"] = sorted(map(repr, db.execute("SELECT rowid, prompt FROM examples_fts WHERE examples_fts MATCH "
                                              "'capital OR hamlet OR reset'").fetchall()))
    db.close()
    return rows


def test_rebuilding_every_read_model_gives_the_same_rows(tmp_path, llm_server):
    env = parley_env(tmp_path / "data", llm_server)
    assert run_parley(["console"], env, stdin="What is the capital of Peru?\n!correct Lima.\n!hi\n"
                                              "!train How do I reset it? => Hold the button.\n"
                                              "!dataset create other\n!train -Who wrote Hamlet? => Me.\n"
                                              "!feedback ok\n").returncode == 0
    before = dump(tmp_path / "data" / "read-models.sqlite3")
    assert before["corrections"] and before["examples"] and before["fts"] and before["message_conversation"]
    out = run_parley(["projections", "rebuild", "--all"], env)
    assert out.returncode == 0 and "rebuilt conversations, deliveries, clips, voice, datasets, corrections" in out.stderr
    assert dump(tmp_path / "data" / "read-models.sqlite3") == before
    (tmp_path / "data" / "read-models.sqlite3").unlink()  # from nothing at all, too
    assert run_parley(["corrections", "list"], env).returncode == 0
    assert dump(tmp_path / "data" / "read-models.sqlite3") == before
    assert run_parley(["projections", "rebuild", "corrections"], env).returncode == 0
    assert dump(tmp_path / "data" / "read-models.sqlite3") == before
    bad = run_parley(["projections", "rebuild", "nope"], env)
    assert bad.returncode == 2 and "no read model 'nope'" in bad.stderr
