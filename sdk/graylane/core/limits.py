"""Edge limits: what any JSON value Graylane accepts must satisfy, checked before it is
stored, evaluated or hashed.

Every value that reaches the database, the audit log, an export or mmh3 must be text
that encodes as UTF-8 and numbers that PostgreSQL and every SDK can hold. JSON itself
allows more (a lone surrogate such as "\\ud800", 400-digit integers, 100,000 levels of
nesting), so the server's HTTP edge, document validation and the SDK check here first.

The walk is iterative: a body nested 100,000 levels deep is refused, not a RecursionError.
The limits are far above anything a real flag document or context needs (docs/limits.md).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from .problems import Problem

MAX_DEPTH = 64
"""Deepest nesting of objects and arrays, counting the outermost as level 1."""

MAX_NODES = 1_000_000
"""Most values (objects, arrays, keys' values and scalars) in one document or body."""

MAX_CONTEXT_NODES = 10_000
"""Most values in one evaluation context."""

MAX_STRING = 65_536
"""Longest string or object key, in characters."""

MIN_INT = -(2**63)
MAX_INT = 2**63 - 1
"""Integers must fit a signed 64-bit integer (PostgreSQL bigint, Java/Go/JS-safe SDKs)."""
INT_OUT_OF_RANGE = "is an integer outside the signed 64-bit range"
NOT_UNICODE = "is not valid Unicode (it holds a lone UTF-16 surrogate)"

MAX_PROBLEMS = 100
"""The walk stops after this many problems: a hostile body gets a bounded answer."""

MAX_EVENT_NAME = 64
"""Longest event name (`track("request")`) in characters: the SDK refuses what the
server's metrics body would refuse, so one bad name cannot poison every later report."""

MAX_EVENT_VALUE = 1e15
"""Largest magnitude of one event value: a trillion of them still sum (and square) well
inside what the server's metrics body accepts (±1e30 per sum, 1e60 per sum of squares)."""

_PATH_KEY_CHARS = 200


def text_problem(text: str) -> str | None:
    """Why this text cannot be stored or hashed, or None when it can."""
    if len(text) > MAX_STRING:
        return f"is longer than {MAX_STRING} characters"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return NOT_UNICODE
    if "\x00" in text:
        return "holds a NUL character"
    return None


def is_int64(value: int) -> bool:
    """True when the integer fits a signed 64-bit integer."""
    return MIN_INT <= value <= MAX_INT


def event_name_problem(name: object) -> str | None:
    """Why the server's metrics body would refuse this event name, or None when it takes
    it: 1 to MAX_EVENT_NAME characters of text that is stored as it is (`text_problem`)."""
    if not isinstance(name, str):
        return f"is not a string ({type(name).__name__})"
    if not name:
        return "is empty"
    if len(name) > MAX_EVENT_NAME:
        return f"is longer than {MAX_EVENT_NAME} characters"
    return text_problem(name)


def event_value_problem(value: object) -> str | None:
    """Why an event value cannot be counted, or None when it can: a finite int or float
    (not a bool) of magnitude at most MAX_EVENT_VALUE."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"is not a number ({type(value).__name__})"
    # Compared as it is: math.isfinite would overflow on an int of 400 digits.
    if isinstance(value, float) and not math.isfinite(value):
        return "is not a finite number (NaN or infinity)"
    if not -MAX_EVENT_VALUE <= value <= MAX_EVENT_VALUE:
        return f"is outside ±{MAX_EVENT_VALUE:g}"
    return None


def is_valid_text(text: str) -> bool:
    """True when the text encodes as UTF-8: what mmh3 and re2 require."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def path_key(key: str) -> str:
    """A key as it may appear in a path: a lone surrogate or NUL is written as its escape
    (in a path, it would break the very message that reports it), and a long key is cut."""
    if len(key) > _PATH_KEY_CHARS:
        key = key[:_PATH_KEY_CHARS] + "…"
    if "\x00" not in key and is_valid_text(key):
        return key
    return "".join(
        repr(ch)[1:-1] if ch == "\x00" or 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in key
    )


def _join(path: str, key: str) -> str:
    key = path_key(key)
    return f"{path}.{key}" if path else key


def json_problems(
    value: object,
    path: str = "",
    *,
    max_depth: int = MAX_DEPTH,
    max_nodes: int = MAX_NODES,
) -> list[Problem]:
    """Every way `value` breaks the edge limits, each with its path (`flags.x.variants.on`,
    `rules[0]`); an empty list when it may be stored and evaluated.

    Reports strings and keys that are not valid Unicode, hold NUL or are longer than
    MAX_STRING; floats that are NaN or infinite; integers outside the signed 64-bit
    range; values that are not JSON; nesting deeper than `max_depth`; more than
    `max_nodes` values in all."""
    problems: list[Problem] = []
    nodes = 0
    # (value, path, depth of the value: 1 for the outermost container)
    stack: list[tuple[object, str, int]] = [(value, path, 1)]
    while stack:
        item, where, depth = stack.pop()
        nodes += 1
        if nodes > max_nodes:
            problems.append(Problem(path, f"holds more than {max_nodes} values"))
            break
        kind = type(item)
        if kind is str:
            message = text_problem(item)  # type: ignore[arg-type]
            if message is not None:
                problems.append(Problem(where, message))
        elif kind is bool or item is None:
            pass
        elif kind is int:
            if not MIN_INT <= item <= MAX_INT:  # type: ignore[operator]
                problems.append(Problem(where, INT_OUT_OF_RANGE))
        elif kind is float:
            if not math.isfinite(item):  # type: ignore[arg-type]
                problems.append(Problem(where, "is not a finite number (NaN or infinity)"))
        elif isinstance(item, Mapping | list | tuple):
            if depth > max_depth:
                problems.append(Problem(where, f"nests deeper than {max_depth} levels"))
            elif isinstance(item, Mapping):
                children: list[tuple[object, str, int]] = []
                for key, child in item.items():
                    if type(key) is not str:
                        problems.append(
                            Problem(_join(where, repr(key)), "has a key that is not a string")
                        )
                        continue
                    child_path = _join(where, key)
                    message = text_problem(key)
                    if message is not None:
                        problems.append(Problem(child_path, f"key {message}"))
                    children.append((child, child_path, depth + 1))
                stack.extend(reversed(children))
            else:
                stack.extend(
                    (child, f"{where}[{index}]", depth + 1)
                    for index, child in reversed(list(enumerate(item)))
                )
        elif isinstance(item, str | int | float):
            # Subclasses (StrEnum, IntEnum) are checked as their plain values.
            stack.append((_plain(item), where, depth))
            nodes -= 1
        else:
            problems.append(Problem(where, f"is not a JSON value ({kind.__name__})"))
        if len(problems) >= MAX_PROBLEMS:
            break
    return problems


def _plain(value: str | int | float) -> object:
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int(value)
    return float(value)


def context_problems(context: object, *, max_depth: int = MAX_DEPTH) -> list[Problem]:
    """Every way an evaluation context breaks the edge limits, with paths such as
    `context.targetingKey` or `context.groups[2]`."""
    if not isinstance(context, Mapping):
        return [Problem("context", "must be an object")]
    return json_problems(context, "context", max_depth=max_depth, max_nodes=MAX_CONTEXT_NODES)
