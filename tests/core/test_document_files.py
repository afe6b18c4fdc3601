"""Reading documents from files: YAML keeps `on`/`off` as names and dates as text."""

from __future__ import annotations

from pathlib import Path

import pytest

from graylane.core import parse_document
from graylane.documents import DocumentFileError, read_document_file


def test_yaml_on_and_off_are_variant_names_not_booleans(tmp_path: Path) -> None:
    file = tmp_path / "flags.yaml"
    file.write_text(
        "flags:\n"
        "  f:\n"
        "    variants: {on: true, off: false}\n"
        "    off_variant: off\n"
        "    environments: {production: {enabled: yes, fallthrough: {variant: on}}}\n"
    )
    raw = read_document_file(file)
    assert raw["flags"]["f"]["variants"] == {"on": True, "off": False}  # type: ignore[index]
    assert raw["flags"]["f"]["off_variant"] == "off"  # type: ignore[index]
    # `yes` is not a boolean in YAML 1.2, so the validator refuses it instead of guessing
    with pytest.raises(ValueError, match=r"production\.enabled: expected true or false"):
        parse_document(raw)


def test_yaml_dates_stay_text_for_the_date_operators(tmp_path: Path) -> None:
    file = tmp_path / "flags.yml"
    file.write_text("when: [{attribute: signup, op: after, values: [2026-01-01T00:00:00Z]}]\n")
    raw = read_document_file(file)
    assert raw == {
        "when": [{"attribute": "signup", "op": "after", "values": ["2026-01-01T00:00:00Z"]}]
    }


def test_a_json_file_is_read_as_json_only(tmp_path: Path) -> None:
    file = tmp_path / "flags.json"
    file.write_text("flags: {}\n")
    with pytest.raises(DocumentFileError, match=r"flags\.json: not valid JSON"):
        read_document_file(file)


def test_unreadable_files_say_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(DocumentFileError, match="no such file"):
        read_document_file(tmp_path / "missing.yaml")
    with pytest.raises(DocumentFileError, match="is a directory"):
        read_document_file(tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("flags: [unclosed\n")
    with pytest.raises(DocumentFileError, match="not valid JSON or YAML"):
        read_document_file(bad)
