"""Small helpers for tests that run Parley in-process."""
from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path

from actors.commands import InvokeCommand, ReceiveMessage
from adapters.config import Settings
from adapters.console import CHANNEL, SOURCE, ConsoleTransport


def wait_for(predicate: Callable[[], object], timeout: float = 15.0, what: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def settings_for(data_dir: Path, llm_url: str, **overrides: object) -> Settings:
    base = dict(data_dir=data_dir, openai_base_url=llm_url, openai_api_key="test-key", chat_model="test-model",
                llm_retries=0, llm_timeout=10.0)
    base.update(overrides)
    return Settings(**base)  # type: ignore[arg-type]


def console_message(n: int, text: str, conversation: str = "console:tester") -> ReceiveMessage:
    return ReceiveMessage(source=SOURCE, conversation_id=conversation, channel_id=CHANNEL, message_id=f"m{n}",
                          author_id="tester", author_name="Tester", text=text)


def console_command(n: int, name: str, conversation: str = "console:tester") -> InvokeCommand:
    return InvokeCommand(source=SOURCE, conversation_id=conversation, channel_id=CHANNEL, message_id=f"m{n}",
                         author_id="tester", author_name="Tester", name=name)


class CapturedConsole(ConsoleTransport):
    def __init__(self, files_root: Path | None = None) -> None:
        super().__init__(io.StringIO(), files_root=files_root)

    def lines(self) -> list[str]:
        return self.out.getvalue().splitlines()  # type: ignore[attr-defined]


def crash(system) -> None:  # noqa: ANN001
    """A crash of a running Parley, in process: the actors dropped without finishing what they were told,
    and its threads gone with it (in a real crash the whole process is), before the store closes under them."""
    for s in system.supervised:
        s._stopped = True
    system._stopping.set()
    system.store.wake_followers()
    for follower in system._followers:
        follower.join(10)
    system.read_models.stop()
    system.store.close()
