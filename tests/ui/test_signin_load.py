"""Sign-in under load: a bound on password checks running at once, checks that hold no
database connection, and the same work for unknown, disabled and known usernames."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import argon2
import httpx
import pytest

from graylane_server.settings import Settings
from graylane_server.ui import sessions
from graylane_server.ui.password_checks import Busy, PasswordChecks
from graylane_server.users.passwords import hash_password
from tests.support.servers import LiveServer
from tests.ui.conftest import PASSWORD, UserFactory, sign_in

# --- the bound, on its own --------------------------------------------------------------


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """`scenario()` on an event loop of its own thread: the browser tests leave Playwright's
    loop running in this one."""
    with ThreadPoolExecutor(1) as thread:
        thread.submit(lambda: asyncio.run(scenario())).result()


def test_password_checks_beyond_the_slots_wait_and_beyond_the_waiting_room_are_refused() -> None:
    async def scenario() -> None:
        checks = PasswordChecks(2, waiting=1, wait=60)
        release = asyncio.Event()
        entered: list[str] = []

        async def sign_in(name: str) -> None:
            async with checks.slot():
                entered.append(name)
                await release.wait()

        first = asyncio.create_task(sign_in("first"))
        second = asyncio.create_task(sign_in("second"))
        third = asyncio.create_task(sign_in("third"))
        while checks.running < 2 or checks.waiting < 1:
            await asyncio.sleep(0)  # let the tasks take their places
        assert entered == ["first", "second"]
        # Both slots taken and the one waiting place too: a fourth is refused at once.
        with pytest.raises(Busy):
            async with checks.slot():
                pass
        release.set()
        await asyncio.gather(first, second, third)
        assert entered == ["first", "second", "third"]
        assert (checks.running, checks.waiting) == (0, 0)

    run(scenario)


def test_a_password_check_that_waits_too_long_is_refused_and_frees_its_place() -> None:
    async def scenario() -> None:
        checks = PasswordChecks(1, waiting=1, wait=0.01)
        async with checks.slot():
            with pytest.raises(Busy):
                async with checks.slot():
                    pass
            assert checks.waiting == 0
        async with checks.slot():  # the slot and the waiting place are free again
            assert checks.running == 1

    run(scenario)


def test_the_bound_defaults_to_a_few_waiting_per_slot() -> None:
    checks = PasswordChecks(2)
    assert (checks.slots, checks.max_waiting) == (2, 8)


# --- the bound and the checks, over HTTP ----------------------------------------------------


@pytest.fixture
def one_at_a_time(settings: Settings) -> Iterator[LiveServer]:
    live = LiveServer(settings.model_copy(update={"login_concurrency": 1})).start()
    yield live
    live.stop()


def hold_every_slot(server: LiveServer) -> tuple[threading.Event, threading.Event]:
    """Take the server's password-check slots on its own event loop until the first event
    returned is set; the second is set once they are taken."""
    release, held = threading.Event(), threading.Event()
    checks = server.app.state.ui.password_checks
    loop = server.runtime._loop
    assert loop is not None

    async def hold() -> None:
        async with checks.slot():
            held.set()
            await asyncio.to_thread(release.wait)

    asyncio.run_coroutine_threadsafe(hold(), loop)
    assert held.wait(timeout=30)
    return release, held


def test_a_sign_in_with_every_password_check_slot_taken_answers_503_with_retry_after(
    one_at_a_time: LiveServer, admin: httpx.Client
) -> None:
    name = "busy-viewer"
    created = admin.post(
        "/api/v1/users", json={"username": name, "password": PASSWORD, "role": "viewer"}
    )
    assert created.status_code == 201, created.text
    release, _ = hold_every_slot(one_at_a_time)
    try:
        with httpx.Client(base_url=one_at_a_time.url, timeout=30) as client:
            busy = sign_in(client, name)
            assert busy.status_code == 503
            assert int(busy.headers["retry-after"]) >= 1
            assert "checking many sign-ins" in busy.text
            assert "graylane_session" not in client.cookies
    finally:
        release.set()
    with httpx.Client(base_url=one_at_a_time.url, timeout=30) as client:
        assert sign_in(client, name).status_code == 303


@pytest.fixture
def counted_checks(monkeypatch: pytest.MonkeyPatch, server: LiveServer) -> list[int]:
    """Every password check the server runs, with the database connections its engine had
    checked out at that moment."""
    checks: list[int] = []
    real = sessions.verify_password

    def verify(stored: str, password: str) -> bool:
        checks.append(server.runtime.engine.pool.checkedout())  # type: ignore[attr-defined]
        return real(stored, password)

    monkeypatch.setattr(sessions, "verify_password", verify)
    return checks


def test_unknown_disabled_and_known_usernames_each_cost_one_password_check_and_no_connection(
    server: LiveServer, make_user: UserFactory, admin: httpx.Client, counted_checks: list[int]
) -> None:
    known = make_user("viewer")
    disabled = make_user("viewer")
    admin.patch(f"/api/v1/users/{disabled}", json={"disabled": True}).raise_for_status()
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert sign_in(client, "nobody-by-this-name", "a-guessed-password").status_code == 401
        assert sign_in(client, disabled).status_code == 401
        assert sign_in(client, known, "not-the-password").status_code == 401
        assert sign_in(client, known).status_code == 303
    # One check per attempt, and none of them with a database connection (let alone a
    # write transaction) held while it ran.
    assert counted_checks == [0, 0, 0, 0]


def test_the_hash_checked_for_unknown_usernames_costs_what_a_real_one_does() -> None:
    assert argon2.extract_parameters(sessions.decoy_hash()) == argon2.extract_parameters(
        hash_password("any password at all")
    )
    assert not sessions.password_matches(None, "any password at all")
