"""The long-running subcommands: ``bot`` (Discord) and ``console`` (lines from stdin, answers on stdout).

With no subcommand, ``python run.py`` runs the bot when ``DISCORD_TOKEN`` is set and the console when it is not.
Both are given ``build`` (the composition root) to start the running system with their transport.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from adapters.audio_files import AudioStore
from adapters.config import Settings, prepare_data_dir, without_credentials

Build = Callable[..., Any]

NO_LLM = """parley: PARLEY_LLM_BACKEND is openai, but no endpoint is set: set OPENAI_API_KEY or OPENAI_BASE_URL (or parley.toml):
  OpenAI:     export OPENAI_API_KEY=sk-...          (model: PARLEY_CHAT_MODEL, default gpt-4o-mini)
  Ollama:     export OPENAI_BASE_URL=http://127.0.0.1:11434/v1 PARLEY_CHAT_MODEL=llama3.2
  llama.cpp:  export OPENAI_BASE_URL=http://127.0.0.1:8080/v1 PARLEY_CHAT_MODEL=local"""


def describe_llm(settings: Settings) -> str | None:
    """The line that says which LLM answers, or None when what is configured cannot (said on stderr)."""
    if settings.llm_backend == "local":
        from adapters.local_llm import LocalModelError, plan

        try:
            return f"parley: answering offline with {plan(settings).describe()}"
        except LocalModelError as e:
            print(f"parley: {e}", file=sys.stderr)
            return None
    if not settings.openai_base_url and not settings.openai_api_key:
        print(NO_LLM, file=sys.stderr)
        return None
    where = without_credentials(settings.openai_base_url) if settings.openai_base_url else "OpenAI (api.openai.com)"
    return f"parley: answering with model {settings.chat_model!r} at {where}"


def announce_llm(settings: Settings) -> bool:
    line = describe_llm(settings)
    if line is not None:
        print(line, file=sys.stderr, flush=True)
    return line is not None


def console(settings: Settings, args: argparse.Namespace, build: Build) -> int:
    from adapters.console import SOURCE, ConsoleTransport, run_console

    if not announce_llm(settings):
        return 2
    # Bytes that are not UTF-8 become U+FFFD instead of stopping the console.
    sys.stdin.reconfigure(errors="replace")  # type: ignore[union-attr]
    data_dir = prepare_data_dir(settings.data_dir)
    transport = ConsoleTransport(sys.stdout, live=sys.stdout.isatty(), files_root=data_dir)
    system = build(settings, {SOURCE: transport})
    try:
        system.resume(SOURCE)
        # Answers are bounded by progress deadlines; this only guards against a stuck pipeline.
        patience = (settings.llm_timeout + settings.llm_idle_timeout) * (settings.llm_retries + 1) + 30
        return run_console(system.router.dispatch, transport, sys.stdin, settings.command_prefix, patience,
                           audio=system.audio, data_dir=data_dir,
                           imports=AudioStore(data_dir, settings.max_import_mb * 1024 * 1024, folder="imports"),
                           settle=lambda: system.settle(patience))
    finally:
        system.stop()


def bot(settings: Settings, args: argparse.Namespace, build: Build) -> int:
    if not settings.discord_token:
        if args.command == "bot":
            print("parley: DISCORD_TOKEN is not set: the bot needs its token from the Discord developer portal "
                  "(see README, 'Running it on your server'); `python run.py console` runs without one.",
                  file=sys.stderr)
            return 2
        print("parley: DISCORD_TOKEN is not set, so starting the local console instead of the Discord bot "
              "(set DISCORD_TOKEN to run the bot).", file=sys.stderr)
        return console(settings, args, build)
    from adapters.discord.bot import run_bot

    if not announce_llm(settings):
        return 2
    return run_bot(settings, build)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("bot", help="run the Discord bot (needs DISCORD_TOKEN)")
    sub.add_parser("console", help="answer lines from stdin on stdout, then exit at end of input")
