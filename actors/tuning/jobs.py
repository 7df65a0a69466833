"""A fine-tuning job as the ``learning`` stream's state holds it (``actors.learning.decider.Learning.jobs``);
``actors.tuning.decider.evolve_jobs`` says how its events change it."""
from __future__ import annotations

from dataclasses import dataclass

from events.scopes import OPERATORS

TERMINAL = ("succeeded", "failed", "cancelled")


@dataclass(frozen=True)
class Job:
    job_id: str
    status: str
    base_model: str
    method: str
    dataset_id: str
    channel: str  # "" the whole scope, else where the tuned model answers
    where: tuple[str, str, str, str]  # conversation_id, message_id, channel_id, source of the start command
    fine_tuned_model: str = ""
    scope: str = OPERATORS
