"""Fine-tuning the local model on this machine (issue 26): what a job costs, and what the bot's answers pay while
it trains.

    python bench/finetune_local.py [--examples 100] [--epochs 3] [--threads 1] [--methods sft,dpo]

- ``sft`` / ``dpo``: a job through Parley's local backend (``adapters.local_fine_tuning``: a worker process,
  LoRA r=16 on SmolLM2-135M loaded from its GGUF, batch 4) on ``--examples`` chats (or preference pairs) for
  ``--epochs``: seconds a step, the job's minutes end to end (loading the model, training, writing the GGUF
  adapter), and the worker's peak memory.
- ``bare_trl_s_per_step``: the baseline, in the same run: TRL's SFTTrainer called directly in this process on the
  same model, data, LoRA and threads, for a few steps (no worker, no progress file, no GGUF).
- ``answer_latency_s``: the local model answering a short question in this process, as the bot does, every 2 s
  while the SFT job trains beside it, against the same questions with nothing training (p50 and p95 of a whole
  answer). The trainer runs at idle priority and pauses while an answer is written (``adapters/cpu_share.py``),
  so its seconds a step are measured under that load too.
- ``--back-to-back SHARE``: instead, answers asked with no pause at all while a small SFT job (``--examples`` for
  ``--epochs``) trains with ``PARLEY_TRAINING_MIN_SHARE`` = SHARE: whether the job still ends, in how many
  minutes, and what the answers pay for its share (against idle answers measured in the same run).
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import percentile, report

from adapters.config import Settings, with_llm_backend
from adapters.llm import LLMLimits
from adapters.local_fine_tuning import LocalTrainingSettings, local_backend
from adapters.local_llm import LocalChat, plan

QUESTION = [{"role": "user", "content": "Name a colour of the rainbow."}]
ASKED_EVERY_S = 2.0  # while the SFT job trains: a question every 2 s after the last answer (a busy chat)


def sft_lines(n: int) -> bytes:
    rows = [{"messages": [{"role": "user", "content": f"What is {i} plus {i + 1}? Answer briefly."},
                          {"role": "assistant", "content": f"Ahoy matey! It be {2 * i + 1}."}]} for i in range(n)]
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def dpo_lines(n: int) -> bytes:
    rows = [{"input": {"messages": [{"role": "user", "content": f"What is {i} plus {i + 1}?"}]},
             "preferred_output": [{"role": "assistant", "content": f"Ahoy matey! It be {2 * i + 1}."}],
             "non_preferred_output": [{"role": "assistant", "content": "I do not know."}]} for i in range(n)]
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def run_job(backend, method: str, data: bytes) -> dict:  # noqa: ANN001
    began = time.monotonic()
    job = backend.create("local", backend.upload(f"bench-{method}.jsonl", data), method, f"bench-{method}")
    first = last = None
    while True:
        now = backend.retrieve(job.job_id)
        if now.step == 1 and first is None:
            first = time.monotonic()
        if now.step:
            last, steps, step = time.monotonic(), now.steps, now.step
        if now.status in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(0.5)
    assert now.status == "succeeded", now
    per_step = (last - first) / (step - 1) if first and last and step > 1 else float("nan")
    return {"steps": steps, "s_per_step": round(per_step, 2), "job_min": round((time.monotonic() - began) / 60, 2)}


def bare_trl(settings: Settings, threads: int, steps: int) -> float:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    from adapters.local_training import _base, _records
    from adapters.lora_gguf import TARGET_MODULES

    torch.set_num_threads(threads)
    model, tokenizer = _base(plan(settings).model.path)
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "train.jsonl").write_bytes(sft_lines(4 * steps))
        data = Dataset.from_list(_records(Path(folder) / "train.jsonl", "sft"))
        stamps: list[float] = []
        from transformers import TrainerCallback

        class Stamp(TrainerCallback):
            def on_step_end(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
                stamps.append(time.monotonic())

        trainer = SFTTrainer(model=model, args=SFTConfig(output_dir=folder, max_steps=steps, per_device_train_batch_size=4,
                                                         learning_rate=1e-3, report_to=[], save_strategy="no", logging_strategy="no",
                                                         use_cpu=True, disable_tqdm=True, max_length=512),
                             train_dataset=data, processing_class=tokenizer,
                             peft_config=LoraConfig(r=16, lora_alpha=32, target_modules=TARGET_MODULES,
                                                    task_type="CAUSAL_LM"))
        trainer.add_callback(Stamp())
        trainer.train()
    return (stamps[-1] - stamps[0]) / (len(stamps) - 1)


def latencies(chat: LocalChat, until: threading.Event | None, count: int, gap: float = 0.0) -> list[float]:
    """Answers asked one after the other (``gap`` seconds apart: a busy chat), until ``until`` or ``count``."""
    taken = []
    while (until is None and len(taken) < count) or (until is not None and not until.is_set()):
        began = time.perf_counter()
        chat.complete(QUESTION, "local")
        taken.append(time.perf_counter() - began)
        if until is not None:
            until.wait(gap)
    return taken


def back_to_back(args: argparse.Namespace) -> None:
    from adapters.cpu_share import YIELDING

    with tempfile.TemporaryDirectory() as folder:
        settings = with_llm_backend(Settings(data_dir=Path(folder), local_temperature=0.0, local_seed=42,
                                             training_threads=args.threads, training_epochs=args.epochs,
                                             training_min_share=args.back_to_back))
        backend = local_backend(settings)
        chat = LocalChat(plan(settings), LLMLimits(max_tokens=24))
        idle = latencies(chat, None, 20)
        training, busy = threading.Event(), []
        asker = threading.Thread(target=lambda: busy.extend(latencies(chat, training, 0, 0.0)), daemon=True)
        asker.start()
        job = run_job(backend, "sft", sft_lines(args.examples))
        training.set()
        asker.join()
        chat.close()
    report("finetune_local_back_to_back", {
        "model": plan(settings).model.path.name, "min_share": YIELDING.min_share, "period_s": YIELDING.period_s,
        "examples": args.examples, "epochs": args.epochs, "sft": job,
        "answer_latency_s": {"idle_p50": round(statistics.median(idle), 3), "idle_p95": round(percentile(idle, 95), 3),
                             "training_p50": round(statistics.median(busy), 3),
                             "training_p95": round(percentile(busy, 95), 3), "answers_while_training": len(busy)}})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=100)
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=1, help="the training worker's threads (Parley's default: 1)")
    parser.add_argument("--methods", default="sft,dpo")
    parser.add_argument("--back-to-back", type=float, metavar="SHARE", help="answers without a pause while a job "
                        "trains with this minimum share (e.g. 0.05)")
    args = parser.parse_args()
    if args.back_to_back is not None:
        return back_to_back(args)
    with tempfile.TemporaryDirectory() as folder:
        settings = with_llm_backend(Settings(data_dir=Path(folder), local_temperature=0.0, local_seed=42,
                                             training_threads=args.threads, training_epochs=args.epochs))
        backend = local_backend(settings)
        backend.settings = LocalTrainingSettings(args.epochs, 1e-3, 16, threads=args.threads)
        chat = LocalChat(plan(settings), LLMLimits(max_tokens=24))
        idle = latencies(chat, None, 20)
        results: dict = {}
        for method in args.methods.split(","):
            data = sft_lines(args.examples) if method == "sft" else dpo_lines(args.examples)
            training = threading.Event()
            busy: list[float] = []
            asker = threading.Thread(target=lambda: busy.extend(latencies(chat, training, 0, ASKED_EVERY_S)),
                                     daemon=True)
            if method == "sft":
                asker.start()
            results[method] = run_job(backend, method, data)
            training.set()
            if method == "sft":
                asker.join()
                results["answer_latency_s"] = {
                    "idle_p50": round(statistics.median(idle), 3), "idle_p95": round(percentile(idle, 95), 3),
                    "training_p50": round(statistics.median(busy), 3), "training_p95": round(percentile(busy, 95), 3),
                    "answers_while_training": len(busy)}
        chat.close()
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the workers, reaped: KiB -> MiB
        bare = bare_trl(settings, args.threads, 6)
    sft = results.get("sft", {})
    report("finetune_local", {"model": plan(settings).model.path.name, "examples": args.examples, "epochs": args.epochs,
                              "threads": args.threads, **results, "worker_peak_rss_mb": round(peak),
                              "bare_trl_s_per_step": round(bare, 2),
                              "parley_over_bare_s_per_step": round(sft["s_per_step"] / bare, 2) if sft else None})


if __name__ == "__main__":
    sys.exit(main())
