"""The Trainer's domain: datasets of examples and evaluations, as a pure decider over the ``learning`` stream.
The stream also holds fine-tuning jobs and the models in use, which ``actors.tuning`` decides; ``Learning`` is
the whole stream's state, folded here.

The shell (``actors.learning.actor``) gathers what needs I/O first (the examples parsed from an attached file,
an export written, an evaluation run, a job created at the training endpoint) and hands it in as
*facts*; ``decide_*`` functions turn command + facts into events, each with the reply the person
gets, appended together: a dataset never holds half an import.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from actors.access import NOT_ALLOWED, REFUSAL_TEXT, may_act_on
from actors.commands import InvokeCommand
from actors.learning.examples import Example, Parsed, normalise
from actors.tuning.tokens import TokenStats
from actors.tuning.jobs import TERMINAL, Job  # noqa: F401  (the state holds jobs; TERMINAL for its readers)
from events.catalog.corrections import CorrectionRecorded
from events.catalog.learning import (DEFAULT_DATASET, DatasetArchived, DatasetCreated, DatasetDeleted, DatasetExported,
                                     DatasetSelected, DatasetUsed, EvaluationCompleted, ExamplesAdded, ExamplesRefused,
                                     FileRefused, FineTuneFinished, FineTuneProgressed, FineTuneStarted,
                                     FineTuneStatusChanged, ModelActivated)
from events.catalog.messages import CommandAnswered, CommandRejected
from events.model import Event
from events.scopes import OPERATORS

KEEP_SEEN = 500
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")
SHOWN_PROBLEMS = 10

# What each command does, for ``help``; all of them are for admins.
COMMANDS = {
    "train": "`train PROMPT => ANSWER` (or `-PROMPT => ANSWER`: an answer to avoid), or attach .jsonl/.csv/.txt",
    "dataset": "`dataset create|select|use|list|show|delete|export|archive NAME`",
    "getfile": "`getfile NAME`: a file from exports/ or archives/",
    "instruction": "how to teach me",
    "test": "`test [DATASET] [--holdout 20%]`: score the model on held-out examples",
}


@dataclass(frozen=True)
class Dataset:
    id: str
    name: str
    scope: str = OPERATORS  # whose it is (``events.scopes``)
    keys: frozenset[tuple[str, str, bool, str, str]] = frozenset()
    good_prompts: frozenset[tuple[str, str]] = frozenset()  # (chat, normalised prompt) with a positive answer
    bad_prompts: frozenset[tuple[str, str]] = frozenset()  # ... and with an answer to avoid (not tied in a pair)
    tied: frozenset[tuple[str, bool]] = frozenset()  # (pair id, side) of answers tied in a preference pair
    positives: int = 0
    negatives: int = 0
    duplicates: int = 0

    @property
    def pairs(self) -> int:
        both = {pair for pair, positive in self.tied if positive} & {pair for pair, positive in self.tied if not positive}
        return len(both) + len(self.good_prompts & self.bad_prompts)

    def summary(self) -> str:
        return (f"`{self.name}`: {self.positives} example(s), {self.negatives} answer(s) to avoid, "
                f"{self.pairs} preference pair(s), {self.duplicates} duplicate(s) skipped")


@dataclass(frozen=True)
class Learning:
    version: int = 0
    datasets: Mapping[str, Dataset] = field(default_factory=dict)  # by id; deleted ones are gone
    selected: Mapping[str, str] = field(default_factory=dict)  # channel -> dataset id that !train adds to
    used: Mapping[str, str] = field(default_factory=dict)  # channel -> dataset id that teaches there
    shared: frozenset[str] = frozenset()  # channels an operator lent an operators' dataset to
    jobs: Mapping[str, Job] = field(default_factory=dict)
    models: Mapping[tuple[str, str], str] = field(default_factory=dict)  # (scope, channel or "") -> model
    seen: tuple[str, ...] = ()  # command message ids recently handled

    def named(self, name: str, scope: str) -> Dataset | None:
        """The dataset of that name in ``scope``: names are per scope, and nobody reaches another scope's."""
        wanted = name.strip().lower()
        return next((d for d in self.datasets.values() if d.name.lower() == wanted and d.scope == scope), None)

    def in_scope(self, scope: str) -> list[Dataset]:
        return [d for d in self.datasets.values() if d.scope == scope]

    def selected_in(self, channel: str, scope: str) -> Dataset | None:
        chosen = self.datasets.get(self.selected.get(channel, ""))
        return chosen if chosen is not None and chosen.scope == scope else self.named(DEFAULT_DATASET, scope)

    def teaching_in(self, channel: str, scope: str) -> Dataset | None:
        used = self.datasets.get(self.used.get(channel, ""))
        if used is not None and (used.scope == scope or channel in self.shared and used.scope == OPERATORS):
            return used
        return self.selected_in(channel, scope)

    def running_jobs(self) -> list[Job]:
        return [j for j in self.jobs.values() if j.status not in TERMINAL]

    def jobs_of(self, scope: str) -> list[Job]:
        return [j for j in self.jobs.values() if j.scope == scope]


