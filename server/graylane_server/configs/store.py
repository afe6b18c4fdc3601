"""What each environment's SDKs are served, held in memory on every replica.

A change rebuilds the affected environments once, off the request path: the resolved
document, its JSON and gzip bytes, a strong ETag and the compiled snapshot for server-side
evaluation. Requests then only pick up a reference. Streams subscribed to an environment
hear of its new version right after the swap.

A rebuild starts from the previous one, so that its cost follows the change, not the
size of the config: only rows that changed are read, and only definitions that changed
are parsed, compiled and encoded again. The gzip bytes and the ETag are of the whole body.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import threading
from collections import defaultdict
from dataclasses import dataclass

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from graylane.core import Document, Snapshot, compile_document, parse_document
from graylane_server.catalog import (
    Catalog,
    RawDocument,
    ResolvedEncoder,
    load_catalog,
    resolved_document,
)
from graylane_server.models import Environment

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ServedConfig:
    environment: str
    version: int
    snapshot: Snapshot
    body: bytes
    gzipped: bytes
    etag: str
    """Strong ETag of `body`, quoted."""

    @property
    def gzip_etag(self) -> str:
        return self.etag[:-1] + '-gzip"'


class ConfigStore:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._configs: dict[str, ServedConfig] = {}
        self._subscribers: defaultdict[str, set[asyncio.Queue[ServedConfig]]] = defaultdict(set)
        self._wanted: asyncio.Event | None = None
        self._lock = asyncio.Lock()
        self._swapped = threading.Condition()
        # What the last rebuild read and made, for the next one to start from. Only
        # `_build_stale` uses them, and `refresh` runs one of those at a time.
        self._catalog: Catalog | None = None
        self._document: Document | None = None
        self._encoder = ResolvedEncoder()
        # Environments whose stored version could not be built: (version, why). Such a
        # version is not tried again (its data cannot change without a new version); the
        # environment keeps serving what it had, and readiness says so.
        self._failures: dict[str, tuple[int, str]] = {}

    # --- reading ----------------------------------------------------------------------

    def get(self, environment: str) -> ServedConfig | None:
        return self._configs.get(environment)

    def versions(self) -> dict[str, int]:
        return {env: c.version for env, c in self._configs.items()}

    def failures(self) -> dict[str, str]:
        """Environments whose newest config could not be built, and why."""
        return {
            env: f"version {version} cannot be built: {why}"
            for env, (version, why) in self._failures.items()
        }

    def stream_count(self) -> int:
        return sum(len(s) for s in self._subscribers.values())

    # --- keeping current --------------------------------------------------------------

    async def refresh(self) -> list[str]:
        """Rebuild every environment whose version moved; returns the ones rebuilt."""
        async with self._lock:
            built = await run_in_threadpool(self._build_stale, self.versions())
            for config in built:
                self._configs[config.environment] = config
                self._announce(config)
            if built:
                with self._swapped:
                    self._swapped.notify_all()
            if built:
                log.info("config.rebuilt", versions={c.environment: c.version for c in built})
            return [c.environment for c in built]

    def wait_for(self, versions: dict[str, int], timeout: float) -> bool:
        """Block (a worker thread, never the event loop) until every environment serves at
        least these versions, or `timeout` passes. A writer waits here so that whoever
        reads from this replica next sees the write."""
        with self._swapped:
            return self._swapped.wait_for(
                lambda: all(
                    ((c := self._configs.get(env)) is not None and c.version >= version)
                    or self._failures.get(env, (0, ""))[0] >= version
                    for env, version in versions.items()
                ),
                timeout,
            )

    def request_refresh(self) -> None:
        if self._wanted is not None:
            self._wanted.set()

    async def run(self, interval: float) -> None:
        """Refresh when asked and every `interval` seconds in any case, so a replica that
        missed notices (Redis restarted, say) catches up on its own."""
        self._wanted = asyncio.Event()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wanted.wait(), timeout=interval)
            self._wanted.clear()
            try:
                await self.refresh()
            except Exception as exc:  # noqa: BLE001 - keep serving what we have; retry next tick
                log.warning("config.refresh_failed", error=str(exc))

    def _build_stale(self, current: dict[str, int]) -> list[ServedConfig]:
        with self._sessions() as session:
            versions = dict(
                session.execute(select(Environment.key, Environment.config_version)).all()
            )
            stale = {
                e: v
                for e, v in versions.items()
                if current.get(e) != v and self._failures.get(e, (0, ""))[0] != v
            }
            for gone in [e for e in self._failures if e not in versions]:
                del self._failures[gone]
            if not stale:
                return []
            catalog = load_catalog(session, self._catalog)
        document: Document | None
        try:
            document = parse_document(catalog.raw, previous=self._document)
        except Exception:  # noqa: BLE001 - each environment is then built on its own below
            document = None
        else:
            self._catalog, self._document = catalog, document
        self._encoder.forget_except(versions)
        built = []
        for environment, version in stale.items():
            try:
                # Stored data that cannot be parsed, compiled or encoded (written before
                # today's checks, or into the database directly) stops only the
                # environments it reaches: the others still get their changes.
                own = document or parse_document(resolved_document(catalog.raw, environment))
                built.append(self._build(environment, version, catalog.raw, own))
            except Exception as exc:  # noqa: BLE001 - recorded, logged once, shown by /readyz
                why = _reason(exc)
                self._failures[environment] = (version, why)
                log.error(
                    "config.build_failed", environment=environment, version=version, error=why
                )
            else:
                self._failures.pop(environment, None)
        return built

    def _build(
        self, environment: str, version: int, raw: RawDocument, document: Document
    ) -> ServedConfig:
        held = self._configs.get(environment)
        snapshot = compile_document(
            document,
            environment,
            version=str(version),
            previous=None if held is None else held.snapshot,
        )
        body = self._encoder.encode(raw, environment)
        return ServedConfig(
            environment=environment,
            version=version,
            snapshot=snapshot,
            body=body,
            gzipped=gzip.compress(body, compresslevel=6, mtime=0),
            etag=f'"{hashlib.sha256(body).hexdigest()[:32]}"',
        )

    # --- streams ----------------------------------------------------------------------

    def subscribe(self, environment: str) -> asyncio.Queue[ServedConfig]:
        queue: asyncio.Queue[ServedConfig] = asyncio.Queue(maxsize=8)
        self._subscribers[environment].add(queue)
        return queue

    def unsubscribe(self, environment: str, queue: asyncio.Queue[ServedConfig]) -> None:
        self._subscribers[environment].discard(queue)

    def _announce(self, config: ServedConfig) -> None:
        for queue in self._subscribers.get(config.environment, ()):
            if queue.full():
                # A slow reader only needs the newest version; drop the oldest notice.
                queue.get_nowait()
            queue.put_nowait(config)


def _reason(exc: Exception) -> str:
    """What went wrong, in a line that is safe to log and to answer with."""
    problems = getattr(exc, "problems", None)
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        text = f"{first.path}: {first.message}{more}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return text[:500].encode("utf-8", "backslashreplace").decode("utf-8")
