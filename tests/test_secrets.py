"""No secret is ever written (issue 16): the Discord token and every API key appear in no file of the data
dir (the store, the read models, keys aside, exports, archives and what is inside them) and in no output,
with the most verbose logging."""
from __future__ import annotations

import zipfile
from pathlib import Path

from tests.conftest import parley_env, run_parley
from tests.fakes.discord_server import BOT_TOKEN
from tests.helpers import wait_for
from tests.test_discord_e2e import Bot, discord_emulator, final_reply  # noqa: F401  (the emulator fixture)

SECRETS = ("sk-chat-secret-4242", "sk-training-secret-4343", BOT_TOKEN)


def everything_written(data_dir: Path) -> bytes:
    found = []
    for path in data_dir.rglob("*"):
        if path.is_file():
            found.append(path.read_bytes())
            if path.suffix == ".zip":
                with zipfile.ZipFile(path) as archive:
                    found += [archive.read(name) for name in archive.namelist()]
    return b"\n".join(found)


def test_the_token_and_the_api_keys_are_written_nowhere(tmp_path, llm_server, discord_emulator):  # noqa: F811
    data = tmp_path / "data"
    env = parley_env(data, llm_server, OPENAI_API_KEY=SECRETS[0], PARLEY_TRAINING_API_KEY=SECRETS[1],
                     PARLEY_LOG_LEVEL="DEBUG", PARLEY_TRAINING_POLL_S="3600")
    lines = [f"!train How do I reset gadget {i}? => Hold button {i}." for i in range(10)]
    console = run_parley(["console"], env, stdin="\n".join(lines + [
        "hello", "!dataset export default", "!dataset archive default", "!finetune start base-model"]) + "\n")
    assert console.returncode == 0, console.stderr
    assert "Started fine-tuning job" in console.stdout  # the training key was used, and sent
    env.update(DISCORD_TOKEN=BOT_TOKEN, DISCORD_API_BASE=discord_emulator.api_base,
               DISCORD_GATEWAY_URL=discord_emulator.gateway_url)
    bot = Bot(env, discord_emulator).start()
    try:
        asked = discord_emulator.user_says(discord_emulator.general, discord_emulator.user("Alice"), "hi",
                                           mention_bot=True)
        final_reply(discord_emulator, asked, "echo: hi [turns=1]")
    finally:
        logs = bot.stop()
    assert wait_for(lambda: list((data / "archives").glob("*.zip")), what="the archive")
    written = everything_written(data)
    outputs = "\n".join((console.stdout, console.stderr, logs, run_parley(["status"], env).stdout,
                         run_parley(["replay", "--json"], env).stdout))
    for secret in SECRETS:
        assert secret.encode() not in written and secret not in outputs, secret
    assert b"gadget 3" in written and "DEBUG" in logs + console.stderr  # it did write and log