def channel_of(c: InvokeCommand) -> str:
    return f"{c.source}:{c.channel_id}"


def own_dataset(state: Learning, c: InvokeCommand, name: str) -> Dataset | None:
    """The dataset a command names, else the one teaching in its channel: its scope's own (an operators'
    dataset lent to the channel teaches there, but is not the server's to test, train or export)."""
    channel = channel_of(c)
    target = state.named(name, c.scope) if name else state.teaching_in(channel, c.scope)
    return target if target is None or target.scope == c.scope else state.selected_in(channel, c.scope)


def evolve(state: Learning, event: Event) -> Learning:
    state = replace(state, version=state.version + 1)
    message_id = getattr(event, "message_id", "")
    if message_id and isinstance(event, (CommandAnswered, CommandRejected, ExamplesAdded, ExamplesRefused)):
        state = replace(state, seen=(state.seen + (message_id,))[-KEEP_SEEN:])
    if isinstance(event, DatasetCreated):
        return replace(state, datasets={**state.datasets,
                                        event.dataset_id: Dataset(event.dataset_id, event.name, event.scope)})
    if isinstance(event, DatasetDeleted):
        return replace(state, datasets={k: v for k, v in state.datasets.items() if k != event.dataset_id},
                       selected={k: v for k, v in state.selected.items() if v != event.dataset_id},
                       used={k: v for k, v in state.used.items() if v != event.dataset_id})
    if isinstance(event, DatasetSelected):
        return replace(state, selected={**state.selected, event.channel: event.dataset_id})
    if isinstance(event, DatasetUsed):
        shared = state.shared | {event.channel} if event.shared else state.shared - {event.channel}
        return replace(state, used={**state.used, event.channel: event.dataset_id}, shared=shared)
    if isinstance(event, ExamplesAdded):
        d = state.datasets.get(event.dataset_id)
        if d is None:
            return state
        examples = [Example.from_record(e) for e in event.examples]
        good = {(e.context, normalise(e.prompt)) for e in examples if e.positive and not e.pair}
        bad = {(e.context, normalise(e.prompt)) for e in examples if not e.positive and not e.pair}
        positives = sum(e.positive for e in examples)
        d = replace(d, keys=d.keys | {e.key for e in examples}, good_prompts=d.good_prompts | good,
                    bad_prompts=d.bad_prompts | bad, tied=d.tied | {(e.pair, e.positive) for e in examples if e.pair},
                    positives=d.positives + positives,
                    negatives=d.negatives + len(examples) - positives, duplicates=d.duplicates + event.duplicates)
        return replace(state, datasets={**state.datasets, d.id: d})
    if isinstance(event, (FineTuneStarted, FineTuneStatusChanged, FineTuneProgressed, FineTuneFinished)):
        # fine-tuning's own room says what a job becomes (imported here: that room reads this one's state)
        from actors.tuning.decider import evolve_jobs
        return replace(state, jobs=evolve_jobs(state.jobs, event))
    if isinstance(event, ModelActivated):
        return replace(state, models={**state.models, (event.scope, event.channel): event.model})
    return state


# -- replies ---------------------------------------------------------------------------------------
def _common(c: InvokeCommand) -> dict:
    return dict(conversation_id=c.conversation_id, message_id=c.message_id, channel_id=c.channel_id,
                author_id=c.author_id, source=c.source, command=c.name.strip().lower()[:40])


def answered(c: InvokeCommand, text: str, attachment: str = "") -> CommandAnswered:
    return CommandAnswered(**_common(c), text=text, attachment=attachment)


def rejected(c: InvokeCommand, reason: str, text: str) -> CommandRejected:
    return CommandRejected(**_common(c), reason=reason, reply_text=text)


