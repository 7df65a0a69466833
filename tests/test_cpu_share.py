"""The CPU shared between the bot's answers and a background job (``adapters/cpu_share.py``), with a real process:
paused while answers are written, and, while they never pause, still let run its minimum share so it ends."""
from __future__ import annotations

import subprocess
import sys
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
def test_answers_that_never_pause_leave_a_background_job_its_minimum_share_and_no_more(counter, share):
    process, count = counter
    while not count():
        time.sleep(0.01)
    yielding = Yielding(min_share=share, period_s=0.5)
    yielding.add(lambda: [process.pid])
    states = []
    with yielding.foreground():  # answers written back to back for two seconds
        time.sleep(0.05)
        before = count()
        for _ in range(200):
            states.append(state(process.pid))
            time.sleep(0.01)
        during = count() - before
    assert states.count("T") > len(states) / 2  # paused most of the time, whatever its share
    if share:
        assert during > 0 and set(states) - {"T"}, (during, set(states))  # and it went on in its turns
    else:
        assert during == 0 and set(states) == {"T"}, (during, set(states))
    after = count()
    time.sleep(0.2)
    assert count() > after and state(process.pid) != "T"  # the answers done: it runs on
