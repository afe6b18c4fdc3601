"""Jinja templates of the admin UI, with the few filters the pages share."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2

from graylane_server.ui.assets import StaticUrls


def when(value: datetime | float | None) -> str:
    """An absolute time, in UTC."""
    if value is None:
        return "—"
    moment = datetime.fromtimestamp(value, UTC) if isinstance(value, int | float) else value
    return moment.astimezone(UTC).strftime("%d %b %Y, %H:%M UTC")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        minutes, rest = divmod(seconds, 60)
        return f"{minutes}m" if rest == 0 else f"{minutes}m {rest}s"
    if seconds < 86400:
        hours, rest = divmod(seconds, 3600)
        return f"{hours}h" if rest < 60 else f"{hours}h {rest // 60}m"
    days, rest = divmod(seconds, 86400)
    return f"{days}d" if rest < 3600 else f"{days}d {rest // 3600}h"


def ago(value: datetime | float | None, now: float | None = None) -> str:
    """A time relative to now: "just now", "5m ago", "3d ago"."""
    if value is None:
        return "never"
    moment = value.timestamp() if isinstance(value, datetime) else float(value)
    delta = (now if now is not None else datetime.now(UTC).timestamp()) - moment
    if delta < 0:
        return "in " + duration(-delta)
    if delta < 10:
        return "just now"
    return duration(delta).split(" ")[0] + " ago"


def pct(value: float | int | str | None) -> str:
    """A percentage as the document writes it: 10%, 0.5%, 33.333%."""
    if value is None:
        return "—"
    number = float(value)
    text = f"{number:.3f}".rstrip("0").rstrip(".")
    return f"{text}%"


def rate(value: float | None) -> str:
    """A rate (0.0012) as a percentage (0.12%)."""
    if value is None:
        return "n/a"
    percent = value * 100
    if percent == 0:
        return "0%"
    if percent < 0.01:
        return f"{percent:.3g}%"
    return f"{percent:.3g}%" if percent < 10 else f"{percent:.1f}%"


def number(value: float | int | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.3g}"


def as_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def humanize(value: str) -> str:
    """`rolled_back` -> `rolled back`."""
    return value.replace("_", " ")


def leaves(changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Audit changes with added or removed objects spelled out leaf by leaf, so a created
    flag reads `environments.production.enabled: absent -> true`, not one long blob."""
    out: list[dict[str, Any]] = []
    for change in changes:
        sides = [side for side in ("before", "after") if side in change]
        value = change[sides[0]] if len(sides) == 1 else None
        if len(sides) == 1 and isinstance(value, dict) and value:
            out += leaves(
                [
                    {"path": f"{change['path']}.{k}" if change["path"] else k, sides[0]: v}
                    for k, v in value.items()
                ]
            )
        elif (
            len(sides) == 1
            and isinstance(value, list)
            and value
            and any(isinstance(v, dict | list) for v in value)
        ):
            out += leaves(
                [{"path": f"{change['path']}[{i}]", sides[0]: v} for i, v in enumerate(value)]
            )
        else:
            out.append(change)
    return out


class Templates:
    def __init__(self, directory: Path, static: StaticUrls) -> None:
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(directory),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(
            when=when,
            ago=ago,
            duration=duration,
            pct=pct,
            rate=rate,
            number=number,
            as_json=as_json,
            pretty=pretty,
            humanize=humanize,
            leaves=leaves,
        )
        self.env.globals["static"] = static

    def render(self, name: str, **context: Any) -> str:
        return self.env.get_template(name).render(**context)