def refusal(state: Learning, c: InvokeCommand) -> list[Event] | None:
    """What every learning command checks first: not seen before, and asked by an admin."""
    if c.message_id in state.seen:
        return []
    if c.refusal:
        return [rejected(c, c.refusal, REFUSAL_TEXT.get(c.refusal, REFUSAL_TEXT[NOT_ALLOWED]))]
    if not may_act_on(c.scope, where=c.scope, is_admin=c.is_admin, is_operator=c.is_operator):
        return [rejected(c, "not_admin", f"Only Parley's admins can use `{c.name.strip().lower()[:40]}`: it changes "
                                         "what Parley learns and which model answers. Ask an admin"
                                         + (" of this server." if c.scope.startswith("guild:") else "."))]
    return None


def dataset_id_for(c: InvokeCommand, name: str) -> str:
    """Stable for one command, so a redelivered command creates nothing twice."""
    return hashlib.sha1(f"{c.source}:{c.message_id}:{name.lower()}".encode()).hexdigest()[:16]


# -- examples ------------------------------------------------------------------------------------
def decide_train(state: Learning, c: InvokeCommand, parsed: Parsed, filename: str = "",
                 refused: str = "") -> list[Event]:
    """Add what ``parsed`` holds to the channel's selected dataset (``default``, created on first use)."""
    events: list[Event] = []
    target = state.selected_in(channel_of(c), c.scope)
    if target is None:
        target = Dataset(dataset_id_for(c, DEFAULT_DATASET), DEFAULT_DATASET, c.scope)
        events.append(DatasetCreated(dataset_id=target.id, name=target.name, by=c.author_id, scope=c.scope))
    where = dict(dataset_id=target.id, author_id=c.author_id, source=c.source, message_id=c.message_id,
                 filename=filename[:200])
    problems = parsed.problems
    reason = refused or ("malformed" if problems else "" if parsed.examples else "empty")
    if reason:
        problems = problems or (refused_text(refused) if refused else "there were no examples in it",)
        shown = "\n".join(f"- {p}" for p in problems[:SHOWN_PROBLEMS])
        more = f"\n…and {len(problems) - SHOWN_PROBLEMS} more" if len(problems) > SHOWN_PROBLEMS else ""
        what = f"`{filename}`" if filename else "the example"
        return events + [ExamplesRefused(**where, reason=reason, problems=tuple(problems[:100])),
                         rejected(c, "examples_" + reason, f"Nothing was added from {what} to `{target.name}`:\n"
                                                            f"{shown}{more}")]
    fresh: list[Example] = []
    keys = set(target.keys)
    for example in parsed.examples:
        if example.key not in keys:
            keys.add(example.key)
            fresh.append(example)
    duplicates = len(parsed.examples) - len(fresh)
    added = ExamplesAdded(**where, duplicates=duplicates, examples=tuple(e.to_record() for e in fresh))
    after = evolve(replace(state, datasets={**state.datasets, target.id: target}), added).datasets[target.id]
    positives = sum(e.positive for e in fresh)
    text = (f"Added {positives} example(s) and {len(fresh) - positives} answer(s) to avoid to `{target.name}`"
            + (f" ({duplicates} duplicate(s) skipped)" if duplicates else "") + f". Now {after.summary()}.")
    return events + [added, answered(c, text)]


def write_failed(c: InvokeCommand, what: str, reason: str, detail: str) -> CommandRejected:
    """An export or archive that could not be written: nothing half-written is left behind."""
    if reason == "no_space":
        return rejected(c, reason, f"I could not write the {what}: my disk is full. Nothing was written; the bot's "
                                   "operator has been told, and you can ask again once there is room.")
    return rejected(c, reason, f"I could not write the {what} ({detail}). Nothing was written.")


def refused_text(reason: str) -> str:
    return {"too_large": "the file is larger than PARLEY_MAX_IMPORT_MB",
            "unreadable": "the file could not be read (try attaching it again)",
            "outside_data_dir": "name a file inside the data dir (relative to it)",
            "no_such_file": "there is no such file in the data dir (name one relative to it)",
            "no_space": "my disk is full, so the file could not be stored (the bot's operator has been told)",
            }.get(reason, reason)


