"""Fine-tuning jobs and model choices, as pure decisions over the ``learning`` stream's state
(``actors.learning.decider.Learning``: the datasets a job trains on live there): a job started, polled to its end,
and the model it (or ``model use``) makes answer, in its scope (``events.scopes``) only. No I/O: the shell
(``actors.tuning.actor``) hands in what the training backend said."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from actors.commands import InvokeCommand
from actors.ports import TrainingJob
from actors.learning.decider import Dataset, Learning, answered, channel_of, rejected
from actors.tuning.jobs import TERMINAL, Job
from events.catalog.learning import (FineTuneFinished, FineTuneProgressed, FineTuneRejected, FineTuneStarted,
                                     FineTuneStatusChanged, ModelActivated)
from events.model import Event
from events.scopes import OPERATORS, described

# What each command does, for ``help``; all of them are for admins.
COMMANDS = {
    "finetune": "`finetune start [BASE_MODEL|local] [--method sft|dpo] [--dataset NAME] [--holdout 20%] [--channel] "
                "[--skip-long]`, "
                "`finetune status|list|cancel [JOB]`",
    "model": "`model use NAME [--channel]` (operators: `--everywhere`), `model list`",
}


def evolve_jobs(jobs: Mapping[str, Job], event: Event) -> Mapping[str, Job]:
    """The jobs after ``event`` (``actors.learning.decider.evolve`` folds the stream and asks this room)."""
    if isinstance(event, FineTuneStarted):
        job = Job(event.job_id, "validating_files", event.base_model, event.method, event.dataset_id, event.channel,
                  (event.conversation_id, event.message_id, event.channel_id, event.source), scope=event.scope,
                  holdout=event.holdout)
        return {**jobs, job.job_id: job}
    if isinstance(event, FineTuneProgressed) and event.job_id in jobs:
        return {**jobs, event.job_id: replace(jobs[event.job_id], step=event.step, steps=event.steps, loss=event.loss,
                                              eta_s=event.eta_s)}
    if isinstance(event, (FineTuneStatusChanged, FineTuneFinished)) and event.job_id in jobs:
        job = jobs[event.job_id]
        return {**jobs, job.job_id: replace(job, status=event.status,
                                            fine_tuned_model=getattr(event, "fine_tuned_model", "") or job.fine_tuned_model)}
    return jobs


def decide_finetune_rejected(c: InvokeCommand, dataset_id: str, method: str, reason: str,
                             problems: tuple[str, ...], text: str) -> list[Event]:
    return [FineTuneRejected(dataset_id=dataset_id, method=method, reason=reason, problems=problems[:100],
                             by=c.author_id), rejected(c, "finetune_" + reason, text)]


def decide_finetune_started(c: InvokeCommand, target: Dataset, job_id: str, file_id: str, base_model: str,
                            method: str, records: int, channel: str, status: str, left_out: int = 0,
                            holdout: float = 0.0, held_out: int = 0) -> list[Event]:
    started = FineTuneStarted(conversation_id=c.conversation_id, message_id=c.message_id, channel_id=c.channel_id,
                              source=c.source, job_id=job_id, file_id=file_id, base_model=base_model, method=method,
                              dataset_id=target.id, records=records, channel=channel, by=c.author_id, scope=c.scope,
                              holdout=holdout)
    events: list[Event] = [started]
    if status and status != "validating_files":
        events.append(FineTuneStatusChanged(job_id=job_id, status=status))
    where = where_model_answers(c.scope, channel)
    return events + [answered(c, f"Started fine-tuning job `{job_id}`: {method.upper()} of `{base_model}` on "
                                 f"{records} record(s) of `{target.name}`"
                                 + (f" ({left_out} over the token limit left out)" if left_out else "")
                                 + (f", {held_out} held out to show what it learned" if held_out else "")
                                 + ". I'll say here when it ends; on success "
                                 f"the tuned model answers {where}.")]


def decide_job_status(state: Learning, now: TrainingJob) -> list[Event]:
    """A poll's answer: record a change (of status, or of progress); at the end, tell the channel and activate a
    tuned model."""
    job_id, status, fine_tuned_model, error = now.job_id, now.status, now.fine_tuned_model, now.error
    job = state.jobs.get(job_id)
    if job is None or job.status in TERMINAL:
        return []
    progressed: list[Event] = [FineTuneProgressed(job_id=job_id, step=now.step, steps=now.steps, loss=now.loss,
                                                  eta_s=now.eta_s)] \
        if now.steps and (now.step, now.steps) != (job.step, job.steps) and status not in TERMINAL else []
    if status == job.status:
        return progressed
    if status not in TERMINAL:
        return [FineTuneStatusChanged(job_id=job_id, status=status), *progressed]
    conversation_id, message_id, channel_id, source = job.where
    if status == "succeeded" and fine_tuned_model:
        where = where_model_answers(job.scope, job.channel)
        text = f"Fine-tuning job `{job_id}` succeeded: `{fine_tuned_model}` now answers {where}." + shown(now)
    elif status == "succeeded":
        text = f"Fine-tuning job `{job_id}` succeeded but the service named no model; nothing changed."
    elif status == "cancelled":
        text = f"Fine-tuning job `{job_id}` was cancelled; the model in use did not change."
    else:
        text = f"Fine-tuning job `{job_id}` failed: {error or 'the service gave no reason'}. The model in use did not change."
    events: list[Event] = [FineTuneFinished(conversation_id=conversation_id, message_id=message_id,
                                            channel_id=channel_id, source=source, job_id=job_id, status=status,
                                            fine_tuned_model=fine_tuned_model, error=error[:500], reply_text=text,
                                            adapter_hash=now.adapter_hash, held_out=now.held_out, score=now.score,
                                            base_score=now.base_score, tuned_score=now.tuned_score)]
    if status == "succeeded" and fine_tuned_model:
        events.append(ModelActivated(model=fine_tuned_model, channel=job.channel, by="fine-tune", job_id=job_id,
                                     scope=job.scope))
    return events


def shown(now: TrainingJob) -> str:
    """What the job showed on the examples it never trained on, in a sentence ("" if its backend measured nothing)."""
    if not now.held_out or now.base_score is None or now.tuned_score is None:
        return ""
    if now.score == "opens_as_taught":
        return (f" On {now.held_out} held-out question(s) it never trained on, {round(now.tuned_score * now.held_out)}"
                f"/{now.held_out} of its answers open as the examples taught (the base model: "
                f"{round(now.base_score * now.held_out)}/{now.held_out}).")
    return (f" On {now.held_out} held-out pair(s), the preferred answer's log-probability leads the other's by "
            f"{now.tuned_score:+.2f} (the base model: {now.base_score:+.2f}).")


def where_model_answers(scope: str, channel: str) -> str:
    if channel:
        return "in this channel"
    return "everywhere" if scope == OPERATORS else f"in {described(scope)}"


def visible_jobs(state: Learning, c: InvokeCommand) -> list[Job]:
    """A scope's admins see and cancel their scope's jobs; operators every job."""
    return list(state.jobs.values()) if c.is_operator else state.jobs_of(c.scope)


def describe_jobs(state: Learning, c: InvokeCommand, job_id: str = "", marked: frozenset[str] = frozenset()) -> str:
    """The scope's jobs; ``marked``: those whose adapter learned from a person since forgotten (retrain them)."""
    visible = {j.job_id: j for j in visible_jobs(state, c)}
    jobs = [visible[job_id]] if job_id in visible else list(visible.values())[-10:]
    if not jobs:
        return "No fine-tuning jobs yet: `finetune start`."
    names = {d.id: d.name for d in state.datasets.values()}
    return "\n".join(f"- `{j.job_id}`: {j.status}"
                     + (f" ({j.progress()})" if j.status not in TERMINAL and j.progress() else "")
                     + f", {j.method.upper()} of `{j.base_model}` on `{names.get(j.dataset_id, '(deleted)')}`"
                     + (f" → `{j.fine_tuned_model}`" if j.fine_tuned_model else "")
                     + (" (trained on the words of someone since forgotten: start it again to retrain without them)"
                        if j.job_id in marked else "") for j in jobs)


