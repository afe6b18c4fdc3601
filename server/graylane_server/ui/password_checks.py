"""A bound on the password checks one server process runs at once.

Each argon2 check takes 64 MiB and a core for a good part of a second: a flood of sign-ins
must not turn into a flood of checks that starves everything else of memory, CPU and
worker threads. A few sign-ins beyond the bound wait their turn briefly (without holding a
thread); any more, or any that waited too long, are told to come back later. The checks
run on threads of their own at a lower CPU priority (on Linux, where priority is per
thread and argon2's lane threads inherit it), so a kill switch never queues behind them.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import TypeVar

T = TypeVar("T")

WAIT_SECONDS = 2.0
"""How long a sign-in waits for a free slot before it is told to come back later."""
WAITING_PER_SLOT = 4
"""Sign-ins that may wait, per slot; beyond that they are refused at once."""
NICENESS = 10


def _lower_priority() -> None:
    if sys.platform == "linux":
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICENESS)


class Busy(Exception):
    """Every slot is taken and the wait is over (or there is no room to wait)."""

    retry_after = WAIT_SECONDS


class PasswordChecks:
    """`await checks.run(check)`, or `async with checks.slot():` around one check."""

    def __init__(
        self, slots: int, *, waiting: int | None = None, wait: float = WAIT_SECONDS
    ) -> None:
        self.slots = slots
        self.max_waiting = slots * WAITING_PER_SLOT if waiting is None else waiting
        self._wait = wait
        self._semaphore = asyncio.Semaphore(slots)
        self._running = 0
        self._waiting = 0
        self._threads = ThreadPoolExecutor(
            slots, thread_name_prefix="graylane-password", initializer=_lower_priority
        )

    async def run(self, check: Callable[[], T]) -> T:
        """`check()` in a slot, on a password-check thread; `Busy` when no slot comes."""
        async with self.slot():
            return await asyncio.get_running_loop().run_in_executor(self._threads, check)

    @property
    def running(self) -> int:
        """Checks holding a slot now."""
        return self._running

    @property
    def waiting(self) -> int:
        """Sign-ins waiting for a slot now."""
        return self._waiting

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self._semaphore.locked():
            if self._waiting >= self.max_waiting:
                raise Busy
            self._waiting += 1
            try:
                async with asyncio.timeout(self._wait):
                    await self._semaphore.acquire()
            except TimeoutError:
                raise Busy from None
            finally:
                self._waiting -= 1
        else:
            await self._semaphore.acquire()
        self._running += 1
        try:
            yield
        finally:
            self._running -= 1
            self._semaphore.release()
