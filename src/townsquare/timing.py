"""Per-stage timings, as every response that does work reports them.

    >>> t = Laps()
    >>> t.lap("parse"); t.lap("search")
    >>> sorted(t.ms)
    ['parse', 'search']
    >>> "total" in t.total()
    True

A stage timed twice (a retry, a loop) adds up under its name.
"""
from __future__ import annotations

import time


class Laps:
    """Milliseconds per stage since the previous lap (``ms``); ``total()`` adds the whole."""

    def __init__(self) -> None:
        self.t0 = self.t = time.perf_counter()
        self.ms: dict[str, float] = {}

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.ms[stage] = round(self.ms.get(stage, 0.0) + (now - self.t) * 1000, 3)
        self.t = now

    def total(self) -> dict[str, float]:
        self.ms["total"] = round((time.perf_counter() - self.t0) * 1000, 3)
        return self.ms
