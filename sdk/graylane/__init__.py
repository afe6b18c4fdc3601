"""Graylane: feature flags evaluated locally, kept in sync by the Graylane server."""

__version__ = "0.1.0"
