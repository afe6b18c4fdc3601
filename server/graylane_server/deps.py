"""Dependencies endpoints declare with `Annotated` aliases: the session, the caller."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.orm import Session

from graylane.core import Problem

from .configs.notices import PUBLISHED
from .errors import Forbidden, InvalidDocument, PreconditionFailed
from .runtime import Runtime
from .tokens.principal import Principal, Role


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


# The dependencies below that do no blocking work are `async def`: FastAPI runs a plain
# `def` dependency in its thread pool, a thread hop per request for nothing.


async def get_runtime(request: Request) -> Runtime:
    return runtime_of(request)


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


READ_YOUR_WRITES_TIMEOUT = 2.0


def get_session(runtime: RuntimeDep) -> Iterator[Session]:
    """A session in one transaction: committed when the endpoint returns normally. A
    write that changed what SDKs see is answered once this replica serves it (or after
    two seconds at most), so an SDK that reads right after the reply gets the change."""
    with runtime.sessions() as session:
        with session.begin():
            yield session
        published = session.info.pop(PUBLISHED, None)
    if published:
        runtime.store.wait_for(published, READ_YOUR_WRITES_TIMEOUT)


# scope="function": commit before the response is sent, so a client that reads right
# after a write sees it, and a failed commit is the response, not a log line.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


async def get_principal(request: Request, runtime: RuntimeDep) -> Principal:
    return await runtime.auth.authenticate(request)


async def sdk_client(request: Request) -> Principal:
    """The caller, who must hold an SDK token: for endpoints that take no dependencies
    (see `graylane_server.direct_routes`)."""
    return only_sdk(await runtime_of(request).auth.authenticate(request))


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def require(role: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """Only admin tokens and users whose role reaches `role`."""

    async def check(principal: CurrentPrincipal) -> Principal:
        if principal.kind == "sdk":
            raise Forbidden(
                "SDK tokens can only read config, evaluate, stream and send metrics; "
                "this endpoint needs an admin token"
            )
        assert principal.role is not None
        if not principal.role.allows(role):
            raise Forbidden(f"this needs the {role} role; you have {principal.role}")
        return principal

    return check


Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
Editor = Annotated[Principal, Depends(require(Role.EDITOR))]
ReleaseManager = Annotated[Principal, Depends(require(Role.RELEASE_MANAGER))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]


def only_sdk(principal: Principal) -> Principal:
    if principal.kind != "sdk":
        raise Forbidden("this endpoint takes an SDK token, which fixes the environment")
    return principal


async def require_sdk(principal: CurrentPrincipal) -> Principal:
    return only_sdk(principal)


SdkClient = Annotated[Principal, Depends(require_sdk)]


def parse_if_match(value: str | None) -> int | None:
    """The version in an `If-Match` header (`"3"`, `3`, or `W/"3"`); None when absent.

    Our entity tags are versions, so a tag that is not one (`"stale-version"`, `*`, a list
    without a version) matches no current version: a failed precondition (RFC 9110
    13.1.1), refused with 412 like any stale version."""
    if value is None:
        return None
    versions = {
        int(text)
        for tag in value.split(",")
        if (text := tag.strip().removeprefix("W/").strip('"')).isdigit() and len(text) <= 18
    }
    if len(versions) != 1:
        raise PreconditionFailed(
            f"If-Match {value[:100]!r} names no single version, so it matches none; "
            'read the current version and send it, as in `If-Match: "3"`'
        )
    return versions.pop()


async def _if_match(if_match: Annotated[str | None, Header()] = None) -> int | None:
    return parse_if_match(if_match)


IfMatchVersion = Annotated[int | None, Depends(_if_match)]


MAX_REASON = 2000
"""Longest reason, in characters: as long as the admin UI's reason field takes."""
REASON_PATH = "header.X-Graylane-Reason"


async def _reason(
    x_graylane_reason: Annotated[
        str | None,
        Header(
            description="Why, in UTF-8 (at most 2,000 characters): recorded in the audit log "
            "with the change."
        ),
    ] = None,
) -> str | None:
    if not x_graylane_reason:
        return None
    # Starlette reads header bytes as latin-1; a reason is sent as UTF-8.
    try:
        reason = x_graylane_reason.encode("latin-1").decode("utf-8").strip()
    except UnicodeDecodeError:
        raise InvalidDocument([Problem(REASON_PATH, "is not valid UTF-8")]) from None
    if "\x00" in reason:
        raise InvalidDocument([Problem(REASON_PATH, "holds a NUL character")])
    if len(reason) > MAX_REASON:
        raise InvalidDocument([Problem(REASON_PATH, f"is longer than {MAX_REASON} characters")])
    return reason or None


Reason = Annotated[str | None, Depends(_reason)]
