"""The command-line subcommands of ``python run.py``, one module per group.

Each module has ``add_parsers(sub)`` for its subcommands' arguments and one function per subcommand,
``(settings, args) -> exit status``; ``run.py`` holds the table from subcommand to function. Heavy
libraries (discord.py, openai, Vosk, Piper) are imported inside the functions that use them.
"""
from __future__ import annotations

import argparse
import logging
import re
import os
import sys
from collections.abc import Callable, Mapping

from adapters.cli import audit, bot, hearing, learning, log, privacy, projections, speaking
from adapters.config import ConfigError, Settings, load_settings
from events import StoreMissing, StoreUnavailable


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python run.py", description=(
        "Parley: a Discord assistant whose every action is an event. With no command it runs the Discord "
        "bot, or the local console when DISCORD_TOKEN is not set. Configuration comes from the environment "
        "(see README)."))
    sub = p.add_subparsers(dest="command")
    for group in (bot, log, hearing, speaking, learning, audit, projections, privacy):
        group.add_parsers(sub)
    return p


class CredentialsHidden(logging.Filter):
    """A user and password in any URL of a log line are written as ``***``, whoever logged it."""

    USERINFO = re.compile(r"(?<=://)[^/@\s]+@")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "@" in message and "://" in message:
            record.msg, record.args = self.USERINFO.sub("***@", message), None
        return True


def main(commands: Mapping[str | None, Callable[[Settings, argparse.Namespace], int]],
         argv: list[str] | None = None) -> int:
    """Run the subcommand ``argv`` names with the settings; a known failure is one line and an exit status."""
    args = parser().parse_args(argv)
    try:
        settings = load_settings()
        logging.basicConfig(level=settings.log_level, stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        for handler in logging.getLogger().handlers:  # a library's log line names a URL whole (httpx, aiohttp)
            handler.addFilter(CredentialsHidden())
        return commands[args.command](settings, args)
    except StoreMissing as e:
        print(f"parley: {e}", file=sys.stderr)
        return 1
    except (ConfigError, StoreUnavailable) as e:
        print(f"parley: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `status | head -1`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
    except KeyboardInterrupt:
        return 130
