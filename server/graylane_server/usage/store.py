"""Where SDK counts live: Redis hashes with a time to live, or a table in the embedded
default. Both keep 10-second buckets per environment and flag, so guards and charts can
read any window. What a bucket holds, by name, is in `usage.series`."""

from __future__ import annotations

import asyncio
import json
import math
import time
from abc import ABC, abstractmethod
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from graylane_server.models import MetricCountRow
from graylane_server.ramps.observations import BUCKET_SECONDS, CLUSTERS
from graylane_server.usage.series import (
    UNTIL,
    evaluation_series,
    event_series,
    is_amount,
    is_vector,
)

RETENTION_SECONDS = 3 * 24 * 3600


def bucket_of(at: float) -> int:
    return int(at // BUCKET_SECONDS) * BUCKET_SECONDS


Tally = dict[str, dict[str, int]]
"""flag -> series -> count: counts merged, one entry per flag and series."""
Vectors = dict[str, dict[str, Sequence[float]]]
"""flag -> series -> a number per unit cluster to add (the `o|`, `s|` and `q|` series)."""
Fields = dict[int, dict[str, int | float | list[float]]]
"""bucket start -> every series stored in it: counts as int, `u` as float, the vectors
as a list of `CLUSTERS` numbers."""


def counts_of(fields: Fields) -> dict[int, Counter[str]]:
    return {
        bucket: Counter({k: v for k, v in values.items() if isinstance(v, int) and k != UNTIL})
        for bucket, values in fields.items()
    }


@dataclass(frozen=True, slots=True)
class Report:
    """What one `record` with something in it adds to the bucket of `at`."""

    environment: str
    at: float
    counts: Tally
    vectors: Vectors
    until: Mapping[str, float]


class UsageStore(ABC):
    """A store of SDK counts: `record` and `read` are the same for both, the rest is each
    store's own."""

    async def record(
        self,
        environment: str,
        at: float,
        counts: Tally,
        vectors: Vectors | None = None,
        until: Mapping[str, float] | None = None,
    ) -> None:
        """Add `counts` and `vectors` to the bucket of `at`, and raise each flag's
        `until` (the end of the newest SDK window filed there) to the value given;
        returns once everything is stored. A report with nothing in it stores nothing."""
        if counts or vectors or until:
            await self._add(Report(environment, at, counts, vectors or {}, until or {}))

    def read(
        self, environment: str, flag: str, since: float, until: float
    ) -> dict[int, Counter[str]]:
        """bucket start -> series -> count, for buckets in [since, until): the counts only."""
        return counts_of(self.read_all(environment, flag, since, until))

    @abstractmethod
    async def _add(self, report: Report) -> None:
        """`record` of a report with something in it."""

    @abstractmethod
    def read_all(self, environment: str, flag: str, since: float, until: float) -> Fields:
        """Every series of the buckets in [since, until), vectors and `until` included."""

    @abstractmethod
    async def close(self) -> None:
        """Let go of connections; called once, as the server stops."""


ADD_SCRIPT = """
local entries = cjson.decode(ARGV[2])
for k, key in ipairs(KEYS) do
  local entry = entries[k]
  for series, count in pairs(entry['c']) do
    redis.call('HINCRBY', key, series, count)
  end
  if entry['v'] then
    for series, text in pairs(entry['v']) do
      local held = redis.call('HGET', key, series)
      if held then
        local before = {}
        for x in string.gmatch(held, '[^,]+') do before[#before + 1] = tonumber(x) end
        local sum = {}
        for x in string.gmatch(text, '[^,]+') do
          sum[#sum + 1] = string.format('%.17g', (before[#sum + 1] or 0) + tonumber(x))
        end
        text = table.concat(sum, ',')
      end
      redis.call('HSET', key, series, text)
    end
  end
  if entry['u'] then
    local held = redis.call('HGET', key, 'u')
    if not held or tonumber(held) < tonumber(entry['u']) then
      redis.call('HSET', key, 'u', entry['u'])
    end
  end
  redis.call('EXPIRE', key, ARGV[1])
end
return #KEYS
"""
"""One call per report. KEYS: one hash per flag, in the bucket. ARGV[1]: seconds to live;
ARGV[2]: a JSON array in the order of KEYS, each `{"c": {series: count}, "v": {series:
"n0,n1,…"}, "u": until}` ("v" and "u" only when there are any) with every number as
decimal text (Lua numbers are doubles; HINCRBY takes the text as it is). A vector is added
element by element; its numbers are exact up to 2**53 per cluster and bucket."""


class RedisUsageStore(UsageStore):
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

    def _arguments(self, report: Report) -> tuple[list[str], list[str | int]]:
        bucket = bucket_of(report.at)
        counts, vectors, until = report.counts, report.vectors, report.until
        flags = list(counts.keys() | vectors.keys() | until.keys())
        keys = [self._key(report.environment, flag, bucket) for flag in flags]
        entries: list[dict[str, Any]] = []
        for flag in flags:
            entry: dict[str, Any] = {"c": {s: str(n) for s, n in counts.get(flag, {}).items()}}
            if flag in vectors:
                entry["v"] = {s: ",".join(map(repr, x)) for s, x in vectors[flag].items()}
            if flag in until:
                entry["u"] = repr(until[flag])
            entries.append(entry)
        return keys, [RETENTION_SECONDS, json.dumps(entries, ensure_ascii=False)]

    async def _add(self, report: Report) -> None:
        keys, args = self._arguments(report)
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

    def read_all(self, environment: str, flag: str, since: float, until: float) -> Fields:
        # Buckets that start before `until`, like the SQL store's `bucket < until`.
        buckets = list(range(bucket_of(since), math.ceil(until), BUCKET_SECONDS))
        with self._redis.pipeline(transaction=False) as pipe:
            for bucket in buckets:
                pipe.hgetall(self._key(environment, flag, bucket))
            replies = pipe.execute()
        out: Fields = {}
        for bucket, reply in zip(buckets, replies, strict=True):
            if reply:
                values: dict[str, int | float | list[float]] = {}
                for raw, value in reply.items():
                    name = raw.decode()
                    if is_vector(name):
                        values[name] = [float(x) for x in value.split(b",")]
                    else:
                        values[name] = float(value) if name == UNTIL else int(value)
                out[bucket] = values
        return out


class SqlUsageStore(UsageStore):
    def __init__(self, sessions: sessionmaker[Session], readers: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._readers = readers

    async def _add(self, report: Report) -> None:
        await run_in_threadpool(self._write, report)

    async def close(self) -> None:
        pass  # its engines belong to the runtime

    def _write(self, report: Report) -> None:
        bucket = bucket_of(report.at)
        key = {"environment": report.environment, "bucket": bucket}
        added = [
            {**key, "flag": f, "series": s, "count": n, "amount": 0.0}
            for f, series in report.counts.items()
            for s, n in series.items()
        ]
        for f, series in report.vectors.items():
            for s, vector in series.items():
                amount = is_amount(s)  # sums and squares are floats, counts integers
                added.extend(
                    {
                        **key,
                        "flag": f,
                        "series": f"{s}|{c}",
                        "count": 0 if amount else int(x),
                        "amount": float(x) if amount else 0.0,
                    }
                    for c, x in enumerate(vector)
                    if x
                )
        raised = [
            {**key, "flag": f, "series": UNTIL, "count": 0, "amount": t}
            for f, t in report.until.items()
        ]
        with self._sessions() as session, session.begin():
            dialect = session.get_bind().dialect.name
            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            index = ["environment", "flag", "bucket", "series"]
            if added:
                statement = insert(MetricCountRow).values(added)
                statement = statement.on_conflict_do_update(
                    index_elements=index,
                    set_={
                        "count": MetricCountRow.count + statement.excluded.count,
                        "amount": MetricCountRow.amount + statement.excluded.amount,
                    },
                )
                session.execute(statement)
            if raised:
                statement = insert(MetricCountRow).values(raised)
                newest: ColumnElement[float] = (
                    func.greatest(MetricCountRow.amount, statement.excluded.amount)
                    if dialect == "postgresql"
                    else func.max(MetricCountRow.amount, statement.excluded.amount)
                )
                statement = statement.on_conflict_do_update(
                    index_elements=index, set_={"amount": newest}
                )
                session.execute(statement)
            session.query(MetricCountRow).filter(
                MetricCountRow.bucket < bucket_of(time.time() - RETENTION_SECONDS)
            ).delete(synchronize_session=False)

    def read_all(self, environment: str, flag: str, since: float, until: float) -> Fields:
        with self._readers() as session:
            rows = session.execute(
                select(
                    MetricCountRow.bucket,
                    MetricCountRow.series,
                    MetricCountRow.count,
                    MetricCountRow.amount,
                ).where(
                    MetricCountRow.environment == environment,
                    MetricCountRow.flag == flag,
                    MetricCountRow.bucket >= bucket_of(since),
                    MetricCountRow.bucket < until,
                )
            ).all()
        out: defaultdict[int, dict[str, int | float | list[float]]] = defaultdict(dict)
        for bucket, series, count, amount in rows:
            if not is_vector(series):
                out[bucket][series] = amount if series == UNTIL else count
                continue
            name, _, cluster = series.rpartition("|")
            vector = out[bucket].get(name)
            if not isinstance(vector, list):
                vector = out[bucket][name] = [0.0] * CLUSTERS
            if cluster.isdigit() and int(cluster) < CLUSTERS:
                vector[int(cluster)] += amount if is_amount(series) else count
        return dict(out)


__all__ = [
    "BUCKET_SECONDS",
    "RETENTION_SECONDS",
    "Fields",
    "RedisUsageStore",
    "SqlUsageStore",
    "Tally",
    "UsageStore",
    "Vectors",
    "bucket_of",
    "evaluation_series",
    "event_series",
]
