"""Users: admins create, change and remove them; passwords are never shown or stored plain."""

from __future__ import annotations

import subprocess
import sys

import httpx
from sqlalchemy import create_engine, text

from graylane_server.users.passwords import verify_password


def test_an_admin_creates_lists_changes_and_deletes_a_user(admin: httpx.Client) -> None:
    created = admin.post(
        "/api/v1/users", json={"username": "ana", "password": "correct horse", "role": "editor"}
    )
    assert created.status_code == 201
    assert created.json()["role"] == "editor"
    assert "password" not in created.text
    listed = admin.get("/api/v1/users").json()["users"]
    assert [u["username"] for u in listed] == ["ana"]
    changed = admin.patch("/api/v1/users/ana", json={"role": "release_manager", "disabled": True})
    assert changed.json() == {**changed.json(), "role": "release_manager", "disabled": True}
    assert admin.delete("/api/v1/users/ana").status_code == 204
    assert admin.get("/api/v1/users").json()["users"] == []
    actions = [
        e["action"]
        for e in admin.get("/api/v1/audit", params={"target_type": "user"}).json()["entries"]
    ]
    assert actions == ["user.delete", "user.update", "user.create"]


def test_passwords_are_stored_as_argon2_hashes(admin: httpx.Client, database_url: str) -> None:
    admin.post(
        "/api/v1/users", json={"username": "ben", "password": "a long secret", "role": "viewer"}
    )
    engine = create_engine(database_url)
    with engine.connect() as connection:
        stored = connection.execute(
            text("SELECT password_hash FROM users WHERE username = 'ben'")
        ).scalar_one()
    engine.dispose()
    assert stored.startswith("$argon2id$")
    assert "a long secret" not in stored
    assert verify_password(stored, "a long secret")
    assert not verify_password(stored, "a wrong secret")


def test_bad_users_are_refused(admin: httpx.Client) -> None:
    short = admin.post(
        "/api/v1/users", json={"username": "cy", "password": "short", "role": "viewer"}
    )
    assert short.status_code == 422
    assert short.json()["error"]["problems"][0]["path"] == "password"
    bad_role = admin.post(
        "/api/v1/users", json={"username": "cy", "password": "long enough!", "role": "root"}
    )
    assert bad_role.status_code == 422
    admin.post(
        "/api/v1/users", json={"username": "cy", "password": "long enough!", "role": "viewer"}
    )
    again = admin.post(
        "/api/v1/users", json={"username": "cy", "password": "long enough!", "role": "viewer"}
    )
    assert again.status_code == 409
    assert admin.patch("/api/v1/users/nobody", json={"disabled": True}).status_code == 404


def test_only_admins_manage_users(admin: httpx.Client, make_token, client_for) -> None:  # type: ignore[no-untyped-def]
    release_manager = client_for(make_token(role="release_manager"))
    assert release_manager.get("/api/v1/users").status_code == 403
    body = {"username": "dee", "password": "long enough!", "role": "admin"}
    assert release_manager.post("/api/v1/users", json=body).status_code == 403
    assert admin.get("/api/v1/users").json()["users"] == []


def test_the_cli_creates_a_user(admin: httpx.Client, database_url: str) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "graylane_server",
            "user",
            "create",
            "--username",
            "eve",
            "--role",
            "release_manager",
            "--password",
            "long enough!",
        ],
        env={"GRAYLANE_DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "created release_manager eve" in result.stdout
    assert [u["username"] for u in admin.get("/api/v1/users").json()["users"]] == ["eve"]
