"""Fan-out of change notices to every replica: Redis pub/sub, or in-process.

Publishing is synchronous and thread-safe, because it happens right after a database
commit in a worker thread. Listening is asynchronous, on the server's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import redis
import redis.asyncio as aioredis
import structlog

CHANNEL = "graylane:events"
Handler = Callable[[dict[str, Any]], Awaitable[None]]
log = structlog.get_logger(__name__)


class Bus(Protocol):
    def publish(self, message: dict[str, Any]) -> None: ...

    async def run(self, handler: Handler) -> None:
        """Deliver every message to `handler` until cancelled."""
        ...

    def close(self) -> None: ...


class LocalBus:
    """One process, no Redis: messages go straight to the loop that listens."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[dict[str, Any]] | None = None

    def publish(self, message: dict[str, Any]) -> None:
        if self._loop is None or self._queue is None:
            return  # nobody listens yet; the periodic version check covers it
        self._loop.call_soon_threadsafe(self._queue.put_nowait, message)

    async def run(self, handler: Handler) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        while True:
            await handler(await self._queue.get())

    def close(self) -> None:
        self._loop = None


class RedisBus:
    """Redis pub/sub. A lost message is not lost data: replicas also compare versions in
    the database periodically, so Redis only makes changes arrive sooner."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._publisher = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)

    def publish(self, message: dict[str, Any]) -> None:
        try:
            self._publisher.publish(CHANNEL, json.dumps(message))
        except redis.RedisError as exc:
            log.warning("bus.publish_failed", error=str(exc))

    async def run(self, handler: Handler) -> None:
        delay = 0.5
        while True:
            client = aioredis.Redis.from_url(self._url, socket_connect_timeout=2)
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    delay = 0.5
                    log.info("bus.subscribed", channel=CHANNEL)
                    # Whatever was published while disconnected is gone: look it up.
                    await handler({"type": "resync"})
                    async for item in pubsub.listen():
                        if item.get("type") == "message":
                            await handler(json.loads(item["data"]))
            except (redis.RedisError, OSError) as exc:
                log.warning("bus.disconnected", error=str(exc), retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
            finally:
                with contextlib.suppress(Exception):
                    await client.aclose()

    def close(self) -> None:
        self._publisher.close()


def create_bus(redis_url: str | None) -> Bus:
    return RedisBus(redis_url) if redis_url else LocalBus()
