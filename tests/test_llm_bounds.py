"""Bounded work for the LLM: a token cap on every request, progress deadlines, and no retry storms.

Against the OpenAI-compatible test server, through the real ``openai`` client: a server that streams
without end, one that stalls after the first chunk, one that ignores ``max_tokens``, one that never
starts. Each ends in a bounded answer or a clear failure, and the server sees exactly one request.
"""
from __future__ import annotations

import time

import pytest

from actors.ports import LLMError
from adapters.llm import CHARS_PER_TOKEN, LLMLimits, OpenAIChat
from tests.conftest import parley_env, replay_json, run_parley
from tests.fakes.openai_server import Scripted
from tests.helpers import wait_for

QUESTION = [{"role": "user", "content": "tell me a long story"}]


@pytest.fixture
def chat(llm_server):
    clients = []

    def make(**limits) -> OpenAIChat:
        client = OpenAIChat(llm_server.base_url, "k", LLMLimits(**({"retries": 3, "backoff": 0.05} | limits)))
        clients.append(client)
        return client
    yield make
    for c in clients:
        c.close()


def test_every_request_streams_and_carries_the_token_cap(chat, llm_server):
    answer = chat(max_tokens=123).complete(QUESTION, "m")
    assert answer.text == "echo: tell me a long story [turns=1]" and answer.cut == ""
    assert llm_server.requests[-1]["stream"] is True and llm_server.requests[-1]["max_tokens"] == 123


def test_an_endless_stream_is_cut_at_the_token_cap_and_closed(chat, llm_server):
    llm_server.script.append(Scripted(endless=True))
    seen = []
    answer = chat(max_tokens=50).complete(QUESTION, "m", seen.append)
    assert answer.cut == "length"
    assert 0 < len(answer.text) <= 50 * CHARS_PER_TOKEN and answer.text.startswith("word0 word1 ")
    assert seen[-1] == answer.text  # the last preview is what is kept
    wait_for(lambda: llm_server.abandoned_streams == 1, what="the server to see the stream closed")
    assert llm_server.chunks_sent[-1] <= 60  # it stopped generating soon after the cap
    assert len(llm_server.requests) == 1


def test_a_server_that_ignores_max_tokens_is_cut_by_text_size(chat, llm_server):
    llm_server.script.append(Scripted(text="x" * 5000, ignore_max_tokens=True))
    answer = chat(max_tokens=100).complete(QUESTION, "m")  # 8-character chunks: the size bound trips first
    assert answer.cut == "length" and len(answer.text) == 100 * CHARS_PER_TOKEN
    assert len(llm_server.requests) == 1


def test_a_server_that_honours_max_tokens_is_marked_cut_by_its_finish_reason(chat, llm_server):
    llm_server.chunk_size = CHARS_PER_TOKEN  # one token a chunk, as llama.cpp streams
    llm_server.script.append(Scripted(text="y" * 400))
    answer = chat(max_tokens=10).complete(QUESTION, "m")
    assert answer.cut == "length" and answer.text == "y" * 40


def test_a_stream_that_stalls_after_the_first_chunk_keeps_the_partial_answer(chat, llm_server):
    llm_server.script.append(Scripted(text="The answer begins here and then", stall_after=1))
    answer = chat(idle_timeout=0.5).complete(QUESTION, "m")
    assert answer.text == "The answ" and answer.cut == "stalled"
    wait_for(lambda: llm_server.abandoned_streams == 1, what="the stalled stream closed")
    assert len(llm_server.requests) == 1  # never resent


def test_no_first_token_in_time_is_a_timeout_and_never_resent(chat, llm_server):
    llm_server.script.append(Scripted(text="late", stall_after=0))  # headers at once, then nothing
    with pytest.raises(LLMError) as failed:
        chat(first_token_timeout=0.5).complete(QUESTION, "m")
    assert failed.value.reason == "timeout"
    llm_server.script.append(Scripted(delay=3))  # nothing at all, not even headers
    with pytest.raises(LLMError) as failed:
        chat(first_token_timeout=0.5).complete(QUESTION, "m")
    assert failed.value.reason == "timeout"
    # Never resent: a retry would follow the timeout at once. At most one request each (on a busy machine the
    # second can run out of its 0.5 s before it is even written, so the server may not have seen it).
    time.sleep(0.5)
    assert llm_server.requests and len(llm_server.requests) <= 2


def test_retries_only_what_a_retry_can_fix(chat, llm_server):
    llm_server.script.extend([Scripted(503), Scripted(429, headers={"Retry-After": "0.2"}), Scripted(502)])
    assert chat().complete(QUESTION, "m").text.startswith("echo:")
    assert len(llm_server.requests) == 4
    llm_server.requests.clear()
    llm_server.script.extend([Scripted(408), Scripted(400)])
    for reason in ("timeout", "rejected"):
        with pytest.raises(LLMError) as failed:
            chat().complete(QUESTION, "m")
        assert failed.value.reason == reason
    assert len(llm_server.requests) == 2  # neither was resent


