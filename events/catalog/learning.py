"""Datasets, examples, evaluation, fine-tuning jobs and model choices: all in the ``learning`` stream, owned by
the Trainer."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from events.catalog.messages import AboutMessage
from events.codec import upcaster
from events.model import Event
from events.scopes import OPERATORS, read_before_scopes


@dataclass(frozen=True, kw_only=True)
class DatasetCreated(Event):
    """v2 added ``scope`` (``events.scopes``): whose dataset it is, for good."""

    type_name = "DatasetCreated"
    version = 2
    dataset_id: str
    name: str
    by: str
    scope: str = OPERATORS


@dataclass(frozen=True, kw_only=True)
class DatasetDeleted(Event):
    """Its examples no longer teach nor export; the events that added them stay in the log."""

    type_name = "DatasetDeleted"
    dataset_id: str
    name: str
    by: str


@dataclass(frozen=True, kw_only=True)
class DatasetSelected(Event):
    """``!train`` in ``channel`` (``source:channel_id``) adds to this dataset from now on."""

    type_name = "DatasetSelected"
    dataset_id: str
    name: str
    channel: str
    by: str


@dataclass(frozen=True, kw_only=True)
class DatasetUsed(Event):
    """This dataset's examples teach the answers in ``channel`` (few-shot), instead of the selected one.
    v2 added ``shared``: an operator lent the operators' dataset to this channel (the one way it crosses scopes)."""

    type_name = "DatasetUsed"
    version = 2
    dataset_id: str
    name: str
    channel: str
    by: str
    shared: bool = False


@dataclass(frozen=True, kw_only=True)
class ExamplesAdded(Event):
    """Examples from one ``!train`` or one attached file, all or none. Each example is
    ``{"prompt", "answer", "positive"}``; its provenance is this event (its position), ``author_id``,
    ``source`` and ``message_id``. ``duplicates``: examples left out because the dataset had them.
    v2 added ``subject_id``: whose question the examples hold when it is not the author's (a correction's
    pair holds the asker's question): forgetting either of them makes the examples unreadable.
    v3 keeps each example whole: ``turns`` (the chat before its answer as an imported file had it, its own
    system message included; empty for a bare prompt), ``answer_extra`` (other fields of the answer's
    message) and ``pair`` (ties the two answers of one preference line)."""

    type_name = "ExamplesAdded"
    version = 3
    dataset_id: str
    examples: tuple[dict, ...]
    duplicates: int
    author_id: str
    source: str
    message_id: str
    filename: str = ""
    subject_id: str = ""


@dataclass(frozen=True, kw_only=True)
class ExamplesRefused(Event):
    """An import (or ``!train``) that added nothing, and why: every bad record is named."""

    type_name = "ExamplesRefused"
    dataset_id: str
    reason: str
    problems: tuple[str, ...]
    author_id: str
    source: str
    message_id: str
    filename: str = ""


@dataclass(frozen=True, kw_only=True)
class DatasetExported(Event):
    type_name = "DatasetExported"  # its ``file`` is under exports/<scope folder>/ since scopes
    dataset_id: str
    name: str
    format: str  # "sft" | "dpo"
    file: str  # relative to the data dir
    sha256: str
    records: int
    by: str


@dataclass(frozen=True, kw_only=True)
class DatasetArchived(Event):
    type_name = "DatasetArchived"
    dataset_id: str
    name: str
    file: str
    sha256: str
    files: tuple[dict, ...]  # {"name", "sha256", "records"} per export inside
    first_position: int
    last_position: int
    by: str


@dataclass(frozen=True, kw_only=True)
class FileRefused(Event):
    """``!getfile`` asked for something outside ``exports/`` and ``archives/`` (or missing)."""

    type_name = "FileRefused"
    requested: str
    reason: str
    by: str
    source: str


@dataclass(frozen=True, kw_only=True)
class EvaluationCompleted(Event):
    type_name = "EvaluationCompleted"
    version = 2  # v2 added ``scope``
    dataset_id: str
    name: str
    model: str
    questions: int
    holdout: float
    exact_match: float
    token_f1: float
    exact_match_few_shot: float
    token_f1_few_shot: float
    failures: int
    by: str
    scope: str = OPERATORS


