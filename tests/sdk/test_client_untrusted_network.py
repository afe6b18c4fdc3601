"""Nothing the network sends stops a client from following its config: events, bodies and
headers a broken proxy or a hostile server could send are counted, logged and followed by
a fresh fetch, and the next good config still arrives. Served by a real HTTP server that
sends exactly the bytes each test writes."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from graylane import Client
from graylane.transport import MAX_RETRY_AFTER, retry_after
from tests.sdk.conftest import ClientFactory
from tests.sdk.scripted import Answer, ScriptedServer, config_answer, gzipped, notice
from tests.sdk.support import static_flag
from tests.support.servers import wait_until

BOOLEAN = {"on": True, "off": False}
DEEP = "[" * 100_000 + "]" * 100_000


def document(serve: str) -> dict[str, object]:
    return {"flags": {"checkout": static_flag(BOOLEAN, serve)}}


@pytest.fixture
def scripted() -> Iterator[ScriptedServer]:
    with ScriptedServer(config_answer(document("off"), 1)) as server:
        yield server


def follows_changes(server: ScriptedServer, client: Client, version: int) -> None:
    """The server publishes a new version with a plain notice; the client takes it."""
    server.config = config_answer(document("on" if version % 2 == 0 else "off"), version)
    server.send(notice(version))
    wait_until(lambda: client.version == version, timeout=10, what=f"version {version}")
    assert client.is_enabled("checkout", {"targetingKey": "u"}) is (version % 2 == 0)


def streaming_client(server: ScriptedServer, clients: ClientFactory, **options: object) -> Client:
    # poll_interval caps the backoff: a failure is retried within a second here.
    client = clients(server.url, "gls_scripted", poll_interval=1.0, **options)
    client.wait_ready(10)
    wait_until(lambda: server.streams() == 1, timeout=10, what="the stream")
    return client


def test_a_stream_event_nested_100000_deep_is_counted_and_the_next_config_still_arrives(
    scripted: ScriptedServer, clients: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    client = streaming_client(scripted, clients)
    fetches = len(scripted.config_requests())

    scripted.send(f"data: {DEEP}\n\n".encode())

    wait_until(lambda: client.sync_errors["event"] == 1, timeout=10, what="the event counted")
    # the event might have announced a change: the client asked for the config
    wait_until(lambda: len(scripted.config_requests()) > fetches, timeout=10, what="a fetch")
    assert any("not JSON (RecursionError)" in r.getMessage() for r in caplog.records)
    follows_changes(scripted, client, 2)
    assert client.last_error is None


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(b"data: " + b"x" * (2 * 1024 * 1024) + b"\n\n", id="2-MiB-line"),
        pytest.param((b"data: " + b"x" * 1000 + b"\n") * 2000 + b"\n", id="2000-data-lines"),
        pytest.param(b'data: {"type": "refetchEvaluation", "version": \n\n', id="cut-json"),
        pytest.param(b"data: \xff\xfe\x00\x80\n\n", id="not-utf-8"),
    ],
)
def test_an_unreadable_or_oversized_event_makes_the_client_fetch_and_keep_following(
    scripted: ScriptedServer, clients: ClientFactory, event: bytes
) -> None:
    client = streaming_client(scripted, clients)
    scripted.config = config_answer(document("on"), 2)

    scripted.send(event)

    # the change the unreadable event stood for arrives by the fetch it caused
    wait_until(lambda: client.version == 2, timeout=10, what="the fetch after the event")
    assert client.sync_errors["event"] == 1
    follows_changes(scripted, client, 3)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param([1, 2, 3], id="a-list"),
        pytest.param({"type": "somethingElse", "version": 99}, id="another-type"),
        pytest.param({"type": "refetchEvaluation", "version": True}, id="version-true"),
        pytest.param({"type": "refetchEvaluation", "version": "7"}, id="version-text"),
    ],
)
def test_json_events_that_are_not_usable_notices_leave_the_stream_following(
    scripted: ScriptedServer, clients: ClientFactory, data: object
) -> None:
    client = streaming_client(scripted, clients)

    scripted.send(f"data: {json.dumps(data)}\n\n".encode())

    follows_changes(scripted, client, 2)
    assert client.sync_errors["unexpected"] == 0
    assert scripted.streams() == 1  # never dropped


def test_a_stream_that_keeps_sending_unreadable_events_is_dropped_and_opened_again(
    scripted: ScriptedServer, clients: ClientFactory
) -> None:
    client = streaming_client(scripted, clients)
    opened = sum(path == "/api/v1/sdk/stream" for path, _ in scripted.requests)

    scripted.send(b"data: not json\n\n" * 50)

    # each costs a fetch, so after ten the connection is given up and retried later
    wait_until(lambda: client.sync_errors["response"] == 1, timeout=10, what="the drop")
    wait_until(
        lambda: sum(path == "/api/v1/sdk/stream" for path, _ in scripted.requests) > opened,
        timeout=10,
        what="a new stream",
    )
    assert client.sync_errors["event"] == 11
    follows_changes(scripted, client, 2)


def test_a_config_body_nested_100000_deep_keeps_the_last_good_config_until_a_usable_one(
    scripted: ScriptedServer, clients: ClientFactory
) -> None:
    client = streaming_client(scripted, clients)
    statuses: list[tuple[str, str | None]] = []
    client.on_status(lambda status, detail: statuses.append((status, detail)))

    scripted.config = Answer(200, {"ETag": '"2"', "X-Graylane-Version": "2"}, DEEP.encode())
    scripted.send(notice(2))

    wait_until(lambda: client.sync_errors["config"] >= 1, timeout=10, what="the bad config")
    assert client.version == 1
    assert client.is_enabled("checkout", {"targetingKey": "u"}) is False  # the last good one
    assert "unusable answer" in (client.last_error or "")
    assert "RecursionError" in (client.last_error or "")
    assert statuses[0][0] == "error"

    # Then the server fixes it, and the client takes it without another notice
    scripted.config = config_answer(document("on"), 2)
    wait_until(lambda: client.version == 2, timeout=10, what="the fixed config")
    assert client.is_enabled("checkout", {"targetingKey": "u"}) is True
    wait_until(lambda: client.last_error is None, timeout=10, what="recovery")
    assert [name for name, _ in statuses][-1] == "recovered"


@pytest.mark.parametrize(
    "answer",
    [
        # 65 MiB of spaces in 65 KiB of gzip: the client stops reading at 64 MiB
        pytest.param(
            lambda: gzipped(Answer(200, {"ETag": '"2"'}, b" " * (65 * 1024 * 1024))),
            id="gzip-bomb",
        ),
        pytest.param(
            lambda: Answer(200, {"Content-Encoding": "gzip", "ETag": '"2"'}, b"not gzip"),
            id="bad-gzip",
        ),
        pytest.param(lambda: Answer(500, {}, DEEP.encode()), id="error-body-nested-deep"),
        pytest.param(
            lambda: Answer(503, {"Retry-After": "soon, perhaps"}, b"busy"), id="odd-retry-after"
        ),
    ],
)
def test_an_unusable_config_answer_is_counted_and_the_client_recovers(
    scripted: ScriptedServer, clients: ClientFactory, answer: Callable[[], Answer]
) -> None:
    client = streaming_client(scripted, clients)
    scripted.config = answer()
    scripted.send(notice(2))

    wait_until(lambda: client.last_error is not None, timeout=10, what="the failure")
    assert client.version == 1
    counted = client.sync_errors
    assert counted["response"] + counted["status"] >= 1, counted
    assert counted["unexpected"] == 0

    scripted.config = config_answer(document("on"), 2)
    wait_until(lambda: client.version == 2, timeout=10, what="the next good config")
    follows_changes(scripted, client, 3)


def test_an_error_body_nested_deep_is_described_by_its_status(
    scripted: ScriptedServer, clients: ClientFactory
) -> None:
    scripted.config = Answer(500, {"Content-Type": "application/json"}, DEEP.encode())
    client = clients(scripted.url, "gls_scripted", poll_interval=1.0)

    wait_until(lambda: client.last_error is not None, timeout=10, what="the failure")
    assert f"{scripted.url} answered GET /api/v1/sdk/config: 500" in (client.last_error or "")
    scripted.config = config_answer(document("on"), 1)
    scripted.send(notice(1))
    client.wait_ready(10)


def test_malformed_etag_and_version_headers_are_not_trusted(
    scripted: ScriptedServer, clients: ClientFactory
) -> None:
    scripted.config = config_answer(
        document("on"), 1, ETag="unquoted tag é", **{"X-Graylane-Version": "²"}
    )
    client = streaming_client(scripted, clients)

    assert client.version is None  # "²" is a digit to str.isdigit, not a version
    assert client.is_enabled("checkout", {"targetingKey": "u"}) is True
    scripted.send(notice(2))
    wait_until(lambda: len(scripted.config_requests()) >= 2, timeout=10, what="a second fetch")
    # the malformed ETag is never sent back
    assert all("if-none-match" not in headers for headers in scripted.config_requests())


def test_a_backup_whose_etag_would_break_every_request_still_lets_the_client_fetch(
    scripted: ScriptedServer, clients: ClientFactory, tmp_path: Path
) -> None:
    backup = tmp_path / "flags.json"
    backup.write_text(
        json.dumps(
            {
                "format": "graylane-backup/1",
                "environment": "production",
                "version": True,
                "etag": '"1"\r\nX-Injected: yes',
                "document": document("off"),
            }
        )
    )
    scripted.config = config_answer(document("on"), 5)

    client = clients(scripted.url, "gls_scripted", backup_path=backup, poll_interval=1.0)

    wait_until(lambda: client.version == 5, timeout=10, what="the server's config")
    assert client.is_enabled("checkout", {"targetingKey": "u"}) is True
    assert "x-injected" not in scripted.config_requests()[0]
    assert client.sync_errors["response"] == 0


def test_a_failing_fetch_while_the_stream_floods_events_never_kills_the_sync_thread(
    scripted: ScriptedServer, clients: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    client = streaming_client(scripted, clients)
    caplog.set_level(logging.DEBUG, logger="graylane")
    scripted.config = Answer(502, {}, b"\x1b[31mbad gateway\x1b[0m")

    scripted.send(notice(2) + f"data: {DEEP}\n\n".encode() + notice(3))

    wait_until(lambda: client.last_error is not None, timeout=10, what="the failure")
    # what the server said is logged with its control characters escaped
    assert "\x1b" not in (client.last_error or "")
    assert "\\x1b[31mbad gateway" in (client.last_error or "")
    scripted.config = config_answer(document("off"), 3)
    wait_until(lambda: client.version == 3, timeout=10, what="version 3")
    follows_changes(scripted, client, 4)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        ("0", 0.0),
        ("99999999999999999999", MAX_RETRY_AFTER),
        ("-5", 0.0),
        ("soon", 0.0),
        ("1.5", 0.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # a date in the past: no wait
        ("Fri, 31 Dec 9999 23:59:59 GMT", MAX_RETRY_AFTER),
        ("٣", 0.0),  # an Arabic-Indic digit is not a delay
    ],
)
def test_retry_after_is_read_as_seconds_or_a_date_and_capped(header: str, seconds: float) -> None:
    # as httpx hands over what the network sent: bytes, decoded when read
    assert retry_after(httpx.Headers({"Retry-After": header.encode()})) == seconds
