"""Graylane: feature flags evaluated locally, kept in sync by the Graylane server."""

__version__ = "0.1.0"

from graylane.client import Change, Client, ClientNotReady
from graylane.core import ErrorCode, Evaluation, Reason

__all__ = ["Change", "Client", "ClientNotReady", "ErrorCode", "Evaluation", "Reason", "__version__"]
