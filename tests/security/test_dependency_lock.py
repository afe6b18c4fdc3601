"""What `make audit` audits is what the suite runs against: the locked runtime releases."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


@pytest.fixture(scope="module")
def audit_deps() -> object:
    sys.path.insert(0, str(SCRIPTS))
    try:
        import audit_deps

        yield audit_deps
    finally:
        sys.path.remove(str(SCRIPTS))


def test_every_locked_package_is_installed_at_its_locked_release(audit_deps: object) -> None:
    from locked import locked_versions

    assert audit_deps.not_as_locked(locked_versions()) == []  # type: ignore[attr-defined]


def test_every_runtime_dependency_is_locked(audit_deps: object) -> None:
    from locked import locked_versions

    locked = set(locked_versions())
    assert audit_deps.runtime_closure() <= locked  # type: ignore[attr-defined]


def test_a_release_other_than_the_locked_one_is_reported(audit_deps: object) -> None:
    assert audit_deps.not_as_locked({"httpx": "0.0.1"}) == [  # type: ignore[attr-defined]
        f"httpx==0.0.1 (installed: {__import__('httpx').__version__})"
    ]
