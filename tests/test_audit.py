"""The log's hash chain on SQLite and PostgreSQL: tampering found at the right position, concurrent
writers make one chain, and ``audit`` from the command line (with the README's checking script)."""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from events import open_store
from events.audit import verify, verify_parallel
from events.catalog.learning import DatasetCreated
from tests.conftest import parley_env, postgres_url, run_parley


def event(n: int) -> DatasetCreated:
    return DatasetCreated(dataset_id=f"d{n}", name=f"name {n} é", by="someone")


def fill(store, count: int = 20) -> None:
    """``count`` events in several streams, single and batched appends."""
    n = 0
    while n < count:
        batch = [event(n + i) for i in range(min(1 + n % 3, count - n))]
        store.append(f"stream-{n % 4}", batch, store.stream_version(f"stream-{n % 4}"))
        n += len(batch)


class Tamper:
    """Raw SQL on the store's own tables, as someone with database access would run it."""

    def __init__(self, spec: str, folder: Path):
        self.spec, self.folder = spec, folder
        if spec == "sqlite":
            self.position = "rowid"
            self.table, self.chain = "stored_events", "event_chain"
        else:
            schema = parse_qs(urlparse(spec).query)["schema"][0]
            self.position = "notification_id"
            self.table, self.chain = f'"{schema}".stored_events', f'"{schema}".event_chain'

    def run(self, *statements: str) -> None:
        if self.spec == "sqlite":
            db = sqlite3.connect(self.folder / "parley.sqlite3")
            with db:
                for s in statements:
                    db.execute(s.format(t=self.table, c=self.chain, p=self.position,
                                        edited="CAST(replace(state, 'name 4', 'name X') AS BLOB)"))
            db.close()
        else:
            import psycopg

            with psycopg.connect(postgres_url(), autocommit=False) as db:
                for s in statements:
                    db.execute(s.format(t=self.table, c=self.chain, p=self.position, edited=(
                        "convert_to(replace(convert_from(state, 'UTF8'), 'name 4', 'name X'), 'UTF8')"))
                               .replace("?", "%s"))

    def state(self, position: int) -> bytes:
        if self.spec == "sqlite":
            db = sqlite3.connect(self.folder / "parley.sqlite3")
            row = db.execute(f"SELECT state FROM {self.table} WHERE rowid=?", (position,)).fetchone()
            db.close()
            return row[0]
        import psycopg

        with psycopg.connect(postgres_url()) as db:
            return bytes(db.execute(f"SELECT state FROM {self.table} WHERE notification_id=%s", (position,)).fetchone()[0])


@pytest.mark.parametrize("tampering, bad, words", [
    (["UPDATE {t} SET state = {edited} WHERE {p} = 5"], 5, "does not match"),
    (["DELETE FROM {t} WHERE {p} = 7"], 7, "no longer in the log"),
    (["DELETE FROM {t} WHERE {p} = 7", "DELETE FROM {c} WHERE position = 7"], 8, "does not match"),
    (["UPDATE {t} SET originator_version = originator_version + 100 WHERE {p} = 3"], 3, "does not match"),
    (["INSERT INTO {t} (originator_id, originator_version, topic, state) SELECT 'stream-9', 1, topic, state "
      "FROM {t} WHERE {p} = 2"], 21, "not in the hash chain"),
], ids=["altered", "removed", "removed-with-its-hash", "reordered", "inserted"])
def test_tampering_is_found_at_its_position(store_spec, tmp_path, tampering, bad, words):
    store = open_store(store_spec, tmp_path)
    fill(store)
    intact = verify(store)
    assert intact.intact and intact.events == 20 and intact.chain_starts == 1 and len(intact.head) == 64
    Tamper(store_spec, tmp_path).run(*tampering)
    verdict = verify(store)
    store.close()
    assert (verdict.bad_position, verdict.intact) == (bad, False) and words in verdict.problem, verdict
    # Checked in stretches by parallel processes (as on a large log): the same verdict.
    assert verify_parallel(store_spec, tmp_path, workers=3, small=0) == verdict


def test_swapped_rows_and_a_cut_tail(store_spec, tmp_path):
    store = open_store(store_spec, tmp_path)
    fill(store)
    head = verify(store).head
    tamper = Tamper(store_spec, tmp_path)
    third, fourth = tamper.state(3), tamper.state(4)
    tamper.run(f"UPDATE {{t}} SET state = {_literal(store_spec, fourth)} WHERE {{p}} = 3",
               f"UPDATE {{t}} SET state = {_literal(store_spec, third)} WHERE {{p}} = 4")
    assert verify(store).bad_position == 3
    tamper.run(f"UPDATE {{t}} SET state = {_literal(store_spec, third)} WHERE {{p}} = 3",
               f"UPDATE {{t}} SET state = {_literal(store_spec, fourth)} WHERE {{p}} = 4")
    assert verify(store, head).intact  # put back: intact again
    tamper.run("DELETE FROM {t} WHERE {p} > 17", "DELETE FROM {c} WHERE position > 17")
    assert verify(store).intact  # a clean cut: only a head kept elsewhere shows it
    cut = verify(store, head)
    store.close()
    assert (cut.intact, cut.bad_position) == (False, 18) and "truncated after position 17" in cut.problem
    assert verify_parallel(store_spec, tmp_path, head, workers=2, small=0) == cut
    assert verify_parallel(store_spec, tmp_path, workers=2, small=0) == verify(open_store(store_spec, tmp_path))


