"""Graylane's control plane: stores flags, hands them to SDKs, drives ramps."""

__version__ = "0.1.0"
