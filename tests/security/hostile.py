"""Hostile JSON for the property suite, and where each offending value sits in it.

JSON allows what Graylane must refuse: lone UTF-16 surrogates (`"\\ud800"`), NUL,
integers of thousands of digits, NaN and Infinity written literally, nesting far past
any limit. A JSON encoder writes none of that, so values here are encoded by `encode`,
and `offences` says where each value past the documented limits (docs/limits.md) sits,
so a refusal can be checked for naming it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

MAX_DEPTH = 64
"""Deepest nesting of objects and arrays (docs/limits.md)."""
MAX_STRING = 65_536
"""Longest string or key, in characters (docs/limits.md)."""


@dataclass(frozen=True)
class Raw:
    """A JSON number written as is: no encoder writes NaN, Infinity or 5,000 digits."""

    text: str


@dataclass(frozen=True)
class Deep:
    """`levels` nested objects (`{"a": {"a": ... 1}}`) or arrays (`[[...[1]...]]`)."""

    levels: int
    arrays: bool = False


@dataclass(frozen=True)
class Offence:
    """A value past the limits, at `path` as the server writes paths (`a.b[0]`). A
    `nesting` offence may be reported at any container on the way down to it, since a
    parser may give up on the whole body."""

    path: str
    nesting: bool = False

    def named_by(self, path: str) -> bool:
        if path == self.path:
            return True
        return self.nesting and (path.startswith(self.path) or self.path.startswith(path))


# --- encoding ---------------------------------------------------------------------------


def encode(value: Any) -> bytes:
    parts: list[str] = []
    _write(value, parts)
    return "".join(parts).encode("utf-8")


def _write(value: Any, out: list[str]) -> None:
    if isinstance(value, Raw):
        out.append(value.text)
    elif isinstance(value, Deep):
        opening, closing = ("[", "]") if value.arrays else ('{"a":', "}")
        out.append(opening * value.levels + "1" + closing * value.levels)
    elif isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, Mapping):
        out.append("{")
        for index, (key, child) in enumerate(value.items()):
            out.append(("," if index else "") + _string(key) + ":")
            _write(child, out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for index, child in enumerate(value):
            if index:
                out.append(",")
            _write(child, out)
        out.append("]")
    else:  # None, bools and finite numbers: what json writes
        out.append(json.dumps(value))


def _string(text: str) -> str:
    # Valid text goes as UTF-8 (right-to-left marks and all); a lone surrogate can only
    # be written as its escape.
    return json.dumps(text, ensure_ascii=not valid_unicode(text))


def valid_unicode(text: str) -> bool:
    return not any(0xD800 <= ord(ch) <= 0xDFFF for ch in text)


# --- the oracle ---------------------------------------------------------------------------


def bad_text(text: str) -> bool:
    return not valid_unicode(text) or "\x00" in text or len(text) > MAX_STRING


def path_key(key: str) -> str:
    """A key as a path shows it: NUL and lone surrogates as their escapes."""
    return "".join(
        repr(ch)[1:-1] if ch == "\x00" or 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in key
    )


def child(path: str, key: str) -> str:
    return f"{path}.{path_key(key)}" if path else path_key(key)


def offences(value: Any, path: str = "", depth: int = 1) -> list[Offence]:
    """Every value past the limits in `value`, which sits at `path`, `depth` levels down
    (1 for the body itself)."""
    if isinstance(value, Raw):
        return [Offence(path)]
    if isinstance(value, Deep):
        return [Offence(path, nesting=True)] if depth + value.levels - 1 > MAX_DEPTH else []
    if isinstance(value, str):
        return [Offence(path)] if bad_text(value) else []
    found: list[Offence] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            where = child(path, key)
            if bad_text(key):
                found.append(Offence(where))
            found.extend(offences(item, where, depth + 1))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found.extend(offences(item, f"{path}[{index}]", depth + 1))
    return found


# --- strategies --------------------------------------------------------------------------

SURROGATES = st.sampled_from(["\ud800", "\udfff", "\udbff", "\udc00\udc00"])
RIGHT_TO_LEFT = st.sampled_from(
    ["\u202eevil\u202c", "שלום עולם", "مرحبا", "\u200f\u2067x\u2069", "a\u202eb\u202dc"]
)

benign_text = st.one_of(
    st.text(max_size=16),  # hypothesis leaves out surrogates here
    RIGHT_TO_LEFT,
    st.builds(lambda a, b: a + b, RIGHT_TO_LEFT, st.text(max_size=8)),
    st.just("y" * 10_000),
    st.just("z" * MAX_STRING),  # the longest text that may be stored
)
hostile_text = st.one_of(
    st.builds(lambda a, s, b: a + s + b, st.text(max_size=6), SURROGATES, st.text(max_size=6)),
    st.builds(lambda a, b: a + "\x00" + b, st.text(max_size=6), st.text(max_size=6)),
    st.just("x" * (MAX_STRING + 1)),
)
benign_numbers = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([2**63 - 1, -(2**63), 0, -1, 10**18]),
    st.floats(allow_nan=False, allow_infinity=False),
)
hostile_numbers = st.sampled_from(
    [
        Raw("NaN"),
        Raw("Infinity"),
        Raw("-Infinity"),
        Raw("1e999"),
        Raw("-1e999"),
        Raw("9" * 5000),
        Raw("-" + "9" * 5000),
        Raw(str(2**63)),
        Raw(str(-(2**63) - 1)),
    ]
)
deep = st.builds(Deep, st.sampled_from([MAX_DEPTH + 1, 500, 5_000, 100_000]), arrays=st.booleans())
keys = st.one_of(
    st.text(max_size=10),
    RIGHT_TO_LEFT,
    st.builds(lambda a, s: a + s, st.text(max_size=4), SURROGATES),
    st.builds(lambda a: a + "\x00", st.text(max_size=4)),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    benign_numbers,
    benign_text,
    hostile_text,
    hostile_numbers,
    deep,
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)),
    max_leaves=10,
)
"""Any JSON, past the limits and not, of any type."""


@st.composite
def replaced(draw: st.DrawFn, template: Any, *, at_most: int = 3) -> Any:
    """`template` with a few of its values (leaves or whole containers) replaced by any
    JSON: the body still reaches the endpoint's own validation."""
    places = _places(template)
    if not places:
        return draw(values)
    chosen = draw(st.lists(st.sampled_from(places), min_size=1, max_size=at_most, unique=True))
    return _replace(template, {place: draw(values) for place in chosen})


