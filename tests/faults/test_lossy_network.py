"""An SDK behind a network that loses half of its connections.

A seeded proxy between `graylane.Client` and the server resets every connection it
drops at once and cuts the ones it lets through after a short lifetime, streams
included. While a series of changes is made, an app thread evaluates, tracks and flushes
without pause: nothing may raise into it, and the client must still reach the final
config version within CONVERGE_BOUND.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from graylane import Client
from tests.faults.conftest import StartServer
from tests.faults.helpers import config, http, put_flag, sdk_token, string_flag
from tests.support.faults import LossyProxy, PrivateRedis
from tests.support.servers import wait_until

SEED = 20_240_601
CHANGES = 8
CONVERGE_BOUND = 20.0
"""Seconds for the client to hold the final version after the last change: it polls
every POLL seconds when a stream breaks, and half of its attempts fail."""
POLL = 0.5


@dataclass
class App:
    """Evaluates in a loop, the way an app's request handlers would."""

    client: Client
    stop: threading.Event = field(default_factory=threading.Event)
    calls: int = 0
    crashes: list[BaseException] = field(default_factory=list)

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                context = {"targetingKey": f"user-{self.calls % 100}"}
                with self.client.observe(context):
                    self.client.value("setting", context, "default")
                    self.client.is_enabled("missing", context)
                if self.calls % 200 == 0:
                    self.client.flush()
                self.calls += 1
                self.stop.wait(0.002)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.crashes.append(exc)


def test_an_sdk_behind_a_lossy_network_converges_and_never_raises(
    shared_database: str, private_redis: PrivateRedis, start_server: StartServer
) -> None:
    server = start_server("server", shared_database, private_redis.url)
    proxy = LossyProxy(server.port, seed=SEED, drop_rate=0.5).start()
    try:
        with http(server) as admin:
            token = sdk_token(admin)
            assert put_flag(admin, "setting", string_flag("v0")).status_code == 201
            client = Client(
                proxy.url,
                token,
                poll_interval=POLL,
                timeout=1.0,
                stream_read_timeout=2.0,
                flush_interval=0.5,
            )
            app = App(client)
            thread = threading.Thread(target=app.run, name="app", daemon=True)
            try:
                thread.start()
                for n in range(1, CHANGES + 1):
                    seen = proxy.dropped + proxy.forwarded
                    response = put_flag(admin, "setting", string_flag(f"v{n}"))
                    assert response.status_code == 200, response.text
                    # One change per connection the client opens: changes land while it
                    # is between connections, not all at once.
                    wait_until(
                        lambda seen=seen: proxy.dropped + proxy.forwarded > seen,  # type: ignore[misc]
                        timeout=10,
                        what="the client to open another connection",
                    )
                with http(server, token) as sdk:
                    final, _ = config(sdk)
                wait_until(
                    lambda: client.version == final,
                    timeout=CONVERGE_BOUND,
                    what=f"the client to reach version {final} (it holds {client.version})",
                )
                assert client.value("setting", {"targetingKey": "u"}, "default") == f"v{CHANGES}"
            finally:
                app.stop.set()
                thread.join(timeout=10)
                client.close()
    finally:
        proxy.close()
    assert app.crashes == []
    assert app.calls > 0
    # The network really was lossy, and the client really got through it.
    assert proxy.dropped >= 3
    assert proxy.forwarded >= 3
