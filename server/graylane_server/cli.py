"""The `graylane-server` command: serve, migrate, mint tokens."""

# ruff: noqa: E402 - the imports wait for the check that the server extra is installed

from __future__ import annotations

import sys
from importlib.util import find_spec

SERVER_MODULES = (
    "alembic",
    "argon2",
    "fastapi",
    "fastapi_offline",
    "jinja2",
    "multipart",
    "prometheus_client",
    "psycopg",
    "pydantic",
    "pydantic_settings",
    "redis",
    "sqlalchemy",
    "sse_starlette",
    "structlog",
    "typer",
    "uvicorn",
    "yaml",
)
"""What `pip install 'graylane[server]'` adds to the SDK, by import name."""


def missing_modules() -> list[str]:
    """The server extra's modules that cannot be imported here."""
    missing = []
    for name in SERVER_MODULES:
        try:
            found = find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    return missing


# `pip install graylane` is the SDK alone: say what to install, not a traceback.
if _missing := missing_modules():
    sys.stderr.write(
        "the graylane-server command needs the server extra "
        f"(missing: {', '.join(_missing)}): pip install 'graylane[server]'\n"
    )
    raise SystemExit(2)

import os
from typing import Annotated

import typer
import uvicorn

from graylane_server import db
from graylane_server.errors import GraylaneError
from graylane_server.settings import Settings
from graylane_server.tokens import service as tokens
from graylane_server.tokens.principal import Role
from graylane_server.users import service as users

app = typer.Typer(
    help="The Graylane server. Settings come from GRAYLANE_* environment variables; with none "
    "set it keeps a SQLite file in .graylane/ and needs no Redis.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
token_app = typer.Typer(help="Mint admin and SDK tokens.", no_args_is_help=True)
app.add_typer(token_app, name="token")
user_app = typer.Typer(help="Manage people who sign in to the admin UI.", no_args_is_help=True)
app.add_typer(user_app, name="user")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Run the HTTP server (API, OFREP, SDK streams, admin UI)."""
    settings = Settings()
    if workers > 1 and settings.embedded:
        # Workers migrate independently on SQLite; do it once before they start.
        db.migrate(db.create_db_engine(settings))
        os.environ["GRAYLANE_MIGRATE_ON_START"] = "false"
    if workers > 1:
        # With workers, uvicorn's "running on" line comes from a process whose logging no
        # app has set up, so it never shows: say where the server listens here.
        typer.echo(f"Graylane listening on http://{host}:{port} ({workers} workers)", err=True)
    uvicorn.run(
        "graylane_server.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_config=None,  # our structured logging handles uvicorn's loggers too
        log_level=settings.log_level,
        proxy_headers=True,
    )


@app.command()
def migrate(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Bring the database schema up to date (run once per release, before the servers)."""
    settings = Settings()
    engine = db.create_db_engine(settings)
    db.migrate(engine, revision)
    current, _ = db.schema_revisions(engine)
    typer.echo(f"database schema at {current}")


@token_app.command("create")
def token_create(
    role: Annotated[Role | None, typer.Option(help="An admin token with this role.")] = None,
    sdk: Annotated[bool, typer.Option("--sdk", help="An SDK token instead (needs --env).")] = False,
    env: Annotated[str | None, typer.Option(help="Environment of the SDK token.")] = None,
    name: Annotated[str | None, typer.Option(help="A name to tell it apart.")] = None,
) -> None:
    """Mint a token and print it. It is shown this once; only its hash is stored."""
    if sdk == (role is not None):
        raise typer.BadParameter("give either --role ROLE or --sdk --env ENV")
    if sdk and env is None:
        raise typer.BadParameter("an SDK token needs --env ENV")
    if not sdk and env is not None:
        raise typer.BadParameter("an admin token is not bound to an environment: drop --env")
    settings = Settings()
    engine = db.create_db_engine(settings)
    if settings.embedded:
        db.migrate(engine)
    try:
        with db.transaction(db.session_factory(engine)) as session:
            _, secret = tokens.create(
                session,
                actor="cli",
                kind="sdk" if sdk else "admin",
                name=name,
                role=role,
                environment=env,
            )
    except GraylaneError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(secret)


@user_app.command("create")
def user_create(
    username: Annotated[str, typer.Option(help="Sign-in name.")],
    role: Annotated[Role, typer.Option(help="What the user may do.")],
    password: Annotated[
        str | None,
        typer.Option(help="Password (prompted for, without echo, when not given)."),
    ] = None,
) -> None:
    """Create a user (the password is prompted for when not given)."""
    if password is None:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    settings = Settings()
    engine = db.create_db_engine(settings)
    if settings.embedded:
        db.migrate(engine)
    try:
        with db.transaction(db.session_factory(engine)) as session:
            users.create(session, actor="cli", username=username, password=password, role=role)
    except GraylaneError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"created {role} {username}")


def main() -> None:
    app()
