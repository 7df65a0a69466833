"""The Trainer shell: runs ``actors.learning.decider`` over the ``learning`` stream, and does its I/O: reading
attached example files, writing exports and archives, and asking the model during ``test``. Fine-tuning jobs and
model choices are the FineTuner's (``actors.tuning.actor``), on the same stream."""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from actors.learning import decider as training
from actors.commands import InvokeCommand
from actors.learning.command_line import holdout_of, options
from actors.learning.evaluation import evaluate
from actors.learning.examples import Example, Parsed, parse_file, parse_train_command
from actors.tuning.tokens import token_stats
from actors.ports import DISK_FULL, ChatModel, LLMError, TrainingFiles, disk_full
from actors.learning.shell import LearningStreamActor, examples_of, write_export
from actors.streams import Publish
from actors.supervisor import Supervised
from actors.learning.decider import channel_of
from events import EventStore
from events.catalog.corrections import CorrectionRecorded

from events.scopes import folder_of

log = logging.getLogger("parley.trainer")
LEARNING_COMMANDS = frozenset(training.COMMANDS)
DEFAULT_HOLDOUT = 0.2


@dataclass(frozen=True)
class TrainerConfig:
    prefix: str = "!"
    system_prompt: str = ""
    few_shot: int = 4


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
    results: tuple[tuple[str, training.Scores], ...]  # (model, its scores): the model in use, then its base if tuned
    holdout: float


@dataclass(frozen=True)
class LearnCorrection:
    """A correction was recorded: add it to the channel's dataset as a preference pair."""

    correction: CorrectionRecorded


def give_up(message: object, error: str) -> object | None:
    return AbandonCommand(message, error) if isinstance(message, InvokeCommand) else None


class TrainerActor(LearningStreamActor):
    usage = training.COMMANDS

    def __init__(self, supervisor: Supervised, store: EventStore, publish: Publish, files: TrainingFiles,
                 llm: ChatModel, model: Callable[[str, str], str], config: TrainerConfig,
                 later: Callable[[float, object], None]):
        super().__init__(supervisor, store, publish)
        self.files = files
        self.llm = llm
        self.model = model
        self.config = config
        self.later = later

    # -- the loop ----------------------------------------------------------------------------------
    def handle(self, message: object) -> None:
        if isinstance(message, InvokeCommand):
            self._command(message)
        elif isinstance(message, LearnCorrection):
            self._execute(None, lambda s: training.decide_learn_correction(s, message.correction))
        elif isinstance(message, RecordEvaluation):
            m = message
            self._execute(m.command, lambda s: training.decide_evaluation(m.command, m.dataset, m.results, m.holdout))
        elif isinstance(message, ReloadLearning):
            self.streams.forget_all()
        elif isinstance(message, AbandonCommand):
            self._abandoned(message.command)
        else:
            raise TypeError(f"the Trainer cannot handle {type(message).__name__}")

    def handlers(self) -> dict[str, Callable[[InvokeCommand], None]]:
        return {"train": self._train, "dataset": self._dataset, "getfile": self._getfile,
                "instruction": self._instruction, "test": self._test}

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
        return write_export(self.files, target, examples, form, self.config.system_prompt)

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
        holdout = holdout_of(opts["holdout"]) if "holdout" in opts else None
        if "holdout" in opts and holdout is None:
            self._execute(c, lambda s: [training.rejected(c, "bad_holdout", "Give the held-out share as a "
                                                                            "percentage, like `--holdout 20%`.")])
            return
        name = words[0] if words else ""
        target = training.own_dataset(self.state, c, name)
        if target is None:
            self._execute(c, lambda s: [training.unknown_dataset(c, name)])
            return
        model = self.model(channel_of(c), c.scope)
        examples = self.examples(target.id)[0]
        # A tuned model is compared with its base, on the questions its job held out (the same split)
        job = next((j for j in self.state.jobs.values() if j.fine_tuned_model == model and j.dataset_id == target.id),
                   None)
        holdout = holdout if holdout is not None else job.holdout if job is not None and job.holdout else \
            DEFAULT_HOLDOUT
        models = [model] + ([job.base_model] if job is not None else [])

        def run() -> None:  # minutes of questions: off the Trainer, which keeps polling jobs meanwhile
            try:
                results = tuple((m, evaluate(examples, holdout, lambda messages: self.ask(messages, m),
                                             self.config.system_prompt, self.config.few_shot)[0]) for m in models)
            except Exception:  # a bug: the person still gets an answer
                log.exception("evaluation of %s failed", target.name)
                self.later(0.0, AbandonCommand(c, "evaluation failed"))
                return
            self.later(0.0, RecordEvaluation(c, target, results, holdout))

        threading.Thread(target=run, name=f"evaluate-{target.name}", daemon=True).start()

    def ask(self, messages: list[dict], model: str) -> str | None:
        try:
            return self.llm.complete(messages, model).text
        except LLMError as e:
            log.warning("evaluation question got no answer: %s", e)
            return None
