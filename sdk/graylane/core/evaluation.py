"""The result of evaluating one flag for one context, in OpenFeature's words."""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

from .limits import NOT_UNICODE, path_key
from .model import JsonValue


class Reason(StrEnum):
    """OpenFeature resolution reasons."""

    STATIC = "STATIC"
    DEFAULT = "DEFAULT"
    TARGETING_MATCH = "TARGETING_MATCH"
    SPLIT = "SPLIT"
    DISABLED = "DISABLED"
    ERROR = "ERROR"


class ErrorCode(StrEnum):
    """OpenFeature error codes."""

    FLAG_NOT_FOUND = "FLAG_NOT_FOUND"
    TYPE_MISMATCH = "TYPE_MISMATCH"
    PARSE_ERROR = "PARSE_ERROR"
    TARGETING_KEY_MISSING = "TARGETING_KEY_MISSING"
    INVALID_CONTEXT = "INVALID_CONTEXT"
    PROVIDER_NOT_READY = "PROVIDER_NOT_READY"
    GENERAL = "GENERAL"


class Evaluation(NamedTuple):
    """What a flag served and why.

    A named tuple rather than a frozen dataclass: results that carry a bucket are built on
    every call, and a tuple builds several times faster. Results without a bucket are
    built once per snapshot and shared.
    """

    flag_key: str
    value: JsonValue
    variant: str | None
    reason: Reason
    error_code: ErrorCode | None = None
    error_message: str | None = None
    rule: str | None = None
    """Name of the rule that matched, if one did."""
    bucket: int | None = None
    """The unit's rollout bucket (0..99999) when a rollout decided the result."""

    def to_dict(self) -> dict[str, JsonValue]:
        """camelCase JSON, as OpenFeature names these fields."""
        out: dict[str, JsonValue] = {
            "key": self.flag_key,
            "value": self.value,
            "variant": self.variant,
            "reason": str(self.reason),
        }
        if self.error_code is not None:
            out["errorCode"] = str(self.error_code)
            out["errorMessage"] = self.error_message
        if self.rule is not None:
            out["rule"] = self.rule
        if self.bucket is not None:
            out["bucket"] = self.bucket
        return out


def flag_not_found(key: str) -> Evaluation:
    return Evaluation(
        key, None, None, Reason.ERROR, ErrorCode.FLAG_NOT_FOUND, f"flag {key!r} does not exist"
    )


def invalid_context(key: str, attribute: str, problem: str = NOT_UNICODE) -> Evaluation:
    """A context attribute that evaluation reads holds a value past the edge limits (text
    that is not valid Unicode, an integer outside 64 bits): the message is the server's."""
    return Evaluation(
        key,
        None,
        None,
        Reason.ERROR,
        ErrorCode.INVALID_CONTEXT,
        f"context.{path_key(attribute)} {problem}",
    )
