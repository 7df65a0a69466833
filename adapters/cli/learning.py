"""``evaluate``: score a model on a dataset's held-out examples from the command line, with a progress
bar on stderr and a JSON report; the result is recorded (``EvaluationCompleted``) but nothing is posted
anywhere. ``finetune list|watch``: the fine-tuning jobs as the log records them; ``watch`` draws a job's
progress until it ends."""
from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from actors.learning import decider as training
from actors.learning.evaluation import evaluate
from actors.ports import LLMError
from actors.streams import DecidedStreams
from actors.learning.actor import DEFAULT_HOLDOUT
from actors.learning.shell import examples_of
from actors.learning.command_line import holdout_of
from actors.tuning.jobs import TERMINAL
from adapters.config import ConfigError, Settings, prepare_data_dir
from adapters.cli.progress import bar
from events import open_store
from events.catalog.learning import LEARNING_STREAM, EvaluationCompleted
from events.scopes import OPERATORS, is_scope


def evaluate_command(settings: Settings, args: argparse.Namespace) -> int:
    from adapters.llm import chat_for

    holdout = holdout_of(args.holdout) if args.holdout else None
    if args.holdout and holdout is None:
        raise ConfigError(f"--holdout must be a share between 0 and 100%, like 20%, not {args.holdout!r}")
    data_dir = prepare_data_dir(settings.data_dir)
    store = open_store(settings.event_store, data_dir, create=False)
    try:
        streams = DecidedStreams(store, lambda _: None, training.Learning(), training.evolve,
                                 lambda _: LEARNING_STREAM)
        state = streams.load(LEARNING_STREAM)
        if not is_scope(args.scope):
            raise ConfigError(f"--scope must be operators, guild:ID or person:ID, not {args.scope!r}")
        target = state.named(args.dataset or training.DEFAULT_DATASET, args.scope)
        if target is None:
            names = ", ".join(sorted(d.name for d in state.in_scope(args.scope))) or "none yet"
            print(f"parley: no dataset {args.dataset or training.DEFAULT_DATASET!r} (datasets: {names})",
                  file=sys.stderr)
            return 2
        model = args.model or settings.chat_model
        # a tuned model is compared with its base on the questions its job held out (the same split)
        job = next((j for j in state.jobs.values() if j.fine_tuned_model == model and j.dataset_id == target.id), None)
        holdout = holdout if holdout is not None else job.holdout if job is not None and job.holdout else \
            DEFAULT_HOLDOUT
        llm = chat_for(settings)

        def ask(messages: list[dict], asked: str) -> str | None:
            try:
                return llm.complete(messages, asked).text
            except LLMError as e:
                print(f"\nparley: the model gave no answer: {e}", file=sys.stderr)
                return None

        examples = examples_of(store, target.id)[0]
        scores, graded = evaluate(examples, holdout, lambda m: ask(m, model), settings.system_prompt,
                                  settings.few_shot, lambda done, total: bar(done, total, "questions"))
        base = evaluate(examples, holdout, lambda m: ask(m, job.base_model), settings.system_prompt,  # type: ignore[union-attr]
                        settings.few_shot, lambda done, total: bar(done, total, "base model"))[0] if job else None
        llm.close()
        if scores.questions == 0:
            print(f"parley: {target.name!r} has no examples to hold out", file=sys.stderr)
            return 2
        report = {"dataset": target.name, "model": model, "holdout": holdout, "few_shot": settings.few_shot,
                  "at": datetime.now(timezone.utc).isoformat(), **scores.__dict__,
                  "questions_detail": [g.__dict__ for g in graded],
                  **({"base_model": job.base_model, "base": base.__dict__} if job and base else {})}
        out = args.out or data_dir / "reports" / f"eval-{target.name}-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
        results = [(model, scores)] + ([(job.base_model, base)] if job and base else [])
        streams.execute(LEARNING_STREAM, lambda s: [EvaluationCompleted(
            dataset_id=target.id, name=target.name, model=m, questions=r.questions, holdout=holdout,
            exact_match=r.exact_match, token_f1=r.token_f1, exact_match_few_shot=r.exact_match_few_shot,
            token_f1_few_shot=r.token_f1_few_shot, failures=r.failures, by="cli", scope=target.scope)
            for m, r in results])
        for n, (m, r) in enumerate(results):
            print(f"{target.name}: {r.questions} held-out question(s), model {m}" + (" (the base)" if n else "") +
                  f"\n  without examples: exact match {r.exact_match:.1%}, token F1 {r.token_f1:.3f}\n"
                  f"  with {settings.few_shot} few-shot examples: exact match {r.exact_match_few_shot:.1%}, "
                  f"token F1 {r.token_f1_few_shot:.3f}")
        print(f"report: {out}")
        return 1 if scores.failures else 0
    finally:
        store.close()


