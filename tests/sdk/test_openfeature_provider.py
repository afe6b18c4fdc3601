"""The OpenFeature provider against a live server: typed details with the contract's
values, variants and reasons; error codes; provider events; tracking."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import EventDetails, ProviderEvent
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason
from openfeature.provider import ProviderStatus
from openfeature.track import TrackingEventDetails

from graylane.openfeature import GraylaneProvider
from tests.sdk.support import bucket, put_flag, rollout_flag, set_enabled, unique, usage
from tests.server.documents import document
from tests.support.servers import LiveServer, free_port, wait_until


@pytest.fixture
def openfeature_api() -> Iterator[None]:
    """Each test leaves OpenFeature as it found it: no provider, no handlers."""
    api.clear_providers()
    yield
    api.shutdown()


@pytest.fixture
def live(server: LiveServer, openfeature_api: None) -> LiveServer:
    """The live server, with OpenFeature shut down (and its streams closed) before the
    server stops."""
    return server


@pytest.fixture
def provider(live: LiveServer, admin: httpx.Client, sdk_key: str) -> GraylaneProvider:
    assert admin.put("/api/v1/state", json=document()).status_code == 200
    graylane = GraylaneProvider(url=live.url, sdk_key=sdk_key, ready_timeout=10)
    api.set_provider_and_wait(graylane)
    return graylane


def inside_new_checkout(unit: str) -> bool:
    return bucket("new-checkout", unit) < 10_000


def a_unit(inside: bool) -> str:
    return next(
        f"user-{i}" for i in range(100, 10_000) if inside_new_checkout(f"user-{i}") is inside
    )


def test_boolean_details_carry_the_value_variant_and_reason(provider: GraylaneProvider) -> None:
    client = api.get_client()
    assert client.get_provider_status() is ProviderStatus.READY

    staff = client.get_boolean_details(
        "new-checkout", False, EvaluationContext("u-1", {"email": "ana@example.com"})
    )
    assert (staff.value, staff.variant, staff.reason) == (True, "on", Reason.TARGETING_MATCH)
    assert staff.flag_metadata == {"rule": "staff"}
    assert staff.error_code is None

    inside = client.get_boolean_details("new-checkout", False, EvaluationContext(a_unit(True)))
    assert (inside.value, inside.variant, inside.reason) == (True, "on", Reason.SPLIT)
    outside = client.get_boolean_details("new-checkout", True, EvaluationContext(a_unit(False)))
    assert (outside.value, outside.variant, outside.reason) == (False, "off", Reason.SPLIT)
    assert client.get_boolean_value("new-checkout", True, EvaluationContext(a_unit(False))) is False


def test_string_integer_float_and_object_details(provider: GraylaneProvider) -> None:
    client = api.get_client()
    anyone = EvaluationContext("user-5")

    colour = client.get_string_details("button-color", "red", anyone)
    assert (colour.value, colour.variant, colour.reason) == ("#2da44e", "green", Reason.STATIC)

    size = client.get_integer_details("page-size", 0, anyone)
    assert (size.value, size.variant, size.reason) == (10, "small", Reason.STATIC)
    beta = client.get_integer_details("page-size", 0, EvaluationContext("user-1"))
    assert (beta.value, beta.variant, beta.reason) == (50, "large", Reason.TARGETING_MATCH)
    by_plan = client.get_integer_details("page-size", 0, EvaluationContext("u-7", {"plan": "pro"}))
    assert by_plan.value == 50
    excluded = client.get_integer_details("page-size", 0, EvaluationContext("user-9"))
    assert excluded.value == 10

    ratio = client.get_float_details("ratio", 0.0, anyone)
    assert (ratio.value, ratio.variant, ratio.reason) == (0.75, "high", Reason.STATIC)

    theme = client.get_object_details("theme", {}, anyone)
    assert (theme.value, theme.variant) == ({"bg": "black", "fg": "white"}, "dark")
    assert theme.reason == Reason.STATIC


def test_a_disabled_flag_serves_its_off_variant_with_reason_disabled(
    provider: GraylaneProvider, admin: httpx.Client
) -> None:
    client = api.get_client()
    version = provider.client.version
    set_enabled(admin, "new-checkout", False)
    wait_until(lambda: provider.client.version != version, timeout=5, what="the kill switch")

    details = client.get_boolean_details(
        "new-checkout", True, EvaluationContext("u", {"email": "ana@example.com"})
    )
    assert (details.value, details.variant, details.reason) == (False, "off", Reason.DISABLED)


def test_unknown_flags_and_wrong_types_give_the_code_default_and_an_error_code(
    provider: GraylaneProvider,
) -> None:
    client = api.get_client()
    ctx = EvaluationContext("user-5")

    missing = client.get_boolean_details("no-such-flag", True, ctx)
    assert (missing.value, missing.reason) == (True, Reason.ERROR)
    assert missing.error_code == ErrorCode.FLAG_NOT_FOUND

    for details, default in [
        (client.get_boolean_details("button-color", False, ctx), False),
        (client.get_string_details("new-checkout", "x", ctx), "x"),
        (client.get_integer_details("ratio", 3, ctx), 3),
        (client.get_integer_details("new-checkout", 3, ctx), 3),
        (client.get_float_details("theme", 1.5, ctx), 1.5),
        (client.get_object_details("page-size", {"a": 1}, ctx), {"a": 1}),
    ]:
        assert details.value == default, details
        assert details.error_code == ErrorCode.TYPE_MISMATCH, details
        assert details.reason == Reason.ERROR


def test_before_any_config_the_provider_is_not_ready_and_defaults_are_served(
    openfeature_api: None,
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    errors = threading.Event()

    def on_error(details: EventDetails) -> None:
        if details.provider_name == "graylane":
            errors.set()

    api.add_handler(ProviderEvent.PROVIDER_ERROR, on_error)
    graylane = GraylaneProvider(url=url, sdk_key="gls_whatever", ready_timeout=0.5, timeout=1)
    api.set_provider(graylane)
    client = api.get_client()

    early = client.get_boolean_details("new-checkout", True, EvaluationContext("u"))
    assert early.value is True
    assert early.error_code == ErrorCode.PROVIDER_NOT_READY

    assert errors.wait(10), "no PROVIDER_ERROR after the ready timeout"
    assert client.get_provider_status() is ProviderStatus.ERROR
    late = client.get_string_details("button-color", "red", EvaluationContext("u"))
    assert late.value == "red"
    assert late.error_code == ErrorCode.PROVIDER_NOT_READY
    assert graylane.client.ready is False


def test_ready_and_configuration_changed_events_reach_handlers(
    live: LiveServer, admin: httpx.Client, sdk_key: str
) -> None:
    assert admin.put("/api/v1/state", json=document()).status_code == 200
    ready = threading.Event()
    changed: list[EventDetails] = []
    heard_change = threading.Event()

    def on_ready(details: EventDetails) -> None:
        if details.provider_name == "graylane":
            ready.set()

    def on_changed(details: EventDetails) -> None:
        changed.append(details)
        heard_change.set()

    api.add_handler(ProviderEvent.PROVIDER_READY, on_ready)
    api.add_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, on_changed)
    api.set_provider(GraylaneProvider(url=live.url, sdk_key=sdk_key, poll_interval=3600))

    assert ready.wait(10), "no PROVIDER_READY from graylane"
    assert api.get_client().get_provider_status() is ProviderStatus.READY
    assert changed == []

    set_enabled(admin, "new-checkout", False)

    assert heard_change.wait(5), "no PROVIDER_CONFIGURATION_CHANGED"
    assert changed[0].provider_name == "graylane"
    assert changed[0].flags_changed == ["new-checkout"]


def test_tracking_through_openfeature_reaches_the_graylane_counts(
    live: LiveServer, admin: httpx.Client, sdk_key: str
) -> None:
    key = unique("ramped")
    put_flag(admin, key, rollout_flag(50, ramp=True))
    graylane = GraylaneProvider(url=live.url, sdk_key=sdk_key, flush_interval=3600)
    api.set_provider_and_wait(graylane)
    client = api.get_client()
    inside = next(f"u{i}" for i in range(1000) if bucket(key, f"u{i}") < 50_000)
    outside = next(f"u{i}" for i in range(1000) if bucket(key, f"u{i}") >= 50_000)

    client.track("error", EvaluationContext(inside))
    client.track("error", EvaluationContext(outside), TrackingEventDetails(value=3))
    client.track("request", EvaluationContext(inside))

    # the details' value is the event's measurement (count 1, sum 3), not a count
    events = graylane.client._recorder.pending().events
    assert sum(events[(key, "on", "exposed", "error", "50")][0]) == 1
    assert events[(key, "on", "exposed", "error", "50")][1] is None
    unexposed = events[(key, "off", "unexposed", "error", "50")]
    assert (sum(unexposed[0]), sum(unexposed[1] or [])) == (1, 3.0)
    assert sum(events[(key, "on", "exposed", "request", "50")][0]) == 1
    assert graylane.client.flush() is True
    now = time.time()
    counted = usage(admin, key, since=now - 3600, until=now + 10)["events"]
    assert counted == {
        "exposed/error": {"on": 1},
        "unexposed/error": {"off": 1},
        "exposed/request": {"on": 1},
    }
