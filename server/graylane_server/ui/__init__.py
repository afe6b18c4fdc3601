"""The admin web UI: server-rendered pages for release managers, over the same services
as the REST API."""

from graylane_server.ui.mount import mount

__all__ = ["mount"]
