"""One endpoint of one server under a fixed number of users, for `unleash.py` next to it.

Not meant to be run by hand: `rounds.py` starts it with `locust --headless` and passes
what to call in the environment variable PEERS_LOAD (JSON):

    method, path     the request
    headers          sent with every request
    bodies           request bodies (strings), taken in turn; none for a GET
    expect           the status that counts as success (200, or 304 for If-None-Match)
    warmup           seconds after the start whose requests are left out of the numbers
    out              where to write the result: `<out>.json` (counts) and `<out>.f64`
                     (the kept response times in ms, native doubles)

Response times are taken from locust's own request event, unrounded (locust's stats round
anything over 100 ms to two significant digits, and its percentiles to whole ms).
"""

from __future__ import annotations

import itertools
import json
import os
import time
from array import array
from pathlib import Path
from typing import Any

from locust import FastHttpUser, constant, events, task
from locust.env import Environment

SETTINGS: dict[str, Any] = json.loads(os.environ["PEERS_LOAD"])
METHOD: str = SETTINGS["method"]
PATH: str = SETTINGS["path"]
HEADERS: dict[str, str] = SETTINGS["headers"]
BODIES: list[str] = SETTINGS["bodies"] or [""]
EXPECT: int = SETTINGS["expect"]
WARMUP: float = SETTINGS["warmup"]
OUT = Path(SETTINGS["out"])


class Recorder:
    """Every request's completion time and response time; counts since the start."""

    def __init__(self) -> None:
        self.started: float | None = None
        self.stopped: float | None = None
        self.done = array("d")
        self.times = array("d")
        self.failed = array("b")
        self.first_failure: str | None = None
        self.bytes = 0

    def add(self, response_time: float, length: int, failure: object) -> None:
        self.done.append(time.monotonic())
        self.times.append(response_time)
        self.failed.append(failure is not None)
        self.bytes += length
        if failure is not None and self.first_failure is None:
            self.first_failure = str(failure)[:300]

    def write(self) -> None:
        start = (self.started or 0.0) + WARMUP
        end = self.stopped or time.monotonic()
        kept = array("d")
        failures = 0
        for done, response_time, failed in zip(self.done, self.times, self.failed, strict=True):
            if start <= done <= end:
                kept.append(response_time)
                failures += failed
        summary = {
            "total": len(self.times),
            "total_failures": sum(self.failed),
            "kept": len(kept),
            "kept_failures": failures,
            "window_s": max(0.0, end - start),
            "first_failure": self.first_failure,
            "mean_bytes": self.bytes / len(self.times) if self.times else 0,
        }
        with OUT.with_suffix(".f64").open("wb") as file:
            kept.tofile(file)
        OUT.with_suffix(".json").write_text(json.dumps(summary))


RECORDER = Recorder()
STARTS = itertools.count()


def _started(environment: Environment, **_: Any) -> None:
    RECORDER.started = time.monotonic()


def _stopped(environment: Environment, **_: Any) -> None:
    RECORDER.stopped = time.monotonic()


def _request(
    response_time: float, response_length: int, exception: BaseException | None, **_: Any
) -> None:
    RECORDER.add(response_time, response_length, exception)


def _quitting(environment: Environment, **_: Any) -> None:
    RECORDER.write()


events.test_start.add_listener(_started)  # type: ignore[no-untyped-call]
events.test_stop.add_listener(_stopped)  # type: ignore[no-untyped-call]
events.request.add_listener(_request)  # type: ignore[no-untyped-call]
events.quitting.add_listener(_quitting)  # type: ignore[no-untyped-call]


class Caller(FastHttpUser):
    """Calls the one endpoint back to back (no wait), on one keep-alive connection."""

    wait_time = constant(0)

    def on_start(self) -> None:
        # Users start at different places in the list, so they send different bodies.
        self.turn = next(STARTS) * 97 % len(BODIES)

    @task
    def call(self) -> None:
        body = BODIES[self.turn]
        self.turn = (self.turn + 1) % len(BODIES)
        with self.client.request(
            METHOD, PATH, data=body or None, headers=HEADERS, catch_response=True
        ) as response:
            if response.status_code != EXPECT:
                response.failure(f"status {response.status_code}, expected {EXPECT}")
            else:
                response.success()
