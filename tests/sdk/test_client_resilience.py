"""When the server goes away the client keeps its last good answers, says it is stale,
and catches up when the server is back; a backup file lets an app start without it."""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from graylane import Client, ErrorCode
from graylane_server.settings import Settings
from tests.sdk.conftest import ClientFactory, StartProcess
from tests.sdk.support import (
    bucket,
    put_flag,
    rollout_flag,
    sdk_token,
    set_enabled,
    static_flag,
)
from tests.server.conftest import ADMIN_TOKEN
from tests.support.servers import LiveServer, free_port, wait_until

UNITS = [f"user-{i}" for i in range(2_000)]
COLOURS = {"blue": "#1f6feb", "green": "#2da44e"}


def answers(client: Client) -> list[tuple[bool, str | None, object]]:
    """What the client serves for many contexts, across three flags."""
    return [
        (
            client.is_enabled("checkout", {"targetingKey": unit}),
            client.variant("checkout", {"targetingKey": unit}),
            client.value("button-color", {"targetingKey": unit}, "none"),
        )
        for unit in UNITS
    ]


def seed(admin: httpx.Client) -> None:
    put_flag(admin, "checkout", rollout_flag(50))
    put_flag(admin, "button-color", static_flag(COLOURS, "green"))
    put_flag(admin, "later", rollout_flag(100, enabled=False))


class Statuses:
    """`on_status` calls, in order, each with an event a test can wait on."""

    def __init__(self, client: Client) -> None:
        self.seen: list[tuple[str, str | None]] = []
        self._events: dict[str, threading.Event] = {
            name: threading.Event() for name in ("ready", "error", "stale", "recovered")
        }
        client.on_status(self._heard)

    def _heard(self, status: str, detail: str | None) -> None:
        self.seen.append((status, detail))
        self._events[status].set()

    def wait(self, status: str, timeout: float) -> None:
        assert self._events[status].wait(timeout), (
            f"no {status!r} status in {timeout}s: {self.seen}"
        )

    def names(self) -> list[str]:
        return [name for name, _ in self.seen]


def test_a_killed_server_leaves_every_answer_in_place_then_the_client_catches_up(
    start_process: StartProcess, settings: Settings, clients: ClientFactory
) -> None:
    server = start_process("primary")
    with server.admin() as admin:
        seed(admin)
        key = sdk_token(admin)
    # heartbeats every 0.2 s keep a healthy client well inside stale_after
    client = clients(server.url, key, stale_after=1.0, poll_interval=0.5, flush_interval=0.1)
    statuses = Statuses(client)
    client.wait_ready(10)
    before = answers(client)
    assert sum(on for on, _, _ in before) == sum(bucket("checkout", u) < 50_000 for u in UNITS)
    assert client.stale is False
    assert set(statuses.names()) <= {"ready"}  # nothing went wrong while it was up

    # When the server dies without a word
    server.kill()

    # Then the client reports the error, then staleness, and serves what it served
    statuses.wait("error", 10)
    wait_until(lambda: client.stale, timeout=10, what="the client to call itself stale")
    statuses.wait("stale", 10)
    assert answers(client) == before
    assert client.is_enabled("later", {"targetingKey": "u1"}, default=True) is False
    assert client.last_error is not None

    # When a change is made (through another replica) while this server is down
    other = LiveServer(settings).start()
    try:
        with httpx.Client(
            base_url=other.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10
        ) as admin:
            set_enabled(admin, "later", True)
    finally:
        other.stop()
    # the client still serves its last good config
    assert client.is_enabled("later", {"targetingKey": "u1"}) is False

    # When the server comes back on the same port
    server.start()

    # Then the client catches up and says so
    wait_until(
        lambda: client.is_enabled("later", {"targetingKey": "u1"}) is True,
        timeout=10,
        what="the change made while the server was down",
    )
    statuses.wait("recovered", 10)
    wait_until(lambda: not client.stale, timeout=10, what="the client to be fresh again")
    assert client.last_error is None
    assert answers(client) == before
    # and a change made after the restart arrives through its new stream
    with server.admin() as admin:
        set_enabled(admin, "checkout", False)
    wait_until(
        lambda: not any(client.is_enabled("checkout", {"targetingKey": u}) for u in UNITS[:200]),
        timeout=5,
        what="the kill switch after the restart",
    )
    assert statuses.names().index("error") < statuses.names().index("stale")
    assert statuses.names().index("stale") < statuses.names().index("recovered")


def test_a_client_starts_from_the_backup_another_client_wrote_while_the_server_is_down(
    server: LiveServer, admin: httpx.Client, sdk_key: str, clients: ClientFactory, tmp_path: Path
) -> None:
    backup = tmp_path / "state" / "flags.json"
    seed(admin)
    writer = clients(server.url, sdk_key, backup_path=backup)
    writer.wait_ready(10)
    wait_until(backup.exists, timeout=5, what="the backup file")
    expected = answers(writer)
    version = writer.version
    writer.close()
    server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/healthz", timeout=1)

    # When an app starts while the server is down
    client = clients(server.url, sdk_key, backup_path=backup, timeout=1)

    # Then it is ready at once, serving the backup's answers
    assert client.ready is True
    client.wait_ready(0)
    assert client.version == version
    assert client.environment == "production"
    assert answers(client) == expected
    assert client.stale is True  # it never heard from the server


