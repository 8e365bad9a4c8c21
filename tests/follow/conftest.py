"""Shared helpers of the follow tests: a clock whose sleeps return at once, a way to run a
collector until a condition holds, and the environment of a ``townsquare`` subprocess."""
from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

import pytest

from townsquare.follow import Collector, SourceStats


class FakeClock:
    """Wall and monotonic time that only ``sleep`` advances; every sleep is recorded."""

    def __init__(self, start_s: float = 1_700_000_000.0):
        self.now = start_s
        self.mono = 0.0
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        self.mono += seconds
        await asyncio.sleep(0)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def run_until(collector: Collector, done: Callable[[SourceStats], bool],
                    timeout_s: float = 10.0) -> SourceStats:
    """Run ``collector`` until ``done(stats)``, then stop it (a clean stop: everything received
    is written) and return its stats. Fails when the condition does not hold in time."""
    stop = asyncio.Event()
    task = asyncio.create_task(collector.run(stop))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not done(collector.stats) and not task.done():
        if loop.time() > deadline:
            stop.set()
            await asyncio.gather(task, return_exceptions=True)
            pytest.fail(f"condition not reached in {timeout_s} s: {collector.snapshot()}")
        await asyncio.sleep(0.01)
    stop.set()
    return await task


def stored_ids(store) -> list[int]:
    return [p.id for p in store.iter_posts()]


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment for a ``townsquare`` subprocess, without townsquare's own
    variables (each test names its home and store), plus ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("TOWNSQUARE_") or k == "TOWNSQUARE_CACHE"}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}
