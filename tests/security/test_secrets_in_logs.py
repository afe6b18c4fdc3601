"""Secrets never reach the logs: a real server process at debug level with JSON logs and
the access log on, driven through every path that handles a secret (tokens minted and
used, webhook secrets, passwords set and signed in with, session cookies, failed and
rate-limited authentication), and its whole output searched for each secret."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import httpx
import pytest

from graylane_server.tokens.secrets import HINT_LENGTH
from tests.server.documents import document
from tests.support.servers import ServerProcess, server_env
from tests.ui.conftest import csrf_of

OFREP_BODY = {"context": {"targetingKey": "user-1", "email": "ana@example.com"}}


def sign_in(client: httpx.Client, username: str, password: str) -> httpx.Response:
    form = client.get("/ui/login")
    return client.post(
        "/ui/login",
        data={"username": username, "password": password, "csrf_token": csrf_of(form.text)},
    )


def fragments(secret: str) -> list[str]:
    """The secret, and any part of it longer than what listings show on purpose: a token's
    first `HINT_LENGTH` characters (the public `gla_`/`gls_` prefix and a few more) may
    appear, one character more may not, nor may its random tail."""
    return [secret, secret[: HINT_LENGTH + 1], secret[HINT_LENGTH:], secret[-12:]]


@pytest.mark.usefixtures("settings")  # empties the database, so the bootstrap token is minted
def test_no_secret_appears_in_the_logs(database_url: str, redis_url: str, tmp_path: Path) -> None:
    bootstrap = f"gla_{secrets.token_urlsafe(32)}"
    log_path = tmp_path / "server.log"
    process = ServerProcess(
        server_env(
            database_url,
            redis_url,
            bootstrap,
            log_json="true",
            log_level="debug",
            access_log="true",
            auth_max_failures=3,
        ),
        log_path,
    )
    used = {"bootstrap admin token": bootstrap}  # what -> secret: none of them may be logged
    try:
        process.start()
        used |= administer(process.url, bootstrap)
        use_sdk_token(process.url, used["minted SDK token"])
        with httpx.Client(
            base_url=process.url,
            headers={"Authorization": f"Bearer {used['minted admin token']}"},
            timeout=10,
        ) as editor:
            assert editor.get("/api/v1/flags/new-checkout").status_code == 200
        used |= fail_to_authenticate(process.url)
        used |= sign_in_to_the_ui(process.url, used["new password"])
    finally:
        process.stop()

    log = log_path.read_text()
    entries = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    # The log did capture this run as JSON, at debug level, failures included.
    assert "server.started" in {e["event"] for e in entries}
    assert "debug" in {e["level"] for e in entries}
    answered = {(e.get("route"), e.get("status")) for e in entries if e["event"] == "request"}
    for seen in (
        ("/api/v1/tokens", 201),
        ("/api/v1/users", 422),
        ("/api/v1/sdk/config", 401),
        ("/api/v1/sdk/config", 429),
        ("/ui/login", 401),
        ("/ui/login", 303),
    ):
        assert seen in answered, (seen, sorted(answered, key=str))
    leaks = [
        f"{what} ({fragment[:4]}...)"
        for what, secret in used.items()
        for fragment in fragments(secret)
        if fragment in log
    ]
    assert not leaks, f"secrets in the server log: {leaks}"


def administer(url: str, bootstrap: str) -> dict[str, str]:
    """Admin requests that mint tokens and a webhook (secrets shown once) and set passwords."""
    password = f"pw-{secrets.token_urlsafe(18)}"
    new_password = f"pw-{secrets.token_urlsafe(18)}"
    rejected_password = f"pw-{secrets.token_urlsafe(18)}"
    with httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {bootstrap}"}, timeout=10
    ) as admin:
        assert admin.put("/api/v1/state", json=document()).status_code == 200
        assert admin.get("/api/v1/flags").status_code == 200
        minted_admin = admin.post("/api/v1/tokens", json={"kind": "admin", "role": "editor"})
        minted_sdk = admin.post("/api/v1/tokens", json={"kind": "sdk", "environment": "production"})
        hook = admin.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/hook"})
        assert {minted_admin.status_code, minted_sdk.status_code, hook.status_code} == {201}
        user = admin.post(
            "/api/v1/users", json={"username": "ana", "password": password, "role": "viewer"}
        )
        assert user.status_code == 201, user.text
        refused = admin.post(
            "/api/v1/users",
            json={"username": "bo", "password": rejected_password, "role": "nobody"},
        )
        assert refused.status_code == 422
        changed = admin.patch("/api/v1/users/ana", json={"password": new_password})
        assert changed.status_code == 200, changed.text
    return {
        "minted admin token": minted_admin.json()["token"],
        "minted SDK token": minted_sdk.json()["token"],
        "webhook secret": hook.json()["secret"],
        "password": password,
        "new password": new_password,
        "password of a refused user": rejected_password,
    }


def use_sdk_token(url: str, token: str) -> None:
    for headers in ({"Authorization": f"Bearer {token}"}, {"X-API-Key": token}):
        with httpx.Client(base_url=url, headers=headers, timeout=10) as sdk:
            assert sdk.get("/api/v1/sdk/config").status_code == 200
            assert sdk.post("/ofrep/v1/evaluate/flags/theme", json=OFREP_BODY).status_code == 200
            assert sdk.post("/ofrep/v1/evaluate/flags", json=OFREP_BODY).status_code == 200
            metrics = sdk.post(
                "/api/v1/sdk/metrics",
                json={"evaluations": [{"flag": "theme", "variant": "dark", "count": 3}]},
            )
            assert metrics.status_code == 202
            assert sdk.get("/api/v1/flags").status_code == 403


def fail_to_authenticate(url: str) -> dict[str, str]:
    """Wrong tokens, as bearer and API key, until the address is rate limited."""
    wrong_admin = f"gla_{secrets.token_urlsafe(32)}"
    wrong_sdk = f"gls_{secrets.token_urlsafe(32)}"
    statuses = [
        httpx.get(
            f"{url}/api/v1/sdk/config", headers={"Authorization": f"Bearer {token}"}, timeout=10
        ).status_code
        for token in (wrong_admin, wrong_sdk, wrong_admin, wrong_sdk)
    ]
    assert statuses == [401, 401, 401, 429]
    by_key = httpx.post(
        f"{url}/ofrep/v1/evaluate/flags",
        json=OFREP_BODY,
        headers={"X-API-Key": wrong_sdk},
        timeout=10,
    )
    assert by_key.status_code == 429
    return {"wrong admin token": wrong_admin, "wrong SDK token": wrong_sdk}


def sign_in_to_the_ui(url: str, password: str) -> dict[str, str]:
    """A wrong password, then the right one; the session cookie is a secret too."""
    wrong_password = f"pw-{secrets.token_urlsafe(18)}"
    with httpx.Client(base_url=url, timeout=10) as browser:
        assert sign_in(browser, "ana", wrong_password).status_code == 401
        assert sign_in(browser, "ana", password).status_code == 303
        session = browser.cookies["graylane_session"]
        assert browser.get("/ui/").status_code == 200
    return {"wrong password": wrong_password, "session cookie": session}
