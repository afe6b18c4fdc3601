"""Where SDK counts live: Redis hashes with a time to live, or a table in the embedded
default. Both keep 10-second buckets per environment and flag, so guards and charts can
read any window."""

from __future__ import annotations

import math
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import redis
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from graylane_server.models import MetricCountRow

BUCKET_SECONDS = 10
RETENTION_SECONDS = 3 * 24 * 3600


def bucket_of(at: float) -> int:
    return int(at // BUCKET_SECONDS) * BUCKET_SECONDS


@dataclass(frozen=True, slots=True)
class Count:
    flag: str
    series: str
    count: int


class UsageStore(Protocol):
    def add(self, environment: str, at: float, counts: Iterable[Count]) -> None: ...

    def read(
        self, environment: str, flag: str, since: float, until: float
    ) -> dict[int, Counter[str]]:
        """bucket start -> series -> count, for buckets in [since, until)."""
        ...


class RedisUsageStore:
    def __init__(self, url: str) -> None:
        self._redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)

    @staticmethod
    def _key(environment: str, flag: str, bucket: int) -> str:
        return f"graylane:usage:{environment}:{flag}:{bucket}"

    def add(self, environment: str, at: float, counts: Iterable[Count]) -> None:
        bucket = bucket_of(at)
        with self._redis.pipeline(transaction=False) as pipe:
            keys = set()
            for c in counts:
                key = self._key(environment, c.flag, bucket)
                pipe.hincrby(key, c.series, c.count)
                keys.add(key)
            for key in keys:
                pipe.expire(key, RETENTION_SECONDS)
            pipe.execute()

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

    def add(self, environment: str, at: float, counts: Iterable[Count]) -> None:
        bucket = bucket_of(at)
        merged: Counter[tuple[str, str]] = Counter()
        for c in counts:
            merged[(c.flag, c.series)] += c.count
        if not merged:
            return
        rows = [
            {"environment": environment, "flag": f, "bucket": bucket, "series": s, "count": n}
            for (f, s), n in merged.items()
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
