"""End to end: `python run.py console` as a user runs it, against a local OpenAI-compatible server."""
from __future__ import annotations

from tests.conftest import parley_env, replay_json, run_parley
from tests.fakes.openai_server import Scripted


def test_piped_lines_are_answered_in_order_and_recorded(tmp_path, llm_server):
    env = parley_env(tmp_path / "data", llm_server)
    out = run_parley(["console"], env, stdin="hello there\n!hi\nwhat did I say?\n")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "echo: hello there [turns=1]"
    assert lines[1].startswith("Hi ") and "Parley" in lines[1]
    assert lines[2] == "echo: what did I say? [turns=3]"  # the earlier exchange was in the context
    types = [e["type"] for e in replay_json(env)]
    assert types.count("MessageReceived") == 2 and types.count("ResponseGenerated") == 2
    assert types.count("CommandAnswered") == 1 and types.count("ReplySent") == 3
    # The model saw the system prompt and the whole conversation, and the configured model name.
    last = llm_server.requests[-1]
    assert last["model"] == "test-model"
    assert [m["role"] for m in last["messages"]] == ["system", "user", "assistant", "user"]


def test_a_restarted_process_remembers_the_conversation(tmp_path, llm_server):
    env = parley_env(tmp_path / "data", llm_server)
    first = run_parley(["console"], env, stdin="my name is Ada\n")
    assert first.returncode == 0, first.stderr
    second = run_parley(["console"], env, stdin="what is my name?\n")
    assert second.stdout.strip() == "echo: what is my name? [turns=3]"
    contents = [m["content"] for m in llm_server.requests[-1]["messages"]]
    assert "my name is Ada" in contents and "echo: my name is Ada [turns=1]" in contents


def test_bad_input_gets_clear_replies_and_events(tmp_path, llm_server):
    env = parley_env(tmp_path / "data", llm_server)
    long_line = "x" * 10_000
    out = run_parley(["console"], env, stdin=f"\n{long_line}\n!frobnicate\n!help\n")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "empty" in lines[0]
    assert "10,000 characters" in lines[1] and "4,000" in lines[1]
    assert "don't know the command `!frobnicate`" in lines[2]
    assert any("!status" in line for line in lines[3:])
    assert llm_server.requests == []  # nothing bad reached the LLM
    events = replay_json(env)
    rejected = [e["data"]["reason"] for e in events if e["type"] == "MessageRejected"]
    assert rejected == ["empty", "too_long"]
    assert [e["data"]["command"] for e in events if e["type"] == "CommandRejected"] == ["frobnicate"]


def test_a_failing_llm_gets_a_failure_reply_and_the_next_message_is_answered(tmp_path, llm_server):
    env = parley_env(tmp_path / "data", llm_server, PARLEY_LLM_RETRIES="1")
    llm_server.script.extend([Scripted(500), Scripted(503)])  # both tries of the first message fail
    out = run_parley(["console"], env, stdin="first\nsecond\n")
    assert out.returncode == 1, out.stderr  # one answer failed: scripts can tell
    lines = out.stdout.splitlines()
    assert "cannot reach the language model" in lines[0]
    assert lines[1] == "echo: second [turns=2]"
    failed = [e for e in replay_json(env) if e["type"] == "ResponseFailed"]
    assert len(failed) == 1 and failed[0]["data"]["reason"] == "unreachable"


def test_rate_limits_are_retried_with_backoff(tmp_path, llm_server):
    env = parley_env(tmp_path / "data", llm_server, PARLEY_LLM_RETRIES="2")
    llm_server.script.extend([Scripted(429), Scripted(429)])
    out = run_parley(["console"], env, stdin="patience\n")
    assert out.stdout.strip() == "echo: patience [turns=1]"
    assert len(llm_server.requests) == 3


