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

    def bar(self, width: int = 20) -> str:
        """The job in one line for a progress display: ``local-ftjob-1: [########............] 40% step 12/30,
        loss 0.532, about 40 s left``; at the end, its status instead of the time left."""
        done = 1.0 if self.status == "succeeded" else self.step / self.steps if self.steps else 0.0
        filled = int(width * done)
        share = f" {int(100 * done)}%" if self.steps else ""  # a service that reports no steps: no share
        detail = self.progress() if self.status not in TERMINAL else \
            f"{self.status}" + (f", loss {self.loss:.3f}" if self.loss is not None else "")
        return f"`{self.job_id}`: [{'#' * filled}{'.' * (width - filled)}]{share} " + \
            (detail or ("waiting to start" if self.status != "running" else "loading the base model"))
