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
    assert [p.name for p in (tmp_path / "data").iterdir()] == []  # log and read models are in PostgreSQL
    import psycopg
    schema = postgres_url.split("schema=")[1]
    from tests.conftest import postgres_url as server_url
    with psycopg.connect(server_url()) as conn:
        tables = {r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema=%s",
                                              (schema,))}
        assert {"read_model_tracking", "message_conversation", "pending_delivery", "unanswered_messages"} <= tables
        [(position,)] = conn.execute(f'SELECT position FROM "{schema}".read_model_tracking').fetchall()
        assert position == max(e["position"] for e in replay_json(env))
    status = run_parley(["status"], env)
    assert "replies not yet delivered: 0" in status.stdout


def test_no_secret_reaches_the_log_or_the_output(tmp_path, llm_server):
    schema = f"t_{__import__('uuid').uuid4().hex[:12]}"
    from tests.conftest import drop_schema, postgres_url as server_url, with_query
    from urllib.parse import urlparse
    base = urlparse(server_url())
    # A password in the URL (trust auth ignores it): it must show nowhere.
    url = with_query(base._replace(netloc=f"{base.username}:hunter2-password@{base.netloc.split('@')[-1]}").geturl(),
                     schema=schema)
    try:
        env = parley_env(tmp_path / "data", llm_server, OPENAI_API_KEY="sk-very-secret-key", PARLEY_EVENT_STORE=url)
        chat = run_parley(["console"], env, stdin="hello\n!status\n")
        status = run_parley(["status"], env)
        replay = run_parley(["replay", "--json"], env)
        for text in (chat.stdout, chat.stderr, status.stdout, replay.stdout):
            assert "sk-very-secret-key" not in text and "hunter2-password" not in text
        assert f"postgresql://{base.username}@" in status.stdout
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


# -- a new user's first hour ----------------------------------------------------------------------
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, TEST_CONFIG


@pytest.mark.parametrize("name, value, expected", [
    ("PARLEY_LOG_LEVEL", "loud", "PARLEY_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
    ("PARLEY_LLM_RETRIES", "-1", "PARLEY_LLM_RETRIES must be a whole number from 0 to 20"),
    ("PARLEY_LLM_TIMEOUT", "-5", "PARLEY_LLM_TIMEOUT must be a number of seconds greater than 0"),
    ("PARLEY_LLM_TIMEOUT", "nan", "PARLEY_LLM_TIMEOUT must be a number of seconds greater than 0"),
    ("PARLEY_LLM_IDLE_TIMEOUT", "inf", "PARLEY_LLM_IDLE_TIMEOUT must be a number of seconds greater than 0"),
    ("PARLEY_CONTEXT_TURNS", "-1", "PARLEY_CONTEXT_TURNS must be a whole number from 0 to 1000"),
    ("PARLEY_MAX_ANSWER_TOKENS", "0", "PARLEY_MAX_ANSWER_TOKENS must be a whole number"),
    ("PARLEY_CHANNELS", "general", "PARLEY_CHANNELS must be Discord ids"),
    ("PARLEY_ALLOW_DMS", "maybe", "PARLEY_ALLOW_DMS must be true or false"),
    ("OPENAI_BASE_URL", "localhost:11434", "OPENAI_BASE_URL must be a URL starting with http:// or https://"),
])
def test_every_setting_is_checked_at_start(tmp_path, llm_server, name, value, expected):
    out = run_parley(["console"], parley_env(tmp_path / "data", llm_server, **{name: value}), stdin="hi\n")
    [line] = out.stderr.strip().splitlines()  # one line, no traceback
    assert out.returncode == 2 and line.startswith(f"parley: {expected}") and repr(value) in line
    assert not (tmp_path / "data").exists()


def test_a_bad_value_in_the_toml_file_names_the_file(tmp_path, llm_server):
    config = tmp_path / "parley.toml"
    config.write_text("responders = 0\n")
    out = run_parley(["status"], parley_env(tmp_path, llm_server, PARLEY_CONFIG=str(config)))
    assert out.returncode == 2 and f"PARLEY_RESPONDERS (in {config}) must be a whole number" in out.stderr


def test_the_bot_command_without_a_token_is_an_error(tmp_path, llm_server):
    out = run_parley(["bot"], parley_env(tmp_path / "data", llm_server))
    assert out.returncode == 2 and "DISCORD_TOKEN is not set" in out.stderr


def test_an_endpoint_asked_for_but_not_set_says_what_to_set(tmp_path, llm_server):
    env = parley_env(tmp_path / "data", llm_server, PARLEY_LLM_BACKEND="openai")  # nothing set: not the local model
    del env["OPENAI_BASE_URL"], env["OPENAI_API_KEY"]
    out = run_parley([], env, stdin="hello\n")
    assert out.returncode == 2
    for needed in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "Ollama", "http://127.0.0.1:11434/v1", "llama.cpp",
                   "PARLEY_CHAT_MODEL"):
        assert needed in out.stderr
    assert out.stdout == ""