def decide_learn_correction(state: Learning, e: CorrectionRecorded) -> list[Event]:
    """A correction is a preference pair in the dataset that teaches where the answer was given: the
    corrected answer to prefer, the original to avoid (few-shot at once; DPO when fine-tuned)."""
    if e.message_id in state.seen or not e.approved:  # a member's suggestion teaches once an admin approves it
        return []
    events: list[Event] = []
    channel = f"{e.source}:{e.channel_id}"
    target = state.teaching_in(channel, e.scope)
    if target is not None and target.scope != e.scope:  # a lent operators' dataset teaches here; it learns elsewhere
        target = state.selected_in(channel, e.scope)
    if target is None:
        target = Dataset(hashlib.sha1(f"{e.source}:{e.message_id}:default".encode()).hexdigest()[:16], DEFAULT_DATASET,
                         e.scope)
        events.append(DatasetCreated(dataset_id=target.id, name=target.name, by=e.by, scope=e.scope))
    pair = [Example(e.question, e.corrected, True), Example(e.question, e.original, False)]
    fresh = [x for x in pair if x.key not in target.keys]
    return events + [ExamplesAdded(dataset_id=target.id, duplicates=len(pair) - len(fresh), author_id=e.by,
                                   subject_id=e.asker_id if e.asker_id != e.by else "",  # the question is theirs
                                   source=e.source, message_id=e.message_id, filename="",
                                   examples=tuple(x.to_record() for x in fresh))]


# -- datasets ------------------------------------------------------------------------------------
def decide_dataset(state: Learning, c: InvokeCommand, action: str, name: str,
                   tokens: TokenStats | None = None) -> list[Event]:
    """create, select, use, list, show, delete (export and archive need files: see ``decide_export``)."""
    channel = channel_of(c)
    if action == "list":
        selected, teaching = state.selected_in(channel, c.scope), state.teaching_in(channel, c.scope)
        listed = state.in_scope(c.scope) + ([teaching] if teaching is not None and teaching.scope != c.scope else [])
        if not listed:
            return [answered(c, "No datasets yet: `train PROMPT => ANSWER` starts `default`, or "
                                "`dataset create NAME`.")]
        lines = []
        for d in sorted(listed, key=lambda d: d.name.lower()):
            marks = [m for m, on in (("selected here", d is selected), ("teaches here", d is teaching)) if on]
            lines.append(f"- {d.summary()}" + (f" ({', '.join(marks)})" if marks else ""))
        return [answered(c, "Datasets:\n" + "\n".join(lines))]
    if action == "create":
        if not NAME.match(name):
            return [rejected(c, "bad_name", "A dataset name is 1 to 40 letters, digits, `_`, `-` or `.`, e.g. "
                                            "`dataset create support`.")]
        if state.named(name, c.scope) is not None:
            return [rejected(c, "dataset_exists", f"There is already a dataset `{name}`; `dataset select {name}` "
                                                  "to add to it.")]
        dataset_id = dataset_id_for(c, name)
        return [DatasetCreated(dataset_id=dataset_id, name=name, by=c.author_id, scope=c.scope),
                DatasetSelected(dataset_id=dataset_id, name=name, channel=channel, by=c.author_id),
                answered(c, f"Created dataset `{name}` and selected it here: `train` adds to it.")]
    target = state.named(name, c.scope) if name else state.selected_in(channel, c.scope)
    if target is None and action == "use" and name and c.is_operator and c.scope != OPERATORS:
        shared = state.named(name, OPERATORS)  # the one way a dataset crosses scopes: an operator lends it
        if shared is not None:
            return [DatasetUsed(dataset_id=shared.id, name=shared.name, channel=channel, by=c.author_id, shared=True),
                    answered(c, f"The operators' dataset `{shared.name}` now teaches my answers in this channel "
                                "(lent by an operator; this server's admins cannot change it).")]
    if target is None:
        return [unknown_dataset(c, name)]
    if action == "select":
        return [DatasetSelected(dataset_id=target.id, name=target.name, channel=channel, by=c.author_id),
                answered(c, f"Selected `{target.name}` here: `train` adds to it.")]
    if action == "use":
        return [DatasetUsed(dataset_id=target.id, name=target.name, channel=channel, by=c.author_id),
                answered(c, f"`{target.name}` now teaches my answers in this channel.")]
    if action == "show":
        return [answered(c, f"Dataset {target.summary()}" + (f"; {tokens.text()}." if tokens else "."))]
    if action == "delete":
        return [DatasetDeleted(dataset_id=target.id, name=target.name, by=c.author_id),
                answered(c, f"Deleted dataset `{target.name}`: its examples no longer teach or export (the log "
                            "keeps the record of them).")]
    return [rejected(c, "unknown_action", "Use `dataset create|select|use|list|show|delete|export|archive NAME`.")]


