"""The replica running the ramp controller is SIGKILLed in the middle of a ramp.

Two replicas tick every INTERVAL seconds; the controller's lease lives three intervals.
A ramp with short stages, a webhook guard that never fires and an SDK reporting healthy
traffic at whatever percentage it is served advances on its own. Killing the replica that
holds the lease must hand the ramp to the other within TAKEOVER_BOUND, and the audit log
must show each stage transition exactly once, in order, with the ramp completed.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
from sqlalchemy import Engine, create_engine, text

from graylane_server.ramps.observations import CLUSTERS
from tests.faults.conftest import StartServers
from tests.faults.helpers import ENV, http, sdk_token
from tests.support.faults import PrivateRedis
from tests.support.servers import ServerProcess, wait_until

INTERVAL = 0.5
LEASE_TTL = 3 * INTERVAL
"""The controller's lease lives three ticks (graylane_server.ramps.controller)."""
TAKEOVER_BOUND = LEASE_TTL + INTERVAL + 3.0
"""The dead leader's lease runs out, the survivor's next tick takes it; plus slack for a
busy machine."""
STAGES = [5, 10, 20, 35, 50, 75, 100]
KILL_AFTER_STAGE = 2
STAGE_SECONDS = 0.6
STAGES_BOUND = 90.0
"""A stage counts exposures from the first 10-second usage bucket that starts inside it, so
each stage can take up to ~10 s of reports before it advances."""
RAMP = f"/api/v1/flags/checkout/environments/{ENV}/ramp"


def ramped_flag() -> dict[str, Any]:
    return {
        "variants": {"on": True, "off": False},
        "off_variant": "off",
        "environments": {
            ENV: {
                "enabled": True,
                "fallthrough": {
                    "rollout": {"percentage": 0, "variants": {"on": 100}},
                    "otherwise": "off",
                },
                "ramp": {
                    "stages": STAGES,
                    "min_stage_duration": STAGE_SECONDS,
                    "min_samples": 1,
                    "guards": [{"kind": "webhook", "name": "failover-load"}],
                    "auto_advance": True,
                },
            }
        },
    }


class Reporter:
    """An SDK reporting healthy traffic every REPORT_EVERY seconds, split between the
    groups as the rollout it is served splits units, to whichever replica `url` names."""

    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token
        self.stop = threading.Event()
        self.last: tuple[float, int, str] | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        since = time.time()
        while not self.stop.wait(REPORT_EVERY):
            try:
                with http(self.url) as admin, http(self.url, self.token) as sdk:
                    percentage = admin.get(RAMP).json()["percentage"]
                    now = time.time()
                    exposed = round(1000 * percentage / 100)
                    events = [
                        {
                            "flag": "checkout",
                            "variant": variant,
                            "group": group,
                            "event": "request",
                            "count": count,
                            "percentage": percentage,
                            "clusters": spread(count),
                        }
                        for group, variant, count in (
                            ("exposed", "on", exposed),
                            ("unexposed", "off", 1000 - exposed),
                        )
                        if count
                    ]
                    window = {"start": since, "end": now}
                    posted = sdk.post(
                        "/api/v1/sdk/metrics", json={"window": window, "events": events}
                    )
                    self.last = (percentage, posted.status_code, posted.text[:300])
                    since = now
            except (httpx.HTTPError, KeyError, ValueError):
                continue  # the replica it names is being killed: the next round retries


REPORT_EVERY = 0.1


def spread(count: int) -> list[int]:
    """`count` split as evenly as it goes over the unit clusters."""
    share, rest = divmod(count, CLUSTERS)
    return [share + (1 if cluster < rest else 0) for cluster in range(CLUSTERS)]


def lease_holder_pid(engine: Engine) -> int | None:
    """The pid in the lease holder's name (`host:pid:nonce`), while the lease is live."""
    with engine.connect() as connection:
        holder = connection.execute(
            text("SELECT holder FROM leases WHERE name = 'ramp-controller' AND expires_at > now()")
        ).scalar_one_or_none()
    return None if holder is None else int(holder.split(":")[-2])


def pid(server: ServerProcess) -> int:
    assert server.process is not None
    return server.process.pid


def stage(admin: httpx.Client) -> tuple[str, int]:
    ramp = admin.get(RAMP)
    assert ramp.status_code == 200, ramp.text
    body = ramp.json()
    return body["status"], body["stage"]


def test_a_killed_controller_hands_the_ramp_over_and_no_stage_moves_twice(
    shared_database: str,
    private_redis: PrivateRedis,
    start_servers: StartServers,
) -> None:
    settings = {"controller_interval": INTERVAL}
    replicas = start_servers("ab", shared_database, private_redis.url, **settings)
    engine = create_engine(shared_database)
    reporter: Reporter | None = None
    try:
        with http(replicas[0]) as admin:
            assert admin.put("/api/v1/flags/checkout", json=ramped_flag()).status_code == 201
            reporter = Reporter(replicas[0].url, sdk_token(admin))
            reporter.thread.start()
            assert admin.post(f"{RAMP}/start").status_code == 200
            wait_until(
                lambda: stage(admin)[1] >= KILL_AFTER_STAGE,
                timeout=STAGES_BOUND,
                what=f"the ramp to reach stage {KILL_AFTER_STAGE}",
            )
            holders: list[ServerProcess] = []

            def leader_found() -> bool:
                holder = lease_holder_pid(engine)
                holders[:] = [r for r in replicas if pid(r) == holder]
                return bool(holders)

            wait_until(leader_found, what="a replica holding a live lease")
            leader = holders[0]
            survivor = next(r for r in replicas if r is not leader)

            reporter.url = survivor.url
            leader.kill()
            killed_at = time.monotonic()
            wait_until(
                lambda: lease_holder_pid(engine) == pid(survivor),
                timeout=TAKEOVER_BOUND,
                what="the surviving replica to take the controller's lease",
            )
            took = time.monotonic() - killed_at
            assert took <= TAKEOVER_BOUND

        with http(survivor) as admin:
            try:
                wait_until(
                    lambda: stage(admin) == ("completed", len(STAGES) - 1),
                    timeout=STAGES_BOUND,
                    what="the survivor to complete the ramp",
                )
            except AssertionError as exc:
                last = None if reporter is None else reporter.last
                usage = admin.get(
                    f"/api/v1/flags/checkout/environments/{ENV}/metrics",
                    params={"since": time.time() - 120},
                ).json()
                raise AssertionError(f"{exc}: {admin.get(RAMP).json()}; {last}; {usage}") from None
            entries = admin.get("/api/v1/audit", params={"flag": "checkout", "limit": 500}).json()[
                "entries"
            ]
    finally:
        engine.dispose()
        if reporter is not None:
            reporter.stop.set()
            reporter.thread.join(timeout=10)

    transitions = [
        (e["action"], e["after"]["status"], e["after"]["stage"], e["after"]["percentage"])
        for e in reversed(entries)
        if e["action"].startswith("ramp.")
    ]
    last = len(STAGES) - 1
    expected = [
        ("ramp.start" if i == 0 else "ramp.advance", "completed" if i == last else "running", i, p)
        for i, p in enumerate(STAGES)
    ]
    assert transitions == expected
    actors = {e["actor"] for e in entries if e["action"] == "ramp.advance"}
    assert actors == {"controller"}
