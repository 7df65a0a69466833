"""Whatever a person types after ``python run.py`` gets an answer in words and an exit code, never a traceback: a
hypothesis property over the subcommands that read or check (the long-running ones, and those that load a model or
speak, have tests of their own), in process, on a store that exists."""
from __future__ import annotations

import argparse
import contextlib
import io

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import run
from adapters import cli
from events import open_store

# Long-running (bot, console, projections run), loading a model or a voice (evaluate, say, purge-audio builds
# the whole system), or forgetting someone: tested elsewhere, not here.
SKIPPED = {"bot", "console", "evaluate", "say", "purge-audio", "forget"}
ODD = ["inf", "-inf", "nan", "-1", "0", "99999999999999999999", "1e308", "", " ", "../..", "/", "%", "20%",
       "2026-13-45", "ë", "\x00", "--", "-", "sqlite", "operators", "guild:1", "person:", "list", "watch", "run",
       "rebuild", "verify"]


def options_by_command() -> dict[str, list[str]]:
    parser = cli.parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    found = {}
    for name, p in sub.choices.items():
        if name in SKIPPED:
            continue
        found[name] = sorted({o for a in p._actions for o in a.option_strings if o not in ("-h", "--help")} |
                             {c for a in p._actions if a.choices and not a.option_strings for c in a.choices})
    return found


OPTIONS = options_by_command()
argv = st.sampled_from(sorted(OPTIONS)).flatmap(lambda name: st.lists(
    st.one_of(st.sampled_from(OPTIONS[name] or ["--json"]), st.sampled_from(ODD), st.text(max_size=12)),
    max_size=5).map(lambda rest: [name, *rest]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(args=argv)
def test_no_command_line_ends_in_a_traceback(tmp_path_factory, monkeypatch, args):
    data = tmp_path_factory.getbasetemp() / "cli-fuzz"
    if not data.exists():
        data.mkdir()
        open_store("sqlite", data).close()
    monkeypatch.setenv("PARLEY_DATA_DIR", str(data))
    monkeypatch.delenv("VOSK_MODEL_PATH", raising=False)
    if "--follow" in args or ("projections" in args and "run" in args):
        args = [a for a in args if a not in ("--follow", "run")]  # these wait for more, by design
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = run.main(args)
        except SystemExit as e:  # argparse: a usage line and exit 2 (or 0 for --help)
            status = e.code
    assert status in (0, 1, 2), (args, status, err.getvalue())
    assert "Traceback" not in err.getvalue(), (args, err.getvalue())
    if status:
        assert err.getvalue().strip(), (args, status)  # a failure says why