def test_unreachable_llm_endpoint(tmp_path, llm_server):
    env = parley_env(tmp_path / "data", llm_server, OPENAI_BASE_URL="http://127.0.0.1:9/v1", PARLEY_LLM_RETRIES="0")
    out = run_parley(["console"], env, stdin="anyone there?\n")
    assert out.returncode == 1
    assert "cannot reach the language model" in out.stdout
    assert "answering with model 'test-model' at http://127.0.0.1:9/v1" in out.stderr


def test_no_token_starts_the_console_and_says_why(tmp_path, llm_server):
    env = parley_env(tmp_path / "data", llm_server)
    out = run_parley([], env, stdin="hi bot\n")
    assert out.returncode == 0, out.stderr
    assert "DISCORD_TOKEN is not set" in out.stderr
    assert out.stdout.strip() == "echo: hi bot [turns=1]"


def test_status_command_reports_store_actors_and_model(tmp_path, llm_server):
    env = parley_env(tmp_path / "data", llm_server)
    run_parley(["console"], env, stdin="one\n")  # MessageReceived, ResponseGenerated, ReplySent
    out = run_parley(["console"], env, stdin="!status\n")
    assert "parley.sqlite3, position 3" in out.stdout
    assert "Actors alive: 17/17" in out.stdout and "Model: test-model" in out.stdout


def test_a_refused_api_key_and_a_missing_model_get_replies_that_say_so(tmp_path, llm_server):
    env = parley_env(tmp_path / "data", llm_server)
    llm_server.script.extend([Scripted(401), Scripted(404)])
    out = run_parley(["console"], env, stdin="first\nsecond\n")
    lines = out.stdout.splitlines()
    assert "refused my credentials" in lines[0] and "model does not exist" in lines[1]
    reasons = [e["data"]["reason"] for e in replay_json(env) if e["type"] == "ResponseFailed"]
    assert reasons == ["unauthorized", "model_not_found"]


def test_an_llm_slower_than_the_timeout_gets_a_timeout_reply(tmp_path, llm_server):
    env = parley_env(tmp_path / "data", llm_server, PARLEY_LLM_TIMEOUT="0.5", PARLEY_LLM_RETRIES="0")
    llm_server.script.append(Scripted(delay=3))
    out = run_parley(["console"], env, stdin="are you slow?\nnext\n")
    lines = out.stdout.splitlines()
    assert "did not answer in time" in lines[0] and lines[1] == "echo: next [turns=2]"
    assert [e["data"]["reason"] for e in replay_json(env) if e["type"] == "ResponseFailed"] == ["timeout"]


def test_a_terminal_shows_the_answer_while_it_streams(tmp_path, llm_server):
    import os
    import pty
    import select
    import subprocess
    import sys

    from tests.conftest import ROOT
    from tests.helpers import wait_for

    answer = " ".join(f"word{n}" for n in range(60))
    llm_server.script.append(Scripted(text=answer, chunk_delay=0.05))  # about 2 s of streaming
    env = parley_env(tmp_path / "data", llm_server)
    master, slave = pty.openpty()
    process = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "console"], env=env, cwd=ROOT,
                               stdin=subprocess.PIPE, stdout=slave, stderr=subprocess.DEVNULL)
    os.close(slave)
    seen = b""

    def read_some() -> bytes:
        nonlocal seen
        while select.select([master], [], [], 0.05)[0]:
            try:
                seen += os.read(master, 4096)
            except OSError:
                break
        return seen

    try:
        process.stdin.write(b"stream please\n")
        process.stdin.flush()
        wait_for(lambda: b"word1 " in read_some(), what="the first words on the terminal")
        assert llm_server.stream_seconds == []  # shown while the model was still streaming
        wait_for(lambda: answer.encode() in read_some().replace(b"\r\n", b"\n"), what="the whole answer")
        process.stdin.close()
        assert process.wait(30) == 0
        shown = read_some().replace(b"\r\n", b"\n").decode()
        assert shown.count("word59") == 1 and shown.rstrip("\n").endswith(answer)  # printed once, not twice
    finally:
        if process.poll() is None:
            process.kill()
        os.close(master)
