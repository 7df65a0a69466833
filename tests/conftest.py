"""Shared fixtures: an event store on each real backend, and the local fake servers."""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from events import open_store

# The PostgreSQL server CI starts (see .ci/run). A missing server fails the tests, never skips them.
POSTGRES_URL = os.environ.get("PARLEY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def postgres_schema_url(schema: str) -> str:
    return f"{POSTGRES_URL}?schema={schema}"


def drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def postgres_url():
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
