"""The words and ``--options`` of a bot command's arguments (``dataset export x --format dpo``), read as a shell
would (``shlex``: quotes group words) by ``argparse``: an unknown option, an option missing its value or an
unclosed quote is a ``CommandLineError`` with a message for the person, never a word taken by mistake."""
from __future__ import annotations

import argparse
import re
import shlex


class CommandLineError(ValueError):
    """The arguments cannot be read: ``str(error)`` says why, in a person's words."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]  # argparse would exit the process
        needs = re.fullmatch(r"argument (--[\w-]+)(?:/[^:]*)?: expected one argument", message)
        raise CommandLineError(f"{needs.group(1)} needs a value" if needs else
                               message.replace("unrecognized arguments", "not an option here"))


def options(args: str, flags: tuple[str, ...] = (), valued: tuple[str, ...] = ()) -> tuple[list[str], dict[str, str]]:
    """(the words, the options given): ``flags`` stand alone (``{"channel": "yes"}``), ``valued`` take a value
    (``--format dpo`` or ``--format=dpo``)."""
    try:
        words = shlex.split(args)
    except ValueError as e:  # "No closing quotation"
        raise CommandLineError(f"{str(e).lower()}: close the quote or leave it out") from None
    parser = _Parser(prog="", add_help=False, allow_abbrev=False)
    parser.add_argument("words", nargs="*")
    for flag in flags:
        parser.add_argument(f"--{flag}", action="store_true")
    for name in valued:
        parser.add_argument(f"--{name}", metavar=name.upper())
    parsed = vars(parser.parse_intermixed_args(words))
    found = {name: "yes" for name in flags if parsed[name.replace("-", "_")]}
    found.update({name: parsed[name.replace("-", "_")] for name in valued if parsed[name.replace("-", "_")] is not None})
    return list(parsed["words"]), found


def holdout_of(text: str) -> float | None:
    """A held-out share, ``20%`` or ``0.2`` (or ``20``), strictly between 0 and 1; None if it is not one."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(%?)", text.strip())
    if not match:
        return None
    value = float(match.group(1)) / (100 if match.group(2) or float(match.group(1)) > 1 else 1)
    return value if 0 < value < 1 else None
