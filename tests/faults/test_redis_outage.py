"""Redis stopped mid-run, under two replicas sharing PostgreSQL and that Redis.

While Redis is away both replicas keep serving config and taking writes, and an SDK on
each keeps working. When it returns, every change made meanwhile reaches the other
replica and its SDKs. The replicas' periodic database check is set far longer than the
test, so only the bus reconnecting (and looking up what it missed) can explain that.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from graylane import Client
from tests.faults.conftest import StartServers
from tests.faults.helpers import config, http, put_flag, sdk_token, served_value, string_flag
from tests.support.faults import PrivateRedis
from tests.support.servers import wait_until

WRITE_BOUND = 3.0
"""Seconds a write may take while Redis is down: a failed notice must not hold it up."""
CATCH_UP_BOUND = 20.0
"""Seconds for the bus to reconnect after Redis returns (its retry delay grows to 10 s)
and the replica to rebuild; well inside the 60 s database check."""


@pytest.fixture
def sdk_clients() -> Iterator[list[Client]]:
    made: list[Client] = []
    yield made
    for client in made:
        client.close()


def test_changes_made_while_redis_is_down_reach_every_replica_and_sdk(
    shared_database: str,
    private_redis: PrivateRedis,
    start_servers: StartServers,
    sdk_clients: list[Client],
) -> None:
    a, b = start_servers("ab", shared_database, private_redis.url)
    with http(a) as admin_a, http(b) as admin_b:
        token = sdk_token(admin_a)
        with http(a, token) as sdk_a, http(b, token) as sdk_b:
            for replica in (a, b):
                client = Client(replica.url, token, poll_interval=1.0, timeout=2.0)
                sdk_clients.append(client)
                client.wait_ready(10)

            # Before the outage: a change through A reaches B through Redis.
            assert admin_a.put("/api/v1/flags/before", json=string_flag("one")).status_code == 201
            version = config(sdk_a)[0]
            wait_until(lambda: config(sdk_b)[0] == version, timeout=10, what="B to hear of it")

            private_redis.stop()

            # Writes through either replica keep working, promptly.
            writes = [
                (admin_a, "during-a", "two"),
                (admin_b, "during-b", "three"),
                (admin_a, "before", "four"),
                (admin_a, "during-last", "five"),
            ]
            for admin, key, value in writes:
                started = time.monotonic()
                response = put_flag(admin, key, string_flag(value))
                elapsed = time.monotonic() - started
                assert response.status_code in (200, 201), response.text
                assert elapsed < WRITE_BOUND, f"a write took {elapsed:.1f}s without Redis"
            expected = {"before": "four", "during-a": "two", "during-b": "three"}
            expected |= {"during-last": "five"}

            # Both replicas still serve config; A serves its own writes at once.
            final, document_a = config(sdk_a)
            assert {k: served_value(document_a, k) for k in expected} == expected
            behind, _ = config(sdk_b)
            assert behind < final  # B cannot know of A's last write without Redis
            wait_until(
                lambda: sdk_clients[0].version == final,
                timeout=10,
                what="A's SDK to follow A during the outage",
            )

            private_redis.start()

            wait_until(
                lambda: config(sdk_b)[0] == final,
                timeout=CATCH_UP_BOUND,
                what="B to catch up once Redis is back",
            )
            _, document_b = config(sdk_b)
            assert document_b == config(sdk_a)[1]
            for client in sdk_clients:
                wait_until(
                    lambda client=client: client.version == final,  # type: ignore[misc]
                    timeout=CATCH_UP_BOUND,
                    what="every SDK to hold the final version",
                )
                context = {"targetingKey": "u"}
                assert {k: client.value(k, context, "") for k in expected} == expected

            # And the bus carries changes again: B hears of the next one promptly.
            assert admin_a.put("/api/v1/flags/after", json=string_flag("six")).status_code == 201
            after = config(sdk_a)[0]
            wait_until(lambda: config(sdk_b)[0] == after, timeout=10, what="fan-out again")
            assert served_value(config(sdk_b)[1], "after") == "six"
