"""Fixtures shared by more than one folder of tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.faults import PrivateRedis


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A Redis of the test's own, which it may stop and start; closed after the test."""
    server = PrivateRedis(tmp_path)
    try:
        yield server.start()
    finally:
        server.close()
