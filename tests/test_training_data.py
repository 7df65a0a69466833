"""Training data kept whole (issue 15): imports that lose no turn, parsers that name every bad line for any
bytes, fine-tuning files checked by tokens, and commands that see what the commands before them recorded."""
from __future__ import annotations

import json
import re

import orjson
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from actors.learning.examples import Example, parse_csv, parse_file, parse_jsonl, parse_train_command, parse_txt
from events.catalog.desk import ActorRestarted
from events.catalog.learning import ExamplesAdded
from events.codec import decode, encode
from tests.conftest import parley_env, run_parley
from tests.test_learning import Session

SYSTEM = {"role": "system", "content": "You are the museum's guide. Answer in one sentence."}
SFT = [
    {"messages": [SYSTEM, {"role": "user", "content": "When do you open?"},
                  {"role": "assistant", "content": "At nine.", "weight": 0},
                  {"role": "user", "content": "And on Sundays?"},
                  {"role": "assistant", "content": "At ten on Sundays.", "weight": 1}]},
    {"messages": [{"role": "user", "content": "Where is the cloakroom?"},
                  {"role": "assistant", "content": "Left of the entrance."}]},
]
DPO = [
    {"input": {"messages": [SYSTEM, {"role": "user", "content": "Can I take photos?"},
                            {"role": "assistant", "content": "Yes."},
                            {"role": "user", "content": "With a flash?"}]},
     "preferred_output": [{"role": "assistant", "content": "No flash, please: it harms the paintings."}],
     "non_preferred_output": [{"role": "assistant", "content": "Sure, go ahead."}]},
    {"input": {"messages": [{"role": "user", "content": "Can I take photos?"}]},  # the same prompt, twice
     "preferred_output": [{"role": "assistant", "content": "Yes, without a flash."}],
     "non_preferred_output": [{"role": "assistant", "content": "No."}]},
    {"input": {"messages": [{"role": "user", "content": "Can I take photos?"}]},
     "preferred_output": [{"role": "assistant", "content": "Yes, without a flash."}],
     "non_preferred_output": [{"role": "assistant", "content": "Only on Mondays."}]},
]


