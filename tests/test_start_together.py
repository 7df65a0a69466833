"""Several Parley processes started at the same moment on one fresh store all start (issue 16): the
schema is created once, under a lock, whoever comes first."""
from __future__ import annotations

import subprocess
import sys
import uuid

import pytest

from tests.conftest import ROOT, drop_schema, parley_env, postgres_schema_url


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_processes_started_together_on_a_fresh_store_all_start(tmp_path, llm_server, backend):
    for round_ in range(3 if backend == "postgresql" else 2):
        schema = f"t_{uuid.uuid4().hex[:12]}"
        store = {"PARLEY_EVENT_STORE": postgres_schema_url(schema)} if backend == "postgresql" else {}
        env = parley_env(tmp_path / f"data{round_}", llm_server, **store)
        try:
            started = [subprocess.Popen([sys.executable, str(ROOT / "run.py"), "console"], env=env, cwd=ROOT,
                                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True) for _ in range(3)]
            for process in started:
                out, err = process.communicate(timeout=90)
                assert process.returncode == 0 and "Traceback" not in err, err
        finally:
            if backend == "postgresql":
                drop_schema(schema)
