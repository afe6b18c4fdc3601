"""A minimal Server-Sent Events reader: enough of the WHATWG format for Graylane's and
OFREP's change notices (data, event, id, retry; comments are heartbeats).

It reads text as it arrives and never holds more than one event's worth of it: an event
larger than `max_event` is skipped (its data dropped as it streams in) and reported as
`oversized`, so a reader can fetch what the event would have told it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

MAX_EVENT = 1024 * 1024
"""Characters one event may hold; Graylane's notices are a few hundred."""

_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True, slots=True)
class Event:
    data: str
    event: str = "message"
    id: str | None = None
    oversized: bool = False
    """The event was longer than the reader takes: `data` is empty."""


def lines(chunks: Iterable[str], max_line: int) -> Iterator[str | None]:
    """Lines from text chunks (CR, LF or CRLF end a line), without their ends. A line
    longer than `max_line` comes out as None, once, its text dropped as it arrives."""
    pending = ""
    skipping = False
    for chunk in chunks:
        scan = max(len(pending) - 1, 0)  # only new text, and a CR the last chunk ended on
        pending += chunk
        start = 0
        for end in _LINE_END.finditer(pending, scan):
            # A CR at the very end of a chunk may be the first half of a CRLF.
            if end.group() == "\r" and end.end() == len(pending):
                break
            if skipping:
                skipping = False
            else:
                yield pending[start : end.start()]
            start = end.end()
        pending = pending[start:]
        if len(pending) > max_line:
            if not skipping:
                skipping = True
                yield None
            pending = ""
    if pending and not skipping:
        yield pending.rstrip("\r")


def parse(chunks: Iterable[str], max_event: int = MAX_EVENT) -> Iterator[Event | None]:
    """Events from decoded text chunks; yields None for each comment line, so a caller can
    treat heartbeats as proof the connection is alive."""
    data: list[str] = []
    size = 0
    oversized = False
    event = "message"
    event_id: str | None = None
    for line in lines(chunks, max_event):
        if line is None:
            oversized = True
            continue
        if not line:
            if oversized:
                yield Event("", event, event_id, oversized=True)
            elif data:
                yield Event("\n".join(data), event, event_id)
            data, size, oversized, event = [], 0, False, "message"
            continue
        if line.startswith(":"):
            yield None
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            size += len(value) + 1
            if size > max_event:
                oversized, data = True, []
            elif not oversized:
                data.append(value)
        elif field == "event":
            event = value or "message"
        elif field == "id" and "\x00" not in value:
            event_id = value
