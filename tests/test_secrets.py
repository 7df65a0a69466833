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

SECRETS = ("sk-chat-secret-4242", "sk-training-secret-4343", BOT_TOKEN, "url-password-9191")


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
    with_password = llm_server.base_url.replace("://", f"://parley:{SECRETS[3]}@", 1)  # credentials in the URL
    env = parley_env(data, llm_server, OPENAI_API_KEY=SECRETS[0], PARLEY_TRAINING_API_KEY=SECRETS[1],
                     PARLEY_LOG_LEVEL="DEBUG", PARLEY_TRAINING_POLL_S="3600", OPENAI_BASE_URL=with_password)
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
    assert wait_for(lambda: list((data / "archives").rglob("*.zip")), what="the archive")
    written = everything_written(data)
    outputs = "\n".join((console.stdout, console.stderr, logs, run_parley(["status"], env).stdout,
                         run_parley(["replay", "--json"], env).stdout))
    for secret in SECRETS:
        assert secret.encode() not in written and secret not in outputs, secret
    assert b"gadget 3" in written and "DEBUG" in logs + console.stderr  # it did write and log
    assert "at http://***@127.0.0.1" in console.stderr  # the endpoint is named, without its credentials


def test_the_data_dir_is_the_bots_users_alone(tmp_path, llm_server):
    """People's words and voices are in the data dir: nothing in it is readable by other users of the machine,
    neither what is written now nor what an earlier version left open."""
    data = tmp_path / "data"
    (data / "exports").mkdir(parents=True)
    (data / "exports" / "old-sft.jsonl").write_text("{}\n")
    for path, mode in ((data, 0o755), (data / "exports", 0o755), (data / "exports" / "old-sft.jsonl", 0o644)):
        path.chmod(mode)
    env = parley_env(data, llm_server)
    console = run_parley(["console"], env, stdin="hello\n!train Where is the key? => Under the mat.\n"
                                                 "!dataset export default\n")
    assert console.returncode == 0, console.stderr
    modes = {str(p.relative_to(tmp_path)): p.stat().st_mode & 0o777 for p in [data, *data.rglob("*")]
             if not p.is_symlink()}
    assert "data/read-models.sqlite3" in modes and "data/exports/operators/default-sft.jsonl" in modes
    assert {path: mode for path, mode in modes.items() if mode & 0o077} == {}
