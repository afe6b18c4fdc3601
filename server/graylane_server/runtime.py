"""Everything one server process holds: database, bus, served configs, token cache.

Replicas share nothing but PostgreSQL and Redis; each builds its own runtime.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from graylane_server import db
from graylane_server.configs.bus import Bus, create_bus
from graylane_server.configs.notices import publish_after_commit
from graylane_server.configs.store import ConfigStore
from graylane_server.ops.metrics import ServerMetrics
from graylane_server.settings import Settings
from graylane_server.tokens import service as tokens
from graylane_server.tokens.auth import Authenticator
from graylane_server.usage.store import RedisUsageStore, SqlUsageStore, UsageStore

log = structlog.get_logger(__name__)


class SchemaOutdated(RuntimeError):
    pass


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    bus: Bus
    store: ConfigStore
    auth: Authenticator
    metrics: ServerMetrics
    usage: UsageStore
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def create(cls, settings: Settings) -> Runtime:
        engine = db.create_db_engine(settings)
        sessions = db.session_factory(engine)
        bus = create_bus(settings.redis_url)
        publish_after_commit(sessions, bus)
        runtime = cls(
            settings=settings,
            engine=engine,
            sessions=sessions,
            bus=bus,
            store=ConfigStore(sessions),
            auth=Authenticator(sessions, settings.token_cache_ttl),
            metrics=ServerMetrics(),
            usage=RedisUsageStore(settings.redis_url)
            if settings.redis_url
            else SqlUsageStore(sessions),
        )
        runtime.metrics.watch_streams(runtime.store.stream_count)
        return runtime

    async def start(self) -> None:
        await run_in_threadpool(self._prepare_database)
        await self.store.refresh()
        self._tasks = [
            asyncio.create_task(self.bus.run(self.on_message), name="graylane-bus"),
            asyncio.create_task(
                self.store.run(self.settings.reconcile_interval), name="graylane-configs"
            ),
        ]
        log.info(
            "server.started",
            database="sqlite" if self.settings.embedded else "postgresql",
            bus="redis" if self.settings.redis_url else "in-process",
            environments=self.store.versions(),
        )

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.bus.close()
        self.engine.dispose()

    async def on_message(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "config":
            current = self.store.get(str(message.get("environment")))
            if current is None or int(message.get("version", 0)) > current.version:
                self.store.request_refresh()
        elif kind == "resync":
            self.store.request_refresh()
        elif kind == "token_revoked":
            self.auth.forget(str(message.get("hash")))

    def _prepare_database(self) -> None:
        migrate = self.settings.migrate_on_start
        if migrate is None:
            migrate = self.settings.embedded
        if migrate:
            db.migrate(self.engine)
        else:
            current, head = db.schema_revisions(self.engine)
            if current != head:
                raise SchemaOutdated(
                    f"the database schema is at {current or 'nothing'}, this server needs {head}: "
                    "run `graylane-server migrate` (or set GRAYLANE_MIGRATE_ON_START=true)"
                )
        secret = self.settings.bootstrap_admin_token
        if secret is not None:
            with db.transaction(self.sessions) as session:
                if tokens.bootstrap(session, secret.get_secret_value()):
                    log.info("tokens.bootstrapped", name="bootstrap")
