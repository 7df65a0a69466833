"""The FineTuner shell: fine-tuning jobs and model choices (``actors.tuning.decider``) on the ``learning`` stream,
which it shares with the Trainer (whose datasets it trains on). Its I/O: the dataset's training file, checked
line by line before anything leaves, and the fine-tuning backend (a port: a service with OpenAI's fine-tuning
API), whose jobs are polled on a timer and again after a restart."""
from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

from actors.commands import InvokeCommand, PollFineTune, ResumeFineTunes
from actors.learning import decider as training
from actors.learning.command_line import holdout_of, options
from actors.learning.evaluation import split
from actors.learning.examples import normalise
from actors.learning.decider import channel_of
from actors.tuning.tokens import counter_for, example_limit
from actors.ports import Draft, FineTuning, TrainingFiles, TrainingRefused
from actors.learning.shell import LearningStreamActor, examples_of, write_export
from actors.streams import Publish
from actors.supervisor import Supervised
from actors.tuning import decider as tuning
from actors.tuning.jobs import TERMINAL, Job
from actors.tuning.records import dpo_records, sft_records, validate, within_limit
from events import EventStore

log = logging.getLogger("parley.finetuner")
TUNING_COMMANDS = frozenset(tuning.COMMANDS)


@dataclass(frozen=True)
class TunerConfig:
    system_prompt: str = ""
    poll_s: float = 30.0
    configured_model: str = ""
    training_setting: str = "PARLEY_TRAINING_BASE_URL"
    max_example_tokens: int = 0  # PARLEY_TRAINING_MAX_TOKENS; 0: the base model's limit


@dataclass(frozen=True)
class AbandonTuning:
    """The FineTuner failed on this command repeatedly: tell its author, record it, move on."""

    command: InvokeCommand
    error: str


@dataclass(frozen=True)
class ReloadTuning:
    """Someone was forgotten: drop the stream's state folded from the log (their examples' words are in it)."""


def give_up(message: object, error: str) -> object | None:
    return AbandonTuning(message, error) if isinstance(message, InvokeCommand) else None