def jsonl(records: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def canonical(lines: list[bytes]) -> set[str]:
    return {json.dumps(json.loads(line), sort_keys=True) for line in lines if line.strip()}


@pytest.fixture
def session(tmp_path, llm_server):
    s = Session(tmp_path, llm_server)
    yield s
    s.stop()


def test_an_openai_sft_and_dpo_file_come_back_from_an_export_as_they_went_in(session, tmp_path):
    assert "Added 2 example(s)" in session.attach("chats.jsonl", jsonl(SFT))
    assert "Added 3 example(s) and 3 answer(s) to avoid" in session.attach("pairs.jsonl", jsonl(DPO))
    assert "3 preference pair(s)" in session.command("dataset", "show default")
    assert "Exported" in session.command("dataset", "export default")
    sft = (tmp_path / "exports/operators/default-sft.jsonl").read_bytes().splitlines()
    # every turn of the multi-turn chat, its own system message (not Parley's) and the weights are kept
    assert canonical(jsonl(SFT).splitlines()) <= canonical(sft)
    assert "Exported 3 DPO record(s)" in session.command("dataset", "export default --format dpo")
    dpo = (tmp_path / "exports/operators/default-dpo.jsonl").read_bytes().splitlines()
    assert canonical(dpo) == canonical(jsonl(DPO).splitlines())
    [sft_added, dpo_added] = session.events(ExamplesAdded)
    assert sft_added.examples[0]["turns"] == SFT[0]["messages"][:-1]  # the turns are in the event


def test_a_single_turn_example_recorded_before_v3_still_reads():
    v2 = orjson.dumps({"v": 2, "at": "2026-11-30T10:00:00+00:00", "data": {
        "dataset_id": "d1", "duplicates": 0, "author_id": "u1", "source": "console", "message_id": "m1",
        "filename": "", "subject_id": "", "examples": [{"prompt": "Hi?", "answer": "Hello.", "positive": True}]}})
    event, _ = decode("ExamplesAdded", v2)
    assert event.examples == ({"prompt": "Hi?", "answer": "Hello.", "positive": True, "turns": []},)
    assert Example.from_record(event.examples[0]) == Example("Hi?", "Hello.", True)


def test_a_txt_block_with_an_answer_and_an_answer_to_avoid_is_a_pair():
    parsed = parse_txt(b"Q: What is TXT?\nA: A text file.\nA-: A picture.\n\nQ: Twice?\nA: One.\nA: Two.\n")
    assert [(e.prompt, e.answer, e.positive) for e in parsed.examples] == [
        ("What is TXT?", "A text file.", True), ("What is TXT?", "A picture.", False)]
    assert parsed.examples[0].pair and parsed.examples[0].pair == parsed.examples[1].pair
    assert parsed.problems == ("line 7: a second A: in the block of line 5 (one answer and at most one answer to "
                               "avoid per question)",)
    assert parse_txt(b"A: an answer to nothing\n").problems == (
        "line 1: an answer before any question (start a block with Q:)",)


@pytest.mark.parametrize("parse,data,named", [
    (parse_csv, b"q,a\rq2,a2\r", None),  # old Mac line endings: two examples
    (parse_csv, b"q," + b"a" * 131073, "row 1: longer than"),
    (parse_jsonl, b"[" * 1990 + b"]" * 1990, "line 1: not JSON that can be read"),
    (parse_jsonl, b'{"messages": [{"role": "user", "content": "x", "n": ' + b"9" * 4301 + b"}]}",
     "line 1: not JSON that can be read"),
    (parse_jsonl, b'{"messages": [{"role": "user", "content": "x", "n": ' + b"9" * 30 + b"}, "
                  b'{"role": "assistant", "content": "y"}]}', "line 1: the field 'n' of a message"),
])
def test_files_that_used_to_crash_the_trainer_name_their_bad_line(parse, data, named):
    parsed = parse(data)
    if named is None:
        assert [(e.prompt, e.answer) for e in parsed.examples] == [("q", "a"), ("q2", "a2")] and not parsed.problems
    else:
        assert parsed.problems and parsed.problems[0].startswith(named), parsed.problems


def test_a_bad_file_gets_its_line_named_and_never_restarts_the_trainer(session):
    for name, data in (("deep.jsonl", b"[" * 1990 + b"]" * 1990), ("long.csv", b"q," + b"a" * 131073),
                       ("huge.jsonl", b'{"n": ' + b"9" * 4301 + b"}")):
        reply = session.attach(name, data)
        assert reply.startswith(f"Nothing was added from `{name}`") and ("line 1" in reply or "row 1" in reply)
    assert "Added 2 example(s)" in session.attach("mac.csv", b"q,a\rq2,a2\r")
    assert session.events(ActorRestarted) == []


# -- any bytes at all ------------------------------------------------------------------------------------
SEEDS = [jsonl(SFT + DPO), b"prompt,completion,label\nHi?,Hello.,\n\"multi\nline\",\"a, b\",negative\n",
         b"Q: What is TXT?\nA: A text file.\nA-: A picture.\nQ: More?\nlines\nA: yes\n"]


def mutated(seed: bytes) -> st.SearchStrategy[bytes]:
    """Real files with bytes replaced, inserted or cut: what a broken upload looks like."""
    edit = st.tuples(st.integers(0, len(seed)), st.integers(0, 8), st.binary(max_size=8))

    def apply(edits: list[tuple[int, int, bytes]]) -> bytes:
        data = seed
        for at, cut, new in edits:
            data = data[:at] + new + data[at + cut:]
        return data

    return st.lists(edit, max_size=6).map(apply)


def storable(examples: tuple[Example, ...]) -> None:
    """What a parser returns can be recorded: the event encodes and decodes to the same examples."""
    event = ExamplesAdded(dataset_id="d", duplicates=0, author_id="u", source="console", message_id="m",
                          examples=tuple(e.to_record() for e in examples))
    back, _ = decode("ExamplesAdded", encode(event, "2026-12-01T00:00:00+00:00"))
    assert [Example.from_record(x) for x in back.examples] == list(examples)  # type: ignore[attr-defined]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([".jsonl", ".csv", ".txt"]), st.one_of(st.binary(max_size=400), *map(mutated, SEEDS)))
def test_every_parser_returns_examples_or_named_problems_for_any_bytes(suffix, data):
    parsed = parse_file("upload" + suffix, data)
    assert all(isinstance(p, str) and p for p in parsed.problems)
    storable(parsed.examples)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_the_train_command_returns_an_example_or_a_problem_for_any_text(text):
    parsed = parse_train_command(text)
    assert bool(parsed.examples) != bool(parsed.problems)
    storable(parsed.examples)


# -- read your own writes ------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_command_sees_what_the_commands_before_it_recorded(tmp_path, llm_server, backend, request):
    extra = {"PARLEY_EVENT_STORE": request.getfixturevalue("postgres_url")} if backend == "postgresql" else {}
    env = parley_env(tmp_path / "data", llm_server, **extra)
    out = run_parley(["console"], env, stdin="What is the capital of France?\n!correct Paris is the capital of France.\n"
                     "!dataset show default\n!train When does the museum open? => At nine.\n!dataset show default\n"
                     "When does the museum open on Mondays?\n")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[1].startswith("Thanks, noted")
    assert "`default`: 1 example(s), 1 answer(s) to avoid, 1 preference pair(s)" in lines[2]
    assert "`default`: 2 example(s), 1 answer(s) to avoid" in lines[4]
    asked = next(r for r in reversed(llm_server.requests) if r["messages"][-1]["content"].endswith("on Mondays?"))
    assert {"role": "assistant", "content": "At nine."} in asked["messages"]  # taught at once, few-shot


# -- tokens ------------------------------------------------------------------------------------------------
def test_fine_tuning_counts_tokens_and_refuses_or_leaves_out_an_example_over_the_models_limit(tmp_path, llm_server):
    session = Session(tmp_path, llm_server, training_poll_s=3600)
    try:
        chats = [{"messages": [{"role": "user", "content": f"How do I reset gadget {i}?"},
                               {"role": "assistant", "content": f"Hold button {i} for ten seconds."}]}
                 for i in range(10)]
        manual = " ".join(f"step{i}" for i in range(11_800))  # a pasted manual: about 35,000 tokens
        chats.append({"messages": [{"role": "user", "content": manual}, {"role": "assistant", "content": "Noted."},
                                   {"role": "user", "content": "Summarise the manual."},
                                   {"role": "assistant", "content": "Reset, then wait."}]})
        assert "Added 11 example(s)" in session.attach("manuals.jsonl", jsonl(chats))
        shown = session.command("dataset", "show default")
        longest = re.search(r'tokens \(o200k_base\); the longest ([\d,]+) \("Summarise the manual\."\)', shown)
        assert longest and 30_000 < int(longest[1].replace(",", "")) < 40_000, shown
        assert "training tokens for SFT at 3 epochs" in shown

        refused = session.command("finetune", "start base-model")
        assert "`default` cannot be fine-tuned with SFT yet" in refused
        assert f'- line 11: {longest[1]} tokens' in refused and 'tokens ("Summarise the manual."), over the 4,096 that one example ' \
                                           'may have for base-model' in refused and "--skip-long" in refused
        assert not llm_server.files  # nothing was uploaded
        started = session.command("finetune", "start base-model --skip-long")
        assert started.startswith("Started fine-tuning job `ftjob-1`: SFT of `base-model` on 10 record(s) of "
                                  "`default` (1 over the token limit left out)")
        [(_, _, data)] = llm_server.files.values()
        assert b"Summarise the manual" not in data
    finally:
        session.stop()


def test_token_counts_are_exact_with_the_tokenizer_and_the_limits_are_the_models():
    from actors.tuning.tokens import counter_for, example_limit, record_tokens

    counter = counter_for("gpt-4o-mini")
    assert counter.exact and counter.how == "o200k_base" and counter.text("Hello, world!") == 4
    assert record_tokens({"messages": [{"role": "user", "content": "Hello, world!"}]}, counter) == 3 + 3 + 4
    assert example_limit("gpt-4o-mini-2024-07-18") == 65_536 and example_limit("gpt-3.5-turbo-0125") == 16_385
    assert example_limit("my-local-model") == 4_096 and example_limit("my-local-model", configured=8_000) == 8_000