def _literal(spec: str, data: bytes) -> str:
    return f"X'{data.hex()}'" if spec == "sqlite" else f"'\\x{data.hex()}'::bytea"


def test_concurrent_writers_make_one_chain(store_spec, tmp_path):
    stores = [open_store(store_spec, tmp_path) for _ in range(4)]

    def write(s, k: int) -> None:
        for i in range(25):
            s.append(f"writer-{k}-{i}", [event(i), event(i + 1)], 0)

    threads = [threading.Thread(target=write, args=(s, k)) for k, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    verdict = verify(stores[0])
    for s in stores:
        s.close()
    assert verdict.intact and verdict.events == 200


def test_a_log_from_before_the_chain_says_where_the_chain_starts(tmp_path):
    store = open_store("sqlite", tmp_path)
    fill(store, 5)
    store.close()
    db = sqlite3.connect(tmp_path / "parley.sqlite3")
    db.execute("DROP TABLE event_chain")  # as a version of Parley without it wrote the log
    db.commit()
    db.close()
    store = open_store("sqlite", tmp_path)
    fill(store, 5)  # into the same streams: versions go on
    verdict = verify(store)
    store.close()
    assert verdict.intact and (verdict.chain_starts, verdict.events) == (6, 5)
    assert verify_parallel("sqlite", tmp_path, workers=3, small=0) == verdict
    db = sqlite3.connect(tmp_path / "parley.sqlite3")
    with db:  # an event without a hash after the chain's start is an insertion, in any stretch
        db.execute("DELETE FROM event_chain WHERE position = 9")
    db.close()
    inserted = verify_parallel("sqlite", tmp_path, workers=3, small=0)
    store = open_store("sqlite", tmp_path)
    assert inserted == verify(store) and inserted.bad_position == 9
    store.close()


README_CHECK = '''
import hashlib, json, sys
prev = None
for line in open(sys.argv[1], encoding="utf-8"):
    e = json.loads(line)
    if prev is not None and e["prev"] != prev:
        sys.exit(f"broken before position {e['position']}")
    s, t = e["stream"].encode(), e["type"].encode()
    head = f'{e["prev"]}\\n{e["position"]}\\n{e["version"]}\\n{len(s)}:{e["stream"]}\\n{len(t)}:{e["type"]}\\n'
    prev = hashlib.sha256(head.encode() + e["state"].encode()).hexdigest()
    if prev != e["hash"]:
        sys.exit(f"altered at position {e['position']}")
print("ok", prev)
'''


def test_audit_from_the_command_line_and_the_readme_script(tmp_path, llm_server):
    env = parley_env(tmp_path / "data", llm_server)
    assert run_parley(["console"], env, stdin="hello\nagain\n!hi\n").returncode == 0
    out = run_parley(["audit", "verify"], env)
    assert out.returncode == 0, out.stderr
    head = out.stdout.split("head: ")[1].strip()
    assert "intact: 8 events verified (through position 8)" in out.stdout and len(head) == 64

    exported = tmp_path / "audit.jsonl"
    assert run_parley(["audit", "export", "--out", str(exported)], env).returncode == 0
    script = tmp_path / "check.py"
    script.write_text(README_CHECK)
    assert README_CHECK.strip() in (Path(__file__).parent.parent / "README.md").read_text()  # the same script
    checked = subprocess.run([sys.executable, str(script), str(exported)], capture_output=True, text=True)
    assert checked.stdout.strip() == f"ok {head}", checked.stderr
    lines = exported.read_text().splitlines()
    edited = next(i for i, line in enumerate(lines) if "test-model" in line)
    lines[edited] = lines[edited].replace("test-model", "evil-model")
    exported.write_text("\n".join(lines) + "\n")
    checked = subprocess.run([sys.executable, str(script), str(exported)], capture_output=True, text=True)
    assert checked.returncode == 1 and f"altered at position {edited + 1}" in checked.stderr
    since = run_parley(["audit", "export", "--since", "2000-01-01", "--until", "2000-01-02"], env)
    assert since.returncode == 0 and since.stdout == ""

    db = sqlite3.connect(tmp_path / "data" / "parley.sqlite3")
    with db:
        db.execute("UPDATE stored_events SET state = CAST(replace(state, 'console', 'CONSOLE') AS BLOB) WHERE rowid = 1")
    db.close()
    bad = run_parley(["audit", "verify"], env)
    assert bad.returncode == 1 and "does NOT verify: position 1:" in bad.stderr
    assert run_parley(["audit", "verify", "--expect-head", head], env).returncode == 1