class FineTunerActor(LearningStreamActor):
    usage = tuning.COMMANDS

    def __init__(self, supervisor: Supervised, store: EventStore, publish: Publish, files: TrainingFiles,
                 fine_tuning: Callable[[str], FineTuning], config: TunerConfig, later: Callable[[float, object], None],
                 drafts: Callable[[Draft], None] = lambda d: None, shows_drafts: Callable[[str], bool] = lambda s: False):
        super().__init__(supervisor, store, publish)
        self.files = files
        self.fine_tuning = fine_tuning
        self.config = config
        self.later = later
        self.drafts = drafts  # a job's progress, shown where it was started (a bar edited in place)
        self.shows_drafts = shows_drafts

    def handle(self, message: object) -> None:
        if isinstance(message, PollFineTune):
            self._poll(message.job_id)
        elif isinstance(message, ResumeFineTunes):
            for job in self.state.running_jobs():
                self._poll(job.job_id)
        elif isinstance(message, InvokeCommand):
            self._command(message)
        elif isinstance(message, ReloadTuning):
            self.streams.forget_all()
        elif isinstance(message, AbandonTuning):
            self._abandoned(message.command)
        else:
            raise TypeError(f"the FineTuner cannot handle {type(message).__name__}")

    def handlers(self) -> dict[str, Callable[[InvokeCommand], None]]:
        return {"finetune": self._finetune, "model": self._model}

    # -- jobs --------------------------------------------------------------------------------------
    def _finetune(self, c: InvokeCommand) -> None:
        words, opts = options(c.args, flags=("channel", "skip-long"), valued=("method", "dataset", "holdout"))
        action = words[0].lower() if words else "list"
        if action in ("status", "list"):
            job_id = words[1] if len(words) > 1 else ""
            marked = self._marked(c)
            self._execute(c, lambda s: [training.answered(c, tuning.describe_jobs(s, c, job_id, marked))])
        elif action == "cancel":
            self._cancel(c, words[1] if len(words) > 1 else "")
        elif action == "start":
            holdout = holdout_of(opts["holdout"]) if opts.get("holdout") not in (None, "0", "0%") else \
                0.0 if "holdout" in opts else None
            if "holdout" in opts and holdout is None:
                self._execute(c, lambda s: [training.rejected(c, "bad_holdout", "Give the held-out share as a "
                                                                                "percentage, like `--holdout 20%`.")])
                return
            self._start(c, words[1] if len(words) > 1 else self.config.configured_model,
                        opts.get("method", "sft").lower(), opts.get("dataset", ""), "channel" in opts,
                        "skip-long" in opts, holdout)
        else:
            self._execute(c, lambda s: [training.rejected(c, "unknown_action", tuning.COMMANDS["finetune"])])

    def _marked(self, c: InvokeCommand) -> frozenset[str]:
        """Local jobs whose adapters learned from someone since forgotten (a backend that knows says)."""
        try:
            service = self.fine_tuning("local")  # the base model that means this machine
        except TrainingRefused:  # no training stack here: no local jobs either
            return frozenset()
        marked = getattr(service, "trained_on_forgotten", None)
        return frozenset(marked()) if marked is not None else frozenset()

    def _start(self, c: InvokeCommand, base_model: str, method: str, name: str, per_channel: bool,
               skip_long: bool = False, holdout: float | None = None) -> None:
        if method not in ("sft", "dpo"):
            self._execute(c, lambda s: [training.rejected(c, "bad_method", "Use `--method sft` or `--method dpo`.")])
            return
        target = training.own_dataset(self.state, c, name)
        if target is None:
            self._execute(c, lambda s: [training.unknown_dataset(c, name)])
            return
        try:
            service = self.fine_tuning(base_model)
        except TrainingRefused as e:
            text = self.refused_text(e)
            self._execute(c, lambda s: tuning.decide_finetune_rejected(c, target.id, method, e.reason,
                                                                         (e.detail,), text))
            return
        # "local" names this machine's model: the job records which one (its file's name), as a service's names it
        base_model = getattr(service, "base_name", "") or base_model
        holdout = service.default_holdout if holdout is None else holdout
        # Examples kept out of training show, at the end, whether it learned (the same split `test` makes).
        trained, held = split(examples_of(self.store, target.id)[0], holdout) if holdout else \
            (examples_of(self.store, target.id)[0], [])
        written = write_export(self.files, target, trained, method, self.config.system_prompt, "-training")
        data = self.files.path(written.file).read_bytes()
        held_prompts = {normalise(e.prompt) for e in held}
        held_records = sft_records(held, self.config.system_prompt) if method == "sft" else \
            dpo_records([e for e in examples_of(self.store, target.id)[0] if normalise(e.prompt) in held_prompts],
                        self.config.system_prompt)
        held_out = b"".join(json.dumps(r).encode() + b"\n" for r in held_records)
        # a backend that knows its window says it (this machine's trainer keeps 512 tokens of an example)
        counter = counter_for(base_model)
        limit = example_limit(base_model, self.config.max_example_tokens or getattr(service, "max_example_tokens", 0))
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
            tag = f"{c.source}:{c.message_id}"
            # A crash after the service started the job and before it was recorded: the command comes back
            # (catch-up, redelivery) and must adopt that job, not pay for a second one.
            job = service.find(tag)
            if job is None:
                file_id = service.upload(written.file.rsplit("/", 1)[-1], data)
                job = service.create(base_model, file_id, method, f"parley-{target.name}", tag, held_out)
            else:
                log.warning("fine-tuning job %s was started by %s before a restart: adopting it", job.job_id, tag)
                file_id = job.training_file
        except TrainingRefused as e:
            if e.reason == "busy" and not any(j.job_id in e.detail for j in tuning.visible_jobs(self.state, c)):
                e = TrainingRefused("busy", "another server's job is training on this machine and one job runs at "
                                            "a time: try again when it ends")  # its id is not this server's to see
            text = self.refused_text(e)
            self._execute(c, lambda s: tuning.decide_finetune_rejected(c, target.id, method, e.reason,
                                                                         (e.detail,), text))
            return
        channel = channel_of(c) if per_channel else ""
        self._execute(c, lambda s: tuning.decide_finetune_started(c, target, job.job_id, file_id, base_model,
                                                                    method, records, channel, job.status, left_out,
                                                                    holdout, held_out.count(b"\n")))
        self.later(self._every(base_model), PollFineTune(job.job_id))

    def _every(self, base_model: str) -> float:
        """How often to ask how a job does: a local job reports its steps, worth showing every few seconds."""
        try:
            return min(self.config.poll_s, getattr(self.fine_tuning(base_model), "poll_s", None) or self.config.poll_s)
        except TrainingRefused:
            return self.config.poll_s

    def refused_text(self, e: TrainingRefused) -> str:
        setting = self.config.training_setting
        if e.reason in ("busy", "local"):  # this machine's own trainer: its words are for the person already
            return f"I cannot fine-tune here now: {e.detail}"
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
        if job is None or job.status in TERMINAL:
            return
        try:
            now = self.fine_tuning(job.base_model).retrieve(job_id)
        except TrainingRefused as e:
            log.warning("could not poll fine-tuning job %s (will retry): %s", job_id, e)
        else:
            self._execute(None, lambda s: tuning.decide_job_status(s, now))
        after = self.state.jobs[job_id]
        if (after.status, after.step) != (job.status, job.step):
            self._show_progress(after)
        if after.status not in TERMINAL:
            self.later(self._every(job.base_model), PollFineTune(job_id))

    def _show_progress(self, job: Job) -> None:
        """The job's bar, in reply to the message that started it (the transport edits it in place)."""
        conversation_id, message_id, channel_id, source = job.where
        if self.shows_drafts(source):
            self.drafts(Draft(source, channel_id, message_id, job.bar(), conversation_id, part="ft",
                              final=job.status in TERMINAL))

    def _cancel(self, c: InvokeCommand, job_id: str) -> None:
        job = next((j for j in tuning.visible_jobs(self.state, c) if j.job_id == job_id), None)
        if job is None or job.status in TERMINAL:
            text = f"There is no running job `{job_id[:60]}`; `finetune list` shows them."
            self._execute(c, lambda s: [training.rejected(c, "unknown_job", text)])
            return
        try:
            now = self.fine_tuning(job.base_model).cancel(job_id)
        except TrainingRefused as e:
            text = self.refused_text(e)
            self._execute(c, lambda s: [training.rejected(c, "cancel_" + e.reason, text)])
            return
        told = training.answered(c, f"Asked to cancel `{job_id}`: it is {now.status}.")
        self._execute(c, lambda s: tuning.decide_job_status(s, now) + [told])

    # -- models ------------------------------------------------------------------------------------
    def _model(self, c: InvokeCommand) -> None:
        words, opts = options(c.args, flags=("channel", "everywhere"))
        action = words[0].lower() if words else "list"
        name = words[1] if len(words) > 1 else ""
        self._execute(c, lambda s: tuning.decide_model(s, c, action, name, "channel" in opts,
                                                         self.config.configured_model, "everywhere" in opts))
