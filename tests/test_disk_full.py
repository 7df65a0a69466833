"""The disk full (issue 16) while Parley writes a received voice message, a dataset export or synthesized
speech: the person is told in words that the disk is full (not "something went wrong"), the refusal is
recorded, no half-written file is left, and once there is room again the same request works.

A full disk is a real one: a small tmpfs mounted over the folder in the data dir and filled up, so the
kernel answers ENOSPC. The event store stays on the test's own disk (a data dir whose store is also full waits:
appends are retried until there is room, as during any store outage). Mounting needs root, as on the CI machine;
without it these tests fail, they never skip."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import parley_env, replay_json, run_parley
from tests.fakes.discord_server import BOT_TOKEN
from tests.helpers import wait_for
from tests.test_discord_e2e import Bot, discord_emulator  # noqa: F401  (fixture)
from tests.test_hearing import VOICE

FILLER = ".filler"


class FullFolder:
    """``folder`` on a tmpfs of its own, filled to the last byte."""

    def __init__(self, folder: Path, size_kb: int = 64):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(folder)],
                                 capture_output=True, text=True)
        if mounted.returncode != 0:
            pytest.fail(f"these tests mount a small tmpfs to fill a disk and need root: {mounted.stderr.strip()}")
        try:
            with open(folder / FILLER, "wb") as f:
                while True:
                    f.write(b"\0" * 4096)
                    f.flush()
        except OSError:
            pass

    def files(self) -> list[str]:
        return sorted(str(p.relative_to(self.folder)) for p in self.folder.rglob("*") if p.is_file() and p.name != FILLER)

    def free(self) -> None:
        (self.folder / FILLER).unlink()

    def unmount(self) -> None:
        subprocess.run(["umount", "-l", str(self.folder)], check=False)


@pytest.fixture
def full_folders():
    mounted: list[FullFolder] = []

    def fill(folder: Path) -> FullFolder:
        mounted.append(FullFolder(folder))
        return mounted[-1]
    yield fill
    for folder in mounted:
        folder.unmount()


def test_a_voice_message_on_a_full_disk_is_refused_in_words_and_kept_once_there_is_room(
        tmp_path, llm_server, discord_emulator, full_folders):
    em = discord_emulator
    env = parley_env(tmp_path / "data", llm_server, DISCORD_TOKEN=BOT_TOKEN, DISCORD_API_BASE=em.api_base,
                     DISCORD_GATEWAY_URL=em.gateway_url)
    env.pop("VOSK_MODEL_PATH", None)  # the clip's fate is the point here, not its transcript
    audio = full_folders(tmp_path / "data" / "audio")
    bot = Bot(env, em).start()
    try:
        vera = em.user("Vera")
        dm = em.dm_channel(vera)

        def voice_message() -> dict:
            voice = em.attachment("voice-message.ogg", VOICE.read_bytes(), "audio/ogg", duration_secs=3.7)
            return em.user_says(dm, vera, "", attachments=[voice], voice=True)

        first = voice_message()
        told = wait_for(lambda: em.replies_to(first), what="the refusal")[0]["content"]
        assert "could not keep that recording: my disk is full" in told
        assert audio.files() == []  # the half-written download was removed

        audio.free()
        second = voice_message()
        wait_for(lambda: em.replies_to(second), what="the answer once there is room")
        failed = [e["data"] for e in replay_json(env) if e["type"] == "TranscriptionFailed"]
        assert [(f["message_id"], f["reason"]) for f in failed] == [(first["id"], "no_space"),
                                                                    (second["id"], "no_model")]
        [kept] = [e["data"]["audio_hash"] for e in replay_json(env)
                  if e["type"] == "AudioReceived" and e["data"]["message_id"] == second["id"]]
        assert audio.files() == [kept]  # stored this time, under its hash
    finally:
        log = bot.stop()
    assert "no room to store voice-message.ogg" in log and "Traceback" not in log


def test_an_export_and_speech_on_a_full_disk_are_refused_in_words_and_work_once_there_is_room(
        tmp_path, llm_server, full_folders):
    env = parley_env(tmp_path / "data", llm_server)
    exports = full_folders(tmp_path / "data" / "exports")
    speech = full_folders(tmp_path / "data" / "speech")
    out = run_parley(["console"], env, stdin="!train What is Parley? => A Discord assistant.\n"
                                             "!dataset export\n!say Hello there.\n", timeout=120)
    assert out.returncode == 0, out.stderr
    assert "I could not write the export: my disk is full. Nothing was written" in out.stdout
    assert "I could not save the speech: my disk is full" in out.stdout
    assert exports.files() == [] and speech.files() == []  # nothing half-written left behind
    rejected = [e["data"] for e in replay_json(env) if e["type"] == "CommandRejected"]
    assert sorted((r["command"], r["reason"]) for r in rejected) == [("dataset", "no_space"), ("say", "no_space")]

    exports.free()
    speech.free()
    again = run_parley(["console"], env, stdin="!dataset export\n!say Hello there.\n", timeout=120)
    assert again.returncode == 0, again.stderr
    assert "disk is full" not in again.stdout
    assert exports.files() == ["operators/default-sft.jsonl"] and len(speech.files()) == 1
    assert "What is Parley?" in (tmp_path / "data" / "exports" / "operators" / "default-sft.jsonl").read_text()
