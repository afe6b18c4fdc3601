"""Evaluating never raises into the app and never floods its log; a forked child gets a
client of its own that keeps following the server."""

from __future__ import annotations

import logging
import os
import signal
import time
from typing import Any

import httpx
import pytest

from graylane import Client, ErrorCode, Reason
from tests.sdk.conftest import ClientFactory
from tests.sdk.support import put_flag, rollout_flag, set_enabled, static_flag, streams_open
from tests.server.documents import document
from tests.support.servers import LiveServer, wait_until

CALLS = 200


class Exploding:
    """Looks like a context, but every read raises."""

    def get(self, name: str, default: object = None) -> object:
        raise RuntimeError(f"cannot read {name}")

    def __getitem__(self, name: str) -> object:
        raise RuntimeError(f"cannot read {name}")

    def __contains__(self, name: object) -> bool:
        raise RuntimeError("cannot look inside")


@pytest.fixture
def client() -> Client:
    """The shared document, served offline: the hot path is the same as a live client's
    (one live client is checked below)."""
    return Client.from_document(document(), "production")


def warnings_about(caplog: pytest.LogCaptureFixture, flag: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "graylane" and r.levelno == logging.WARNING and repr(flag) in r.getMessage()
    ]


@pytest.mark.parametrize(
    "context",
    [
        pytest.param("user-1", id="a-string"),
        pytest.param(["targetingKey", "user-1"], id="a-list"),
        pytest.param(42, id="a-number"),
        pytest.param(Exploding(), id="get-raises"),
    ],
)
def test_a_context_that_is_not_a_mapping_never_raises_and_is_logged_once(
    client: Client, caplog: pytest.LogCaptureFixture, context: Any
) -> None:
    caplog.set_level(logging.WARNING, logger="graylane")
    for _ in range(CALLS):
        assert client.is_enabled("new-checkout", context) is False
        assert client.is_enabled("new-checkout", context, default=True) is True
        assert client.variant("new-checkout", context, default="fallback") == "fallback"
        assert client.value("new-checkout", context, "x") == "x"
        details = client.evaluate("new-checkout", context)
        assert details.reason is Reason.ERROR
        assert details.error_code in (ErrorCode.INVALID_CONTEXT, ErrorCode.GENERAL)
        assert details.value is None
        assert client.resolve("new-checkout", context).error_code is not None
        client.track("request", context)
        with client.observe(context):
            pass
        assert isinstance(client.all_flags(context), dict)

    assert len(warnings_about(caplog, "new-checkout")) == 1, warnings_about(caplog, "new-checkout")
    # the client still serves well-formed contexts
    assert client.is_enabled("new-checkout", {"targetingKey": "u", "email": "a@example.com"})


def test_an_unknown_flag_serves_the_default_and_is_logged_once(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="graylane")
    context = {"targetingKey": "user-1"}
    for _ in range(CALLS):
        assert client.is_enabled("no-such-flag", context) is False
        assert client.is_enabled("no-such-flag", context, default=True) is True
        assert client.value("no-such-flag", context, 7) == 7
        assert client.variant("no-such-flag", context) is None

    logged = warnings_about(caplog, "no-such-flag")
    assert len(logged) == 1, logged
    assert "FLAG_NOT_FOUND" in logged[0]
    details = client.evaluate("no-such-flag", context)
    assert (details.value, details.variant, details.reason) == (None, None, Reason.ERROR)
    assert details.error_code is ErrorCode.FLAG_NOT_FOUND
    assert details.to_dict()["errorCode"] == "FLAG_NOT_FOUND"
    assert client.resolve("no-such-flag", context).error_code is ErrorCode.FLAG_NOT_FOUND


def test_a_value_of_the_wrong_type_serves_the_default_and_is_logged_once_per_flag(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="graylane")
    context = {"targetingKey": "user-1", "email": "staff@example.com"}
    for _ in range(CALLS):
        # boolean flag asked for a number
        assert client.value("new-checkout", context, default=1) == 1
        # string flag asked for a boolean
        assert client.is_enabled("button-color", context) is False
        assert client.is_enabled("button-color", context, default=True) is True
        # object flag asked for a string; number flag asked for an object
        assert client.value("theme", context, "plain") == "plain"
        assert client.value("page-size", context, {"n": 1}) == {"n": 1}

    for flag in ("new-checkout", "button-color", "theme", "page-size"):
        logged = warnings_about(caplog, flag)
        assert len(logged) == 1, (flag, logged)
        assert "TYPE_MISMATCH" in logged[0]
    # the right types are served as they are
    assert client.is_enabled("new-checkout", context) is True
    assert client.value("button-color", context, "") == "#2da44e"
    assert client.value("page-size", context, 0) == 50  # user-1 is a beta tester
    assert client.value("theme", context, {}) == {"bg": "black", "fg": "white"}
    assert client.value("button-color", context, None) == "#2da44e"
    # a well-typed evaluation logs nothing
    assert len(caplog.records) == 4


def test_a_different_problem_with_the_same_flag_is_logged_on_its_own(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="graylane")
    for _ in range(CALLS):
        client.value("new-checkout", {"targetingKey": "u"}, default=1)
        client.is_enabled("new-checkout", Exploding())
    assert len(warnings_about(caplog, "new-checkout")) == 2


