"""Forgetting a person: their words are stored encrypted with their own key from the start; deleting
the key (``forget-me``, or ``forget USER_ID``) leaves no readable trace of them in the data dir, the
hash chain still verifies, and everyone else's words read as before."""
from __future__ import annotations

import json
from pathlib import Path

from actors.commands import InvokeCommand, ReceiveMessage
from events.catalog.privacy import PersonForgotten
from tests.conftest import parley_env, replay_json, run_parley
from tests.helpers import wait_for
from tests.test_learning import Session

SECRET = "zanzibarquux"  # one person's word; nothing else says it


def files_holding(folder: Path, word: str) -> list[str]:
    return [str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and word.encode() in p.read_bytes()]


def say(session: Session, who: str, text: str) -> None:
    session.system.router.dispatch(ReceiveMessage(
        source="console", conversation_id=f"console:{who}", channel_id="console", message_id=session._next(),
        author_id=who, author_name=who.title(), text=text))


def test_forget_me_leaves_no_readable_trace_and_the_log_still_verifies(tmp_path, llm_server):
    session = Session(tmp_path, llm_server)
    try:
        assert session.system.store.keys is not None
        say(session, "ada", f"My password hint is {SECRET}, remember it")
        say(session, "bob", "Bob likes bumblebees")
        wait_for(lambda: session.console.outstanding() == 0, 30, "the answers")
        in_log = [f for f in files_holding(tmp_path, SECRET) + files_holding(tmp_path, "bumblebees")
                  if f.startswith("parley.sqlite3")]
        assert in_log == []  # encrypted in the log from the start (the read models hold plain text)
        wait_for(lambda: session.system.answers.find("console", "m1", True)[0], what="the read model")  # type: ignore[union-attr]
        answered = session.command("correct", f"Never tell anyone {SECRET}.", target_message_id="m1", via="console")
        assert "Thanks, noted" in answered
        session.command("feedback", f"{SECRET} rocks")
        session.command("train", f"What is {SECRET}? => A word.")
        session.command("dataset", "export default")
        assert files_holding(tmp_path, SECRET)  # ...but the read models and exports hold it in plain text
        assert files_holding(tmp_path / "exports", "password hint")  # Ada's question, in the correction's pair

        session.system.router.dispatch(InvokeCommand(
            source="console", conversation_id="console:ada", channel_id="console", message_id=session._next(),
            author_id="ada", author_name="Ada", name="forget-me"))
        wait_for(lambda: session.console.outstanding() == 0, 30, "ada forgotten")
        wait_for(lambda: session.system.answers.find("console", "m1", True)[0][3] == "(forgotten)",  # type: ignore[union-attr,index]
                 what="the read models to say (forgotten)")
        # Ada's question is gone from the pair her corrector made of it, and from the export, too.
        wait_for(lambda: not files_holding(tmp_path, "password hint"), what="ada's words gone from every file")
        assert session.taught(f"{SECRET} word") and files_holding(tmp_path / "exports", SECRET)  # the tester's stay
        forgot = session.command("forget-me", "")  # the console's person is "tester": their own words
        assert "Done: everything you said to me is now unreadable" in forgot
        assert "already" in session.command("forget-me", "")
        assert [e.person for e in session.events(PersonForgotten)] == ["ada", "tester"]
    finally:
        session.stop()
    assert files_holding(tmp_path, SECRET) == []  # log, read models, full-text index, exports, keys, WALs
    env = parley_env(tmp_path, llm_server)
    verified = run_parley(["audit", "verify"], env)
    assert verified.returncode == 0, verified.stderr
    events = replay_json(env)
    texts = [e["data"].get("text") for e in events if e["type"] in ("MessageReceived", "ResponseGenerated")]
    assert texts.count("(forgotten)") == 2 and "Bob likes bumblebees" in texts  # Bob's words are Bob's
    assert all("key" not in json.dumps(e["data"]).lower() for e in events if e["type"].startswith(("Forget", "Person")))


def test_forget_from_the_command_line(tmp_path, llm_server):
    env = parley_env(tmp_path / "data", llm_server)
    assert run_parley(["console"], env, stdin=f"I am {SECRET}\n!correct Not {SECRET}.\n").returncode == 0
    user = replay_json(env)[0]["data"]["author_id"]
    assert run_parley(["forget", "somebody-else"], env).returncode == 1
    out = run_parley(["forget", user], env)
    assert out.returncode == 0, out.stderr
    assert files_holding(tmp_path / "data", SECRET) == []
    again = run_parley(["forget", user], env)
    assert again.returncode == 1 and "forgotten already" in again.stderr
    assert run_parley(["audit", "verify"], env).returncode == 0
    listed = run_parley(["corrections", "list", "--json"], env)
    [row] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (row["question"], row["corrected"]) == ("(forgotten)", "(forgotten)")


def test_on_postgresql_a_forgotten_key_leaves_no_copy_in_the_table_files(store_spec, tmp_path):
    """PostgreSQL keeps a deleted row in the table's file until it is vacuumed: forgetting rewrites the
    key table (a new file), so the key is not left behind; the person's words read as forgotten."""
    from events import open_store

    store = open_store(store_spec, tmp_path)
    try:
        store.append("conversation:x", [MessageReceivedFor("ada", f"ada says {SECRET}")], 0)
        [before] = list(store.read_all())
        assert before.event.text == f"ada says {SECRET}"
        if store_spec == "sqlite":
            assert store.forget("ada") and not files_holding(tmp_path, SECRET)
        else:
            import psycopg

            from tests.conftest import postgres_url

            schema = store_spec.split("schema=")[1]
            relation = f"SELECT relfilenode FROM pg_class WHERE oid = '\"{schema}\".person_keys'::regclass"
            with psycopg.connect(postgres_url(), autocommit=True) as db:
                file_before = db.execute(relation).fetchone()[0]
                assert store.forget("ada")
                assert db.execute(relation).fetchone()[0] != file_before  # rewritten: no dead copy of the key
                assert db.execute(f'SELECT count(*) FROM "{schema}".person_keys').fetchone()[0] == 0
        [after] = list(store.read_all())
        assert after.event.text == "(forgotten)" and after.event.author_id == "ada"
    finally:
        store.close()


def test_the_read_models_forget_on_both_backends(store, tmp_path):
    """PersonForgotten turns the person's rows into "(forgotten)" and scrubs the tables (SQLite: the WAL
    written back; PostgreSQL: the tables rewritten, so no dead row versions keep the words)."""
    from events.catalog.privacy import PersonForgotten
    from projections.registry import all_projections
    from projections.tracking import ProjectionRunner, open_read_models

    store.append("conversation:x", [MessageReceivedFor("ada", f"ada says {SECRET}")], 0)
    db = open_read_models(store, tmp_path)
    projections = all_projections(db)
    runner = ProjectionRunner(store, db, projections)
    try:
        runner.catch_up()
        def question() -> str:
            return db.query("SELECT question FROM answers WHERE question_id = ?", ("1",))[0][0]

        assert question() == f"ada says {SECRET}"
        store.forget("ada")
        store.append("person:ada", [PersonForgotten(person="ada", audio_files_deleted=0, files_changed=0)], 0)
        assert runner.catch_up() == 1
        assert question() == "(forgotten)"
    finally:
        db.close()


def MessageReceivedFor(person: str, text: str):  # noqa: N802  (an event, named as one)
    from events.catalog.conversation import MessageReceived

    return MessageReceived(conversation_id="x", message_id="1", channel_id="c", source="console", author_id=person,
                           author_name=person.title(), text=text)
