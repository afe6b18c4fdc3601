"""A minimal Server-Sent Events reader: enough of the WHATWG format for Graylane's and
OFREP's change notices (data, event, id, retry; comments are heartbeats)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Event:
    data: str
    event: str = "message"
    id: str | None = None


def parse(lines: Iterable[str]) -> Iterator[Event | None]:
    """Events from decoded lines; yields None for each comment line, so a caller can
    treat heartbeats as proof the connection is alive."""
    data: list[str] = []
    event = "message"
    event_id: str | None = None
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data:
                yield Event("\n".join(data), event, event_id)
            data, event = [], "message"
            continue
        if line.startswith(":"):
            yield None
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            data.append(value)
        elif field == "event":
            event = value or "message"
        elif field == "id":
            event_id = value