def test_the_endpoint_in_use_is_named_at_start(tmp_path, llm_server):
    out = run_parley(["console"], parley_env(tmp_path / "data", llm_server), stdin="hi\n")
    assert f"answering with model 'test-model' at {llm_server.base_url}" in out.stderr


def test_invalid_utf8_on_stdin_is_read_with_replacement(tmp_path, llm_server):
    env = parley_env(tmp_path / "data", llm_server)
    out = subprocess.run([sys.executable, str(ROOT / "run.py"), "console"], input=b"caf\xe9 \xff ok\nnext\n", env=env,
                         cwd=ROOT, capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.decode().splitlines() == ["echo: caf\ufffd \ufffd ok [turns=1]", "echo: next [turns=3]"]
    assert b"Traceback" not in out.stderr
    assert not any(e["type"] == "ActorRestarted" for e in replay_json(env))


def test_status_into_a_closed_pipe_is_quiet(tmp_path, llm_server):
    env = parley_env(tmp_path / "data", llm_server)
    run_parley(["console"], env, stdin="one\n")
    out = subprocess.run(f"{sys.executable} {ROOT / 'run.py'} status | head -1", shell=True, env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.startswith("event store:") and out.stderr == ""


def test_read_only_commands_never_create_a_store(tmp_path, llm_server):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = parley_env(tmp_path / "data", llm_server)
    del env["PARLEY_DATA_DIR"]
    for command in (["status"], ["replay"]):
        out = run_parley(command, env, cwd=elsewhere)
        assert out.returncode == 1 and "there is no event store at" in out.stderr and "Traceback" not in out.stderr
    assert list(elsewhere.iterdir()) == []


def test_replay_names_the_known_types_for_a_misspelled_one(tmp_path, llm_server):
    env = parley_env(tmp_path / "data", llm_server)
    run_parley(["console"], env, stdin="one\n")
    out = run_parley(["replay", "--type", "MessageRecieved"], env)
    assert out.returncode == 2 and "unknown event type 'MessageRecieved'" in out.stderr
    assert "MessageReceived" in out.stderr and "ReplySent" in out.stderr


def test_replay_shows_utc_and_reads_since_as_utc(tmp_path, llm_server):
    env = parley_env(tmp_path / "data", llm_server, TZ="America/New_York")
    run_parley(["console"], env, stdin="one\n")
    first = replay_json(env)[0]
    recorded = datetime.fromisoformat(first["time"])
    assert recorded.utcoffset() == timedelta(0)
    plain = run_parley(["replay"], env).stdout.splitlines()[0]
    assert f"{recorded:%Y-%m-%d %H:%M:%S}Z" in plain
    just_before = (recorded - timedelta(seconds=1)).replace(tzinfo=None).isoformat()
    just_after = (recorded + timedelta(minutes=1)).replace(tzinfo=None).isoformat()
    assert run_parley(["replay", "--since", just_before], env).stdout != ""
    assert run_parley(["replay", "--since", just_after], env).stdout == ""


def test_a_parley_toml_in_the_working_directory_does_not_change_the_tests(tmp_path, llm_server):
    (tmp_path / "parley.toml").write_text('chat_model = "from-the-users-file"\nnot_a_setting = 1\n')
    env = parley_env(tmp_path / "data", llm_server)
    out = run_parley(["console"], env, stdin="hi\n", cwd=tmp_path)
    assert out.returncode == 0 and env["PARLEY_CONFIG"] == str(TEST_CONFIG)
    assert llm_server.requests[-1]["model"] == "test-model"


def test_the_fake_llm_runs_on_its_own_on_the_port_given(tmp_path):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "tests.fakes.openai_server", str(port)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        lines = [server.stdout.readline(), server.stdout.readline()]
        assert f"export OPENAI_BASE_URL=http://127.0.0.1:{port}/v1" in "".join(lines)
        import openai
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x")
        reply = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "ping"}])
        assert reply.choices[0].message.content == "echo: ping [turns=1]"
    finally:
        server.terminate()
        server.wait(10)


