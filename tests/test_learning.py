"""Learning, in-process through the console transport, with the real store, read models, ``openai``
client and the fake OpenAI-compatible server: examples, datasets, few-shot teaching, exports and
files, evaluation, fine-tuning jobs and the model they activate."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from events.scopes import OPERATORS

from actors.commands import InvokeCommand, ReceiveMessage
from actors.tuning.records import validate
from actors.learning.teaching import terms
from adapters.audio_files import AudioStore
from events.catalog.learning import (EvaluationCompleted, ExamplesAdded, ExamplesRefused, FileRefused,
                                     FineTuneFinished, FineTuneStatusChanged, ModelActivated)
from events.catalog.messages import CommandRejected
from run import build
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import CapturedConsole, settings_for, wait_for

CONVERSATION = "console:tester"


class Session:
    """A running Parley with the console transport, and a counter for message ids."""

    def __init__(self, data_dir: Path, llm: FakeOpenAI, **settings: object):
        self.data_dir = data_dir
        self.llm = llm
        self.console = CapturedConsole(data_dir)
        self.system = build(settings_for(data_dir, llm.base_url, responders=1, **settings), {"console": self.console})
        self.n = 0

    def _next(self) -> str:
        self.n += 1
        message_id = f"m{self.n}"
        self.console.expect(message_id)
        return message_id

    def command(self, name: str, args: str = "", admin: bool = True, **extra: object) -> str:
        """Run a command; return its reply (waits for it)."""
        before = len(self.console.lines())
        self.system.router.dispatch(InvokeCommand(
            source="console", conversation_id=CONVERSATION, channel_id="console", message_id=self._next(),
            author_id="tester", author_name="Tester", name=name, args=args, is_admin=admin, is_operator=admin,
            **extra))
        wait_for(lambda: self.console.outstanding() == 0, 30, f"the reply to {name} {args}")
        return "\n".join(self.console.lines()[before:])

    def attach(self, filename: str, data: bytes) -> str:
        digest, _ = AudioStore(self.data_dir, 10 * 1024 * 1024, folder="imports").save(iter([data]))
        return self.command("train", attachment_hash=digest, attachment_name=filename)

    def ask(self, text: str) -> dict:
        """Ask a question; return the request the LLM received for it."""
        before = len(self.llm.requests)
        self.system.router.dispatch(ReceiveMessage(
            source="console", conversation_id=CONVERSATION, channel_id="console", message_id=self._next(),
            author_id="tester", author_name="Tester", text=text))
        wait_for(lambda: self.console.outstanding() == 0, 30, f"the answer to {text}")
        return self.llm.requests[before]

    def events(self, cls: type) -> list:
        return [r.event for r in self.system.store.read_all() if isinstance(r.event, cls)]

    def taught(self, question: str) -> list:
        return self.system.datasets.similar(OPERATORS, "console:console", terms(question), 4)  # type: ignore[union-attr]

    def stop(self) -> None:
        self.system.stop()


@pytest.fixture
def session(tmp_path, llm_server):
    s = Session(tmp_path, llm_server)
    yield s
    s.stop()


def test_train_teaches_the_next_similar_question_at_once_and_not_an_unrelated_one(session):
    reply = session.command("train", "What colour is Parley's logo? => Teal, like the sea.")
    assert reply.startswith("Added 1 example(s) and 0 answer(s) to avoid to `default`")
    assert "answer(s) to avoid" in session.command("train", "-What colour is Parley's logo? => Red, obviously.")
    again = session.command("train", "what colour is  PARLEY'S logo? => teal, like the sea.")
    assert "(1 duplicate(s) skipped)" in again and "1 example(s), 1 answer(s) to avoid, 1 preference pair(s)" in again
    wait_for(lambda: len(session.taught("logo colour")) == 2, what="the read model to hold both examples")

    request = session.ask("Which colour does the logo have?")
    messages = request["messages"]
    assert {"role": "user", "content": "What colour is Parley's logo?"} in messages
    assert {"role": "assistant", "content": "Teal, like the sea."} in messages
    avoid = [m["content"] for m in messages if m["role"] == "system" and "Do not answer like" in m["content"]]
    assert avoid and "Red, obviously." in avoid[0]
    assert messages[-1] == {"role": "user", "content": "Which colour does the logo have?"}

    unrelated = session.ask("Tell me a joke about penguins")
    assert not any("Teal" in m["content"] or "Red, obviously" in m["content"] for m in unrelated["messages"])
    added, _, repeated = session.events(ExamplesAdded)
    assert (repeated.examples, repeated.duplicates) == ((), 1)  # counted, not stored twice
    assert added.author_id == "tester" and added.message_id == "m1" and added.source == "console"


def test_every_import_format_adds_examples_and_a_malformed_file_adds_nothing(session):
    chat = {"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "Hours?"},
                         {"role": "assistant", "content": "9 to 5."}]}
    preference = {"input": {"messages": [{"role": "user", "content": "Refunds?"}]},
                  "preferred_output": [{"role": "assistant", "content": "Within 30 days."}],
                  "non_preferred_output": [{"role": "assistant", "content": "Never."}]}
    jsonl = (json.dumps(chat) + "\n" + json.dumps(preference) + "\n").encode()
    assert "Added 2 example(s) and 1 answer(s) to avoid" in session.attach("support.jsonl", jsonl)
    csv = "prompt,completion,label\nWo ist der Bahnhof?,Geradeaus.,\n東京の天気は？,晴れです。,\nWhere?,Nowhere.,negative\n"
    assert "Added 2 example(s) and 1 answer(s) to avoid" in session.attach("more.csv", csv.encode())
    txt = "Q: Can I bring a dog?\nA: Yes, on a leash.\n\nQ: Can I smoke?\nA-: Sure.\n"
    assert "Added 1 example(s) and 1 answer(s) to avoid" in session.attach("faq.txt", txt.encode())

    bad = (json.dumps(chat) + "\n{not json\n" + json.dumps({"messages": [{"role": "user", "content": "x"}]}) + "\n")
    reply = session.attach("broken.jsonl", bad.encode())
    assert reply.startswith("Nothing was added from `broken.jsonl`") and "line 2: not JSON" in reply
    assert "line 3: needs messages with a user turn" in reply
    assert "a question without an answer" in session.attach("half.txt", b"Q: where is it?\n")
    assert "use a .jsonl, .csv or .txt file" in session.attach("notes.docx", b"PK\x03\x04")
    assert "larger than PARLEY_MAX_IMPORT_MB" in session.command("train", attachment_name="huge.jsonl",
                                                                 attachment_refused="too_large")
    assert "write it as `!train PROMPT => ANSWER`" in session.command("train", "no arrow here")
    assert "needs both a prompt and an answer" in session.command("train", "Lonely prompt =>  ")

    assert sum(len(e.examples) for e in session.events(ExamplesAdded)) == 8  # nothing from the bad ones
    refused = session.events(ExamplesRefused)
    assert [r.reason for r in refused] == ["malformed", "malformed", "malformed", "too_large", "malformed",
                                           "malformed"]
    assert "8 example(s)" not in session.command("dataset", "show")
    assert "5 example(s), 3 answer(s) to avoid" in session.command("dataset", "show default")


def test_non_admins_are_refused_and_the_refusal_is_recorded(session):
    for name, args in (("train", "a => b"), ("dataset", "create x"), ("getfile", "x"), ("finetune", "start"),
                       ("model", "use gpt-5")):
        assert "Only Parley's admins" in session.command(name, args, admin=False)
    assert [e.reason for e in session.events(CommandRejected)] == ["not_admin"] * 5
    assert session.events(ExamplesAdded) == [] and session.events(ModelActivated) == []


def test_datasets_select_use_export_archive_and_getfile_stays_inside(session, tmp_path):
    assert "Created dataset `support`" in session.command("dataset", "create support")
    assert "already a dataset `support`" in session.command("dataset", "create support")
    assert "A dataset name is" in session.command("dataset", "create ../etc")
    for i in range(3):
        session.command("train", f"Question {i} about billing => Answer {i}.")
    session.command("train", "-Question 0 about billing => Go away.")
    assert "`support`" in session.command("train", "Question 9 about billing => Nine.")
    listing = session.command("dataset", "list")
    assert "`support`: 4 example(s), 1 answer(s) to avoid, 1 preference pair(s)" in listing
    assert "selected here" in listing
    assert "no dataset `nope`" in session.command("dataset", "use nope")

    sft = session.command("dataset", "export support")
    assert "Exported 4 SFT record(s)" in sft and f"[file: {tmp_path / 'exports/operators/support-sft.jsonl'}]" in sft
    lines = (tmp_path / "exports/operators/support-sft.jsonl").read_bytes().splitlines()
    assert json.loads(lines[0])["messages"][-2:] == [{"role": "user", "content": "Question 0 about billing"},
                                                    {"role": "assistant", "content": "Answer 0."}]
    assert "Exported 1 DPO record(s)" in session.command("dataset", "export support --format dpo")
    dpo = (tmp_path / "exports/operators/support-dpo.jsonl").read_bytes().splitlines()
    records, problems = validate(dpo, "dpo")
    assert records == 1 and problems == ["fine-tuning needs at least 10 preference pairs (a prompt with an answer "
                                         "and an answer to avoid); this dataset has 1"]  # every line is valid
    pair = json.loads(dpo[0])
    assert pair["preferred_output"][0]["content"] == "Answer 0." and pair["non_preferred_output"][0]["content"] == "Go away."

    archived = session.command("dataset", "archive support")
    zip_path = Path(archived.rsplit("[file: ", 1)[1].rstrip("]"))
    assert zip_path.parent == tmp_path / "archives" / "operators"
    with zipfile.ZipFile(zip_path) as z:
        manifest = json.loads(z.read("manifest.json"))
        import hashlib
        for f in manifest["files"]:
            assert hashlib.sha256(z.read(f["name"])).hexdigest() == f["sha256"]
    assert manifest["positives"] == 4 and manifest["log_positions"]["first"] > 0

    assert "[file: " in session.command("getfile", "support-sft.jsonl")
    assert "[file: " in session.command("getfile", f"archives/operators/{zip_path.name}")
    (tmp_path / "secret.txt").write_text("secret")
    (tmp_path / "exports" / "link.txt").symlink_to(tmp_path / "secret.txt")
    for escape in ("../secret.txt", "/etc/passwd", "exports/../secret.txt", "link.txt", "exports/link.txt",
                   "exports/../../etc/passwd", "~/.ssh/id_rsa"):
        reply = session.command("getfile", escape)
        assert "[file:" not in reply and "I only send files from exports/ and archives/" in reply, (escape, reply)
    for missing in ("missing.jsonl", "read-models.sqlite3"):  # looked for in exports/ and archives/ only
        assert f"There is no `{missing}`" in session.command("getfile", missing)
    assert [r.reason for r in session.events(FileRefused)] == ["outside"] * 7 + ["missing"] * 2

    assert "Deleted dataset `support`" in session.command("dataset", "delete support")
    wait_for(lambda: session.taught("billing question") == [], what="the deleted examples to stop teaching")
    assert "**Teaching Parley**" in session.command("instruction")


def known_answers(answers: dict[str, str]):
    """A model that knows nothing alone, and copies the style of examples when it has some."""
    def reply(messages: list[dict]) -> str:
        question = messages[-1]["content"]
        taught = any(m["role"] == "assistant" for m in messages[:-1])
        return answers.get(question, "no idea") if taught else "I am not sure, sorry."
    return reply


def test_evaluation_scores_the_model_with_and_without_examples(tmp_path):
    capitals = {"France": "Paris", "Italy": "Rome", "Spain": "Madrid", "Japan": "Tokyo", "Peru": "Lima",
                "Egypt": "Cairo", "Kenya": "Nairobi", "Chile": "Santiago", "Cuba": "Havana", "Iran": "Tehran"}
    answers = {f"What is the capital of {c}?": f"The capital is {city}." for c, city in capitals.items()}
    with FakeOpenAI(reply=known_answers(answers)) as llm:
        session = Session(tmp_path, llm)
        try:
            for question, answer in answers.items():
                session.command("train", f"{question} => {answer}")
            reply = session.command("test", "--holdout 30%")
            [result] = session.events(EvaluationCompleted)
            assert result.questions >= 1 and result.model == "test-model" and result.holdout == 0.3
            assert (result.exact_match, result.token_f1) == (0.0, 0.0)  # "I am not sure, sorry." vs "The capital..."
            assert (result.exact_match_few_shot, result.token_f1_few_shot) == (1.0, 1.0)
            assert f"on {result.questions} held-out question(s)" in reply and "exact match 100%" in reply
            llm.answer_delay = 0.2  # a slow model: the Trainer answers other commands meanwhile
            before = len(session.console.lines())
            for name, args in (("test", ""), ("finetune", "list")):
                session.system.router.dispatch(InvokeCommand(
                    source="console", conversation_id=CONVERSATION, channel_id="console", message_id=session._next(),
                    author_id="tester", author_name="Tester", name=name, args=args, is_admin=True,
                    is_operator=True))
            wait_for(lambda: session.console.outstanding() == 0, 30, "both replies")
            order = [type(r.event).__name__ for r in session.system.store.read_all() if r.stream == "learning"][-3:]
            assert order == ["CommandAnswered", "EvaluationCompleted", "CommandAnswered"]  # list first, then test
            assert "Tested `test-model`" in "\n".join(session.console.lines()[before:])
            llm.answer_delay = 0.0
            assert "Give the held-out share" in session.command("test", "--holdout lots")
            assert "no dataset `nope`" in session.command("test", "nope")
        finally:
            session.stop()


def train_ten(session: Session) -> None:
    for i in range(10):
        session.command("train", f"How do I reset gadget {i}? => Hold button {i} for ten seconds.")


def test_a_fine_tuning_job_runs_to_success_and_its_model_answers(tmp_path, llm_server):
    session = Session(tmp_path, llm_server, training_poll_s=0.1)
    try:
        assert "There is no dataset yet" in session.command("finetune", "start")
        session.command("train", "How do I reset gadget 0? => Hold button 0 for ten seconds.")
        assert "needs at least 10 examples; this dataset has 1" in session.command("finetune", "start")
        train_ten(session)
        assert "at least 10 preference pairs" in session.command("finetune", "start --method dpo")
        started = session.command("finetune", "start base-model")
        assert started.startswith("Started fine-tuning job `ftjob-1`: SFT of `base-model` on 10 record(s)")
        [(name, purpose, data)] = llm_server.files.values()
        assert purpose == "fine-tune" and validate(data.splitlines(), "sft") == (10, [])
        done = wait_for(lambda: session.events(FineTuneFinished), what="the job to finish")
        assert done[0].status == "succeeded" and done[0].fine_tuned_model.startswith("ft:base-model:")
        assert [e.status for e in session.events(FineTuneStatusChanged)] == ["queued", "running"]
        wait_for(lambda: any("succeeded" in line for line in session.console.lines()), what="the outcome told")
        [activated] = session.events(ModelActivated)
        assert activated.model == done[0].fine_tuned_model and activated.channel == "" and activated.job_id == "ftjob-1"
        assert session.ask("hello")["model"] == activated.model
        assert "ftjob-1`: succeeded" in session.command("finetune", "list")
        assert "(answering here)" in session.command("model", "list")
        assert "now answers in this channel" in session.command("model", "use other-model --channel")
        assert session.ask("hello again")["model"] == "other-model"
    finally:
        session.stop()


def test_a_failed_job_and_a_refusing_provider_get_clear_messages(tmp_path, llm_server):
    session = Session(tmp_path, llm_server, training_poll_s=0.1)
    try:
        train_ten(session)
        llm_server.job_outcomes.append("failed")
        session.command("finetune", "start")
        [failed] = wait_for(lambda: session.events(FineTuneFinished), what="the job to fail")
        assert failed.status == "failed" and "invalid training file" in failed.reply_text
        assert session.events(ModelActivated) == []
        assert session.ask("hello")["model"] == "test-model"
        llm_server.fine_tuning_refused = 403
        refused = session.command("finetune", "start")
        assert "refused fine-tuning (HTTP 403" in refused and "PARLEY_TRAINING_BASE_URL" in refused
    finally:
        session.stop()


def test_a_restart_during_a_job_resumes_polling(tmp_path, llm_server):
    session = Session(tmp_path, llm_server, training_poll_s=3600)  # it will not poll before the restart
    train_ten(session)
    assert "Started fine-tuning job `ftjob-1`" in session.command("finetune", "start --channel")
    session.stop()
    assert llm_server.polls == 0
    session = Session(tmp_path, llm_server, training_poll_s=0.1)
    try:
        [done] = wait_for(lambda: session.events(FineTuneFinished), what="the job to finish after the restart")
        assert done.status == "succeeded" and done.message_id == "m11"
        wait_for(lambda: any("succeeded" in line for line in session.console.lines()), what="the outcome told")
        [activated] = session.events(ModelActivated)
        assert activated.channel == "console:console"
        assert session.ask("hello")["model"] == activated.model
    finally:
        session.stop()


def test_the_console_and_the_evaluate_command(tmp_path, llm_server):
    import subprocess
    import sys

    from tests.conftest import ROOT, parley_env, run_parley

    data = tmp_path / "data"
    env = parley_env(data, llm_server, PARLEY_TRAINING_POLL_S="0.2", PARLEY_MAX_IMPORT_MB="1")
    data.mkdir()
    (data / "huge.jsonl").write_bytes(b'{"messages": []}\n' * 150_000)  # 2.5 MB
    (data / "faq.csv").write_text("prompt,completion\n" + "".join(
        f"Where is room {i}?,Room {i} is on floor {i}.\n" for i in range(12)), encoding="utf-8")
    out = run_parley(["console"], env, stdin="!train faq.csv\n!train ../outside.csv\n!train What is 2+2? => 4\n"
                                              "!train huge.jsonl\n")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("Added 12 example(s)") and "\nAdded 1 example(s)" in out.stdout
    assert "Nothing was added from `../outside.csv`" in out.stdout and "name a file inside the data dir" in out.stdout
    assert "Nothing was added from `huge.jsonl`" in out.stdout and "larger than PARLEY_MAX_IMPORT_MB" in out.stdout
    assert not [p for p in (data / "imports").iterdir() if p.stat().st_size > 1024 * 1024]  # nothing half kept

    report = tmp_path / "report.json"
    evaluated = run_parley(["evaluate", "--holdout", "30%", "--out", str(report)], env)
    assert evaluated.returncode == 0, evaluated.stderr
    assert "held-out question(s), model test-model" in evaluated.stdout and "questions" in evaluated.stderr
    result = json.loads(report.read_text())
    assert result["questions"] == len(result["questions_detail"]) >= 1
    assert result["exact_match"] == 0.0  # the echo server repeats the question
    assert run_parley(["evaluate", "--dataset", "nope"], env).returncode == 2

    console = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "console"], env=env, cwd=ROOT, text=True,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        console.stdin.write("!finetune start small-model\n")
        console.stdin.flush()
        assert "Started fine-tuning job `ftjob-1`" in console.stdout.readline()
        outcome = console.stdout.readline()
        assert "succeeded: `ft:small-model:parley:" in outcome, outcome
        console.stdin.write("hello tuned model\n")
        console.stdin.close()
        assert console.stdout.readline().startswith("echo: hello tuned model")
        assert console.wait(30) == 0
    finally:
        console.kill()
    assert llm_server.requests[-1]["model"].startswith("ft:small-model:parley:")


def test_few_shot_lookup_uses_the_backends_full_text_search(store, tmp_path):
    """SQLite FTS5 and PostgreSQL tsvector find the same examples: stemmed words, stopwords ignored,
    only the channel's dataset, nothing for an unrelated question, and a deleted dataset teaches no more."""
    from events.catalog.learning import LEARNING_STREAM, DatasetCreated, DatasetDeleted, DatasetUsed
    from projections.datasets import Datasets
    from projections.tracking import ProjectionRunner, open_read_models

    def added(dataset_id: str, pairs: list[tuple[str, str, bool]]) -> ExamplesAdded:
        return ExamplesAdded(dataset_id=dataset_id, duplicates=0, author_id="a", source="console", message_id="m",
                             examples=tuple({"prompt": p, "answer": a, "positive": pos} for p, a, pos in pairs))

    store.append(LEARNING_STREAM, [
        DatasetCreated(dataset_id="d1", name="default", by="a"), DatasetCreated(dataset_id="d2", name="pets", by="a"),
        added("d1", [("How do I reset my password?", "Use the reset link.", True),
                     ("How do I reset my password?", "Call me.", False),
                     ("When does the shop open?", "At nine.", True)]),
        added("d2", [("Are cats allowed in the office?", "Only on Fridays.", True)]),
        DatasetUsed(dataset_id="d2", name="pets", channel="discord:9", by="a")], 0)
    db = open_read_models(store, tmp_path)
    datasets = Datasets(db)
    ProjectionRunner(store, db, [datasets]).catch_up()
    try:
        def similar(channel: str, question: str, limit: int = 4) -> list[tuple[str, str, bool]]:
            return datasets.similar(OPERATORS, channel, terms(question), limit)

        found = similar("console:console", "I forgot my passwords, resetting how?")
        assert set((answer, positive) for _, answer, positive in found) == {("Use the reset link.", True),
                                                                           ("Call me.", False)}
        assert similar("console:console", "what is the weather like") == []
        assert [a for _, a, _ in similar("discord:9", "cat in the office")] == ["Only on Fridays."]
        assert similar("discord:9", "reset password") == []  # another dataset teaches there
        assert len(similar("console:console", "reset password shop open", 1)) == 1
        store.append(LEARNING_STREAM, [DatasetDeleted(dataset_id="d1", name="default", by="a")], 5)
        ProjectionRunner(store, db, [datasets]).catch_up()
        assert similar("console:console", "reset password") == []
    finally:
        db.close()


