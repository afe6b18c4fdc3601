"""`graylane.testing`: clients with forced values for an app's own tests, and overrides
that hold inside a block and are undone after it."""

from __future__ import annotations

import httpx
import pytest

from graylane import Client, Reason
from graylane.testing import client_with, override
from tests.sdk.conftest import ClientFactory
from tests.sdk.support import bucket, put_flag, rollout_flag, set_enabled, static_flag
from tests.support.servers import LiveServer, wait_until

USERS = [{"targetingKey": f"user-{i}"} for i in range(200)]


def test_client_with_serves_exactly_the_given_values_to_everyone() -> None:
    client = client_with(
        {
            "new-checkout": True,
            "button-color": "green",
            "page-size": 25,
            "ratio": 0.5,
            "theme": {"bg": "black"},
            "kill": False,
        }
    )

    assert client.ready is True
    for context in [*USERS, {}, None, {"email": "x@example.com"}]:
        assert client.is_enabled("new-checkout", context) is True
        assert client.is_enabled("kill", context, default=True) is False
        assert client.value("button-color", context, "") == "green"
        assert client.value("page-size", context, 0) == 25
        assert client.value("ratio", context, 0.0) == 0.5
        assert client.value("theme", context, {}) == {"bg": "black"}
    details = client.evaluate("new-checkout", {"targetingKey": "u"})
    assert (details.value, details.reason, details.error_code) == (True, Reason.STATIC, None)
    assert sorted(client.all_flags({})) == sorted(
        ["new-checkout", "button-color", "page-size", "ratio", "theme", "kill"]
    )
    # flags it was not given do not exist
    assert client.is_enabled("other", {}, default=True) is True
    assert str(client.evaluate("other").error_code) == "FLAG_NOT_FOUND"
    client.close()


def test_client_with_refuses_a_none_value() -> None:
    with pytest.raises(ValueError, match="new-checkout"):
        client_with({"new-checkout": None})  # type: ignore[dict-item]


def test_client_with_takes_the_environment_it_is_told() -> None:
    assert client_with({"a": True}, environment="qa").environment == "qa"
    assert client_with({"a": True}).environment == "test"


def test_override_forces_values_inside_the_block_and_restores_them_after() -> None:
    client = client_with({"new-checkout": False, "button-color": "blue", "page-size": 10})

    with override(client, {"new-checkout": True, "page-size": 99, "brand-new": "yes"}) as same:
        assert same is client
        assert all(client.is_enabled("new-checkout", u) for u in USERS)
        assert client.value("page-size", USERS[0], 0) == 99
        assert client.value("brand-new", USERS[0], "") == "yes"
        # other flags untouched
        assert client.value("button-color", USERS[0], "") == "blue"

    assert not any(client.is_enabled("new-checkout", u) for u in USERS)
    assert client.value("page-size", USERS[0], 0) == 10
    assert client.value("button-color", USERS[0], "") == "blue"
    assert client.is_enabled("brand-new", USERS[0], default=True) is True  # gone again
    assert str(client.evaluate("brand-new").error_code) == "FLAG_NOT_FOUND"


def test_override_restores_even_when_the_block_raises() -> None:
    client = client_with({"new-checkout": False})
    seen: list[bool] = []

    def code_under_test() -> None:
        with override(client, {"new-checkout": True}):
            seen.append(client.is_enabled("new-checkout", {}))
            raise RuntimeError("the code under test failed")

    with pytest.raises(RuntimeError):
        code_under_test()
    assert seen == [True]
    assert client.is_enabled("new-checkout", {}) is False


def test_overrides_nest() -> None:
    client = client_with({"a": 1, "b": 2})
    with override(client, {"a": 10}):
        with override(client, {"b": 20}):
            assert (client.value("a", {}, 0), client.value("b", {}, 0)) == (10, 20)
        assert (client.value("a", {}, 0), client.value("b", {}, 0)) == (10, 2)
    assert (client.value("a", {}, 0), client.value("b", {}, 0)) == (1, 2)


def test_override_on_a_live_client_leaves_its_other_flags_and_rollouts_alone(
    server: LiveServer, admin: httpx.Client, sdk_key: str, clients: ClientFactory
) -> None:
    put_flag(admin, "checkout", rollout_flag(50))
    put_flag(admin, "button-color", static_flag({"blue": "#00f", "green": "#0f0"}, "green"))
    client: Client = clients(server.url, sdk_key)
    client.wait_ready(10)
    expected = [bucket("checkout", u["targetingKey"]) < 50_000 for u in USERS]

    with override(client, {"button-color": "#f0f"}):
        assert client.value("button-color", USERS[0], "") == "#f0f"
        assert [client.is_enabled("checkout", u) for u in USERS] == expected

    assert client.value("button-color", USERS[0], "") == "#0f0"
    assert [client.is_enabled("checkout", u) for u in USERS] == expected


def test_an_override_holds_while_the_server_changes_other_flags(
    server: LiveServer, admin: httpx.Client, sdk_key: str, clients: ClientFactory
) -> None:
    put_flag(admin, "checkout", rollout_flag(100))
    put_flag(admin, "other", rollout_flag(100))
    client: Client = clients(server.url, sdk_key, poll_interval=3600)
    client.wait_ready(10)

    with override(client, {"checkout": False}):
        set_enabled(admin, "other", False)
        wait_until(
            lambda: client.is_enabled("other", {"targetingKey": "u"}) is False,
            timeout=5,
            what="the server's change to another flag",
        )
        # the forced value is still forced
        assert client.is_enabled("checkout", {"targetingKey": "u"}) is False


def test_a_change_that_arrives_during_an_override_is_served_after_it(
    server: LiveServer, admin: httpx.Client, sdk_key: str, clients: ClientFactory
) -> None:
    put_flag(admin, "checkout", rollout_flag(100))
    put_flag(admin, "other", rollout_flag(100))
    client: Client = clients(server.url, sdk_key, poll_interval=3600)
    client.wait_ready(10)
    version = client.version

    with override(client, {"checkout": False}):
        set_enabled(admin, "other", False)
        wait_until(lambda: client.version != version, timeout=5, what="the server's change")

    # the block is over: the server's latest config is what the client serves
    assert client.is_enabled("checkout", {"targetingKey": "u"}) is True
    assert client.is_enabled("other", {"targetingKey": "u"}) is False