def test_purge_audio_answers_bad_input_in_one_line_and_creates_no_store(tmp_path, llm_server):
    env = parley_env(tmp_path / "data", llm_server)
    fresh = run_parley(["purge-audio"], env)
    assert fresh.returncode == 1 and "there is no event store" in fresh.stderr and "Traceback" not in fresh.stderr
    assert not (tmp_path / "data" / "parley.sqlite3").exists()  # a command that only deletes creates nothing
    assert run_parley(["console"], env, stdin="hello\n").returncode == 0
    for days in ("1000000", "inf", "99999999999999999999"):  # longer ago than any date: nothing that old
        out = run_parley(["purge-audio", "--older-than", days], env)
        assert out.returncode == 0 and out.stdout.startswith("purged the audio of 0 clip(s)"), out.stderr
    bad = run_parley(["purge-audio", "--older-than", "-1"], env)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "at least 0" in bad.stderr


def test_transcribe_names_a_folder_and_reports_failures_in_json_too(tmp_path, llm_server):
    from adapters.speech import default_model_path

    env = parley_env(tmp_path / "data", llm_server, VOSK_MODEL_PATH=str(default_model_path()))
    (tmp_path / "text.ogg").write_text("not audio at all")
    out = run_parley(["transcribe", "--json", str(tmp_path), str(tmp_path / "missing.ogg"), str(tmp_path / "text.ogg")],
                     env)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    reports = [json.loads(line) for line in out.stdout.splitlines()]
    assert [(r["error"], r["message"]) for r in reports] == [
        ("undecodable", "is a folder, not an audio file"), ("undecodable", "no such file"),
        ("undecodable", "not an audio container I read (Ogg (Opus, Vorbis), WebM/Matroska, MP3, WAV, FLAC, MP4/M4A, "
                        "AAC (ADTS), AIFF)")]
    assert len(out.stderr.strip().splitlines()) == 3  # one line each on stderr as well


def test_a_read_that_finds_nothing_says_so_in_one_line_and_keeps_stdout_valid(tmp_path, llm_server):
    env = parley_env(tmp_path / "data", llm_server)
    assert run_parley(["console"], env, stdin="hello\n").returncode == 0
    for args, said in ((["replay", "--json", "--stream", "nope"], "no events match in stream 'nope'"),
                       (["corrections", "list", "--json"], "no corrections yet"),
                       (["feedback", "list", "--json"], "no feedback yet")):
        out = run_parley(args, env)
        assert out.returncode == 0 and out.stdout == "", (args, out.stderr)
        assert [line.removeprefix("parley: ") for line in out.stderr.strip().splitlines()] == [said], (args, out.stderr)


def test_models_names_both_models_and_refuses_a_folder_that_is_not_one(tmp_path, llm_server):
    from adapters.speech import default_model_path

    env = parley_env(tmp_path / "data", llm_server, VOSK_MODEL_PATH=str(default_model_path()))
    shown = run_parley(["models"], env)
    assert shown.returncode == 0 and "speech to text: Vosk" in shown.stdout and \
        "text to speech: Piper, voice" in shown.stdout and "end of turn: smart-turn-v3" in shown.stdout, shown.stdout
    (tmp_path / "not-a-model").mkdir()
    refused = run_parley(["models"], {**env, "VOSK_MODEL_PATH": str(tmp_path / "not-a-model")})
    assert refused.returncode == 2 and "is not a Vosk model folder" in refused.stderr
    assert "ERROR" not in refused.stderr and "Traceback" not in refused.stderr


def test_say_tells_where_it_cut_a_long_text(tmp_path, llm_server):
    env = parley_env(tmp_path / "data", llm_server, PARLEY_MAX_SPOKEN_CHARS="60")
    out = run_parley(["say", "One short sentence here. " * 10, "--out", str(tmp_path / "said.wav")], env)
    assert out.returncode == 0 and (tmp_path / "said.wav").stat().st_size > 1000
    assert "saying the first 49 of 249 characters (PARLEY_MAX_SPOKEN_CHARS is 60)" in out.stderr, out.stderr
