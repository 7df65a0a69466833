"""The training worker: one fine-tuning job on this machine, in a process of its own (never in the bot's event loop
or an actor others wait on), with a bounded number of threads.

    python -m adapters.local_training JOB_DIR

``JOB_DIR/job.json`` says what to train (``adapters.local_fine_tuning`` writes it): the base model's GGUF file, the
training file (SFT chats or DPO pairs, as ``actors.tuning.records`` writes them), the method and the settings.
The worker loads the base model with transformers (its GGUF loader dequantizes it), trains a LoRA adapter with
TRL and PEFT, writes it as a llama.cpp LoRA adapter (``adapters.lora_gguf``), content-addressed under the data
dir's ``models/``, and reports as it goes in ``JOB_DIR/status.json`` (status, step, steps, loss, seconds left),
which the bot polls. SIGTERM cancels: the job stops at the next step and nothing is kept.
"""
from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

log = logging.getLogger("parley.training")


class Status:
    """``status.json``, replaced whole on each write (a reader never sees half of one)."""

    def __init__(self, job_dir: Path):
        self.path = job_dir / "status.json"
        self.values: dict = {"status": "queued", "step": 0, "steps": 0, "loss": None, "eta_s": None}
        try:  # a worker started again after one that died: what that one wrote (and how often it was resumed)
            self.values.update(json.loads(self.path.read_text()))
        except (FileNotFoundError, ValueError):
            pass

    def write(self, **values: object) -> None:
        self.values.update(values, updated=time.time())
        part = self.path.with_suffix(".part")
        part.write_text(json.dumps(self.values))
        os.replace(part, self.path)


def _records(path: Path, method: str) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if method == "sft":
        return [{"messages": row["messages"]} for row in rows]
    return [{"prompt": row["input"]["messages"], "chosen": row["preferred_output"],  # TRL's conversational pairs
             "rejected": row["non_preferred_output"]} for row in rows]


def _base(path: Path):  # noqa: ANN202  (a transformers model and tokenizer)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    # transformers refuses to train a model it loaded from GGUF (it counts it as quantized, though the loader
    # dequantized it): it is plain float32 now
    model.hf_quantizer, model.is_quantized = None, False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    return model, tokenizer


def _progress(status: Status, cancelled: threading.Event, checkpoint_s: float):  # noqa: ANN202  (a TrainerCallback)
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        def __init__(self) -> None:
            self.began = self.saved = time.monotonic()
            self.first = None  # the step it began (or resumed) at: the time left counts the steps since

        def on_train_begin(self, args, state, control, **kwargs):  # noqa: ANN001, ANN201
            self.first = state.global_step

        def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001, ANN201
            if logs and "loss" in logs:
                status.write(loss=round(float(logs["loss"]), 4))

        def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001, ANN201
            now = time.monotonic()
            done = state.global_step - (self.first or 0)
            left = (now - self.began) / done * (state.max_steps - state.global_step) if done else None
            status.write(status="running", note="training", step=state.global_step, steps=state.max_steps,
                         eta_s=round(left, 1) if left is not None else None)
            if cancelled.is_set():
                control.should_training_stop = True
            elif now - self.saved >= checkpoint_s and state.global_step < state.max_steps:
                # a checkpoint (the adapter, the optimizer, where the data stood): a worker killed or a machine
                # restarted goes on from here (``adapters.local_fine_tuning`` starts it again)
                control.should_save, self.saved = True, now
            return control

    return Progress()


