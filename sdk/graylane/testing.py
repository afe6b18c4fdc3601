"""Force flag values in an app's own tests, with no server.

```python
from graylane.testing import client_with, override

client = client_with({"new-checkout": True, "button-color": "green"})
assert client.is_enabled("new-checkout", {"targetingKey": "any"})

with override(app.flags, {"new-checkout": False}):
    ...  # every evaluation of new-checkout serves False here, other flags are untouched
```
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from graylane.client import Client
from graylane.core import JsonValue, parse_document

FORCED = "forced"


def _fixed_flags(values: Mapping[str, JsonValue], environment: str) -> dict[str, object]:
    flags: dict[str, object] = {}
    for key, value in values.items():
        if value is None:
            raise ValueError(f"{key}: a flag value cannot be None")
        flags[key] = {
            "variants": {FORCED: value},
            "off_variant": FORCED,
            "environments": {environment: {"enabled": True, "fallthrough": {"variant": FORCED}}},
        }
    return flags


def client_with(values: Mapping[str, JsonValue], environment: str = "test") -> Client:
    """A client that serves exactly these values to every context."""
    return Client.from_document({"flags": _fixed_flags(values, environment)}, environment)


@contextmanager
def override(client: Client, values: Mapping[str, JsonValue]) -> Iterator[Client]:
    """Serve these values from `client` inside the block, whatever configs arrive from the
    server meanwhile; afterwards, the server's current config again."""
    forced = parse_document({"flags": _fixed_flags(values, client.environment)})
    previous = dict(client._overrides)
    client._set_overrides({**previous, **forced.flags})
    try:
        yield client
    finally:
        client._set_overrides(previous)
