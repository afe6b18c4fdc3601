"""The Graylane client: flags evaluated in-process, kept current in the background.

Evaluating is a read of one reference (the current snapshot) and a call into the pure
core: no lock, no I/O, no exception that reaches the caller. Everything that talks to the
server runs in two daemon threads: one keeps the config current, one sends counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar, cast

from graylane import backup
from graylane.core import (
    Document,
    ErrorCode,
    Evaluation,
    Flag,
    Reason,
    Snapshot,
    compile_document,
    dump_document,
    evaluate,
    parse_document,
    resolve,
)
from graylane.core.bucketing import unit_of
from graylane.core.limits import event_name_problem, event_value_problem
from graylane.core.snapshot import RolloutServe
from graylane.metrics import Recorder, SharedCounters, cluster_of, payload, percentage_text
from graylane.sync import RETRYABLE, Synchronizer, UnusableConfig, describe, failure_kind
from graylane.transport import Fetched, ServerError, Transport, printable

log = logging.getLogger("graylane")

Context = Mapping[str, object]
T = TypeVar("T")
_EMPTY: Context = MappingProxyType({})
_MAX_LOGGED = 1000
REFUSED_REPORT = frozenset({400, 413, 422})
"""Statuses that refuse a metrics report for what it holds: sent again, it would be
refused again, and would hold back every later count. Such a report is dropped; any
other failure (network, 5xx, 408, 429, a refused key) keeps the counts for the next try."""
METRICS_ERRORS = ("retried", "refused", "unexpected")
"""Kinds of failure sending counts, as counted in `Client.metrics_errors`."""
DROPPED_EVENTS = ("name", "value")
"""Why `track` dropped an event, as counted in `Client.dropped_events`."""


class ClientNotReady(TimeoutError):
    """No configuration arrived in time (neither from the server nor from a backup)."""


@dataclass(frozen=True, slots=True)
class Change:
    """What a new configuration changed, as told to `on_change` callbacks."""

    previous_version: int | None
    version: int | None
    flags: frozenset[str]
    """Keys of the flags added, removed or edited."""


@dataclass(frozen=True, slots=True)
class _State:
    snapshot: Snapshot
    version: int | None
    etag: str | None
    definitions: Mapping[str, Any]
    """Each flag's resolved definition, to tell which flags a new config changed."""
    ramped: Mapping[str, RolloutServe | None]
    """Flags under a ramp, with their fallthrough rollout: `track` counts for these."""
    counters: SharedCounters
    """A counter per shared result of `snapshot`, by the result's id."""


def _empty_state() -> _State:
    return _State(compile_document(Document(), ""), None, None, {}, {}, SharedCounters())


def _counters_for(snapshot: Snapshot) -> SharedCounters:
    return SharedCounters.of(
        (r.flag_key, r.variant, r) for r in snapshot.shared_results() if r.variant is not None
    )


