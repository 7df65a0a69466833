"""The Trainer shell: runs ``actors.learning.decider`` over the ``learning`` stream, and does its I/O: reading
attached example files, writing exports and archives, asking the model during ``test``, and talking to
the fine-tuning endpoint (jobs are polled on a timer, and again after a restart)."""
from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass

from actors.learning import decider as training
from actors.learning import folding, tuning
from actors.commands import InvokeCommand, PollFineTune, ResumeFineTunes
from actors.learning.evaluation import evaluate
from actors.learning.examples import Example, Parsed, parse_file, parse_train_command
from actors.learning.finetune_rules import dpo_records, sft_records, validate, within_limit
from actors.learning.tokens import counter_for, example_limit, token_stats
from actors.ports import DISK_FULL, ChatModel, FineTuning, LLMError, TrainingFiles, TrainingRefused, disk_full
from actors.streams import DecidedStreams, Publish
from actors.supervisor import Supervised, SupervisedActor
from actors.learning.decider import Learning, channel_of
from events import EventStore
from events.catalog.corrections import CorrectionRecorded
from events.catalog.learning import LEARNING_STREAM, ExamplesAdded
from events.model import Event
from events.scopes import folder_of

log = logging.getLogger("parley.trainer")
LEARNING_COMMANDS = frozenset(training.COMMANDS)
DEFAULT_HOLDOUT = 0.2


@dataclass(frozen=True)
class TrainerConfig:
    prefix: str = "!"
    system_prompt: str = ""
    few_shot: int = 4
    poll_s: float = 30.0
    configured_model: str = ""
    training_setting: str = "PARLEY_TRAINING_BASE_URL"
    max_example_tokens: int = 0  # PARLEY_TRAINING_MAX_TOKENS; 0: the base model's limit


def options(args: str, flags: tuple[str, ...] = (), valued: tuple[str, ...] = ()) -> tuple[list[str], dict[str, str]]:
    """Words and ``--options`` of a command line: ``flags`` stand alone, ``valued`` take the next word."""
    words, found = [], {}
    parts = args.split()
    i = 0
    while i < len(parts):
        word = parts[i]
        if word.startswith("--") and word[2:] in valued and i + 1 < len(parts):
            found[word[2:]] = parts[i + 1]
            i += 2
            continue
        if word.startswith("--") and "=" in word and word[2:].split("=", 1)[0] in valued:
            key, value = word[2:].split("=", 1)
            found[key] = value
        elif word.startswith("--") and word[2:] in flags:
            found[word[2:]] = "yes"
        else:
            words.append(word)
        i += 1
    return words, found


def holdout_of(text: str) -> float | None:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(%?)", text.strip())
    if not match:
        return None
    value = float(match.group(1)) / (100 if match.group(2) or float(match.group(1)) > 1 else 1)
    return value if 0 < value < 1 else None


@dataclass(frozen=True)
class ReloadLearning:
    """Someone was forgotten: drop the learning state folded from the log (their examples' words are in it),
    and fold it again, from what the log now gives, when next needed."""


@dataclass(frozen=True)
class AbandonCommand:
    """The Trainer failed on this command repeatedly: tell its author, record it, move on."""

    command: InvokeCommand
    error: str


@dataclass(frozen=True)
class RecordEvaluation:
    """An evaluation finished on its own thread: record it and reply (back on the Trainer)."""

    command: InvokeCommand
    dataset: training.Dataset
    model: str
    holdout: float
    scores: training.Scores


@dataclass(frozen=True)
class LearnCorrection:
    """A correction was recorded: add it to the channel's dataset as a preference pair."""

    correction: CorrectionRecorded


def give_up(message: object, error: str) -> object | None:
    return AbandonCommand(message, error) if isinstance(message, InvokeCommand) else None


