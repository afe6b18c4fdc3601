"""The admin UI over plain HTTP: sign-in, sessions, CSRF, rate limits, roles, headers."""

from __future__ import annotations

import hashlib
import json
import re
import uuid

import httpx
from sqlalchemy import create_engine, text

from tests.support.servers import LiveServer
from tests.ui.conftest import (
    PASSWORD,
    SignedInFactory,
    UserFactory,
    boolean_flag,
    csrf_of,
    plan,
    sign_in,
)


def session_cookie(response: httpx.Response) -> str:
    cookies = [h for h in response.headers.get_list("set-cookie") if "graylane_session=" in h]
    assert cookies, response.headers
    return cookies[0]


def test_the_root_sends_people_to_the_ui(server: LiveServer) -> None:
    response = httpx.get(f"{server.url}/")
    assert response.status_code == 307
    assert response.headers["location"] == "/ui/"


def test_pages_need_a_session_and_the_poll_endpoint_answers_401(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url) as client:
        page = client.get("/ui/audit")
        assert page.status_code == 303
        assert page.headers["location"] == "/ui/login?next=/ui/audit"
        poll = client.get("/ui/api/flags/x/environments/staging/ramp")
        assert poll.status_code == 401
        assert poll.json()["error"]["code"] == "login_required"


def test_signing_in_redirects_to_the_ui_with_a_hardened_session_cookie(
    server: LiveServer, make_user: UserFactory, database_url: str
) -> None:
    name = make_user("viewer")
    with httpx.Client(base_url=server.url) as client:
        response = sign_in(client, name)
        assert response.status_code == 303
        assert response.headers["location"] == "/ui/"
        cookie = session_cookie(response)
        assert "HttpOnly" in cookie
        assert "SameSite=lax" in cookie
        assert "Path=/ui" in cookie
        assert "Secure" not in cookie  # plain http here
        home = client.get("/ui/")
        assert home.status_code == 200
        assert name in home.text
        secret = client.cookies["graylane_session"]
    # Only a hash of the session id is stored, next to the user, a CSRF token and expiry.
    engine = create_engine(database_url)
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT secret_hash, csrf_token, expires_at FROM ui_sessions")
        ).all()
    engine.dispose()
    hashes = {row.secret_hash for row in rows}
    assert hashlib.sha256(secret.encode()).hexdigest() in hashes
    assert secret not in hashes
    assert all(row.csrf_token and row.expires_at for row in rows)


def test_the_session_cookie_is_secure_behind_an_https_proxy(
    server: LiveServer, make_user: UserFactory
) -> None:
    name = make_user("viewer")
    with httpx.Client(base_url=server.url, headers={"X-Forwarded-Proto": "https"}) as client:
        form = client.get("/ui/login")
        csrf_cookie = form.headers["set-cookie"]
        assert "Secure" in csrf_cookie
        # httpx keeps Secure cookies for https; this hop is plain http, so send it by hand.
        value = csrf_cookie.split(";", 1)[0]
        response = client.post(
            "/ui/login",
            data={"username": name, "password": PASSWORD, "csrf_token": csrf_of(form.text)},
            headers={"Cookie": value},
        )
        assert response.status_code == 303
        assert "Secure" in session_cookie(response)


def test_ui_responses_carry_security_headers(
    server: LiveServer, make_user: UserFactory, signed_in: SignedInFactory
) -> None:
    client = signed_in(make_user("viewer"))
    for path in ("/ui/login", "/ui/", "/ui/static/app.css", "/ui/no-such-page"):
        response = client.get(path)
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy
        assert "unsafe-inline" not in policy
        assert "frame-ancestors 'none'" in policy
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "same-origin"
    assert client.get("/ui/").headers["cache-control"] == "no-store"
    assert client.get("/ui/no-such-page").status_code == 404
    # The API keeps its own JSON answers, without the UI's headers.
    api = client.get("/api/v1/flags")
    assert api.status_code == 401
    assert "content-security-policy" not in api.headers


def test_a_post_without_or_with_a_wrong_csrf_token_is_refused(
    server: LiveServer, make_user: UserFactory, signed_in: SignedInFactory, admin: httpx.Client
) -> None:
    admin.put("/api/v1/flags/csrf-target", json=boolean_flag()).raise_for_status()
    client = signed_in(make_user("release_manager"))
    url = "/ui/flags/csrf-target/environments/staging/enabled"
    missing = client.post(url, data={"enabled": "false", "confirmed": "yes"})
    assert missing.status_code == 403
    assert "expired" in missing.text
    wrong = client.post(url, data={"enabled": "false", "confirmed": "yes", "csrf_token": "x"})
    assert wrong.status_code == 403
    assert admin.get("/api/v1/flags/csrf-target").json()["environments"]["staging"]["enabled"]
    # The login form has its own token, tied to a cookie.
    login = httpx.post(f"{server.url}/ui/login", data={"username": "a", "password": "b"})
    assert login.status_code == 403