@pytest.mark.parametrize(
    ("content", "says"),
    [
        pytest.param(b"\x00\xff\xfe garbage \x80", "unreadable backup", id="garbage-bytes"),
        pytest.param(b'{"format": "graylane-backup/1", "envir', "unreadable backup", id="cut"),
        pytest.param(b'{"flags": {}}', "not a Graylane backup file", id="not-a-backup"),
        pytest.param(b"[1, 2, 3]", "not a Graylane backup file", id="a-list"),
        pytest.param(
            json.dumps(
                {
                    "format": "graylane-backup/1",
                    "environment": "production",
                    "document": {"flags": {"checkout": {"variants": 3}}},
                }
            ).encode(),
            "not a usable backup",
            id="invalid-document",
        ),
    ],
)
def test_a_corrupt_backup_is_logged_clearly_and_code_defaults_are_served(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes, says: str
) -> None:
    backup = tmp_path / "flags.json"
    backup.write_bytes(content)
    url = f"http://127.0.0.1:{free_port()}"
    caplog.set_level(logging.INFO, logger="graylane")

    with Client(url, "gls_whatever", backup_path=backup, timeout=1) as client:
        errors = [r for r in caplog.records if r.name == "graylane" and r.levelno >= logging.ERROR]
        assert len(errors) == 1, [r.getMessage() for r in caplog.records]
        assert str(backup) in errors[0].getMessage()
        assert says in errors[0].getMessage()
        assert client.ready is False
        assert client.is_enabled("checkout", {"targetingKey": "u1"}, default=True) is True
        assert client.value("button-color", {"targetingKey": "u1"}, "red") == "red"
        details = client.evaluate("checkout", {"targetingKey": "u1"})
        assert details.error_code is ErrorCode.PROVIDER_NOT_READY
        assert details.value is None
    # the file is left for the next good config to replace, not deleted
    assert backup.read_bytes() == content


def test_a_missing_backup_is_not_an_error(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="graylane")
    url = f"http://127.0.0.1:{free_port()}"
    with Client(url, "gls_whatever", backup_path=tmp_path / "none.json", timeout=1) as client:
        assert client.ready is False
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_a_corrupt_backup_is_replaced_by_the_first_good_config(
    server: LiveServer, admin: httpx.Client, sdk_key: str, clients: ClientFactory, tmp_path: Path
) -> None:
    seed(admin)
    backup = tmp_path / "flags.json"
    backup.write_bytes(b"\x00garbage")
    client = clients(server.url, sdk_key, backup_path=backup)
    client.wait_ready(10)

    def saved() -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads(backup.read_text())
        except (ValueError, UnicodeDecodeError):
            return None
        return data

    wait_until(lambda: saved() is not None, timeout=5, what="a good backup")
    assert (saved() or {})["version"] == client.version


def test_the_backup_is_rewritten_atomically_on_every_change(
    server: LiveServer, admin: httpx.Client, sdk_key: str, clients: ClientFactory, tmp_path: Path
) -> None:
    seed(admin)
    folder = tmp_path / "backups"
    backup = folder / "flags.json"
    client = clients(server.url, sdk_key, backup_path=backup, poll_interval=3600)
    client.wait_ready(10)
    wait_until(backup.exists, timeout=5, what="the first backup")

    # a reader that checks the file the whole time changes are written
    torn: list[str] = []
    reads = [0]
    stop = threading.Event()

    def read_all_the_time() -> None:
        while not stop.is_set():
            try:
                data = json.loads(backup.read_text(encoding="utf-8"))
                assert data["format"] == "graylane-backup/1"
                assert "checkout" in data["document"]["flags"]
            except (OSError, ValueError, KeyError, AssertionError) as exc:
                torn.append(repr(exc))
            reads[0] += 1

    reader = threading.Thread(target=read_all_the_time, daemon=True)
    reader.start()
    try:
        for round_ in range(6):
            set_enabled(admin, "later", round_ % 2 == 0)
            want = round_ % 2 == 0
            wait_until(
                lambda want=want: client.is_enabled("later", {"targetingKey": "u"}) is want,
                timeout=5,
                what=f"change {round_}",
            )
            wait_until(
                lambda: json.loads(backup.read_text())["version"] == client.version,
                timeout=5,
                what=f"the backup of change {round_}",
            )
    finally:
        stop.set()
        reader.join(5)

    assert torn == []
    assert reads[0] > 10
    data = json.loads(backup.read_text())
    assert data["version"] == client.version
    assert data["environment"] == "production"
    later = data["document"]["flags"]["later"]["environments"]["production"]
    assert later["enabled"] is False  # the last change (round 5) switched it off
    assert sorted(os.listdir(folder)) == ["flags.json"]  # no temporary files left behind


def test_a_backup_file_serves_offline_through_from_file(
    server: LiveServer, admin: httpx.Client, sdk_key: str, clients: ClientFactory, tmp_path: Path
) -> None:
    seed(admin)
    backup = tmp_path / "flags.json"
    live = clients(server.url, sdk_key, backup_path=backup)
    live.wait_ready(10)
    wait_until(backup.exists, timeout=5, what="the backup")
    expected = answers(live)
    live.close()
    server.stop()

    offline = Client.from_file(backup)

    assert offline.ready is True
    assert offline.environment == "production"
    assert offline.stale is False
    assert answers(offline) == expected
    assert offline.flush() is True
    offline.close()
