"""Conditional and compressed answers from prebuilt config bytes.

SDKs poll the config, mostly to hear 304, so everything in such an answer but the choice
between its variants is built once per served config: the header lists included.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fastapi import Request, Response

from graylane_server.configs.store import ServedConfig

RawHeaders = Sequence[tuple[bytes, bytes]]


def etag_matches(header: str | None, *etags: str, star: bool = True) -> bool:
    """RFC 9110 If-None-Match: a list of entity tags, or `*`; weak ones compare too.
    `star=False` where a tag stands for more than the resource (OFREP's bulk answer
    covers the context too), so only a tag the client was given can match."""
    if not header:
        return False
    if header.strip() == "*":
        return star
    offered = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return any(tag in offered for tag in etags)


def wants_gzip(request: Request) -> bool:
    return "gzip" in request.headers.get("accept-encoding", "").lower()


class PrebuiltResponse(Response):
    """A response from a header list built beforehand: Starlette's constructor would
    encode every header again on every response."""

    def __init__(self, status_code: int, headers: RawHeaders, body: bytes = b"") -> None:
        self.status_code = status_code
        self.body = body
        self.raw_headers = list(headers)  # a copy: middleware may add to it
        self.background = None


def _encode(headers: dict[str, str]) -> tuple[tuple[bytes, bytes], ...]:
    return tuple((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items())


@dataclass(frozen=True, slots=True)
class _Answers:
    """The four answers one served config can get, headers in the order Starlette's
    `Response` used to put them (ours, then content-length, then content-type)."""

    config: ServedConfig
    plain_etag: str
    gzip_etag: str
    plain: RawHeaders
    gzipped: RawHeaders
    plain_304: RawHeaders
    gzip_304: RawHeaders

    @classmethod
    def build(cls, config: ServedConfig) -> _Answers:
        def common(etag: str) -> dict[str, str]:
            return {
                "ETag": etag,
                "Cache-Control": "no-cache",
                "Vary": "Accept-Encoding",
                "X-Graylane-Environment": config.environment,
                "X-Graylane-Version": str(config.version),
            }

        def full(headers: dict[str, str], body: bytes) -> tuple[tuple[bytes, bytes], ...]:
            return _encode(
                headers | {"Content-Length": str(len(body)), "Content-Type": "application/json"}
            )

        gzip_etag = config.gzip_etag
        return cls(
            config=config,
            plain_etag=config.etag,
            gzip_etag=gzip_etag,
            plain=full(common(config.etag), config.body),
            gzipped=full(common(gzip_etag) | {"Content-Encoding": "gzip"}, config.gzipped),
            plain_304=_encode(common(config.etag)),
            gzip_304=_encode(common(gzip_etag)),
        )


# The answers for the config each environment serves now, replaced when a new config is
# swapped in (configs are immutable, so identity tells).
_answers: dict[str, _Answers] = {}


def _answers_for(config: ServedConfig) -> _Answers:
    answers = _answers.get(config.environment)
    if answers is None or answers.config is not config:
        answers = _answers[config.environment] = _Answers.build(config)
    return answers


def config_response(request: Request, config: ServedConfig) -> Response:
    answers = _answers_for(config)
    gzip = wants_gzip(request)
    if_none_match = request.headers.get("if-none-match")
    # An SDK sends back exactly the ETag it got; anything else takes the full comparison.
    if if_none_match is not None and (
        if_none_match in (answers.plain_etag, answers.gzip_etag)
        or etag_matches(if_none_match, answers.plain_etag, answers.gzip_etag)
    ):
        return PrebuiltResponse(304, answers.gzip_304 if gzip else answers.plain_304)
    if gzip:
        return PrebuiltResponse(200, answers.gzipped, config.gzipped)
    return PrebuiltResponse(200, answers.plain, config.body)
