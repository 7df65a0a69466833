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
    holdout: float = 0.0  # the share of the dataset kept out of training (``actors.learning.evaluation.split``)
    step: int = 0  # progress as the backend last reported it (0 of 0: not reported)
    steps: int = 0
    loss: float | None = None
    eta_s: float | None = None

    def progress(self) -> str:
        """``step 12/60, loss 0.532, about 2 min left``, or "" before any step."""
        if not self.steps:
            return ""
        left = "" if self.eta_s is None else f", about {max(1, round(self.eta_s / 60))} min left" \
            if self.eta_s >= 90 else f", about {max(1, round(self.eta_s))} s left"
        loss = "" if self.loss is None else f", loss {self.loss:.3f}"
        return f"step {self.step}/{self.steps}{loss}{left}"