_CLIENTS: weakref.WeakSet[Client] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for client in list(_CLIENTS):
        client._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class Client:
    """Evaluate flags locally; the config follows the server within milliseconds.

    ```python
    client = Client("http://127.0.0.1:8080", "gls_...", backup_path="/var/lib/app/flags.json")
    client.wait_ready(5)
    if client.is_enabled("new-checkout", {"targetingKey": user.id}):
        ...
    ```

    The constructor returns at once; the first config arrives in the background
    (`wait_ready` blocks until it has). Every method that evaluates is safe to call from
    any thread and from asyncio code: none blocks, none raises.
    """

    def __init__(
        self,
        url: str,
        sdk_key: str,
        *,
        backup_path: str | os.PathLike[str] | None = None,
        flush_interval: float = 10.0,
        stale_after: float = 60.0,
        poll_interval: float = 30.0,
        stream: bool = True,
        timeout: float = 5.0,
        stream_read_timeout: float = 45.0,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https://, got {url!r}")
        if not sdk_key:
            raise ValueError(
                "sdk_key is empty: create one with `graylane-server token create --sdk`"
            )
        self._init_common()
        self._url = url
        self._sdk_key = sdk_key
        self._backup_path = None if backup_path is None else Path(backup_path)
        self._flush_interval = flush_interval
        self._stale_after = stale_after
        self._poll_interval = poll_interval
        self._stream = stream
        self._timeout = timeout
        self._stream_read_timeout = stream_read_timeout
        self._online = True
        if self._backup_path is not None:
            self._load_backup(self._backup_path)
        self._start_background()
        _CLIENTS.add(self)

    def _init_common(self) -> None:
        self._state = _empty_state()
        self._backup_path = None
        self._ready = threading.Event()
        self._closed = False
        self._online = False
        self._recorder = Recorder()
        self._change_listeners: list[Callable[[Change], None]] = []
        self._status_listeners: list[Callable[[str, str | None], None]] = []
        self._logged: set[tuple[str, ...]] = set()
        self._tally_lock = threading.Lock()
        self._dropped_events = dict.fromkeys(DROPPED_EVENTS, 0)
        self._metrics_errors = dict.fromkeys(METRICS_ERRORS, 0)
        self._last_contact: float | None = None
        self._last_error: str | None = None
        self._failing: str | None = None
        """The kind of failure being reported (see `graylane.sync.KINDS`), None when well."""
        self._stale_reported = False
        self._sync: Synchronizer | None = None
        self._transport: Transport | None = None
        self._flusher: threading.Thread | None = None
        self._stop_flush = threading.Event()
        self._flush_lock = threading.Lock()
        self._window_start = time.time()
        self._overrides: dict[str, Flag] = {}
        self._source: tuple[Mapping[str, Any], Document, str, int | None, str | None] | None = None

    # --- offline clients --------------------------------------------------------------

    @classmethod
    def from_document(cls, document: Mapping[str, Any], environment: str) -> Client:
        """A client that serves a flag document for one environment, with no server.
        Raises `graylane.core.DocumentError` listing every problem of an invalid one."""
        client = cls.__new__(cls)
        client._init_common()
        parsed = parse_document(document)
        client._install(dict(document), parsed, environment, version=None, etag=None)
        return client

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], environment: str | None = None) -> Client:
        """A client that serves a backup file, or a flag document (JSON or YAML), with no
        server. `environment` picks one of the document's environments; it may be left
        out for a backup or a document with only one."""
        from graylane.documents import read_document_file  # noqa: PLC0415 - YAML is optional

        raw = read_document_file(Path(path))
        if backup.is_backup(raw):
            saved = backup.from_data(raw, str(path))
            return cls.from_document(saved.document, environment or saved.environment)
        if environment is None:
            found = parse_document(raw).environments
            if len(found) != 1:
                raise ValueError(
                    f"{path} configures environments {', '.join(found) or 'none'}: "
                    "pass environment= to choose one"
                )
            environment = found[0]
        assert isinstance(raw, Mapping)
        return cls.from_document(raw, environment)

    # --- evaluating (the hot path) ----------------------------------------------------

    def _resolve(self, key: str, context: Context | None) -> Evaluation:
        state = self._state
        result = resolve(state.snapshot, key, _EMPTY if context is None else context)
        counter = state.counters.by_id.get(id(result))
        if counter is not None:
            next(counter)
        return result

    def is_enabled(self, key: str, context: Context | None = None, default: bool = False) -> bool:
        """The flag's boolean value for this context; `default` if it has none."""
        try:
            # `_resolve` written out: the one call apps make thousands of times a second.
            state = self._state
            result = resolve(state.snapshot, key, _EMPTY if context is None else context)
            counter = state.counters.by_id.get(id(result))
            if counter is not None:
                next(counter)
            value = result.value
            if type(value) is bool:
                return value
            return self._fall_back(key, result, default, "boolean")
        except Exception as exc:  # noqa: BLE001 - nothing may reach the app
            return self._crashed(key, exc, default)

    def variant(
        self, key: str, context: Context | None = None, default: str | None = None
    ) -> str | None:
        """The name of the variant served, or `default`."""
        try:
            result = self._resolve(key, context)
            if result.error_code is None:
                return result.variant
            return self._fall_back(key, result, default, None)
        except Exception as exc:  # noqa: BLE001
            return self._crashed(key, exc, default)

    def value(self, key: str, context: Context | None, default: T) -> T:
        """The flag's value, if it has the JSON type of `default` (any type when `default`
        is None); otherwise `default`."""
        try:
            result = self._resolve(key, context)
            value = result.value
            if result.error_code is None and _same_kind(value, default):
                return value  # type: ignore[return-value]
            return self._fall_back(key, result, default, _kind(default))
        except Exception as exc:  # noqa: BLE001
            return self._crashed(key, exc, default)

    def resolve(self, key: str, context: Context | None = None) -> Evaluation:
        """Like `evaluate`, without the rollout bucket: results are shared, so this path
        allocates nothing. Never raises."""
        try:
            result = self._resolve(key, context)
            if result.error_code is not None:
                return self._failed(key, result)
            return result
        except Exception as exc:  # noqa: BLE001
            self._crashed(key, exc, None)
            return _error(key, ErrorCode.GENERAL, f"{type(exc).__name__}: {exc}")

    def evaluate(self, key: str, context: Context | None = None) -> Evaluation:
        """Everything about one evaluation: value, variant, reason, error code, the rule
        that matched and the rollout bucket."""
        try:
            ctx = _EMPTY if context is None else context
            result = evaluate(self._state.snapshot, key, ctx)
            if result.variant is not None:
                self._recorder.add((key, result.variant))
            if result.error_code is not None:
                return self._failed(key, result)
            return result
        except Exception as exc:  # noqa: BLE001
            self._crashed(key, exc, None)
            return _error(key, ErrorCode.GENERAL, f"{type(exc).__name__}: {exc}")

    def all_flags(self, context: Context | None = None) -> dict[str, Evaluation]:
        """Every flag evaluated for this context."""
        try:
            snapshot = self._state.snapshot
            results = {key: self._resolve(key, context) for key in snapshot.flags}
            for key, result in results.items():
                if result.error_code is not None:
                    results[key] = self._failed(key, result)
            return results
        except Exception as exc:  # noqa: BLE001
            self._crashed("*", exc, None)
            return {}

    # --- events for guards ------------------------------------------------------------

    def track(self, event: str, context: Context | None = None, value: float | None = None) -> None:
        """Record an event (`request`, `error`, ...) against the variant this context gets
        of every flag under a ramp, under the rollout percentage served now and the unit's
        cluster. With `value` (a latency, an amount), record that measurement: guards read
        its count, sum and sum of squares. Each call is one event: `value` is not a count.
        Only aggregates leave the process."""
        try:
            if not self._trackable(event, value):
                return
            state = self._state
            ctx = _EMPTY if context is None else context
            for key, rollout in state.ramped.items():
                result = resolve(state.snapshot, key, ctx)
                group = _group(rollout, result)
                percentage, cluster = "", 0
                if rollout is not None and group != "targeted":
                    disabled = result.reason is Reason.DISABLED
                    percentage = "0" if disabled else percentage_text(rollout.threshold)
                    cluster = cluster_of(
                        rollout.salt_prefix[:-1], unit_of(ctx.get(rollout.bucket_by))
                    )
                self._recorder.add_event(
                    (key, result.variant or "", group, event, percentage), cluster, value
                )
        except Exception as exc:  # noqa: BLE001
            self._crashed("track", exc, None)

    def _trackable(self, event: object, value: object) -> bool:
        """Whether the server would take this event: a name or value it refuses would
        fail every later report, so the event is dropped here, counted and logged once."""
        problem = event_name_problem(event)
        if problem is not None:
            name = _shown(event)
            self._tally(self._dropped_events, "name")
            self._log_once(
                ("event", name), f"graylane: track: the event name {name} {problem}; dropped"
            )
            return False
        if value is not None:
            problem = event_value_problem(value)
            if problem is not None:
                self._tally(self._dropped_events, "value")
                self._log_once(
                    ("value", cast(str, event)),
                    f"graylane: track: {_shown(event)}: the value {_shown(value)} {problem}; "
                    "dropped",
                )
                return False
        return True

    def observe(self, context: Context | None = None) -> contextlib.AbstractContextManager[None]:
        """Count a `request`, and an `error` if the block raises (the exception goes on).
        Works as `with client.observe(ctx):` and as a decorator."""
        return _Observation(self, context)

    # --- state and lifecycle ----------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    @property
    def version(self) -> int | None:
        return self._state.version

    @property
    def environment(self) -> str:
        return self._state.snapshot.environment

    @property
    def last_error(self) -> str | None:
        """What went wrong keeping the config current (a refused key, a server that cannot
        be reached, an unusable answer); None while all is well."""
        return self._last_error

    @property
    def sync_errors(self) -> dict[str, int]:
        """Failures keeping the config current, counted by kind: `network`, `refused`,
        `status`, `response`, `config`, `event`, `unexpected` (see `graylane.sync.KINDS`)."""
        sync = self._sync
        return {} if sync is None else dict(sync.errors)

    @property
    def dropped_events(self) -> dict[str, int]:
        """Events `track` dropped because the server would refuse them, by why: `name`
        (not 1..64 characters of valid Unicode without NUL), `value` (not a finite number
        within ±1e15; a bool is not a number)."""
        return dict(self._dropped_events)

    @property
    def metrics_errors(self) -> dict[str, int]:
        """Failures sending counts, by kind: `retried` (network, 5xx, 429...: the counts
        are kept for the next try), `refused` (the server refused a report with 400, 413
        or 422: it is dropped), `unexpected` (anything else: that report is dropped)."""
        return dict(self._metrics_errors)

    @property
    def stale(self) -> bool:
        """True when the server has not been heard from for `stale_after` seconds (or
        ever, for a client serving its backup)."""
        if not self._online:
            return False
        if self._last_contact is None:
            return True
        return time.monotonic() - self._last_contact > self._stale_after

    def wait_ready(self, timeout: float | None = None) -> None:
        """Block until a config is in (from the server or the backup file)."""
        if not self._ready.wait(timeout):
            detail = f"; last error: {self._last_error}" if self._last_error else ""
            raise ClientNotReady(
                f"no flag configuration from {self._url} within {timeout}s{detail}"
            )

    async def wait_ready_async(self, timeout: float | None = None) -> None:
        """`wait_ready` for asyncio code, without blocking the event loop."""
        await asyncio.to_thread(self.wait_ready, timeout)

    def on_change(self, callback: Callable[[Change], None]) -> Callable[[], None]:
        """Call `callback(change)` (in a background thread) whenever a new config changes
        flags. Returns a function that unsubscribes."""
        self._change_listeners.append(callback)
        return lambda: self._change_listeners.remove(callback)

    def on_status(self, callback: Callable[[str, str | None], None]) -> Callable[[], None]:
        """Call `callback(status, detail)` on `ready`, `stale`, `error` and `recovered`.
        Subscribed while a failure is going on (a refused key is found within the first
        milliseconds), it hears that `error` at once."""
        self._status_listeners.append(callback)
        failing, detail = self._failing, self._last_error
        if failing is not None:
            try:
                callback("error", detail)
            except Exception:
                log.exception("graylane: an on_status callback failed")
        return lambda: self._status_listeners.remove(callback)

    def flush(self) -> bool:
        """Send the counts gathered so far now; False when the server did not take them
        all. Counts that could not reach it stay for the next try; a report it refused
        for what it holds (400, 413, 422) is dropped (see `metrics_errors`). Never raises."""
        transport = self._transport
        if transport is None:
            return True
        # One flush at a time: two that read the same pending counts would both send them.
        with self._flush_lock:
            try:
                return self._send_pending(transport)
            except Exception as exc:  # noqa: BLE001 - the flush thread must never die
                self._unexpected_flush_error(exc)
                return False

    def _send_pending(self, transport: Transport) -> bool:
        pending = self._recorder.pending()
        if not pending:
            return True
        now = time.time()
        window = (self._window_start, now)
        taken = True
        for part in pending.parts():
            try:
                transport.post_metrics(payload(part, version=self._state.version, window=window))
            except ServerError as exc:
                if exc.status not in REFUSED_REPORT:
                    return self._kept(exc)
                self._tally(self._metrics_errors, "refused")
                log.warning("graylane: the server refused a metrics report; dropped: %s", exc)
                taken = False
            except RETRYABLE as exc:
                return self._kept(exc)
            except Exception as exc:  # noqa: BLE001 - it would fail again on every retry
                self._unexpected_flush_error(exc)
                taken = False
            # Sent, or refused for good: either way never sent again.
            self._recorder.mark_sent(part)
        self._recorder.retire_all_but(self._state.counters)
        self._window_start = now
        return taken

    def _kept(self, exc: Exception) -> bool:
        self._tally(self._metrics_errors, "retried")
        log.debug("graylane: metrics not sent (%s); kept for the next try", exc)
        return False

    def _unexpected_flush_error(self, exc: Exception) -> None:
        self._tally(self._metrics_errors, "unexpected")
        detail = printable(f"{type(exc).__name__}: {exc}", 300)
        if ("flush", type(exc).__name__) in self._logged:
            log.debug("graylane: sending metrics failed (%s)", detail)
            return
        self._logged.add(("flush", type(exc).__name__))
        log.error("graylane: sending metrics failed (%s); that report is dropped", detail)

    def close(self) -> None:
        """Stop the background threads, after one last attempt to send counts."""
        if self._closed:
            return
        self._closed = True
        if self._sync is not None:
            self._sync.stop()
        self._stop_flush.set()
        if self._flusher is not None and self._flusher.is_alive():
            self._flusher.join(self._timeout + 1)
        if self._transport is not None:
            self._transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- background -------------------------------------------------------------------

    def _start_background(self) -> None:
        self._transport = Transport(
            self._url,
            self._sdk_key,
            timeout=self._timeout,
            stream_read_timeout=self._stream_read_timeout,
        )
        self._sync = Synchronizer(
            self._transport,
            install=self._install_fetched,
            held=lambda: (self._state.version, self._state.etag),
            contact=self._contact,
            current=self._current,
            failure=self._failure,
            stream=self._stream,
            poll_interval=self._poll_interval,
        )
        self._stop_flush = threading.Event()
        self._flusher = threading.Thread(
            target=self._flush_loop, name="graylane-metrics", daemon=True
        )
        self._sync.start()
        self._flusher.start()

    def _flush_loop(self) -> None:
        due = time.monotonic() + self._flush_interval
        while not self._stop_flush.wait(min(self._flush_interval, 1.0)):
            try:
                self._watch_staleness()
                if time.monotonic() >= due:
                    self.flush()
                    due = time.monotonic() + self._flush_interval
            except Exception as exc:  # noqa: BLE001 - the thread goes on whatever happens
                self._unexpected_flush_error(exc)
        self.flush()

    def _contact(self) -> None:
        """The server was heard from (a config, a notice or a heartbeat)."""
        self._last_contact = time.monotonic()
        if self._stale_reported:
            self._stale_reported = False

    def _current(self) -> None:
        """The config held is the server's latest: whatever failed has recovered."""
        if self._failing is not None:
            self._failing = None
            self._last_error = None
            log.info("graylane: the config from %s is current again", self._url)
            self._emit("recovered", None)

    def _failure(self, exc: Exception) -> None:
        # Said once per kind of failure: a refused key reads differently from a network
        # that is down, and a change from one to the other is news.
        kind = failure_kind(exc)
        self._last_error = describe(self._url, exc)
        if self._failing != kind:
            self._failing = kind
            serving = "the last good config" if self.ready else "code defaults"
            log.warning("graylane: %s; serving %s", self._last_error, serving)
            self._emit("error", self._last_error)

    def _watch_staleness(self) -> None:
        if self.stale and not self._stale_reported and self.ready:
            self._stale_reported = True
            self._emit("stale", self._last_error)

    def _install_fetched(self, fetched: Fetched) -> None:
        """Install a config from the server; raises UnusableConfig (and keeps serving the
        last good config) for a body that is not a document this SDK can serve."""
        try:
            assert fetched.body is not None
            raw = json.loads(fetched.body)
            if not isinstance(raw, Mapping):
                raise TypeError(f"the config is a JSON {type(raw).__name__}, not an object")
            # A new config differs from the one held by a flag or two: parse only those.
            document = parse_document(raw, previous=self._parsed())
            environment = fetched.environment or self._state.snapshot.environment
            self._install(raw, document, environment, version=fetched.version, etag=fetched.etag)
        except Exception as exc:  # RecursionError for a deeply nested body, too
            raise UnusableConfig(
                f"a config the SDK cannot use ({type(exc).__name__}: {exc})"
            ) from exc
        if self._backup_path is not None:
            try:
                backup.write(
                    self._backup_path,
                    environment=environment,
                    version=fetched.version,
                    etag=fetched.etag,
                    body=fetched.body,
                )
            except OSError as exc:
                self._log_once(("backup-write",), f"graylane: cannot write the backup file: {exc}")

    def _load_backup(self, path: Path) -> None:
        try:
            saved = backup.read(path)
            document = parse_document(saved.document)
        except FileNotFoundError:
            return
        except backup.BackupError as exc:
            if "no backup file yet" in str(exc):
                log.info("graylane: %s", exc)
            else:
                log.error("graylane: %s; starting from code defaults until the server answers", exc)
            return
        except Exception as exc:  # noqa: BLE001 - a bad backup must never stop the app
            log.error(
                "graylane: %s is not a usable backup (%s); starting from code defaults", path, exc
            )
            return
        self._install(
            saved.document, document, saved.environment, version=saved.version, etag=saved.etag
        )
        log.info("graylane: serving the backup saved %s until the server answers", saved.saved_at)

    def _parsed(self) -> Document | None:
        """The server's document as last installed (without overrides): where the next
        parse starts from."""
        return None if self._source is None else self._source[1]

    def _install(
        self,
        raw: Mapping[str, Any],
        document: Document,
        environment: str,
        *,
        version: int | None,
        etag: str | None,
    ) -> None:
        self._source = (raw, document, environment, version, etag)
        if self._overrides:
            document = replace(document, flags={**document.flags, **self._overrides})
            forced = dump_document(Document(flags=self._overrides))["flags"]
            raw = {**raw, "flags": {**(raw.get("flags") or {}), **cast(dict[str, Any], forced)}}
        # Flags compiled from the very objects compiled before are taken over as they are.
        snapshot = compile_document(
            document,
            environment,
            version=None if version is None else str(version),
            previous=self._state.snapshot,
        )
        definitions = dict(raw.get("flags") or {})
        ramped: dict[str, RolloutServe | None] = {}
        for key, flag in snapshot.flags.items():
            config = flag.source.environments.get(environment)
            if config is not None and config.ramp is not None:
                serve = flag.fallthrough
                ramped[key] = serve if isinstance(serve, RolloutServe) else None
        counters = _counters_for(snapshot)
        self._recorder.adopt(counters)
        previous = self._state
        self._state = _State(snapshot, version, etag, definitions, ramped, counters)  # the swap
        first = not self._ready.is_set()
        self._ready.set()
        if first:
            self._emit("ready", None)
            return
        changed = frozenset(
            key
            for key in definitions.keys() | previous.definitions.keys()
            if definitions.get(key) != previous.definitions.get(key)
        )
        if changed:
            change = Change(previous.version, version, changed)
            for listener in list(self._change_listeners):
                try:
                    listener(change)
                except Exception:
                    log.exception("graylane: an on_change callback failed")

    def _emit(self, status: str, detail: str | None) -> None:
        for listener in list(self._status_listeners):
            try:
                listener(status, detail)
            except Exception:
                log.exception("graylane: an on_status callback failed")

    def _set_overrides(self, flags: Mapping[str, Flag]) -> None:
        """Serve these flags in place of the server's, from now on and across every new
        config, until set to {} (for `graylane.testing.override`)."""
        self._overrides = dict(flags)
        if self._source is not None:
            raw, document, environment, version, etag = self._source
            self._install(raw, document, environment, version=version, etag=etag)

    def _after_fork(self) -> None:
        """In a forked child: the parent's threads and sockets are not ours. Start anew
        with the config already in memory."""
        ready = self._ready.is_set()
        self._ready = threading.Event()
        if ready:
            self._ready.set()
        self._recorder.reset()
        # The inherited counters hold the parent's counts: count afresh.
        counters = _counters_for(self._state.snapshot)
        self._recorder.adopt(counters)
        self._state = replace(self._state, counters=counters)
        self._flush_lock = threading.Lock()
        self._window_start = time.time()
        if self._online and not self._closed:
            self._start_background()

    # --- failures on the hot path -----------------------------------------------------

    def _failed(self, key: str, result: Evaluation) -> Evaluation:
        """An error result as `resolve` and `evaluate` return it: not-ready when no config
        is in yet; an invalid context logged once per flag (its caller may never look)."""
        if not self._ready.is_set():
            return _error(key, ErrorCode.PROVIDER_NOT_READY, "no configuration yet")
        if result.error_code is ErrorCode.INVALID_CONTEXT:
            self._log_once(
                (key, result.error_code),
                f"graylane: {key!r}: {result.error_code} ({result.error_message})",
            )
        return result

    def _fall_back(self, key: str, result: Evaluation, default: T, expected: str | None) -> T:
        if not self._ready.is_set():
            code = ErrorCode.PROVIDER_NOT_READY
        elif result.error_code is not None:
            code = result.error_code
        else:
            code = ErrorCode.TYPE_MISMATCH
        if code is ErrorCode.TYPE_MISMATCH:
            detail = f" (the value is not a {expected})"
        elif code is ErrorCode.INVALID_CONTEXT:
            detail = f" ({result.error_message})"
        else:
            detail = ""
        self._log_once((key, code), f"graylane: {key!r}: {code}{detail}; serving the code default")
        return default

    def _crashed(self, key: str, exc: Exception, default: T) -> T:
        self._log_once(
            (key, type(exc).__name__),
            f"graylane: {key!r} failed: {exc!r}; serving the code default",
        )
        return default

    def _tally(self, counts: dict[str, int], kind: str) -> None:
        with self._tally_lock:  # taken only on a failure, never on the hot path
            counts[kind] += 1

    def _log_once(self, key: tuple[str, ...], message: str) -> None:
        if key in self._logged or len(self._logged) >= _MAX_LOGGED:
            return
        self._logged.add(key)
        log.warning(message)


