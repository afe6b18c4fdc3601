"""A client against a live server: it gets ready, answers exactly as contract 2 says, and
follows changes through the stream (or by polling when streaming is off)."""

from __future__ import annotations

import re
import threading

import httpx
import pytest

from graylane import Change, Client, ClientNotReady, Reason
from tests.sdk.conftest import ClientFactory
from tests.sdk.support import (
    bucket,
    expected_variant,
    put_flag,
    rollout_flag,
    set_enabled,
    streams_open,
)
from tests.server.conftest import ADMIN_TOKEN
from tests.support.servers import LiveServer, free_port, wait_until

UNITS = [f"user-{i}" for i in range(5_000)]


def test_thousands_of_contexts_get_exactly_the_rollout_of_contract_2(
    server: LiveServer, admin: httpx.Client, sdk_key: str, clients: ClientFactory
) -> None:
    # Given a boolean rollout to 23.456% with its own salt
    put_flag(admin, "checkout", rollout_flag(23.456, salt="checkout-salt-2024"))
    client = clients(server.url, sdk_key)

    # When the client is ready
    client.wait_ready(10)

    # Then every unit is in or out exactly as contract 2, computed here with mmh3, says
    wrong = []
    for unit in UNITS:
        context = {"targetingKey": unit}
        inside = bucket("checkout-salt-2024", unit) < 23_456
        details = client.evaluate("checkout", context)
        if (
            client.is_enabled("checkout", context) is not inside
            or details.variant != ("on" if inside else "off")
            or details.reason is not Reason.SPLIT
            or details.bucket != bucket("checkout-salt-2024", unit)
        ):
            wrong.append((unit, inside, details))
    assert wrong == [], f"{len(wrong)} units disagree with contract 2, e.g. {wrong[:3]}"
    # and the sample exercises both sides (about 23.456% of 5,000 are inside)
    inside_count = sum(client.is_enabled("checkout", {"targetingKey": u}) for u in UNITS)
    assert 1_000 < inside_count < 1_350


def test_a_split_between_variants_follows_the_weights_in_document_order(
    server: LiveServer, admin: httpx.Client, sdk_key: str, clients: ClientFactory
) -> None:
    # Given a three-way split, in an order that is not alphabetical, served to 37.5%
    split = {"red": 20, "green": 30.5, "blue": 49.5}
    put_flag(
        admin,
        "banner",
        {
            "variants": {"none": "", "red": "#f00", "green": "#0f0", "blue": "#00f"},
            "off_variant": "none",
            "environments": {
                "production": {
                    "enabled": True,
                    "fallthrough": {
                        "rollout": {"percentage": 37.5, "variants": split},
                        "otherwise": "none",
                    },
                }
            },
        },
    )
    client = clients(server.url, sdk_key)
    client.wait_ready(10)

    # Then each unit gets the first variant whose running weight is above its
    # variant bucket, the weights taken in the order the document gives them
    wrong = []
    for unit in UNITS:
        want = expected_variant("banner", unit, 37.5, split, "none")
        got = client.variant("banner", {"targetingKey": unit})
        if got != want:
            wrong.append((unit, want, got))
    assert wrong == [], f"{len(wrong)} of {len(UNITS)} units get another variant, e.g. {wrong[:3]}"
    served = {client.variant("banner", {"targetingKey": u}) for u in UNITS}
    assert served == {"none", "red", "green", "blue"}


def test_integer_units_bucket_as_their_decimal_text_and_a_missing_unit_is_outside(
    server: LiveServer, admin: httpx.Client, sdk_key: str, clients: ClientFactory
) -> None:
    put_flag(admin, "checkout", rollout_flag(50))
    client = clients(server.url, sdk_key)
    client.wait_ready(10)

    for number in range(1_000):
        want = bucket("checkout", str(number)) < 50_000
        assert client.is_enabled("checkout", {"targetingKey": number}) is want, number
    for context in ({}, {"targetingKey": None}, {"targetingKey": 1.5}, {"targetingKey": True}):
        details = client.evaluate("checkout", context)
        assert (details.value, details.variant, details.reason) == (False, "off", Reason.SPLIT)
        assert details.error_code is None


def test_a_flag_flipped_through_the_admin_api_reaches_the_client_through_the_stream(
    server: LiveServer, admin: httpx.Client, sdk_key: str, clients: ClientFactory
) -> None:
    put_flag(admin, "checkout", rollout_flag(100))
    put_flag(admin, "other", rollout_flag(100))
    # polling every hour: only the stream can bring the change in time
    client = clients(server.url, sdk_key, poll_interval=3600)
    client.wait_ready(10)
    wait_until(lambda: streams_open(server.url) == 1, timeout=5, what="the client's stream")
    assert client.is_enabled("checkout", {"targetingKey": "u1"}) is True
    changes: list[Change] = []
    arrived = threading.Event()

    def listener(change: Change) -> None:
        changes.append(change)
        arrived.set()

    client.on_change(listener)
    before = client.version

    # When a release manager hits the kill switch
    set_enabled(admin, "checkout", False)

    # Then the client hears of it and serves the off variant
    assert arrived.wait(5), "no on_change callback within 5 s"
    assert changes[0].flags == frozenset({"checkout"})
    assert before is not None
    assert changes[0].previous_version == before
    assert changes[0].version is not None
    assert changes[0].version > before
    assert client.version == changes[0].version
    assert client.is_enabled("checkout", {"targetingKey": "u1"}) is False
    assert client.evaluate("checkout", {"targetingKey": "u1"}).reason is Reason.DISABLED
    assert client.is_enabled("other", {"targetingKey": "u1"}) is True

    # and flipping it back reaches it too
    arrived.clear()
    set_enabled(admin, "checkout", True)
    assert arrived.wait(5), "no on_change callback for the second flip"
    assert client.is_enabled("checkout", {"targetingKey": "u1"}) is True