@st.composite
def retexted(draw: st.DrawFn, template: Any, *, at_most: int = 3) -> Any:
    """`template` with a few of its strings replaced by other text, mostly text that may
    be stored (right-to-left, long): such a body often passes, and is stored."""
    texts = [place for place in _places(template) if isinstance(_at(template, place), str)]
    if not texts:
        return template
    chosen = draw(st.lists(st.sampled_from(texts), min_size=1, max_size=at_most, unique=True))
    text = st.one_of(benign_text, benign_text, benign_text, hostile_text)
    return _replace(template, {place: draw(text) for place in chosen})


Place = tuple[str | int, ...]


def _places(value: Any, place: Place = ()) -> list[Place]:
    found: list[Place] = [place] if place else []
    if isinstance(value, dict):
        for key, item in value.items():
            found.extend(_places(item, (*place, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(_places(item, (*place, index)))
    return found


def _at(value: Any, place: Place) -> Any:
    for step in place:
        value = value[step]
    return value


def _replace(value: Any, changes: dict[Place, Any], place: Place = ()) -> Any:
    if place in changes:
        return changes[place]
    if isinstance(value, dict):
        return {key: _replace(item, changes, (*place, key)) for key, item in value.items()}
    if isinstance(value, list):
        return [_replace(item, changes, (*place, index)) for index, item in enumerate(value)]
    return value
