"""Conditional and compressed answers from prebuilt config bytes."""

from __future__ import annotations

from fastapi import Request, Response

from graylane_server.configs.store import ServedConfig


def etag_matches(header: str | None, *etags: str) -> bool:
    """RFC 9110 If-None-Match: a list of entity tags, or `*`; weak ones compare too."""
    if not header:
        return False
    if header.strip() == "*":
        return True
    offered = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return any(tag in offered for tag in etags)


def wants_gzip(request: Request) -> bool:
    return "gzip" in request.headers.get("accept-encoding", "").lower()


def config_response(request: Request, config: ServedConfig) -> Response:
    gzip = wants_gzip(request)
    etag = config.gzip_etag if gzip else config.etag
    headers = {
        "ETag": etag,
        "Cache-Control": "no-cache",
        "Vary": "Accept-Encoding",
        "X-Graylane-Environment": config.environment,
        "X-Graylane-Version": str(config.version),
    }
    if etag_matches(request.headers.get("if-none-match"), config.etag, config.gzip_etag):
        return Response(status_code=304, headers=headers)
    if gzip:
        headers["Content-Encoding"] = "gzip"
        return Response(config.gzipped, media_type="application/json", headers=headers)
    return Response(config.body, media_type="application/json", headers=headers)
