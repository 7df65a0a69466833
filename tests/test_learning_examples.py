"""Training examples as data: `!train`, and every import format, malformed ones included (issue 8)."""
from __future__ import annotations

import json

from actors.learning.examples import Example, parse_file, parse_train_command, preference_pairs


def test_train_command_positive_negative_and_malformed():
    assert parse_train_command("What is Parley? => A Discord assistant.").examples == (
        Example("What is Parley?", "A Discord assistant.", True),)
    assert parse_train_command("-What is Parley? => A cat.").examples[0].positive is False
    assert "PROMPT => ANSWER" in parse_train_command("no arrow here").problems[0]
    assert parse_train_command(" => only an answer").problems


def test_duplicates_share_a_key_whatever_the_case_and_spacing():
    a, b = Example("What  is Parley?", "An assistant."), Example("what is parley?", "An  ASSISTANT.")
    assert a.key == b.key and a.key != Example("what is parley?", "An assistant.", False).key


def test_jsonl_chat_and_preference_lines_and_bad_ones():
    lines = [
        {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"},
                      {"role": "assistant", "content": "Hello."}]},
        {"input": {"messages": [{"role": "user", "content": "Capital of France?"}]},
         "preferred_output": [{"role": "assistant", "content": "Paris."}],
         "non_preferred_output": [{"role": "assistant", "content": "Lyon."}]},
        {"messages": [{"role": "user", "content": "no answer"}]},
        [1, 2],
    ]
    data = ("\n".join(json.dumps(x) for x in lines) + "\n{not json\n").encode()
    parsed = parse_file("set.JSONL", data)
    assert [(e.prompt, e.answer, e.positive) for e in parsed.examples] == [
        ("Hi?", "Hello.", True), ("Capital of France?", "Paris.", True), ("Capital of France?", "Lyon.", False)]
    assert [p.split(":")[0] for p in parsed.problems] == ["line 3", "line 4", "line 5"]
    assert preference_pairs(list(parsed.examples)) == [("Capital of France?", "Paris.", "Lyon.")]


def test_csv_with_and_without_header_and_labels():
    parsed = parse_file("x.csv", b"prompt,completion,label\nHi?,Hello.,\nHi?,Go away.,negative\nlonely\n")
    assert [(e.answer, e.positive) for e in parsed.examples] == [("Hello.", True), ("Go away.", False)]
    assert parsed.problems == ("row 4: needs a prompt and a completion",)
    assert len(parse_file("y.csv", b"Hi?,Hello.\n").examples) == 1


def test_txt_blocks_over_several_lines_and_a_question_without_answer():
    text = b"Q: What is 2+2?\nA: Four.\nIt is arithmetic.\nQ: Rude?\nA-: Yes.\nQ: Unanswered?\n"
    parsed = parse_file("qa.txt", text)
    assert [(e.prompt, e.answer, e.positive) for e in parsed.examples] == [
        ("What is 2+2?", "Four.\nIt is arithmetic.", True), ("Rude?", "Yes.", False)]
    assert parsed.problems == ("line 6: a question without an answer",)


def test_other_files_are_refused_with_the_formats_named():
    assert "use a .jsonl, .csv or .txt file" in parse_file("notes.pdf", b"%PDF").problems[0]
    assert parse_file("empty.txt", b"").examples == ()