def test_an_unsubscribed_listener_hears_nothing_more(
    server: LiveServer, admin: httpx.Client, sdk_key: str, clients: ClientFactory
) -> None:
    put_flag(admin, "checkout", rollout_flag(100))
    client = clients(server.url, sdk_key, poll_interval=3600)
    client.wait_ready(10)
    heard: list[Change] = []
    kept = threading.Event()
    unsubscribe = client.on_change(heard.append)
    client.on_change(lambda _: kept.set())
    unsubscribe()

    set_enabled(admin, "checkout", False)

    assert kept.wait(5)
    assert heard == []


def test_wait_ready_on_a_closed_port_raises_client_not_ready_naming_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with Client(url, "gls_nothing-listens-here", timeout=1) as client:
        with pytest.raises(ClientNotReady, match=re.escape(url)):
            client.wait_ready(0.5)
        assert client.ready is False
        # and evaluations serve code defaults meanwhile
        assert client.is_enabled("checkout", {"targetingKey": "u1"}, default=True) is True
        assert str(client.evaluate("checkout").error_code) == "PROVIDER_NOT_READY"


@pytest.mark.parametrize(
    ("key", "status"),
    [
        pytest.param("gls_not-a-real-token", "401", id="unknown-key"),
        pytest.param(ADMIN_TOKEN, "403", id="an-admin-token"),
    ],
)
def test_a_refused_sdk_key_is_reported_as_refused_not_as_an_unreachable_server(
    server: LiveServer,
    admin: httpx.Client,
    clients: ClientFactory,
    caplog: pytest.LogCaptureFixture,
    key: str,
    status: str,
) -> None:
    put_flag(admin, "checkout", rollout_flag(100))
    statuses: list[tuple[str, str | None]] = []
    client = clients(server.url, key, poll_interval=1.0)
    client.on_status(lambda name, detail: statuses.append((name, detail)))

    wait_until(lambda: client.last_error is not None, timeout=5, what="a failed fetch")

    assert client.ready is False
    said = client.last_error or ""
    assert f"{server.url} refused the SDK key" in said
    assert status in said
    assert "cannot reach" not in said
    wait_until(lambda: statuses != [], timeout=5, what="the status callback")
    assert statuses[0][0] == "error"
    assert "refused the SDK key" in (statuses[0][1] or "")
    logged = [r.getMessage() for r in caplog.records if r.name == "graylane"]
    assert any("refused the SDK key" in line for line in logged), logged
    assert not any("cannot reach" in line for line in logged), logged
    assert client.sync_errors["refused"] >= 1
    assert client.sync_errors["network"] == 0
    with pytest.raises(ClientNotReady, match=f"refused the SDK key.*{status}"):
        client.wait_ready(0.2)
    assert client.is_enabled("checkout", {"targetingKey": "u1"}) is False


def test_a_server_that_cannot_be_reached_is_reported_as_such(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with Client(url, "gls_nothing-listens-here", timeout=1) as client:
        wait_until(lambda: client.last_error is not None, timeout=5, what="a failed fetch")
        assert (client.last_error or "").startswith(f"cannot reach {url} (ConnectError")
        assert client.sync_errors["network"] >= 1
        assert client.sync_errors["refused"] == 0
    assert any(f"cannot reach {url}" in r.getMessage() for r in caplog.records)


def test_a_client_without_a_stream_converges_by_polling(
    server: LiveServer, admin: httpx.Client, sdk_key: str, clients: ClientFactory
) -> None:
    put_flag(admin, "checkout", rollout_flag(100))
    client = clients(server.url, sdk_key, stream=False, poll_interval=0.2)
    client.wait_ready(10)
    assert client.is_enabled("checkout", {"targetingKey": "u1"}) is True

    set_enabled(admin, "checkout", False)

    wait_until(
        lambda: client.is_enabled("checkout", {"targetingKey": "u1"}) is False,
        timeout=5,
        what="the polling client to see the kill switch",
    )
    put_flag(admin, "added-later", rollout_flag(100))
    wait_until(
        lambda: client.is_enabled("added-later", {"targetingKey": "u1"}) is True,
        timeout=5,
        what="the polling client to see a new flag",
    )
    # it never opened a stream
    assert streams_open(server.url) == 0
