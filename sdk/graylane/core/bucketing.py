"""Deterministic bucketing (contract 2).

Every SDK in every language must produce the same bucket for the same salt and unit,
so the formula here is the contract itself, not an implementation detail:

    bucket(salt, unit) = murmur3_x86_32(utf8(salt + ":" + unit), seed=0) mod 100000
"""

from __future__ import annotations

from decimal import Decimal

import mmh3

from .limits import is_valid_text

BUCKETS = 100_000
"""Buckets per flag: a percentage with up to three decimals maps to a whole bucket count."""

VARIANT_SALT_SUFFIX = ":variant"
"""Variant choice hashes with its own salt, so who is exposed and what they get are independent."""


def bucket(salt: str, unit: str) -> int:
    """Return the unit's bucket in 0..99999 for this salt. Raises ValueError for text that
    is not valid Unicode (a lone surrogate), which has no UTF-8 bytes to hash."""
    text = f"{salt}:{unit}"
    if not is_valid_text(text):
        raise ValueError("bucketing needs valid Unicode: the salt or unit holds a lone surrogate")
    return mmh3.hash(text, 0, signed=False) % BUCKETS


def threshold(percentage: float | int | Decimal) -> int:
    """Buckets below this value are inside a rollout of `percentage` percent."""
    return round(Decimal(str(percentage)) * 1000)


def unit_of(value: object) -> str | None:
    """The bucketing unit for an attribute value: strings as they are, integers as decimal
    text, anything else (bools, floats, objects, missing) is no unit at all."""
    if isinstance(value, str):
        # str.__str__ gives the plain text of subclasses such as StrEnum members.
        return value if type(value) is str else str.__str__(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return int.__repr__(value)
    return None
