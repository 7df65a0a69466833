"""How long each stage of a spoken turn took, for ``status``: from the end of someone's speech to its transcript, to
the answer's first token, to the first audio of the spoken answer. Kept in memory for the last turns (a restart
starts afresh); marked from the threads that see each stage, keyed by the turn's id (the utterance heard, which is
also the id of the message the answer is to)."""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

STAGES = ("transcript", "first_token", "first_audio")
NAMES = {"transcript": "transcript", "first_token": "first token", "first_audio": "first audio"}


class TurnTimes:
    def __init__(self, keep: int = 20, clock: Callable[[], float] = time.monotonic) -> None:
        self.keep = keep
        self.clock = clock
        self._turns: OrderedDict[str, dict[str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def speech_ended(self, turn_id: str) -> None:
        """The speaker paused (the last pause of a turn counts: a turn may have several)."""
        with self._lock:
            self._turns.setdefault(turn_id, {})["speech_ended"] = self.clock()
            self._turns.move_to_end(turn_id)
            while len(self._turns) > self.keep:
                self._turns.popitem(last=False)

    def mark(self, turn_id: str, stage: str) -> None:
        """``stage`` of a turn whose end of speech was seen (anything else, a typed question, is not a voice turn)."""
        with self._lock:
            turn = self._turns.get(turn_id)
            if turn is not None and stage not in turn:
                turn[stage] = self.clock()

    def last(self) -> list[dict[str, float]]:
        """Each recent turn's stages, in seconds from its end of speech, oldest first."""
        with self._lock:
            turns = [dict(t) for t in self._turns.values()]
        return [{s: round(t[s] - t["speech_ended"], 3) for s in STAGES if s in t} for t in turns if "speech_ended" in t]

    def summary(self, count: int = 5) -> str:
        """One line: the median of each stage over the last ``count`` turns ("" when there were none)."""
        turns = self.last()[-count:]
        if not turns:
            return ""
        parts = []
        for stage in STAGES:
            seen = sorted(t[stage] for t in turns if stage in t)
            if seen:
                parts.append(f"{NAMES[stage]} {seen[len(seen) // 2]:.2f} s")
        return f"Last {len(turns)} voice turns, median from the end of speech: " + ", ".join(parts)
