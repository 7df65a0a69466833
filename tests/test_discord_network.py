"""A network that is not there yet, and a gateway that comes and goes (issue 31): the bot waits, a line a wait and
never longer than PARLEY_RECONNECT_MAX_S, and exits with a code an init system restarts (75) only when it gives up;
2 stays for what a person must change (a refused token)."""
from __future__ import annotations

import re
import socket
import subprocess
import sys

from tests.conftest import ROOT, replay_json
from tests.helpers import wait_for
from tests.test_discord_e2e import Bot, final_reply
from tests.test_discord_e2e import bot_env, discord_emulator  # noqa: F401  (fixtures)

WAITS = re.compile(r"(?:trying again|reconnecting) in ([0-9.]+)s")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once it is closed


def run_bot(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "run.py"), "bot"], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=60)


def test_no_network_is_waited_for_a_line_an_attempt_then_exit_75_which_systemd_restarts(bot_env):  # noqa: F811
    for base in (f"http://127.0.0.1:{closed_port()}/api/v10", "http://parley-no-such-host.invalid/api/v10"):
        out = run_bot({**bot_env, "DISCORD_API_BASE": base, "PARLEY_CONNECT_GIVE_UP_S": "2",
                       "PARLEY_RECONNECT_MAX_S": "0.5"})
        assert out.returncode == 75, (base, out.stderr)
        attempts = [line for line in out.stderr.splitlines() if "cannot reach Discord at" in line]
        assert len(attempts) >= 3 and "Traceback" not in out.stderr, out.stderr
        assert attempts[-1].startswith("parley: cannot reach Discord at") and "gave up after" in attempts[-1]
        assert all(float(w) <= 0.5 for w in WAITS.findall(out.stderr)), out.stderr  # capped
        assert "attempt 1, trying again in" in out.stderr


def test_a_refused_token_is_still_exit_2(bot_env):  # noqa: F811
    out = run_bot({**bot_env, "DISCORD_TOKEN": "not-the-token"})
    assert out.returncode == 2 and "Discord refused DISCORD_TOKEN" in out.stderr


def test_a_server_still_starting_is_waited_for_and_then_answers(bot_env, discord_emulator):  # noqa: F811
    discord_emulator.unavailable_logins = 3
    bot = Bot({**bot_env, "PARLEY_RECONNECT_MAX_S": "0.5"}, discord_emulator).start()
    try:
        asked = discord_emulator.user_says(discord_emulator.general, discord_emulator.user("Ida"), "up?",
                                           mention_bot=True)
        final_reply(discord_emulator, asked, "echo: up? [turns=1]")
        assert bot.log().count("cannot reach Discord at") == 3 and "503" in bot.log()
    finally:
        assert "Traceback" not in bot.stop()


def test_a_gateway_that_keeps_dropping_is_reconnected_to_with_capped_waits_in_one_line_each(
        bot_env, discord_emulator):  # noqa: F811
    em = discord_emulator
    bot = Bot({**bot_env, "PARLEY_RECONNECT_MAX_S": "0.5"}, em).start()
    try:
        olga = em.user("Olga")
        final_reply(em, em.user_says(em.general, olga, "first", mention_bot=True), "echo: first [turns=1]")
        for round_ in range(2):  # the gateway restarts, and refuses the first connections while it does
            em.refused_gateways = 4
            em.disconnect_all(1001, "Going away")
            wait_for(lambda: em.refused_gateways == 0, 30, "the refused connections")
            asked = em.user_says(em.general, olga, f"after drop {round_}", mention_bot=True)
            final_reply(em, asked, f"echo: after drop {round_} [turns=1]")
        lost = [line for line in bot.log().splitlines() if "Discord connection lost" in line]
        assert len(lost) >= 8, bot.log()  # one line a wait, naming what failed
        assert all(float(w) <= 0.5 for w in WAITS.findall("\n".join(lost))), lost
        answers = [e for e in replay_json(bot.env) if e["type"] == "ResponseGenerated"]
        assert len(answers) == 3  # each message answered once
    finally:
        assert "Traceback" not in bot.stop()
