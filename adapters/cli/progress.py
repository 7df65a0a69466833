"""A progress bar on stderr for long command-line jobs."""
from __future__ import annotations

import sys


def bar(done: int, total: int, unit: str, width: int = 30) -> None:
    """``[#####.....] done/total unit``, redrawn in place; a newline once done."""
    filled = width * done // max(total, 1)
    print(f"\r[{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,} {unit}", end="" if done < total else "\n",
          file=sys.stderr, flush=True)