@dataclass(frozen=True, kw_only=True)
class FineTuneRejected(Event):
    """A fine-tuning job was not started: the dataset breaks the provider's rules, or the provider refused."""

    type_name = "FineTuneRejected"
    dataset_id: str
    method: str
    reason: str
    problems: tuple[str, ...]
    by: str


@dataclass(frozen=True, kw_only=True)
class FineTuneStarted(AboutMessage):
    """A job was created at the training endpoint; its outcome is reported as a reply to ``message_id``."""

    type_name = "FineTuneStarted"
    version = 3  # v2: ``channel`` is what v1 called ``scope``; ``scope`` is whose job it is (``events.scopes``); v3: ``holdout``
    job_id: str
    file_id: str
    base_model: str
    method: str
    dataset_id: str
    records: int
    channel: str  # "" the whole scope, else the channel (``source:channel_id``) the tuned model answers in
    by: str
    scope: str = OPERATORS
    holdout: float = 0.0  # the share of the dataset kept out of training (``actors.learning.evaluation.split``)


@dataclass(frozen=True, kw_only=True)
class FineTuneStatusChanged(Event):
    type_name = "FineTuneStatusChanged"
    job_id: str
    status: str


@dataclass(frozen=True, kw_only=True)
class FineTuneFinished(AboutMessage):
    """The job ended (succeeded, failed or cancelled): told in the channel that started it."""

    type_name = "FineTuneFinished"
    version = 2  # v2: ``adapter_hash``
    job_id: str
    status: str
    fine_tuned_model: str
    error: str
    reply_text: str
    adapter_hash: str = ""  # a local job's LoRA adapter, content-addressed (``models/<hash>.gguf``)
    held_out: int = 0  # what the job showed on examples it never trained on (where its backend measures it):
    score: str = ""  # "opens_as_taught" or "logp_margin"
    base_score: float | None = None
    tuned_score: float | None = None


@dataclass(frozen=True, kw_only=True)
class FineTuneProgressed(Event):
    """A running job's progress, as its backend reports it (a local job does, at most every poll)."""

    type_name = "FineTuneProgressed"
    job_id: str
    step: int
    steps: int
    loss: float | None
    eta_s: float | None


@dataclass(frozen=True, kw_only=True)
class ModelActivated(Event):
    """The chat model from now on in ``scope``: all of it (``channel`` "") or one channel. A model of the
    ``operators`` scope with no channel answers everywhere a scope has chosen none. v2 added ``scope``."""

    type_name = "ModelActivated"
    version = 2
    model: str
    channel: str
    by: str
    job_id: str = ""
    scope: str = OPERATORS


# Datasets, examples, evaluations, jobs and model choices: one stream, owned by the Trainer.
LEARNING_STREAM = "learning"


DEFAULT_DATASET = "default"  # where examples go, and what teaches, until a dataset is chosen


@upcaster("ExamplesAdded", 1)
def _examples_added_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    data.setdefault("subject_id", "")  # v1 examples were all their author's words
    return data


@upcaster("ExamplesAdded", 2)
def _examples_added_v2_to_v3(data: dict[str, Any]) -> dict[str, Any]:
    # v2 examples were all one prompt and one answer (a sealed, forgotten list reads back empty)
    data["examples"] = [{**x, "turns": []} for x in data.get("examples") or ()]
    return data


# Before scopes, everything was everyone's: read as the operators' (nothing rewritten), so no server inherits
# another's data, and what operators made stays theirs.
read_before_scopes("DatasetCreated", 1)
read_before_scopes("EvaluationCompleted", 1)
read_before_scopes("ModelActivated", 1)


@upcaster("FineTuneStarted", 1)
def _finetune_started_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    data["channel"] = data.pop("scope", "")
    data["scope"] = OPERATORS
    return data


@upcaster("FineTuneFinished", 1)
def _finetune_finished_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    data.setdefault("adapter_hash", "")  # jobs at a service: the weights are the service's, and nothing held out
    data.update(held_out=0, score="", base_score=None, tuned_score=None)
    return data


@upcaster("FineTuneStarted", 2)
def _finetune_started_v2_to_v3(data: dict[str, Any]) -> dict[str, Any]:
    data.setdefault("holdout", 0.0)  # trained on the whole dataset
    return data


@upcaster("DatasetUsed", 1)
def _dataset_used_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    data.setdefault("shared", False)  # nobody lent a dataset across scopes before scopes existed
    return data
