"""OpenAI's fine-tuning API through the ``openai`` client, at any endpoint that serves it
(``PARLEY_TRAINING_BASE_URL``; by default the chat endpoint's)."""
from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import openai

from actors.ports import FineTuning, TrainingJob, TrainingRefused
from adapters.config import without_credentials

if TYPE_CHECKING:
    from adapters.config import Settings

log = logging.getLogger("parley.fine_tuning")
TAG = "parley_command"  # the job's metadata key: which command started it (source:message id)


LOCAL = "local"  # the base model that means "the local model, trained on this machine"


def on_first_use(settings: Settings) -> Callable[[str], FineTuning]:
    """The fine-tuning backend for a base model, made when first needed: this machine for ``local`` (and for the
    local model's own name when it answers), else the service at PARLEY_TRAINING_BASE_URL / _API_KEY (else the
    chat endpoint's)."""
    @functools.cache
    def service() -> OpenAIFineTuning:
        return OpenAIFineTuning(settings.training_base_url or settings.openai_base_url,
                                settings.training_api_key or settings.openai_api_key)

    @functools.cache
    def here() -> FineTuning:
        from adapters.local_fine_tuning import local_backend

        return local_backend(settings)

    @functools.cache
    def local_name() -> str:  # the local model's own name (its file's): jobs record it as their base
        from adapters.local_llm import shipped_model

        path = settings.local_model or shipped_model()
        return path.stem if path is not None else LOCAL

    def backend(base_model: str) -> FineTuning:
        local = base_model in (LOCAL, local_name()) or \
            settings.llm_backend == "local" and base_model == settings.chat_model
        return here() if local else service()
    return backend


class OpenAIFineTuning:
    default_holdout = 0.0  # a service's job trains on the whole dataset unless `--holdout` says otherwise
    def __init__(self, base_url: str | None, api_key: str | None, timeout: float = 120.0):
        self.endpoint = without_credentials(base_url) if base_url else "https://api.openai.com/v1"  # for logs
        # Some local servers need no key; the client insists on one.
        self.client = openai.OpenAI(base_url=base_url, api_key=api_key or "none", timeout=timeout, max_retries=2)

    def upload(self, filename: str, data: bytes) -> str:
        return self._call(lambda: self.client.files.create(file=(filename, data), purpose="fine-tune")).id

    def create(self, base_model: str, file_id: str, method: str, suffix: str, tag: str = "",
               held_out: bytes = b"") -> TrainingJob:  # a service trains on what it was given; `test` evaluates
        job = self._call(lambda: self.client.fine_tuning.jobs.create(
            model=base_model, training_file=file_id, suffix=suffix[:18] or None,
            method={"type": method, method: {"hyperparameters": {}}},  # type: ignore[arg-type, misc]
            metadata={TAG: tag[:512]} if tag else openai.NOT_GIVEN))
        return _job(job)

    def find(self, tag: str) -> TrainingJob | None:
        """The newest page of jobs is enough: a crash between starting a job and recording it is seconds old.
        A service that cannot list jobs finds none (the start goes on as before)."""
        try:
            page = self._call(lambda: self.client.fine_tuning.jobs.list(limit=100))
        except TrainingRefused as e:
            log.info("cannot list fine-tuning jobs at %s (%s): not looking for one already started", self.endpoint, e)
            return None
        for job in page.data:
            if (getattr(job, "metadata", None) or {}).get(TAG) == tag:
                return _job(job)
        return None

    def retrieve(self, job_id: str) -> TrainingJob:
        return _job(self._call(lambda: self.client.fine_tuning.jobs.retrieve(job_id)))

    def cancel(self, job_id: str) -> TrainingJob:
        return _job(self._call(lambda: self.client.fine_tuning.jobs.cancel(job_id)))

    def close(self) -> None:
        self.client.close()

    @staticmethod
    def _call(request):  # noqa: ANN001, ANN205
        try:
            return request()
        except (openai.PermissionDeniedError, openai.NotFoundError) as e:
            raise TrainingRefused("refused", _message(e), e.status_code) from e
        except openai.AuthenticationError as e:
            raise TrainingRefused("unauthorized", _message(e), e.status_code) from e
        except openai.APIStatusError as e:
            raise TrainingRefused("rejected" if e.status_code < 500 else "unreachable", _message(e),
                                  e.status_code) from e
        except openai.APIConnectionError as e:
            raise TrainingRefused("unreachable", str(e)) from e


def _message(e: openai.APIStatusError) -> str:
    body = e.body if isinstance(e.body, dict) else {}
    return str(body.get("message") or e.message)[:300]


def _job(job: object) -> TrainingJob:
    error = getattr(job, "error", None)
    return TrainingJob(job_id=job.id, status=job.status, fine_tuned_model=getattr(job, "fine_tuned_model", None) or "",  # type: ignore[attr-defined]
                       error=(getattr(error, "message", None) or "") if error else "",
                       training_file=getattr(job, "training_file", None) or "")
