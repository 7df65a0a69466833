"""Several processes on one PostgreSQL store (issue 16): what one of them records takes effect in the others
at once, with no stale copy in their memory."""
from __future__ import annotations

from events.catalog.conversation import MessageReceived
from events.personal import FORGOTTEN
from tests.conftest import parley_env, run_parley
from tests.helpers import wait_for
from tests.test_learning import Session


def test_a_person_forgotten_or_a_model_activated_in_another_process_takes_effect_here(tmp_path, llm_server,
                                                                                      postgres_url):
    here = Session(tmp_path / "here", llm_server, event_store=postgres_url)
    try:
        here.ask("My locker code is 4711.")
        [said] = [r for r in here.system.store.read_all() if isinstance(r.event, MessageReceived)]
        assert here.system.store.read_stream(said.stream)[0].event.text == "My locker code is 4711."  # key cached

        env = parley_env(tmp_path / "there", llm_server, PARLEY_EVENT_STORE=postgres_url)
        assert run_parley(["forget", "tester"], env).returncode == 0  # another process forgets them
        wait_for(lambda: here.system.store.read_stream(said.stream)[0].event.text == FORGOTTEN,
                 what="this process to drop its copy of the key")

        console = run_parley(["console"], env, stdin="!model use tuned-elsewhere\n")
        assert console.returncode == 0, console.stderr
        wait_for(lambda: here.system.model() == "tuned-elsewhere", what="the model activated elsewhere")
        assert here.ask("Which model answers?")["model"] == "tuned-elsewhere"
    finally:
        here.stop()