def test_a_running_job_can_be_cancelled(tmp_path, llm_server):
    session = Session(tmp_path, llm_server, training_poll_s=3600)
    try:
        train_ten(session)
        session.command("finetune", "start")
        assert "no running job `ftjob-9`" in session.command("finetune", "cancel ftjob-9")
        assert "Asked to cancel `ftjob-1`: it is cancelled." in session.command("finetune", "cancel ftjob-1")
        [finished] = session.events(FineTuneFinished)
        assert finished.status == "cancelled" and session.events(ModelActivated) == []
        assert "ftjob-1`: cancelled" in session.command("finetune", "status ftjob-1")
    finally:
        session.stop()


def test_a_file_name_with_a_nul_byte_or_past_the_length_gets_one_reply_and_crashes_nothing(session):
    for name in ("default\x00-sft.jsonl", "x" * 5000, "exports/\x00", "../" * 2000 + "etc/passwd"):
        reply = session.command("getfile", name)
        assert reply.count("\n") == 0 and "I only send files from exports/ and archives/" in reply, name[:40]
    assert session.system.status().restarts == 0  # the Trainer never failed on them
    assert [r.reason for r in session.events(FileRefused)] == ["outside"] * 4


def test_a_wrong_option_is_named_in_one_reply_and_recorded(session):
    """Options are read as a shell would (argparse over shlex): an unknown option, one missing its value or an
    unclosed quote is named, with the command's usage, never taken as a word (a model named `--methd`)."""
    assert "--method needs a value. Usage: `finetune start" in session.command("finetune", "start --method")
    assert "not an option here: --methd dpo" in session.command("finetune", "start --methd dpo")
    assert "no closing quotation" in session.command("dataset", 'export "half')
    assert "not an option here: --everywhre" in session.command("model", "use other --everywhre")
    refused = [e for e in session.events(CommandRejected) if e.reason == "bad_arguments"]
    assert [e.command for e in refused] == ["finetune", "finetune", "dataset", "model"]
    assert "now answers" in session.command("model", "use 'other-model' --channel")  # quotes group words
    assert "`other-model` (answering here)" in session.command("model", "list")


from hypothesis import given, settings as hypothesis_settings, strategies as st  # noqa: E402

from actors.learning.command_line import CommandLineError, options  # noqa: E402


@hypothesis_settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(list("ab -='\"\\\n\t%") + ["--method", "--channel", "--x", "dpo"]), max_size=20)
       .map("".join) | st.text(max_size=60))
def test_whatever_is_typed_as_arguments_is_read_or_named_as_wrong(text):
    """A command's arguments (what people type) are words and known options, or a CommandLineError with a
    message for them: never another exception, never an option the command does not take."""
    try:
        words, found = options(text, flags=("channel",), valued=("method",))
    except CommandLineError as e:
        assert str(e).strip()
    else:
        assert all(isinstance(w, str) for w in words) and set(found) <= {"channel", "method"}
        assert "channel" not in found or found["channel"] == "yes"
