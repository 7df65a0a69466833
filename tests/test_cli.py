"""The command line: --help, replay with its filters, status, and clear errors for bad configuration."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from tests.conftest import parley_env, replay_json, run_parley


def test_help_lists_the_subcommands(tmp_path, llm_server):
    out = run_parley(["--help"], parley_env(tmp_path, llm_server))
    assert out.returncode == 0
    for word in ("console", "replay", "status", "DISCORD_TOKEN"):
        assert word in out.stdout


def test_replay_filters_by_stream_type_and_time(tmp_path, llm_server):
    env = parley_env(tmp_path / "data", llm_server)
    run_parley(["console"], env, stdin="one\n!hi\n")
    everything = replay_json(env)
    assert [e["position"] for e in everything] == sorted(e["position"] for e in everything)
    assert set(everything[0]) == {"position", "stream", "version", "type", "time", "data"}
    stream = everything[0]["stream"]
    by_stream = run_parley(["replay", "--json", "--stream", stream], env).stdout.splitlines()
    assert by_stream and all(json.loads(line)["stream"] == stream for line in by_stream)
    by_type = run_parley(["replay", "--json", "--type", "CommandAnswered", "--type", "ReplySent"], env)
    assert sorted({json.loads(line)["type"] for line in by_type.stdout.splitlines()}) == ["CommandAnswered", "ReplySent"]
    future = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()
    assert run_parley(["replay", "--since", future], env).stdout == ""
    past = run_parley(["replay", "--since", "2000-01-01"], env).stdout.splitlines()
    assert len(past) == len(everything) and everything[0]["type"] in past[0]
    bad = run_parley(["replay", "--since", "yesterday"], env)
    assert bad.returncode == 2 and "--since must be an ISO date" in bad.stderr


def test_status_counts_events(tmp_path, llm_server):
    env = parley_env(tmp_path / "data", llm_server)
    run_parley(["console"], env, stdin="one\n")
    out = run_parley(["status"], env)
    assert "position: 3" in out.stdout and "MessageReceived: 1" in out.stdout
    assert "replies not yet delivered: 0" in out.stdout


def test_a_data_dir_that_is_a_file_is_a_clear_error(tmp_path, llm_server):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    out = run_parley(["console"], parley_env(blocker, llm_server), stdin="hi\n")
    assert out.returncode == 2 and "is a file, not a folder" in out.stderr and "Traceback" not in out.stderr


def test_an_unknown_event_store_and_an_unreachable_postgres_are_clear_errors(tmp_path, llm_server):
    out = run_parley(["status"], parley_env(tmp_path, llm_server, PARLEY_EVENT_STORE="mongodb://x"))
    assert out.returncode == 2 and "must be 'sqlite' or a postgresql:// URL" in out.stderr
    out = run_parley(["status"], parley_env(tmp_path, llm_server,
                                            PARLEY_EVENT_STORE="postgresql://postgres@127.0.0.1:1/test?schema=x"))
    assert out.returncode == 2 and "cannot reach PostgreSQL" in out.stderr and "Traceback" not in out.stderr


def test_a_bad_number_in_the_config_is_a_clear_error(tmp_path, llm_server):
    out = run_parley(["status"], parley_env(tmp_path, llm_server, PARLEY_LLM_TIMEOUT="soon"))
    assert out.returncode == 2 and "PARLEY_LLM_TIMEOUT must be a number" in out.stderr


def test_settings_come_from_a_toml_file_that_the_environment_overrides(tmp_path, llm_server):
    config = tmp_path / "parley.toml"
    config.write_text('chat_model = "from-file"\nPARLEY_SYSTEM_PROMPT = "You are terse."\n')
    env = parley_env(tmp_path / "data", llm_server, PARLEY_CONFIG=str(config))
    del env["PARLEY_CHAT_MODEL"]
    run_parley(["console"], env, stdin="hi\n")
    request = llm_server.requests[-1]
    assert request["model"] == "from-file" and request["messages"][0]["content"] == "You are terse."
    env["PARLEY_CHAT_MODEL"] = "from-env"
    run_parley(["console"], env, stdin="again\n")
    assert llm_server.requests[-1]["model"] == "from-env"


def test_the_console_runs_on_postgresql(postgres_url, tmp_path, llm_server):
    env = parley_env(tmp_path / "data", llm_server, PARLEY_EVENT_STORE=postgres_url)
    assert run_parley(["console"], env, stdin="stored in postgres\n").stdout.strip() == \
        "echo: stored in postgres [turns=1]"
    again = run_parley(["console"], env, stdin="still there?\n")
    assert again.stdout.strip() == "echo: still there? [turns=3]"
    assert [e["type"] for e in replay_json(env)].count("ReplySent") == 2
    assert not (tmp_path / "data" / "parley.sqlite3").exists()


def test_no_secret_reaches_the_log_or_the_output(tmp_path, llm_server):
    schema = f"t_{__import__('uuid').uuid4().hex[:12]}"
    from tests.conftest import drop_schema
    url = f"postgresql://postgres:hunter2-password@127.0.0.1:5432/test?schema={schema}"
    try:
        env = parley_env(tmp_path / "data", llm_server, OPENAI_API_KEY="sk-very-secret-key", PARLEY_EVENT_STORE=url)
        chat = run_parley(["console"], env, stdin="hello\n!status\n")
        status = run_parley(["status"], env)
        replay = run_parley(["replay", "--json"], env)
        for text in (chat.stdout, chat.stderr, status.stdout, replay.stdout):
            assert "sk-very-secret-key" not in text and "hunter2-password" not in text
        assert "postgresql://postgres@127.0.0.1:5432/test" in status.stdout
    finally:
        drop_schema(schema)
    env = parley_env(tmp_path / "sqlite", llm_server, OPENAI_API_KEY="sk-very-secret-key")
    run_parley(["console"], env, stdin="hello\n")
    stored = b"".join(p.read_bytes() for p in (tmp_path / "sqlite").iterdir() if p.is_file())
    assert b"sk-very-secret-key" not in stored and b"hello" in stored


def test_replay_follow_prints_events_as_they_are_appended(tmp_path, llm_server):
    import subprocess
    import sys

    from tests.conftest import ROOT

    env = parley_env(tmp_path / "data", llm_server)
    run_parley(["console"], env, stdin="first\n")
    follower = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "replay", "--json", "--follow"], env=env,
                                cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        seen = [json.loads(follower.stdout.readline()) for _ in range(3)]  # what was there already
        assert [e["type"] for e in seen].count("MessageReceived") == 1
        run_parley(["console"], env, stdin="second\n")
        later = [json.loads(follower.stdout.readline()) for _ in range(3)]
        texts = [e["data"].get("text") for e in later if e["type"] == "MessageReceived"]
        assert texts == ["second"]
    finally:
        follower.terminate()
        follower.wait(10)


def test_a_damaged_store_file_is_a_clear_error(tmp_path, llm_server):
    data = tmp_path / "data"
    data.mkdir()
    (data / "parley.sqlite3").write_bytes(b"this is not a database" * 300)
    out = run_parley(["console"], parley_env(data, llm_server), stdin="hello\n")
    assert out.returncode == 2 and "damaged or not a Parley store" in out.stderr and "Traceback" not in out.stderr