def test_actions_are_audited_with_the_user_as_actor(
    server: LiveServer, make_user: UserFactory, signed_in: SignedInFactory, admin: httpx.Client
) -> None:
    admin.put("/api/v1/flags/audited", json=boolean_flag()).raise_for_status()
    name = make_user("release_manager")
    client = signed_in(name)
    page = client.get("/ui/flags/audited?env=staging")
    response = client.post(
        "/ui/flags/audited/environments/staging/enabled",
        data={
            "enabled": "false",
            "confirmed": "yes",
            "reason": "incident 42",
            "csrf_token": csrf_of(page.text),
        },
    )
    assert response.status_code == 303
    entry = admin.get("/api/v1/audit", params={"flag": "audited"}).json()["entries"][0]
    assert entry["action"] == "flag.disable"
    assert entry["actor"] == f"user:{name}"
    assert entry["reason"] == "incident 42"
    # The next page shows what happened, once.
    flashed = client.get("/ui/flags/audited?env=staging")
    assert "is off in staging" in flashed.text
    assert "is off in staging" not in client.get("/ui/flags/audited?env=staging").text


def test_without_confirmation_a_destructive_post_asks_first(
    server: LiveServer, make_user: UserFactory, signed_in: SignedInFactory, admin: httpx.Client
) -> None:
    admin.put("/api/v1/flags/ask-first", json=boolean_flag()).raise_for_status()
    client = signed_in(make_user("release_manager"))
    page = client.get("/ui/flags/ask-first?env=staging")
    response = client.post(
        "/ui/flags/ask-first/environments/staging/enabled",
        data={"enabled": "false", "csrf_token": csrf_of(page.text)},
    )
    assert response.status_code == 200
    assert 'name="confirmed" value="yes"' in response.text
    assert admin.get("/api/v1/flags/ask-first").json()["environments"]["staging"]["enabled"]


def test_a_viewer_cannot_move_a_ramp_even_with_a_valid_form(
    server: LiveServer, make_user: UserFactory, signed_in: SignedInFactory, admin: httpx.Client
) -> None:
    admin.put("/api/v1/flags/held", json=boolean_flag(ramp=plan())).raise_for_status()
    started = admin.post("/api/v1/flags/held/environments/staging/ramp/start")
    assert started.status_code == 200, started.text
    client = signed_in(make_user("viewer"))
    page = client.get("/ui/flags/held/environments/staging/ramp")
    assert page.status_code == 200
    assert 'id="ramp-advance"' in page.text
    response = client.post(
        "/ui/flags/held/environments/staging/ramp/advance",
        data={"csrf_token": csrf_of(page.text), "version": "1", "confirmed": "yes"},
    )
    assert response.status_code == 403
    assert "editor role" in response.text
    ramp = admin.get("/api/v1/flags/held/environments/staging/ramp").json()
    assert ramp["percentage"] == 5


def test_wrong_passwords_are_refused_and_then_rate_limited(
    server: LiveServer, make_user: UserFactory
) -> None:
    name = make_user("viewer", username=f"limited-{uuid.uuid4().hex[:8]}")
    with httpx.Client(base_url=server.url) as client:
        for _ in range(5):
            wrong = sign_in(client, name, "not-the-password")
            assert wrong.status_code == 401
            assert "Wrong username or password" in wrong.text
        limited = sign_in(client, name, "not-the-password")
        assert limited.status_code == 429
        assert "Too many failed sign-ins" in limited.text
        assert int(limited.headers["retry-after"]) > 0
        # While limited, even the right password waits.
        assert sign_in(client, name, PASSWORD).status_code == 429
        assert "graylane_session" not in client.cookies
        # Other usernames from the same address are not locked out.
        other = make_user("viewer")
        assert sign_in(client, other).status_code == 303


def test_disabled_users_cannot_sign_in_and_lose_their_sessions(
    server: LiveServer, make_user: UserFactory, signed_in: SignedInFactory, admin: httpx.Client
) -> None:
    name = make_user("editor")
    client = signed_in(name)
    assert client.get("/ui/").status_code == 200
    admin.patch(f"/api/v1/users/{name}", json={"disabled": True}).raise_for_status()
    assert client.get("/ui/").status_code == 303
    with httpx.Client(base_url=server.url) as fresh:
        assert sign_in(fresh, name).status_code == 401


