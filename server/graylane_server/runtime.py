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

from graylane_server import db, prometheus_urls
from graylane_server.configs.bus import Bus, create_bus
from graylane_server.configs.notices import publish_after_commit
from graylane_server.configs.store import ConfigStore
from graylane_server.ops.metrics import ServerMetrics
from graylane_server.ramps.controller import Controller
from graylane_server.ratelimit import Limiter, MemoryLimiter
from graylane_server.settings import Settings
from graylane_server.tokens import service as tokens
from graylane_server.tokens.auth import Authenticator
from graylane_server.usage.store import RedisUsageStore, SqlUsageStore, UsageStore
from graylane_server.users import service as users

log = structlog.get_logger(__name__)


class SchemaOutdated(RuntimeError):
    pass


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    readers: sessionmaker[Session]
    """For reads only: on SQLite they never wait for (or block) a writer."""
    bus: Bus
    store: ConfigStore
    auth: Authenticator
    metrics: ServerMetrics
    usage: UsageStore
    controller: Controller
    token_creations: Limiter
    """Tokens minted per caller (`GRAYLANE_TOKEN_CREATE_*`)."""
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def create(cls, settings: Settings) -> Runtime:
        engine = db.create_db_engine(settings)
        sessions = db.session_factory(engine)
        readers = (
            db.session_factory(db.create_db_engine(settings, readonly=True))
            if settings.embedded
            else sessions
        )
        for factory in {id(sessions): sessions, id(readers): readers}.values():
            prometheus_urls.install(factory, prometheus_urls.allowed(settings))
        bus = create_bus(settings.redis_url)
        usage: UsageStore = (
            RedisUsageStore(settings.redis_url)
            if settings.redis_url
            else SqlUsageStore(sessions, readers)
        )
        runtime = cls(
            settings=settings,
            engine=engine,
            sessions=sessions,
            readers=readers,
            bus=bus,
            store=ConfigStore(readers),
            auth=Authenticator(
                readers,
                settings.token_cache_ttl,
                failures=MemoryLimiter(settings.auth_max_failures, settings.auth_window_seconds),
            ),
            metrics=ServerMetrics(),
            usage=usage,
            controller=Controller(
                sessions,
                readers,
                usage,
                interval=settings.controller_interval,
                prometheus_url=settings.prometheus_url,
            ),
            token_creations=MemoryLimiter(
                settings.token_create_max, settings.token_create_window_seconds
            ),
        )
        runtime.metrics.watch_streams(runtime.store.stream_count)
        publish_after_commit(sessions, bus, local=runtime.on_message_threadsafe)
        return runtime

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await run_in_threadpool(self._prepare_database)
        await self.store.refresh()
        self._tasks = [
            asyncio.create_task(self.bus.run(self.on_message), name="graylane-bus"),
            asyncio.create_task(
                self.store.run(self.settings.reconcile_interval), name="graylane-configs"
            ),
            asyncio.create_task(self.controller.run(), name="graylane-controller"),
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
        await self.usage.close()
        await run_in_threadpool(self.controller.close)
        self.engine.dispose()
        readers_bind = self.readers.kw.get("bind")
        if readers_bind is not None and readers_bind is not self.engine:
            readers_bind.dispose()

    def on_message_threadsafe(self, message: dict[str, Any]) -> None:
        """`on_message` from any thread (commits happen in worker threads)."""
        if message.get("type") == "token_revoked":
            self.auth.forget(str(message.get("hash")))  # at once, before the reply goes out
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self.on_message(message)))

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
        with self.readers() as session:
            nobody = not tokens.admin_exists(session) and not users.any_user(session)
        if nobody:
            log.warning(
                "server.no_admin",
                hint="nobody can administer this server yet: start it once with "
                "GRAYLANE_BOOTSTRAP_ADMIN_TOKEN=<a long random secret> (it becomes an admin "
                "token), or run `graylane-server token create --role admin` or "
                "`graylane-server user create --username NAME --role admin` with the same "
                "GRAYLANE_* settings",
            )