def finetune_command(settings: Settings, args: argparse.Namespace) -> int:
    """``list``: every job and where it stands. ``watch [JOB]``: a job's progress bar (the latest job by default),
    redrawn as the bot or console that runs it records its steps; exit 0 once it succeeds, 1 if it fails or is
    cancelled."""
    store = open_store(settings.event_store, Path(settings.data_dir).expanduser(), create=False)  # only reads
    try:
        state, version, shown = training.Learning(), 0, ""
        while True:
            for r in store.read_stream(LEARNING_STREAM, after_version=version):
                state, version = training.evolve(state, r.event), r.stream_version
            jobs = list(state.jobs.values())
            if args.action == "list":
                if args.json:
                    print(json.dumps([{"job_id": j.job_id, "status": j.status, "base_model": j.base_model,
                                       "method": j.method, "step": j.step, "steps": j.steps, "loss": j.loss,
                                       "eta_s": j.eta_s, "fine_tuned_model": j.fine_tuned_model} for j in jobs]))
                else:
                    print("\n".join(j.bar().replace("`", "") for j in jobs) or "no fine-tuning jobs yet")
                return 0
            job = state.jobs.get(args.job) if args.job else jobs[-1] if jobs else None
            if job is None:
                print(f"parley: no fine-tuning job {args.job!r} in the log" if args.job else
                      "parley: no fine-tuning jobs yet: `finetune start` in the console or on Discord", file=sys.stderr)
                return 2
            ended, line = job.status in TERMINAL, job.bar().replace("`", "")
            if line != shown:
                print("\r" + line + "\033[K", end="\n" if ended else "", file=sys.stderr, flush=True)
                shown = line
            if ended:
                return 0 if job.status == "succeeded" else 1
            time.sleep(args.every)
            args.job = job.job_id  # the one shown first, even if another starts meanwhile
    finally:
        store.close()


def add_parsers(sub: argparse._SubParsersAction) -> None:
    ft = sub.add_parser("finetune", help="fine-tuning jobs: list them, or watch one's progress until it ends "
                                         "(the bot or console that started it trains it)")
    ft.add_argument("action", choices=("list", "watch"))
    ft.add_argument("job", nargs="?", default="", help="the job to watch (default: the latest)")
    ft.add_argument("--json", action="store_true", help="list: one JSON array")
    ft.add_argument("--every", type=float, default=1.0, metavar="SECONDS", help=argparse.SUPPRESS)
    ev = sub.add_parser("evaluate", help="score a model on a dataset's held-out examples (writes a JSON report)")
    ev.add_argument("--model", help="the model to ask (default: PARLEY_CHAT_MODEL)")
    ev.add_argument("--dataset", help="the dataset (default: default)")
    ev.add_argument("--scope", default=OPERATORS, help="whose dataset: operators (default), guild:ID or person:ID")
    ev.add_argument("--holdout", help="the share of examples held out, like 20%% (default 20%%)")
    ev.add_argument("--out", type=Path, metavar="FILE", help="the report (default: reports/ in the data dir)")
