"""A new config is applied from the one held: the flags it did not change are taken over
as compiled, and what the client serves is exactly what a client built from scratch on
the same config serves. No server: configs are handed to the client as fetched bodies."""

from __future__ import annotations

import json
from typing import Any

import pytest

from graylane import Change, Client
from graylane.sync import UnusableConfig
from graylane.testing import override
from graylane.transport import Fetched

ENV = "production"
CONTEXTS = [
    {"targetingKey": f"user-{i}", "plan": plan, "country": country}
    for i, (plan, country) in enumerate(
        (plan, country) for plan in ("free", "pro", "team") for country in ("DE", "US", "JP")
    )
] + [{}, {"plan": "pro"}]


def config(version: int) -> dict[str, Any]:
    """Twelve flags of a few kinds; `version` only picks which one is toggled."""
    flags: dict[str, Any] = {}
    for i in range(12):
        env: dict[str, Any] = {
            "enabled": i != 3,
            "fallthrough": {
                "rollout": {"percentage": 9 * i, "variants": {"on": 100}},
                "otherwise": "off",
            },
        }
        if i % 3 == 0:
            env["rules"] = [{"name": "beta", "segment": "beta", "serve": {"variant": "on"}}]
        if i % 4 == 1:
            env["rules"] = [
                {
                    "name": "germany",
                    "when": [{"attribute": "country", "op": "in", "values": ["DE"]}],
                    "serve": {"variant": "on"},
                }
            ]
        flags[f"flag-{i}"] = {"environments": {ENV: env}}
    flags[f"flag-{version % 12}"]["environments"][ENV]["enabled"] ^= True
    return {"flags": flags, "segments": {"beta": {"include": ["user-1"], "when": []}}}


def fetched(document: dict[str, Any], version: int) -> Fetched:
    return Fetched(json.dumps(document).encode(), f'"v{version}"', version, ENV)


def assert_serves_as_from_scratch(client: Client, document: dict[str, Any]) -> None:
    scratch = Client.from_document(json.loads(json.dumps(document)), ENV)
    for key in [*document["flags"], "missing"]:
        for context in CONTEXTS:
            assert repr(client.evaluate(key, context)) == repr(scratch.evaluate(key, context))


def test_a_new_config_takes_over_the_flags_it_did_not_change() -> None:
    client = Client.from_document(config(1), ENV)
    changes: list[Change] = []
    client.on_change(changes.append)
    before = client._state.snapshot

    client._install_fetched(fetched(config(2), 2))

    after = client._state.snapshot
    assert client.version == 2
    assert [change.flags for change in changes] == [frozenset({"flag-1", "flag-2"})]
    assert after.flags["flag-1"] is not before.flags["flag-1"]
    assert after.flags["flag-2"] is not before.flags["flag-2"]
    kept = [key for key in after.flags if after.flags[key] is before.flags[key]]
    assert len(kept) == 10
    assert_serves_as_from_scratch(client, config(2))


def test_a_changed_segment_reaches_every_flag_that_uses_it() -> None:
    client = Client.from_document(config(1), ENV)
    changed = config(1)
    changed["segments"]["beta"]["include"] = ["user-2"]

    client._install_fetched(fetched(changed, 2))

    assert client.evaluate("flag-0", {"targetingKey": "user-2"}).rule == "beta"
    assert client.evaluate("flag-0", {"targetingKey": "user-1"}).rule is None
    assert_serves_as_from_scratch(client, changed)


def test_a_config_the_sdk_cannot_use_is_ignored_and_the_next_one_applies() -> None:
    client = Client.from_document(config(1), ENV)
    broken = config(2)
    del broken["segments"]["beta"]  # flags still name it

    # refused with the reason, for the sync thread to count, report and fetch again
    with pytest.raises(UnusableConfig, match="unknown segment 'beta'"):
        client._install_fetched(fetched(broken, 2))

    assert client.version is None
    assert_serves_as_from_scratch(client, config(1))
    client._install_fetched(fetched(config(3), 3))
    assert client.version == 3
    assert_serves_as_from_scratch(client, config(3))


def test_overridden_flags_stay_overridden_across_new_configs() -> None:
    client = Client.from_document(config(1), ENV)
    with override(client, {"flag-5": False}):
        client._install_fetched(fetched(config(5), 2))
        assert client.is_enabled("flag-5", {"targetingKey": "user-9"}) is False
        client._install_fetched(fetched(config(6), 3))
        assert client.is_enabled("flag-5", {"targetingKey": "user-9"}) is False
    assert_serves_as_from_scratch(client, config(6))
