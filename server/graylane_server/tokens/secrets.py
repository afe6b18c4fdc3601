"""Token secrets: random, shown once, stored only as a hash.

Tokens carry 256 random bits, so a fast hash is as safe as a slow one: nobody can guess a
preimage, and checking a request costs microseconds instead of a password KDF's
milliseconds on every call.
"""

from __future__ import annotations

import hashlib
import secrets

PREFIXES = {"admin": "gla_", "sdk": "gls_"}
HINT_LENGTH = 10


def new_token(kind: str) -> str:
    return PREFIXES[kind] + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def hint(token: str) -> str:
    """Enough of the token to recognise it in a list, far too little to use it."""
    return token[:HINT_LENGTH] + "…"
