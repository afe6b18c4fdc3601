"""Which Prometheus servers `prometheus` guards may query.

A guard's `url` makes every replica send requests to it, so only the operator decides
where they may go: `GRAYLANE_PROMETHEUS_URL` (the default for guards that name none) and
the servers listed in `GRAYLANE_PROMETHEUS_URLS`. A plan naming another is refused when
written (422, with the guard's path) and never queried. A URL stored before the operator
narrowed the list does not block other edits of its flag; it is only never queried.

The allowed set travels in each database session's `info` (see `install`), so the
services that validate a write and the controller that queries guards read the same
settings without taking them as another argument.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from graylane.core import Problem
from graylane_server.catalog import relative
from graylane_server.errors import InvalidDocument
from graylane_server.settings import Settings

INFO_KEY = "graylane.prometheus_urls"


def normalise(url: str) -> str:
    return url.strip().rstrip("/")


def allowed(settings: Settings) -> frozenset[str]:
    urls = [*settings.prometheus_urls, settings.prometheus_url or ""]
    return frozenset(normalise(u) for u in urls if u.strip())


def install(factory: sessionmaker[Session], urls: frozenset[str]) -> None:
    """Every session `factory` makes from now on knows the allowed URLs."""
    factory.configure(info={INFO_KEY: urls})


def allowed_in(session: Session) -> frozenset[str] | None:
    """The URLs allowed, or None for a session made without `install` (scripts, tests)."""
    urls = session.info.get(INFO_KEY)
    return urls if isinstance(urls, frozenset) else None


def may_query(session: Session, url: str, default: str | None) -> bool:
    urls = allowed_in(session)
    if urls is None:
        urls = frozenset() if default is None else frozenset({normalise(default)})
    return normalise(url) in urls


def _guard_urls(flag: object) -> Iterator[tuple[str, str]]:
    """(path below the flag, url) of each `prometheus` guard naming a url."""
    environments = flag.get("environments") if isinstance(flag, dict) else None
    for env, config in (environments if isinstance(environments, dict) else {}).items():
        ramp = config.get("ramp") if isinstance(config, dict) else None
        guards = ramp.get("guards") if isinstance(ramp, dict) else None
        for i, guard in enumerate(guards if isinstance(guards, list) else ()):
            if isinstance(guard, dict) and guard.get("kind") == "prometheus":
                url = guard.get("url")
                if isinstance(url, str):
                    yield f"environments.{env}.ramp.guards[{i}].url", url


def problems(
    flags: Mapping[str, Any], stored: Mapping[str, Any], urls: frozenset[str]
) -> list[Problem]:
    """A problem for each guard URL in `flags` that is neither allowed nor already in the
    stored definition of the same flag (`stored`, by key)."""
    out = []
    for key, flag in flags.items():
        kept = {normalise(url) for _, url in _guard_urls(stored.get(key))}
        for path, url in _guard_urls(flag):
            if normalise(url) not in urls and normalise(url) not in kept:
                out.append(
                    Problem(
                        f"flags.{key}.{path}",
                        f"Prometheus at {url!r} is not one this server may query: the "
                        "operator lists those in GRAYLANE_PROMETHEUS_URLS (or leave `url` "
                        "out to use GRAYLANE_PROMETHEUS_URL)",
                    )
                )
    return out


def check(
    session: Session, flags: Mapping[str, Any], stored: Mapping[str, Any], *, prefix: str = ""
) -> None:
    """Refuse guard URLs this server may not query, with paths relative to `prefix`."""
    urls = allowed_in(session)
    if urls is None:
        return
    found = problems(flags, stored, urls)
    if found:
        raise InvalidDocument(relative(found, prefix))