def unknown_dataset(c: InvokeCommand, name: str) -> CommandRejected:
    if not name:
        return rejected(c, "no_dataset", "There is no dataset yet: `train PROMPT => ANSWER` starts `default`.")
    return rejected(c, "unknown_dataset", f"There is no dataset `{name[:40]}`; `dataset list` shows them.")


@dataclass(frozen=True)
class Written:
    """A file the shell wrote under the data dir."""

    file: str  # relative to the data dir
    sha256: str
    records: int


def decide_export(state: Learning, c: InvokeCommand, target: Dataset, form: str, written: Written) -> list[Event]:
    return [DatasetExported(dataset_id=target.id, name=target.name, format=form, file=written.file,
                            sha256=written.sha256, records=written.records, by=c.author_id),
            answered(c, f"Exported {written.records} {form.upper()} record(s) of `{target.name}` to "
                        f"`{written.file}` (sha256 {written.sha256[:12]}…).", attachment=written.file)]


def decide_archive(state: Learning, c: InvokeCommand, target: Dataset, archive: Written,
                   files: tuple[Written, ...], positions: tuple[int, int]) -> list[Event]:
    return [DatasetArchived(dataset_id=target.id, name=target.name, file=archive.file, sha256=archive.sha256,
                            files=tuple({"name": f.file, "sha256": f.sha256, "records": f.records} for f in files),
                            first_position=positions[0], last_position=positions[1], by=c.author_id),
            answered(c, f"Archived `{target.name}` to `{archive.file}`: "
                        + ", ".join(f"{f.records} record(s) in `{f.file.rsplit('/', 1)[-1]}`" for f in files)
                        + f", with a manifest (log positions {positions[0]}–{positions[1]}).",
                     attachment=archive.file)]


def decide_getfile(c: InvokeCommand, requested: str, found: str, why: str) -> list[Event]:
    if found:
        return [answered(c, f"`{found}`", attachment=found)]
    return [FileRefused(requested=requested[:200], reason=why, by=c.author_id, source=c.source),
            rejected(c, "file_" + why, {"missing": f"There is no `{requested[:100]}` in exports/ or archives/; "
                                                   "`dataset export NAME` writes one.",
                                        "outside": "I only send files from exports/ and archives/ in my data dir: "
                                                   "give a file name there, like `getfile support-sft.jsonl`."}
                     .get(why, "I cannot send that file."))]


# -- evaluation ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Scores:
    questions: int
    exact_match: float
    token_f1: float
    exact_match_few_shot: float
    token_f1_few_shot: float
    failures: int


def decide_evaluation(c: InvokeCommand, target: Dataset, results: tuple[tuple[str, Scores], ...],
                      holdout: float) -> list[Event]:
    """``results``: (model, scores) for the model in use and, when it is a tuned one, its base on the same
    held-out questions: one event each, one reply."""
    if not results or results[0][1].questions == 0:
        return [rejected(c, "nothing_to_test", f"`{target.name}` has no examples to hold out: add some with `train`.")]
    events: list[Event] = [
        EvaluationCompleted(dataset_id=target.id, name=target.name, model=model, questions=scores.questions,
                            holdout=holdout, exact_match=scores.exact_match, token_f1=scores.token_f1,
                            exact_match_few_shot=scores.exact_match_few_shot, token_f1_few_shot=scores.token_f1_few_shot,
                            failures=scores.failures, by=c.author_id, scope=c.scope) for model, scores in results]
    lines = []
    for n, (model, scores) in enumerate(results):
        lines += [(f"Tested `{model}` on {scores.questions} held-out question(s) of `{target.name}`:" if not n else
                   f"Its base model `{model}`, on the same questions (never trained on):"),
                  f"- without examples: exact match {scores.exact_match:.0%}, token F1 {scores.token_f1:.2f}",
                  f"- with few-shot examples: exact match {scores.exact_match_few_shot:.0%}, token F1 "
                  f"{scores.token_f1_few_shot:.2f}"]
        if scores.failures:
            lines.append(f"({scores.failures} question(s) got no answer from the model)")
    return [*events, answered(c, "\n".join(lines))]