class _Observation(contextlib.ContextDecorator):
    def __init__(self, client: Client, context: Context | None) -> None:
        self._client = client
        self._context = context

    def __enter__(self) -> None:
        self._client.track("request", self._context)

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is not None:
            self._client.track("error", self._context)


def _group(rollout: RolloutServe | None, result: Evaluation) -> str:
    """Which side of a ramp a unit is on: guards compare `exposed` with `unexposed`."""
    if result.reason is Reason.DISABLED:
        return "unexposed"
    if rollout is None or result.rule is not None or result.reason is not Reason.SPLIT:
        return "targeted"
    return "unexposed" if result is rollout.outside else "exposed"


def _shown(value: object) -> str:
    """A value from the app as it may go into a log line: quoted, escaped, cut short."""
    if not isinstance(value, str | int | float):
        return f"of type {type(value).__name__}"
    if isinstance(value, int) and value.bit_length() > 64:
        return f"(an integer of {value.bit_length()} bits)"  # repr may refuse 5,000 digits
    text = repr(value[:80] + "…" if isinstance(value, str) and len(value) > 80 else value)
    return printable(text, 120)


def _kind(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


def _same_kind(value: object, default: object) -> bool:
    return default is None or _kind(value) == _kind(default)


def _error(key: str, code: ErrorCode, message: str) -> Evaluation:
    return Evaluation(key, None, None, Reason.ERROR, code, message)


__all__ = ["Change", "Client", "ClientNotReady"]
