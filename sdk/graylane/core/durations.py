"""Durations written like `30s`, `10m`, `2h`, `1d` or `1h30m`."""

from __future__ import annotations

import re
from decimal import Decimal

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", re.ASCII)
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+", re.ASCII)
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float | None:
    """Seconds in `text`, or None when it is not a duration."""
    compact = text.replace(" ", "")
    if not _WHOLE.fullmatch(compact):
        return None
    return sum(float(n) * _SECONDS[unit] for n, unit in _PART.findall(compact))


def format_duration(seconds: float) -> str:
    """The shortest exact spelling of `seconds` in the units above."""
    if seconds == 0:
        return "0s"
    for unit in ("d", "h", "m", "s"):
        size = _SECONDS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    exact = Decimal(repr(seconds))
    if seconds < 1 and (exact * 1000) == (exact * 1000).to_integral_value():
        return f"{int(exact * 1000)}ms"
    return format(exact.normalize(), "f") + "s"