def decide_model(state: Learning, c: InvokeCommand, action: str, model: str, per_channel: bool,
                 configured: str, everywhere: bool = False) -> list[Event]:
    channel = channel_of(c)
    if action == "list":
        tuned = [j.fine_tuned_model for j in visible_jobs(state, c) if j.fine_tuned_model]
        now = (state.models.get((c.scope, channel)) or state.models.get((c.scope, ""))
               or state.models.get((OPERATORS, "")) or configured)
        mine = [m for (scope, _), m in state.models.items() if scope in (c.scope, OPERATORS) or c.is_operator]
        known = list(dict.fromkeys([configured, *mine, *tuned]))
        return [answered(c, "Models:\n" + "\n".join(f"- `{m}`" + (" (answering here)" if m == now else "")
                                                     for m in known))]
    if action == "use" and model:
        if everywhere and not c.is_operator:
            return [rejected(c, "not_operator", "Only the bot's operators can choose the model for every server; "
                                                "`model use NAME` chooses it for this server.")]
        scope = OPERATORS if everywhere else c.scope
        where = "" if everywhere else channel if per_channel else ""
        return [ModelActivated(model=model[:200], channel=where, by=c.author_id, scope=scope),
                answered(c, f"`{model[:200]}` now answers {where_model_answers(scope, where)}.")]
    return [rejected(c, "unknown_action", "Use `model use NAME [--channel|--everywhere]` or `model list`.")]
