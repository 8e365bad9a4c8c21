"""The server's background threads: a loop of steps that stops when asked, and the count of the
steps that failed.

    >>> errors = StepErrors()
    >>> errors.guarded(lambda: 1 / 0), errors.count, errors.last
    (False, 1, 'ZeroDivisionError: division by zero')

A failing step is counted, logged and retried at the next turn: derived state (indexes, stories)
lags, the server goes on answering (``GET /v1/stats`` shows the count and the last error).
"""
from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable

log = logging.getLogger("townsquare.api")


def spaced(every_s: float, took_s: float, duty: float = 0.05) -> float:
    """Seconds between two runs of a periodic job whose last run took ``took_s``: ``every_s``,
    or longer so that the job takes at most ``duty`` of the time (its cost grows with the
    store: a scan of every post, a copy of the stories).

        >>> spaced(60.0, 0.5), spaced(60.0, 10.0)
        (60.0, 200.0)
    """
    return max(every_s, took_s / duty)


class StepErrors:
    """Failed steps of the indexer and the background work, shared by both."""

    def __init__(self) -> None:
        self.count = 0
        self.last: str | None = None

    def guarded(self, fn: Callable[[], object]) -> bool:
        """Run one step; an error is counted and logged, never fatal to the thread."""
        try:
            fn()
            return True
        except Exception as e:
            self.count += 1
            self.last = f"{type(e).__name__}: {e}"
            log.exception("background step failed")
            return False


class Loop(ABC):
    """A daemon thread running ``run()`` until ``signal_stop()``; ``sleep`` returns early when
    stopping."""

    name = "townsquare-loop"

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @abstractmethod
    def run(self) -> None:
        """The thread's body: steps until ``stopping``."""

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def sleep(self, seconds: float) -> None:
        self._stop.wait(max(0.0, seconds))

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self.run, name=self.name, daemon=True)
            self._thread.start()

    def signal_stop(self) -> None:
        """Ask the loop to stop after its current step (``join`` waits for it)."""
        self._stop.set()

    def join(self, timeout: float = 30) -> None:
        if self._thread is not None:
            self._thread.join(timeout=timeout)
