"""Answers that cannot fail on the text they carry.

Nothing past the edge limits is stored any more, but a database written by an earlier
release (or by hand) may still hold a lone UTF-16 surrogate, which UTF-8 cannot encode,
or values nested hundreds of levels deep, past pydantic's JSON serializer. Every answer
is encoded here: such text is sent as U+FFFD and logged, instead of failing the request.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import structlog
from fastapi.responses import JSONResponse

log = structlog.get_logger(__name__)

_SURROGATE = re.compile("[\ud800-\udfff]")


def utf8(text: str, *, what: str) -> bytes:
    """The text as UTF-8; a lone surrogate becomes U+FFFD, logged with `what` was sent."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        log.warning("response.invalid_text", what=what, replaced_with="U+FFFD")
        return _SURROGATE.sub("\ufffd", text).encode("utf-8")


class SafeJSONResponse(JSONResponse):
    """Starlette's JSON answer, encoded with `utf8`. As the app's default response class it
    also takes over from pydantic's JSON serializer, which fails on the same text and on
    values nested past some 250 levels (json.dumps encodes them); like pydantic's, it
    writes a float that is NaN or infinite as null."""

    def render(self, content: Any) -> bytes:
        try:
            text = _dumps(content)
        except ValueError:  # a NaN or an infinity: JSON has no such number
            text = _dumps(_finite(content))
        return utf8(text, what="json")


def _dumps(content: Any) -> str:
    return json.dumps(
        content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    )


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value
