"""Where SDK counts live: Redis hashes with a time to live, or a table in the embedded
default. Both keep 10-second buckets per environment and flag, so guards and charts can
read any window."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import Counter, defaultdict
from typing import Protocol

import redis
import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from graylane_server.models import MetricCountRow

BUCKET_SECONDS = 10
RETENTION_SECONDS = 3 * 24 * 3600


def bucket_of(at: float) -> int:
    return int(at // BUCKET_SECONDS) * BUCKET_SECONDS


Tally = dict[str, dict[str, int]]
"""flag -> series -> count: counts merged, one entry per flag and series."""


class UsageStore(Protocol):
    async def record(self, environment: str, at: float, counts: Tally) -> None:
        """Add `counts` to the bucket of `at`; returns once they are stored."""
        ...

    def read(
        self, environment: str, flag: str, since: float, until: float
    ) -> dict[int, Counter[str]]:
        """bucket start -> series -> count, for buckets in [since, until)."""
        ...

    async def close(self) -> None:
        """Let go of connections; called once, as the server stops."""
        ...


ADD_SCRIPT = """
local counts = cjson.decode(ARGV[2])
for k, key in ipairs(KEYS) do
  for series, count in pairs(counts[k]) do
    redis.call('HINCRBY', key, series, count)
  end
  redis.call('EXPIRE', key, ARGV[1])
end
return #KEYS
"""
"""One call per report. KEYS: one hash per flag, in the bucket. ARGV[1]: seconds to live;
ARGV[2]: a JSON array in the order of KEYS, each a `{series: count}` object with the
counts as decimal strings (Lua numbers are doubles; HINCRBY takes the text as is)."""


class RedisUsageStore:
    """Each report is one script call: every count of it is added, and every hash it
    touched gets its time to live, in one step on the Redis side. Building and parsing
    a reply per count, as a pipeline of HINCRBYs does, costs the server far more."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._async: tuple[asyncio.AbstractEventLoop, aioredis.Redis, AsyncScript] | None = None

    @staticmethod
    def _key(environment: str, flag: str, bucket: int) -> str:
        return f"graylane:usage:{environment}:{flag}:{bucket}"

    def _arguments(
        self, environment: str, at: float, counts: Tally
    ) -> tuple[list[str], list[str | int]]:
        bucket = bucket_of(at)
        keys = [self._key(environment, flag, bucket) for flag in counts]
        values = [{name: str(n) for name, n in series.items()} for series in counts.values()]
        return keys, [RETENTION_SECONDS, json.dumps(values, ensure_ascii=False)]

    async def record(self, environment: str, at: float, counts: Tally) -> None:
        if counts:
            keys, args = self._arguments(environment, at, counts)
            await self._script()(keys=keys, args=args)

    async def close(self) -> None:
        if self._async is not None:
            loop, client, _ = self._async
            self._async = None
            if loop is asyncio.get_running_loop():
                await client.aclose()
        self._redis.close()

    def _script(self) -> AsyncScript:
        """The script on an asyncio client of the running loop (its connections belong to
        the loop that opened them)."""
        loop = asyncio.get_running_loop()
        if self._async is None or self._async[0] is not loop:
            client = aioredis.Redis.from_url(self._url, socket_timeout=2, socket_connect_timeout=2)
            self._async = (loop, client, client.register_script(ADD_SCRIPT))
        return self._async[2]

    def read(
        self, environment: str, flag: str, since: float, until: float
    ) -> dict[int, Counter[str]]:
        # Buckets that start before `until`, like the SQL store's `bucket < until`.
        buckets = list(range(bucket_of(since), math.ceil(until), BUCKET_SECONDS))
        with self._redis.pipeline(transaction=False) as pipe:
            for bucket in buckets:
                pipe.hgetall(self._key(environment, flag, bucket))
            replies = pipe.execute()
        out: dict[int, Counter[str]] = {}
        for bucket, reply in zip(buckets, replies, strict=True):
            if reply:
                out[bucket] = Counter({k.decode(): int(v) for k, v in reply.items()})
        return out


class SqlUsageStore:
    def __init__(self, sessions: sessionmaker[Session], readers: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._readers = readers

    async def record(self, environment: str, at: float, counts: Tally) -> None:
        if counts:
            await run_in_threadpool(self._write, environment, at, counts)

    async def close(self) -> None:
        pass  # its engines belong to the runtime

    def _write(self, environment: str, at: float, counts: Tally) -> None:
        if not counts:
            return
        bucket = bucket_of(at)
        rows = [
            {"environment": environment, "flag": f, "bucket": bucket, "series": s, "count": n}
            for f, series in counts.items()
            for s, n in series.items()
        ]
        with self._sessions() as session, session.begin():
            dialect = session.get_bind().dialect.name
            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            statement = insert(MetricCountRow).values(rows)
            statement = statement.on_conflict_do_update(
                index_elements=["environment", "flag", "bucket", "series"],
                set_={"count": MetricCountRow.count + statement.excluded.count},
            )
            session.execute(statement)
            session.query(MetricCountRow).filter(
                MetricCountRow.bucket < bucket_of(time.time() - RETENTION_SECONDS)
            ).delete(synchronize_session=False)

    def read(
        self, environment: str, flag: str, since: float, until: float
    ) -> dict[int, Counter[str]]:
        with self._readers() as session:
            rows = session.execute(
                select(MetricCountRow.bucket, MetricCountRow.series, MetricCountRow.count).where(
                    MetricCountRow.environment == environment,
                    MetricCountRow.flag == flag,
                    MetricCountRow.bucket >= bucket_of(since),
                    MetricCountRow.bucket < until,
                )
            ).all()
        out: defaultdict[int, Counter[str]] = defaultdict(Counter)
        for bucket, series, count in rows:
            out[bucket][series] += count
        return dict(out)


def evaluation_series(variant: str) -> str:
    return f"v|{variant}"


def event_series(group: str, variant: str, event: str) -> str:
    return f"e|{group}|{variant}|{event}"