def examples_of(store: EventStore, dataset_id: str) -> tuple[list[Example], tuple[int, int]]:
    """A dataset's examples as the log has them (not the read model, which may lag), and the first and
    last log positions they came from."""
    examples: list[Example] = []
    first = last = 0
    for recorded in store.read_all(types=[ExamplesAdded.type_name]):  # global positions, for manifests
        e = recorded.event
        if isinstance(e, ExamplesAdded) and e.dataset_id == dataset_id:
            examples += [Example.from_record(x) for x in e.examples]
            first, last = first or recorded.position or 0, recorded.position or 0
    return examples, (first, last)


class TrainerActor(SupervisedActor):
    def __init__(self, supervisor: Supervised, store: EventStore, publish: Publish, files: TrainingFiles,
                 llm: ChatModel, model: Callable[[str], str], fine_tuning: Callable[[], FineTuning],
                 config: TrainerConfig, later: Callable[[float, object], None]):
        super().__init__(supervisor)
        self.store = store
        self.files = files
        self.llm = llm
        self.model = model
        self.fine_tuning = fine_tuning
        self.config = config
        self.later = later
        self.streams = DecidedStreams(store, publish, Learning(), training.evolve, lambda _: LEARNING_STREAM,
                                      fold=folding.fold)

    # -- the loop ----------------------------------------------------------------------------------
    def handle(self, message: object) -> None:
        if isinstance(message, PollFineTune):
            self._poll(message.job_id)
        elif isinstance(message, ResumeFineTunes):
            for job in self.state.running_jobs():
                self._poll(job.job_id)
        elif isinstance(message, InvokeCommand):
            self._command(message)
        elif isinstance(message, LearnCorrection):
            self._execute(None, lambda s: training.decide_learn_correction(s, message.correction))
        elif isinstance(message, RecordEvaluation):
            m = message
            self._execute(m.command, lambda s: training.decide_evaluation(m.command, m.dataset, m.model, m.holdout,
                                                                          m.scores))
        elif isinstance(message, ReloadLearning):
            self.streams.forget_all()
        elif isinstance(message, AbandonCommand):
            c = message.command
            self._execute(c, lambda s: [training.rejected(c, "internal_error", "Sorry, something went wrong on my "
                                                                               "side with that command. It has been logged.")])
        else:
            raise TypeError(f"the Trainer cannot handle {type(message).__name__}")

    @property
    def state(self) -> Learning:
        return self.streams.load(LEARNING_STREAM)

    def _execute(self, c: InvokeCommand | None, decide: Callable[[Learning], list[Event]]) -> None:
        """Append what ``decide`` says, unless (decided again on fresh state) the command is refused."""
        def guarded(state: Learning) -> list[Event]:
            if c is not None and (first := training.refusal(state, c)) is not None:
                return first
            return decide(state)

        self.streams.execute(LEARNING_STREAM, guarded)

    def _command(self, c: InvokeCommand) -> None:
        if training.refusal(self.state, c) is not None:
            self._execute(c, lambda s: [])
            return
        name = c.name.strip().lower()
        handler = {"train": self._train, "dataset": self._dataset, "getfile": self._getfile,
                   "instruction": self._instruction, "test": self._test, "finetune": self._finetune,
                   "model": self._model}[name]
        handler(c)

    # -- examples and datasets ---------------------------------------------------------------------
    def _train(self, c: InvokeCommand) -> None:
        filename, refused = c.attachment_name, c.attachment_refused
        if refused:
            parsed = Parsed((), ())
        elif c.attachment_hash:
            data = self.files.read_import(c.attachment_hash)
            if data is None:
                parsed, refused = Parsed((), ()), "unreadable"
            else:
                parsed = self._parsed(lambda: parse_file(filename, data))
        else:
            parsed = self._parsed(lambda: parse_train_command(c.args))
        self._execute(c, lambda s: training.decide_train(s, c, parsed, filename, refused))

    @staticmethod
    def _parsed(parse: Callable[[], Parsed]) -> Parsed:
        """The parsers name every problem; should one still raise, the file is refused, not the Trainer."""
        try:
            return parse()
        except Exception as e:  # noqa: BLE001
            log.exception("a training file could not be parsed")
            return Parsed((), (f"the file could not be read ({type(e).__name__})",))

    def _dataset(self, c: InvokeCommand) -> None:
        words, opts = options(c.args, valued=("format",))
        action = words[0].lower() if words else "list"
        name = words[1] if len(words) > 1 else ""
        target = self.state.named(name, c.scope) if name else self.state.selected_in(channel_of(c), c.scope)
        if action not in ("export", "archive"):
            tokens = token_stats(self.examples(target.id)[0]) if action == "show" and target is not None else None
            self._execute(c, lambda s: training.decide_dataset(s, c, action, name, tokens))
            return
        if target is None:
            self._execute(c, lambda s: [training.unknown_dataset(c, name)])
            return
        examples, positions = self.examples(target.id)
        try:
            self._write_out(c, action, target, examples, positions, opts)
        except OSError as e:  # the disk is full, the folder unwritable: the person is told, nothing half-written
            reason = DISK_FULL if disk_full(e) else "write_failed"
            log.error("could not write the %s of %s: %s", action, target.name, e)
            self._execute(c, lambda s: [training.write_failed(c, action, reason, e.strerror or type(e).__name__)])

    def _write_out(self, c: InvokeCommand, action: str, target: training.Dataset, examples: list[Example],
                   positions: tuple[int, int], opts: dict[str, str]) -> None:
        if action == "export":
            form = opts.get("format", "sft").lower()
            if form not in ("sft", "dpo"):
                self._execute(c, lambda s: [training.rejected(c, "bad_format", "Use `--format sft` (chats) or "
                                                                               "`--format dpo` (preference pairs).")])
                return
            written = self._export(target, examples, form)
            self._execute(c, lambda s: training.decide_export(s, c, target, form, written))
            return
        exports = (self._export(target, examples, "sft"), self._export(target, examples, "dpo"))
        manifest = {"dataset": target.name, "dataset_id": target.id, "positives": target.positives,
                    "negatives": target.negatives, "pairs": target.pairs, "duplicates_skipped": target.duplicates,
                    "log_positions": {"first": positions[0], "last": positions[1]},
                    "files": [{"name": w.file.rsplit("/", 1)[-1], "sha256": w.sha256, "records": w.records}
                              for w in exports]}
        archive = self.files.write_archive(f"{folder_of(target.scope)}/{target.name}", list(exports), manifest)
        self._execute(c, lambda s: training.decide_archive(s, c, target, archive, exports, positions))

    def _export(self, target: training.Dataset, examples: list[Example], form: str) -> training.Written:
        records = sft_records(examples, self.config.system_prompt) if form == "sft" else \
            dpo_records(examples, self.config.system_prompt)
        return self.files.write_jsonl(f"exports/{folder_of(target.scope)}/{target.name}-{form}.jsonl", records)

    def own_dataset(self, c: InvokeCommand, name: str) -> training.Dataset | None:
        """The dataset a command names, else the one teaching in its channel: its scope's own (an operators'
        dataset lent to the channel teaches there, but is not the server's to test, train or export)."""
        state, channel = self.state, channel_of(c)
        target = state.named(name, c.scope) if name else state.teaching_in(channel, c.scope)
        return target if target is None or target.scope == c.scope else state.selected_in(channel, c.scope)

    def examples(self, dataset_id: str) -> tuple[list[Example], tuple[int, int]]:
        return examples_of(self.store, dataset_id)

    def _getfile(self, c: InvokeCommand) -> None:
        found, why = self.files.sendable(c.args, folder_of(c.scope), everywhere=c.is_operator)
        self._execute(c, lambda s: training.decide_getfile(c, c.args.strip(), found, why))

    def _instruction(self, c: InvokeCommand) -> None:
        text = self.files.instructions(self.config.prefix)
        self._execute(c, lambda s: [training.answered(c, text)])

    # -- evaluation --------------------------------------------------------------------------------
    def _test(self, c: InvokeCommand) -> None:
        words, opts = options(c.args, valued=("holdout",))
        holdout = holdout_of(opts["holdout"]) if "holdout" in opts else DEFAULT_HOLDOUT
        if holdout is None:
            self._execute(c, lambda s: [training.rejected(c, "bad_holdout", "Give the held-out share as a "
                                                                            "percentage, like `--holdout 20%`.")])
            return
        name = words[0] if words else ""
        target = self.own_dataset(c, name)
        if target is None:
            self._execute(c, lambda s: [training.unknown_dataset(c, name)])
            return
        model = self.model(channel_of(c), c.scope)
        examples = self.examples(target.id)[0]

        def run() -> None:  # minutes of questions: off the Trainer, which keeps polling jobs meanwhile
            try:
                scores, _ = evaluate(examples, holdout, lambda messages: self.ask(messages, model),
                                     self.config.system_prompt, self.config.few_shot)
            except Exception:  # a bug: the person still gets an answer
                log.exception("evaluation of %s failed", target.name)
                self.later(0.0, AbandonCommand(c, "evaluation failed"))
                return
            self.later(0.0, RecordEvaluation(c, target, model, holdout, scores))

        threading.Thread(target=run, name=f"evaluate-{target.name}", daemon=True).start()

    def ask(self, messages: list[dict], model: str) -> str | None:
        try:
            return self.llm.complete(messages, model).text
        except LLMError as e:
            log.warning("evaluation question got no answer: %s", e)
            return None

    # -- fine-tuning -------------------------------------------------------------------------------
    def _finetune(self, c: InvokeCommand) -> None:
        words, opts = options(c.args, flags=("channel", "skip-long"), valued=("method", "dataset"))
        action = words[0].lower() if words else "list"
        if action in ("status", "list"):
            job_id = words[1] if len(words) > 1 else ""
            self._execute(c, lambda s: [training.answered(c, tuning.describe_jobs(s, c, job_id))])
        elif action == "cancel":
            self._cancel(c, words[1] if len(words) > 1 else "")
        elif action == "start":
            self._start(c, words[1] if len(words) > 1 else self.config.configured_model,
                        opts.get("method", "sft").lower(), opts.get("dataset", ""), "channel" in opts,
                        "skip-long" in opts)
        else:
            self._execute(c, lambda s: [training.rejected(c, "unknown_action", training.COMMANDS["finetune"])])

    def _start(self, c: InvokeCommand, base_model: str, method: str, name: str, per_channel: bool,
               skip_long: bool = False) -> None:
        if method not in ("sft", "dpo"):
            self._execute(c, lambda s: [training.rejected(c, "bad_method", "Use `--method sft` or `--method dpo`.")])
            return
        target = self.own_dataset(c, name)
        if target is None:
            self._execute(c, lambda s: [training.unknown_dataset(c, name)])
            return
        written = self._export(target, self.examples(target.id)[0], method)
        data = self.files.path(written.file).read_bytes()
        counter, limit = counter_for(base_model), example_limit(base_model, self.config.max_example_tokens)
        left_out = 0
        if skip_long:  # trim: leave out the examples over the limit, and say how many
            kept, left_out = within_limit(data.splitlines(), counter, limit)
            data = b"".join(line + b"\n" for line in kept)
        records, problems = validate(data.splitlines(), method, counter, limit, base_model)
        if problems:
            shown = "\n".join(f"- {p}" for p in problems[:training.SHOWN_PROBLEMS])
            more = f"\n…and {len(problems) - training.SHOWN_PROBLEMS} more" \
                if len(problems) > training.SHOWN_PROBLEMS else ""
            hint = "\n(`finetune start ... --skip-long` leaves out the examples over the limit; tokens counted " \
                   f"with {counter.how})" if any("tokens (" in p for p in problems) else ""
            text = f"`{target.name}` cannot be fine-tuned with {method.upper()} yet:\n{shown}{more}{hint}"
            self._execute(c, lambda s: tuning.decide_finetune_rejected(c, target.id, method, "invalid",
                                                                         tuple(problems), text))
            return
        try:
            service = self.fine_tuning()
            tag = f"{c.source}:{c.message_id}"
            # A crash after the service started the job and before it was recorded: the command comes back
            # (catch-up, redelivery) and must adopt that job, not pay for a second one.
            job = service.find(tag)
            if job is None:
                file_id = service.upload(written.file.rsplit("/", 1)[-1], data)
                job = service.create(base_model, file_id, method, f"parley-{target.name}", tag)
            else:
                log.warning("fine-tuning job %s was started by %s before a restart: adopting it", job.job_id, tag)
                file_id = job.training_file
        except TrainingRefused as e:
            text = self.refused_text(e)
            self._execute(c, lambda s: tuning.decide_finetune_rejected(c, target.id, method, e.reason,
                                                                         (e.detail,), text))
            return
        channel = channel_of(c) if per_channel else ""
        self._execute(c, lambda s: tuning.decide_finetune_started(c, target, job.job_id, file_id, base_model,
                                                                    method, records, channel, job.status, left_out))
        self.later(self.config.poll_s, PollFineTune(job.job_id))

    def refused_text(self, e: TrainingRefused) -> str:
        setting = self.config.training_setting
        if e.reason == "refused":
            return (f"The training endpoint refused fine-tuning (HTTP {e.status}: {e.detail}). OpenAI no longer lets "
                    f"new accounts fine-tune, and stops for everyone on 2027-01-06: set {setting} (and "
                    "PARLEY_TRAINING_API_KEY) to a service with OpenAI's fine-tuning API. Your examples still "
                    "teach every answer as few-shot examples.")
        if e.reason == "unauthorized":
            return f"The training endpoint refused the API key (HTTP {e.status}): set PARLEY_TRAINING_API_KEY."
        if e.reason == "unreachable":
            return f"The training endpoint cannot be reached ({e.detail[:200]}); check {setting} and try again."
        return f"The training endpoint rejected the job (HTTP {e.status}): {e.detail}"

    def _poll(self, job_id: str) -> None:
        job = self.state.jobs.get(job_id)
        if job is None or job.status in training.TERMINAL:
            return
        try:
            now = self.fine_tuning().retrieve(job_id)
        except TrainingRefused as e:
            log.warning("could not poll fine-tuning job %s (will retry): %s", job_id, e)
        else:
            self._execute(None, lambda s: tuning.decide_job_status(s, job_id, now.status, now.fine_tuned_model,
                                                                     now.error))
        if self.state.jobs[job_id].status not in training.TERMINAL:
            self.later(self.config.poll_s, PollFineTune(job_id))

    def _cancel(self, c: InvokeCommand, job_id: str) -> None:
        job = next((j for j in tuning.visible_jobs(self.state, c) if j.job_id == job_id), None)
        if job is None or job.status in training.TERMINAL:
            text = f"There is no running job `{job_id[:60]}`; `finetune list` shows them."
            self._execute(c, lambda s: [training.rejected(c, "unknown_job", text)])
            return
        try:
            now = self.fine_tuning().cancel(job_id)
        except TrainingRefused as e:
            text = self.refused_text(e)
            self._execute(c, lambda s: [training.rejected(c, "cancel_" + e.reason, text)])
            return
        self._execute(c, lambda s: tuning.decide_job_status(s, job_id, now.status, now.fine_tuned_model, now.error)
                      + [training.answered(c, f"Asked to cancel `{job_id}`: it is {now.status}.")])

    # -- models ------------------------------------------------------------------------------------
    def _model(self, c: InvokeCommand) -> None:
        words, opts = options(c.args, flags=("channel", "everywhere"))
        action = words[0].lower() if words else "list"
        name = words[1] if len(words) > 1 else ""
        self._execute(c, lambda s: tuning.decide_model(s, c, action, name, "channel" in opts,
                                                         self.config.configured_model, "everywhere" in opts))
