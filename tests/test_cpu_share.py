"""The CPU shared between the bot's answers and a background job (``adapters/cpu_share.py``), with a real process:
paused while answers are written, and, while they come back to back, still given its minimum share as turns of its
own (the next answer waits for the turn)."""
from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from adapters.cpu_share import Yielding

# one byte more in its file every 5 ms it runs (its size only grows: a reader never sees it half-written)
COUNTING = "import sys, time\nf = open(sys.argv[1], 'ab', buffering=0)\nwhile True:\n    f.write(b'.')\n    time.sleep(0.005)\n"


@pytest.fixture
def counter(tmp_path):
    """A background process that counts as long as it runs."""
    path = tmp_path / "count"
    process = subprocess.Popen([sys.executable, "-c", COUNTING, str(path)])
    yield process, lambda: path.stat().st_size if path.exists() else 0
    process.kill()
    process.wait()


def state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


@pytest.mark.parametrize("share", [0.0, 0.2])
def test_answers_back_to_back_leave_a_background_job_its_minimum_share_as_turns_and_no_more(counter, share):
    process, count = counter
    while not count():
        time.sleep(0.01)
    yielding = Yielding(min_share=share, period_s=0.5)
    yielding.add(lambda: [process.pid])
    done, answers = threading.Event(), []

    def answer_back_to_back() -> None:
        while not done.is_set():
            with yielding.foreground():
                time.sleep(0.03)  # an answer being written
            answers.append(1)
    writer = threading.Thread(target=answer_back_to_back)
    writer.start()
    time.sleep(0.1)
    states = []
    for _ in range(300):  # three seconds of answers, looked at every 10 ms
        states.append(state(process.pid))
        time.sleep(0.01)
    done.set()
    writer.join()
    running = sum(s != "T" for s in states) / len(states)
    assert answers, "the answers went on"
    if share:
        assert running >= 0.08, (running, states)  # its turns: about a fifth of the time
    else:
        assert running < 0.08, (running, states)  # only the instants between two answers
    after = count()
    time.sleep(0.2)
    assert count() > after and state(process.pid) != "T"  # the answers done: it runs on


def test_with_no_background_process_no_answer_ever_waits_for_a_turn():
    yielding = Yielding(min_share=0.5, period_s=0.2)
    yielding.add(lambda: [])
    turns = []
    for _ in range(30):  # 0.6 s of answers back to back: three periods in which nothing ran in the background
        with yielding.foreground():
            time.sleep(0.02)
        turns.append(yielding._turn)
    assert not any(turns)
