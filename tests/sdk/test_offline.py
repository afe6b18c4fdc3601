"""Clients with no server: a flag document (a dict, or a JSON/YAML file) for one of its
environments."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from graylane import Client, Reason
from graylane.core import DocumentError
from graylane.documents import DocumentFileError
from tests.sdk.support import bucket
from tests.server.documents import document

YAML = """\
# the team's flags, kept in git
flags:
  new-checkout:
    description: New checkout flow
    salt: checkout-2024
    variants: {on: true, off: false}
    off_variant: off
    environments:
      production:
        enabled: true
        rules:
          - name: staff
            when: [{attribute: email, op: ends_with, values: ["@example.com"]}]
            serve: {variant: on}
        fallthrough:
          rollout: {percentage: 25, variants: {on: 100}}
          otherwise: off
      staging:
        enabled: true
        fallthrough: {variant: on}
  launch-date:
    variants: {old: "2024-01-01", new: "2025-06-30"}
    off_variant: old
    environments:
      production:
        enabled: true
        rules:
          - name: after-launch
            when: [{attribute: now, op: after, values: ["2025-06-30T00:00:00Z"]}]
            serve: {variant: new}
        fallthrough: {variant: old}
      staging:
        enabled: false
"""

SINGLE = """\
flags:
  dark-mode:
    variants: {on: true, off: false}
    off_variant: off
    environments:
      staging: {enabled: true, fallthrough: {variant: on}}
"""

UNITS = [f"user-{i}" for i in range(1_000)]


@pytest.fixture
def yaml_file(tmp_path: Path) -> Path:
    path = tmp_path / "flags.yaml"
    path.write_text(YAML, encoding="utf-8")
    return path


def test_a_yaml_document_serves_the_chosen_environment(yaml_file: Path) -> None:
    production = Client.from_file(yaml_file, environment="production")
    staging = Client.from_file(yaml_file, environment="staging")

    assert (production.environment, staging.environment) == ("production", "staging")
    assert production.ready
    assert staging.ready
    # `on`/`off` are variant names here, and the salt of the file is the one used
    for unit in UNITS:
        inside = bucket("checkout-2024", unit) < 25_000
        assert production.is_enabled("new-checkout", {"targetingKey": unit}) is inside
        assert staging.is_enabled("new-checkout", {"targetingKey": unit}) is True
    staff = production.evaluate("new-checkout", {"targetingKey": "x", "email": "a@example.com"})
    assert (staff.value, staff.variant, staff.rule) == (True, "on", "staff")
    assert staff.reason is Reason.TARGETING_MATCH
    # dates stay strings (YAML 1.2), and date operators work on them
    assert production.value("launch-date", {}, "") == "2024-01-01"
    assert production.value("launch-date", {"now": "2025-07-01T00:00:00Z"}, "") == "2025-06-30"
    disabled = staging.evaluate("launch-date", {})
    assert (disabled.value, disabled.reason) == ("2024-01-01", Reason.DISABLED)


def test_a_document_with_several_environments_needs_one_chosen(yaml_file: Path) -> None:
    with pytest.raises(ValueError, match="environment=") as raised:
        Client.from_file(yaml_file)
    assert "production" in str(raised.value)
    assert "staging" in str(raised.value)
    assert str(yaml_file) in str(raised.value)


def test_a_document_with_one_environment_needs_none_chosen(tmp_path: Path) -> None:
    path = tmp_path / "single.yml"
    path.write_text(SINGLE, encoding="utf-8")
    client = Client.from_file(path)
    assert client.environment == "staging"
    assert client.is_enabled("dark-mode", {"targetingKey": "u"}) is True


def test_a_json_file_and_a_dict_serve_the_same_answers(tmp_path: Path) -> None:
    path = tmp_path / "flags.json"
    path.write_text(json.dumps(document()), encoding="utf-8")
    from_file = Client.from_file(path, environment="production")
    from_dict = Client.from_document(document(), "production")

    for unit in UNITS[:300]:
        context = {"targetingKey": unit, "plan": "free"}
        assert from_file.all_flags(context) == from_dict.all_flags(context)
    assert from_dict.value("button-color", {}, "") == "#2da44e"
    assert from_dict.value("page-size", {"targetingKey": "user-1"}, 0) == 50
    staging = Client.from_file(path, environment="staging")
    assert staging.value("button-color", {}, "") == "#1f6feb"


def test_an_offline_client_is_calm_about_having_no_server() -> None:
    client = Client.from_document(document(), "production")
    assert client.ready is True
    assert client.stale is False
    assert client.version is None
    assert client.last_error is None
    client.wait_ready(0)
    client.track("request", {"targetingKey": "u"})
    assert client.flush() is True
    client.close()
    client.close()
    # it still answers after close: it has no background to stop
    assert client.value("button-color", {}, "") == "#2da44e"


def test_an_invalid_document_is_refused_with_every_problem() -> None:
    bad = document()
    bad["flags"]["new-checkout"]["environments"]["production"]["fallthrough"]["rollout"][
        "percentage"
    ] = 120
    bad["flags"]["button-color"]["off_variant"] = "purple"
    with pytest.raises(DocumentError) as raised:
        Client.from_document(bad, "production")
    message = str(raised.value)
    assert "percentage" in message
    assert "purple" in message


def test_a_missing_or_unreadable_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(DocumentFileError, match="no such file"):
        Client.from_file(tmp_path / "nothing.yaml")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    with pytest.raises(DocumentFileError, match="not valid JSON"):
        Client.from_file(broken)