def test_a_live_client_is_just_as_safe_and_just_as_quiet(
    server: LiveServer,
    admin: httpx.Client,
    sdk_key: str,
    clients: ClientFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert admin.put("/api/v1/state", json=document()).status_code == 200
    live = clients(server.url, sdk_key)
    live.wait_ready(10)
    caplog.set_level(logging.WARNING, logger="graylane")

    for _ in range(CALLS):
        assert live.is_enabled("new-checkout", "user-1", default=True) is True  # type: ignore[arg-type]
        assert live.is_enabled("new-checkout", Exploding(), default=True) is True  # type: ignore[arg-type]
        assert live.is_enabled("no-such-flag", {"targetingKey": "u"}, default=True) is True
        assert live.value("new-checkout", {"targetingKey": "u"}, default=1) == 1
        assert live.is_enabled("button-color", {"targetingKey": "u"}) is False

    assert len(warnings_about(caplog, "new-checkout")) == 3  # three different problems
    assert len(warnings_about(caplog, "no-such-flag")) == 1
    assert len(warnings_about(caplog, "button-color")) == 1


def test_a_failing_callback_does_not_stop_the_others_or_the_update(
    server: LiveServer,
    admin: httpx.Client,
    sdk_key: str,
    clients: ClientFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="graylane")
    put_flag(admin, "checkout", rollout_flag(100))
    client = clients(server.url, sdk_key, poll_interval=3600)
    client.wait_ready(10)
    heard: list[frozenset[str]] = []

    def broken(_: object) -> None:
        raise RuntimeError("a bug in the app's callback")

    client.on_change(broken)
    client.on_change(lambda change: heard.append(change.flags))

    set_enabled(admin, "checkout", False)

    wait_until(lambda: heard == [frozenset({"checkout"})], timeout=5, what="the second callback")
    assert client.is_enabled("checkout", {"targetingKey": "u"}) is False
    failures = [r for r in caplog.records if r.name == "graylane" and r.exc_info]
    assert len(failures) == 1
    assert "a bug in the app's callback" in str(failures[0].exc_info[1])


# --- fork safety ----------------------------------------------------------------------

CHILD_OK = 0
CHILD_WRONG_ANSWER = 2
CHILD_INHERITED_COUNTS = 3
CHILD_MISSED_CHANGE = 4
CHILD_CRASHED = 5
CHILD_MEANINGS = {
    CHILD_WRONG_ANSWER: "the child evaluated the flag wrongly before the change",
    CHILD_INHERITED_COUNTS: "the child would resend the parent's counts",
    CHILD_MISSED_CHANGE: "the change never reached the child",
    CHILD_CRASHED: "the child raised",
}


def run_child(client: Client) -> int:
    """What the forked child does; returns its exit code."""
    if client._recorder.pending():
        return CHILD_INHERITED_COUNTS
    if client.is_enabled("fork-flag", {"targetingKey": "child"}) is not True:
        return CHILD_WRONG_ANSWER
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if client.is_enabled("fork-flag", {"targetingKey": "child"}) is False:
            return CHILD_OK
        time.sleep(0.02)
    return CHILD_MISSED_CHANGE


def wait_for_child(pid: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise AssertionError(f"the child did not exit within {timeout}s")


def test_a_forked_child_follows_changes_through_its_own_stream(
    server: LiveServer, admin: httpx.Client, sdk_key: str, clients: ClientFactory
) -> None:
    put_flag(admin, "fork-flag", static_flag({"on": True, "off": False}, "on", off="off"))
    # no polling to speak of: only a stream can bring the change to either process
    client = clients(server.url, sdk_key, poll_interval=3600, flush_interval=3600)
    client.wait_ready(10)
    wait_until(lambda: streams_open(server.url) == 1, timeout=5, what="the parent's stream")
    assert client.is_enabled("fork-flag", {"targetingKey": "parent"}) is True
    assert client._recorder.pending()  # the parent has counts of its own

    pid = os.fork()
    if pid == 0:  # the child: whatever happens, leave through os._exit
        code = CHILD_CRASHED
        try:
            code = run_child(client)
        finally:
            os._exit(code)

    try:
        # Given the child connected a stream of its own (its config fetch came first)
        wait_until(lambda: streams_open(server.url) == 2, timeout=10, what="the child's stream")
        # When the parent switches the flag off through the admin API
        set_enabled(admin, "fork-flag", False)
    except BaseException:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise

    # Then the child sees it and exits 0
    code = wait_for_child(pid, timeout=20)
    assert code == CHILD_OK, CHILD_MEANINGS.get(code, f"exit code {code}")

    # and the parent's client kept working through it all
    wait_until(
        lambda: client.is_enabled("fork-flag", {"targetingKey": "parent"}) is False,
        timeout=5,
        what="the parent to see the change",
    )
    wait_until(lambda: streams_open(server.url) == 1, timeout=5, what="the child's stream to close")
    set_enabled(admin, "fork-flag", True)
    wait_until(
        lambda: client.is_enabled("fork-flag", {"targetingKey": "parent"}) is True,
        timeout=5,
        what="the parent to see a change after the fork",
    )
    assert client.flush() is True