def test_a_retry_after_longer_than_a_minute_is_not_waited_for(chat, llm_server):
    llm_server.script.append(Scripted(429, headers={"Retry-After": "3600"}))
    with pytest.raises(LLMError) as failed:
        chat().complete(QUESTION, "m")
    assert failed.value.reason == "rate_limited" and len(llm_server.requests) == 1


def test_a_refused_connection_is_retried_then_reported(llm_server):
    client = OpenAIChat("http://127.0.0.1:9/v1", "k", LLMLimits(retries=2, backoff=0.01))
    try:
        with pytest.raises(LLMError) as failed:
            client.complete(QUESTION, "m")
        assert failed.value.reason == "unreachable"
    finally:
        client.close()


def test_the_console_shows_a_cut_answer_as_cut_and_records_why(tmp_path, llm_server):
    env = parley_env(tmp_path / "data", llm_server, PARLEY_MAX_ANSWER_TOKENS="20", PARLEY_LLM_IDLE_TIMEOUT="0.5")
    llm_server.script.extend([Scripted(endless=True), Scripted(text="half an answer", stall_after=1)])
    out = run_parley(["console"], env, stdin="go on forever\nthen stop\nand now?\n")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("word0 word1") and lines[2] == "*(cut short: the answer reached its length limit)*"
    assert lines[3] == "half an…" and lines[5] == "*(cut short: the language model stopped answering)*"
    assert lines[6].startswith("echo: and now?")
    generated = [e["data"] for e in replay_json(env) if e["type"] == "ResponseGenerated"]
    assert [g["cut"] for g in generated] == ["length", "stalled", ""]
    assert generated[1]["text"] == "half an "  # the log keeps the words, the note is only in the reply
    assert len(llm_server.requests) == 3


def test_the_console_exits_non_zero_when_answers_failed(tmp_path, llm_server):
    env = parley_env(tmp_path / "data", llm_server, PARLEY_LLM_TIMEOUT="0.5", PARLEY_LLM_RETRIES="0")
    llm_server.script.append(Scripted(delay=3))
    out = run_parley(["console"], env, stdin="too slow\nfine\n")
    assert out.returncode == 1
    assert "did not answer in time" in out.stdout.splitlines()[0]
    assert "1 message(s) could not be answered" in out.stderr


def test_a_model_that_wants_max_completion_tokens_gets_it(chat, llm_server):
    llm_server.script.append(Scripted(400, message="Unsupported parameter: 'max_tokens' is not supported with "
                                                   "this model. Use 'max_completion_tokens' instead."))
    client = chat(max_tokens=77)
    assert client.complete(QUESTION, "m").text.startswith("echo:")
    assert client.complete(QUESTION, "m").text.startswith("echo:")
    first, second, third = llm_server.requests
    assert first["max_tokens"] == 77 and second["max_completion_tokens"] == 77 and "max_tokens" not in third


def test_a_stream_cut_or_malformed_mid_answer_keeps_the_partial_answer_and_is_never_resent(chat, llm_server):
    llm_server.script.append(Scripted(text="The answer begins here and goes on", cut_after=2))
    answer = chat().complete(QUESTION, "m")
    assert answer.text == "The answer begin" and answer.cut == "stalled"
    llm_server.script.append(Scripted(text="The answer begins here and goes on", garbage_after=1))
    answer = chat().complete(QUESTION, "m")
    assert answer.text == "The answ" and answer.cut == "stalled"
    assert len(llm_server.requests) == 2  # neither was sent again


def test_a_stream_that_is_not_json_from_the_start_is_a_clear_failure(chat, llm_server):
    llm_server.script.append(Scripted(garbage_after=0))
    with pytest.raises(LLMError) as failed:
        chat().complete(QUESTION, "m")
    assert failed.value.reason == "malformed" and len(llm_server.requests) == 1


def test_the_console_says_so_when_the_llm_sends_garbage_and_answers_the_next_question(tmp_path, llm_server):
    llm_server.script.append(Scripted(garbage_after=0))
    env = parley_env(tmp_path / "data", llm_server)
    out = run_parley(["console"], env, stdin="first question\nsecond question\n")
    lines = out.stdout.splitlines()
    assert lines == ["Sorry, the language model's server sent an answer I could not read. Please try again.",
                     "echo: second question [turns=2]"], out.stdout  # a failed question stays in the history
    failed = [e["data"] for e in replay_json(env) if e["type"] == "ResponseFailed"]
    assert [f["reason"] for f in failed] == ["malformed"]