def test_signing_out_ends_the_session(
    server: LiveServer, make_user: UserFactory, signed_in: SignedInFactory
) -> None:
    client = signed_in(make_user("viewer"))
    page = client.get("/ui/")
    secret = client.cookies["graylane_session"]
    response = client.post("/ui/logout", data={"csrf_token": csrf_of(page.text)})
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/login?signed_out=1"
    with httpx.Client(base_url=server.url, cookies={"graylane_session": secret}) as replay:
        assert replay.get("/ui/").status_code == 303


def test_admin_pages_are_for_admins(
    server: LiveServer, make_user: UserFactory, signed_in: SignedInFactory
) -> None:
    editor = signed_in(make_user("editor"))
    assert editor.get("/ui/users").status_code == 403
    assert editor.get("/ui/tokens").status_code == 403
    admin_user = signed_in(make_user("admin"))
    assert admin_user.get("/ui/users").status_code == 200
    assert admin_user.get("/ui/tokens").status_code == 200


def test_a_new_token_is_shown_once(
    server: LiveServer, make_user: UserFactory, signed_in: SignedInFactory, admin: httpx.Client
) -> None:
    client = signed_in(make_user("admin"))
    page = client.get("/ui/tokens")
    created = client.post(
        "/ui/tokens",
        data={
            "csrf_token": csrf_of(page.text),
            "kind": "sdk",
            "name": "ui-made",
            "environment": "staging",
        },
    )
    assert created.status_code == 201
    match = re.search(r'value="(gls_[^"]+)"', created.text)
    assert match is not None
    secret = match.group(1)
    assert secret.startswith("gls_")
    assert secret not in client.get("/ui/tokens").text
    config = httpx.get(
        f"{server.url}/api/v1/sdk/config", headers={"Authorization": f"Bearer {secret}"}
    )
    assert config.status_code == 200


def test_an_editor_form_with_a_version_that_is_not_a_number_is_answered_in_place(
    server: LiveServer, make_user: UserFactory, signed_in: SignedInFactory, admin: httpx.Client
) -> None:
    admin.put("/api/v1/flags/odd-version", json=boolean_flag()).raise_for_status()
    client = signed_in(make_user("editor"))
    page = client.get("/ui/flags/odd-version?env=staging")
    response = client.post(
        "/ui/flags/odd-version/definition",
        data={
            "definition": json.dumps(boolean_flag(percentage=10)),
            "version": "latest",
            "intent": "save",
            "csrf_token": csrf_of(page.text),
        },
    )
    assert response.status_code == 422
    assert "version must be a whole number" in response.text
    stored = admin.get("/api/v1/flags/odd-version").json()
    assert stored["environments"]["staging"]["fallthrough"]["rollout"]["percentage"] == 0


def test_a_session_in_use_is_extended_up_to_its_limit_and_an_idle_one_ends(
    server: LiveServer, make_user: UserFactory, signed_in: SignedInFactory, database_url: str
) -> None:
    # Defaults: 12 hours without use, 168 hours at most after signing in.
    client = signed_in(make_user("viewer"))
    secret_hash = hashlib.sha256(client.cookies["graylane_session"].encode()).hexdigest()
    engine = create_engine(database_url)

    def age(signed_in_hours_ago: float, expires_in_hours: float) -> None:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "UPDATE ui_sessions SET created_at = now() - make_interval(secs => :ago),"
                    " expires_at = now() + make_interval(secs => :left) WHERE secret_hash = :h"
                ),
                {
                    "ago": signed_in_hours_ago * 3600,
                    "left": expires_in_hours * 3600,
                    "h": secret_hash,
                },
            )

    def hours_left() -> float:
        with engine.connect() as connection:
            left = connection.execute(
                text(
                    "SELECT extract(epoch FROM expires_at - now()) FROM ui_sessions"
                    " WHERE secret_hash = :h"
                ),
                {"h": secret_hash},
            ).scalar_one()
        return float(left) / 3600

    try:
        # Used with an hour to go: it lasts another 12 hours from now.
        age(signed_in_hours_ago=20, expires_in_hours=1)
        assert client.get("/ui/").status_code == 200
        assert 11.9 < hours_left() <= 12
        # Near the limit, use extends it only to the limit.
        age(signed_in_hours_ago=165, expires_in_hours=1)
        assert client.get("/ui/").status_code == 200
        assert 2.9 < hours_left() <= 3
        # Left idle past its expiry, it is over.
        age(signed_in_hours_ago=20, expires_in_hours=-0.01)
        assert client.get("/ui/").status_code == 303
    finally:
        engine.dispose()
