"""Shared bits for the benchmarks: percentiles and printing one JSON object."""
from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def best(fn, runs: int = 3) -> float:  # noqa: ANN001
    """The fastest of ``runs`` timed calls of ``fn`` (seconds)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def report(name: str, results: dict) -> None:
    print(json.dumps({"bench": name, "python": platform.python_version(), "machine": platform.machine(),
                      **results}, indent=2))