def train(job: dict, job_dir: Path, status: Status, cancelled: threading.Event,
          training: threading.Event | None = None) -> Path | None:
    """Train, then compare with the base model on what was held out; the PEFT adapter's folder, or None when
    cancelled."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig

    from adapters.lora_gguf import TARGET_MODULES

    torch.set_num_threads(job["threads"])
    torch.manual_seed(job.get("seed", 42))
    status.write(status="running", note="loading the base model")
    model, tokenizer = _base(Path(job["base_path"]))
    if cancelled.is_set():
        return None
    data = Dataset.from_list(_records(job_dir / "train.jsonl", job["method"]))
    lora = LoraConfig(r=job["rank"], lora_alpha=2 * job["rank"], lora_dropout=0.0, target_modules=TARGET_MODULES,
                      task_type="CAUSAL_LM")
    common = dict(output_dir=str(job_dir / "trainer"), num_train_epochs=job["epochs"],
                  per_device_train_batch_size=job["batch"], learning_rate=job["learning_rate"], logging_steps=1,
                  save_strategy="no", save_total_limit=1, report_to=[], use_cpu=True, dataloader_num_workers=0,
                  seed=job.get("seed", 42), disable_tqdm=True)  # checkpoints: when the callback asks, the last kept
    if job["method"] == "dpo":
        from trl import DPOConfig, DPOTrainer

        trainer = DPOTrainer(model=model, args=DPOConfig(**common, max_length=job["max_length"]), train_dataset=data,
                             processing_class=tokenizer, peft_config=lora)
    else:
        from trl import SFTConfig, SFTTrainer

        trainer = SFTTrainer(model=model, args=SFTConfig(**common, max_length=job["max_length"]), train_dataset=data,
                             processing_class=tokenizer, peft_config=lora)
    trainer.add_callback(_progress(status, cancelled, job.get("checkpoint_s", 60.0)))
    if training is not None:
        training.set()
    checkpoint = last_checkpoint(job_dir)
    if checkpoint is not None:
        note = f"resumed from its checkpoint at step {checkpoint.name.rsplit('-', 1)[1]}"
        print(note, file=sys.stderr, flush=True)  # in the job's worker.log
        status.write(note=note)
    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint is not None else None)
    if cancelled.is_set():
        return None
    folder = job_dir / "adapter"
    trainer.model.save_pretrained(str(folder))
    status.write(note="comparing with the base model on the held-out examples")
    status.write(evaluation=evaluate(trainer.model, tokenizer, job, job_dir))
    return folder


def last_checkpoint(job_dir: Path) -> Path | None:
    """The job's latest whole checkpoint (a killed worker may leave one half-written: its trainer state is written
    last), or None."""
    found = [p for p in (job_dir / "trainer").glob("checkpoint-*") if (p / "trainer_state.json").is_file()
             and p.name.rsplit("-", 1)[1].isdigit()]
    return max(found, key=lambda p: int(p.name.rsplit("-", 1)[1]), default=None)


def _first_word(text: str) -> str:
    words = "".join(ch if ch.isalnum() or ch.isspace() else " " for ch in text.lower()).split()
    return words[0] if words else ""


def evaluate(model, tokenizer, job: dict, job_dir: Path) -> dict:  # noqa: ANN001
    """The tuned model against its base (the adapter switched off) on the examples kept out of training. SFT: the
    share of answers (greedy, a few words) that open as the example's answer does (its first word): what a
    dataset teaching a way of answering should change on questions it never saw. DPO: the mean margin of the
    preferred answer's log-probability over the other's."""
    import torch

    path = job_dir / "held_out.jsonl"
    records = _records(path, job["method"]) if path.is_file() and path.stat().st_size else []
    if not records:
        return {}
    model.eval()

    def opens_as_taught() -> float:
        hits = 0
        for row in records:
            asked = tokenizer.apply_chat_template(row["messages"][:-1], add_generation_prompt=True,
                                                  return_tensors="pt", return_dict=True)
            with torch.no_grad():
                out = model.generate(**asked, max_new_tokens=8, do_sample=False, pad_token_id=tokenizer.eos_token_id)
            answer = tokenizer.decode(out[0][asked["input_ids"].shape[1]:], skip_special_tokens=True)
            hits += _first_word(answer) == _first_word(row["messages"][-1]["content"])
        return hits / len(records)

    def logp(prompt: list[dict], reply: list[dict]) -> float:
        asked = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, return_tensors="pt",
                                              return_dict=True)["input_ids"]
        whole = tokenizer.apply_chat_template(prompt + reply, return_tensors="pt", return_dict=True)["input_ids"]
        with torch.no_grad():
            logits = model(whole).logits[0, :-1].log_softmax(-1)
        targets = whole[0, 1:]
        return float(logits[torch.arange(len(targets)), targets][asked.shape[1] - 1:].sum())

    def margin() -> float:
        return sum(logp(r["prompt"], r["chosen"]) - logp(r["prompt"], r["rejected"]) for r in records) / len(records)

    score = opens_as_taught if job["method"] == "sft" else margin
    tuned = score()
    with model.disable_adapter():
        base = score()
    return {"held_out": len(records), "score": "opens_as_taught" if job["method"] == "sft" else "logp_margin",
            "base_score": round(base, 4), "tuned_score": round(tuned, 4)}


def publish(folder: Path, job: dict, job_dir: Path) -> tuple[str, str]:
    """The adapter as a GGUF LoRA in ``models/`` named by its SHA-256: (its hash, the tuned model's name)."""
    from adapters.lora_gguf import write

    written = job_dir / "adapter.gguf"
    write(folder, written, job["heads"], job["kv_heads"])
    digest = hashlib.sha256()
    with written.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    models = Path(job["models_dir"])
    models.mkdir(parents=True, exist_ok=True)
    os.replace(written, models / f"{digest.hexdigest()}.gguf")
    return digest.hexdigest(), f"{job['suffix']}-lora-{digest.hexdigest()[:12]}"


def _clear(job_dir: Path) -> None:
    shutil.rmtree(job_dir / "trainer", ignore_errors=True)
    shutil.rmtree(job_dir / "adapter", ignore_errors=True)


def disk_full(e: BaseException, job_dir: Path) -> bool:
    """Whether ``e`` came of a full disk: torch and safetensors wrap ENOSPC in errors of their own (RuntimeError
    "file write failed", SafetensorError "StorageFull"), so the words are read too, and the room left is asked."""
    while e is not None:
        if isinstance(e, OSError) and e.errno == errno.ENOSPC or \
                any(words in str(e) for words in ("No space left", "StorageFull")):
            return True
        e = e.__cause__ or e.__context__  # type: ignore[assignment]
    try:
        return shutil.disk_usage(job_dir).free < 1 << 20
    except OSError:
        return False


def main(argv: list[str]) -> int:
    job_dir = Path(argv[0])
    job = json.loads((job_dir / "job.json").read_text())
    # The lowest CPU priority: the bot's own work (answers, speech) runs first, training takes what is left.
    # At the same priority, the local model's answers took 17 s instead of 0.24 s while a job trained beside it
    # (llama.cpp's threads wait on each other at every step, and one of them was always behind the trainer).
    # Off (PARLEY_TRAINING_IDLE) where other programs keep every core busy, a test suite on two workers: at idle
    # priority a job there waited minutes for a step.
    if job.get("idle", True):
        os.nice(job.get("nice", 19))
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    status = Status(job_dir)
    cancelled, training = threading.Event(), threading.Event()

    def cancel(*_: object) -> None:
        if not training.is_set():  # still loading (seconds no step interrupts): nothing to keep, stop now
            status.write(status="cancelled", eta_s=None)
            os._exit(0)
        cancelled.set()  # stopped at the end of the step under way
    signal.signal(signal.SIGTERM, cancel)
    signal.signal(signal.SIGINT, cancel)  # Ctrl-C, where someone runs it in a terminal of their own
    for noisy in ("transformers", "trl", "peft", "datasets"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    try:
        folder = train(job, job_dir, status, cancelled, training)
        if folder is None:
            status.write(status="cancelled", eta_s=None)
            return 0
        digest, name = publish(folder, job, job_dir)
        status.write(status="succeeded", fine_tuned_model=name, adapter_hash=digest, eta_s=0)
    except Exception as e:  # noqa: BLE001  (a failed job is recorded with its reason; the bot never sees a traceback)
        _clear(job_dir)  # first: on a full disk, the half-written checkpoint holds the room the status needs
        if disk_full(e, job_dir):
            status.write(status="failed", eta_s=None, error=f"the disk filled up at step {status.values.get('step', 0)}"
                         " (nothing was kept): free space under the data dir and start it again")
        elif isinstance(e, OSError):
            status.write(status="failed", eta_s=None, error=f"could not write the adapter ({e.strerror or e})")
        else:
            log.exception("training failed")
            status.write(status="failed", eta_s=None, error=f"training failed: {type(e).__name__}: {str(e)[:300]}")
        return 1
    finally:
        _clear(job_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
