"""Stored text that is not valid Unicode is repaired, and audit values nested past the edge
limit are cut, so that everything stored before the edge limits existed reads back.

Earlier releases stored what JSON allows: a lone UTF-16 surrogate (`"\\ud800"`) or NUL
in a description, a rule value or an audit entry, and variant values nested hundreds of
levels deep. PostgreSQL's `json` and SQLite's TEXT keep both, and the flag list, the
export, the audit log and the UI then failed to answer. This revision:

- rewrites each lone surrogate and NUL, in object keys and string values of every JSON
  column and in every text column that holds user text, to U+FFFD;
- replaces, in the audit log's `before`, `after` and `changes`, each value nested deeper
  than 64 levels with a short string saying it was removed, and why;
- leaves live definitions (flags, segments) nested deeper than 64 levels as they are:
  guessing what to cut could change what is served. Their environment's config is not
  built, `/readyz` names it, and docs/operations.md says how to fix them.

A row is written only when something in it changed, keeping the JSON text of every other
row byte for byte (key order included: the order of variants is part of bucketing). Each
repair is logged with its table, row and path; running it again finds nothing to do.

Downgrade does nothing: the text it replaced could be neither served nor exported, and
the earlier schema reads the repaired rows as they are.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from typing import NamedTuple

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

log = logging.getLogger("graylane.migrations.0006")

MAX_DEPTH = 64
"""graylane.core.limits.MAX_DEPTH as this revision was written: a migration keeps the
limit of its day, whatever the limit becomes later."""
REMOVED = f"(removed: it nested deeper than {MAX_DEPTH} levels)"
REPLACEMENT = "\ufffd"
_INVALID = re.compile("[\x00\ud800-\udfff]")
_BATCH = 500


class Table(NamedTuple):
    name: str
    key: str
    """The column that names a row in the log (its key or id)."""
    json_columns: tuple[str, ...] = ()
    text_columns: tuple[str, ...] = ()
    cut_deep: bool = False
    """Replace values nested past MAX_DEPTH (the audit log's history, never live rules)."""
    versioned: bool = False
    """A repaired row gets a new version, so writers holding the old one are refused."""


TABLES = (
    Table("flags", "key", ("definition",), versioned=True),
    Table("segments", "key", ("definition",), versioned=True),
    Table(
        "audit_log",
        "id",
        ("before", "after", "changes"),
        ("actor", "target_key", "reason"),
        cut_deep=True,
    ),
    Table("environments", "key", (), ("name",)),
    Table("tokens", "id", (), ("name", "created_by")),
    Table("ramps", "id", (), ("reason",)),
    Table("guard_alerts", "name", (), ("detail",)),
    Table("webhooks", "id", ("events",), ("created_by",)),
    Table("webhook_deliveries", "id", ("payload",), ("last_error",)),
    Table("ui_sessions", "id", ("flash",)),
)


class Repair(NamedTuple):
    """What one value needed: the paths that changed, each with what was done."""

    done: list[tuple[str, str]]


def repaired_text(text: str) -> str:
    return _INVALID.sub(REPLACEMENT, text)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def repaired_value(value: object, repair: Repair, *, cut_deep: bool, path: str = "") -> object:
    """The value with invalid text replaced and, when `cut_deep`, containers nested past
    MAX_DEPTH replaced by REMOVED; the value itself when nothing changed."""
    return _walk(value, repair, cut_deep, path, 1)


def _walk(value: object, repair: Repair, cut_deep: bool, path: str, depth: int) -> object:
    if isinstance(value, str):
        if _INVALID.search(value) is None:
            return value
        repair.done.append((path, "text replaced by U+FFFD"))
        return repaired_text(value)
    if not isinstance(value, dict | list):
        return value
    if cut_deep and depth > MAX_DEPTH:
        repair.done.append((path, f"removed: nested deeper than {MAX_DEPTH} levels"))
        return REMOVED
    # Plain loops, not comprehensions: one stack frame per level of nesting.
    if isinstance(value, list):
        items: list[object] = []
        for index, item in enumerate(value):
            items.append(_walk(item, repair, cut_deep, f"{path}[{index}]", depth + 1))
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    changed = False
    result: dict[str, object] = {}
    for key, item in value.items():
        new_key = _repaired_key(key, result, value, repair, path)
        new_item = _walk(item, repair, cut_deep, _join(path, repaired_text(key)), depth + 1)
        changed = changed or new_key != key or new_item is not item
        result[new_key] = new_item
    return result if changed else value


def _repaired_key(
    key: str, done: dict[str, object], given: dict[str, object], repair: Repair, path: str
) -> str:
    if _INVALID.search(key) is None:
        return key
    new_key = repaired_text(key)
    # A repaired key must not merge with another key of the object, repaired or not.
    suffix = 2
    while new_key in done or new_key in given:
        new_key = f"{repaired_text(key)} ({suffix})"
        suffix += 1
    repair.done.append((_join(path, new_key), "key text replaced by U+FFFD"))
    return new_key


def _stored_text(value: object) -> tuple[str | None, bool]:
    """A column's value as text, and whether reading it replaced bytes that are not UTF-8.
    SQLite hands over bytes (see `_rows`): UTF-8 with encoded surrogates is read with its
    surrogates, to be repaired like any other; anything else that is not UTF-8 is read
    with U+FFFD in place of the bad bytes, rather than failing the upgrade."""
    if not isinstance(value, bytes):
        return (None if value is None else str(value)), False
    try:
        return value.decode("utf-8", errors="surrogatepass"), False
    except UnicodeDecodeError:
        return value.decode("utf-8", errors="replace"), True


def _rows(connection: sa.Connection, table: Table) -> Iterator[sa.Row[tuple[object, ...]]]:
    """The table's rows, in batches by key: the key, then each JSON column as its stored
    text (parsed here, so key order stays as stored), then each text column."""
    sqlite = connection.dialect.name == "sqlite"
    stored_as = sa.LargeBinary if sqlite else sa.Text
    columns = [sa.column(table.key)] + [
        sa.cast(sa.column(name), stored_as).label(name)
        for name in (*table.json_columns, *table.text_columns)
    ]
    last: object = None
    while True:
        query = sa.select(*columns).select_from(sa.table(table.name))
        if last is not None:
            query = query.where(sa.column(table.key) > last)
        batch = connection.execute(query.order_by(sa.column(table.key)).limit(_BATCH)).all()
        yield from batch
        if len(batch) < _BATCH:
            return
        last = batch[-1][0]


def _repaired_column(text: str, is_json: bool, repair: Repair, cut_deep: bool) -> str | None:
    """The column's new stored text, or None when it needs no change."""
    if not is_json:
        fixed = repaired_value(text, repair, cut_deep=False)
        return str(fixed) if repair.done else None
    fixed = repaired_value(json.loads(text), repair, cut_deep=cut_deep)
    return json.dumps(fixed) if repair.done else None


def _repair_row(connection: sa.Connection, table: Table, row: sa.Row[tuple[object, ...]]) -> bool:
    key = row[0]
    values: dict[str, str] = {}
    for index, name in enumerate((*table.json_columns, *table.text_columns), start=1):
        text, lossy = _stored_text(row[index])
        if text is None:
            continue
        repair = Repair([])
        if lossy:
            repair.done.append(("", "bytes that are not UTF-8 replaced by U+FFFD"))
        try:
            new_text = _repaired_column(text, name in table.json_columns, repair, table.cut_deep)
        except RecursionError:
            # Deeper than Python reads (some 900 levels): left as it is, and said so.
            log.warning(
                "not repaired %s %s=%s: %s nests too deep to read", table.name, table.key, key, name
            )
            continue
        if new_text is None and lossy:
            new_text = text
        if new_text is not None:
            values[name] = new_text
        for path, what in repair.done:
            where = name + (path if path.startswith("[") or not path else f".{path}")
            log.warning("repaired %s %s=%s at %s: %s", table.name, table.key, key, where, what)
    if values:
        _write(connection, table, key, values)
    return bool(values)


def _write(connection: sa.Connection, table: Table, key: object, values: dict[str, str]) -> None:
    json_cast = "CAST(:v_{0} AS json)" if connection.dialect.name == "postgresql" else ":v_{0}"
    assignments = [
        f"{name} = " + (json_cast.format(name) if name in table.json_columns else f":v_{name}")
        for name in values
    ]
    if table.versioned:
        assignments.append("version = version + 1")
    # Table and column names are this module's constants, never input.
    statement = f"UPDATE {table.name} SET {', '.join(assignments)} WHERE {table.key} = :row_key"  # noqa: S608
    params: dict[str, object] = {f"v_{name}": value for name, value in values.items()}
    connection.execute(sa.text(statement), {**params, "row_key": key})


def upgrade() -> None:
    connection = op.get_bind()
    definitions_changed = False
    for table in TABLES:
        repaired = sum(_repair_row(connection, table, row) for row in _rows(connection, table))
        if repaired:
            log.warning("repaired %d row(s) of %s", repaired, table.name)
            definitions_changed = definitions_changed or table.versioned
    if definitions_changed:
        # What every environment's SDKs see may have changed: each builds anew.
        connection.execute(sa.text("UPDATE environments SET config_version = config_version + 1"))


def downgrade() -> None:
    """Nothing to undo: the replaced text could be neither served nor exported, and the
    earlier revisions read the repaired rows as they are."""
