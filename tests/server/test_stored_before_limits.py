"""Rows written before the edge limits existed (lone surrogates, NUL, values nested past
64 levels, planted here straight into the database) still read back: every read answers,
revision 0006 repairs the stored text and cuts deep audit values, and leaves every other
row as it was, byte for byte."""

from __future__ import annotations

import importlib.util
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, text

from graylane_server import db
from graylane_server.settings import Settings
from tests.server.conftest import ADMIN_TOKEN
from tests.server.documents import boolean_flag
from tests.support.servers import LiveServer, wait_until
from tests.support.services import fresh_postgres_database
from tests.ui.conftest import PASSWORD, sign_in

LONE = "@@LONE@@"
"""Stands for a lone surrogate in a value until it is written as JSON text."""
REMOVED = "(removed: it nested deeper than 64 levels)"
BEFORE_REPAIR = "0005"


def as_stored(value: object) -> str:
    """JSON text as an earlier release stored it: `json.dumps` escapes a lone surrogate
    as `\\ud800`, which PostgreSQL's `json` type and SQLite's TEXT keep as they are."""
    return json.dumps(value).replace(LONE, r"\ud800")


def nested(depth: int) -> object:
    """A value `depth` levels deep: lists around a string."""
    value: object = "bottom"
    for _ in range(depth):
        value = [value]
    return value


def depth_of(value: object) -> int:
    depth = 0
    while isinstance(value, list):
        value, depth = value[0], depth + 1
    return depth


# The statements below are built from this file's own column names and casts, never input.
def json_cast(engine: Engine) -> str:
    return "CAST(:{} AS json)" if engine.dialect.name == "postgresql" else ":{}"


def insert_flag(engine: Engine, key: str, definition_text: str) -> None:
    values = json_cast(engine).format("d")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO flags (key, definition, version, created_at, updated_at)"  # noqa: S608
                f" VALUES (:k, {values}, 1, :now, :now)"
            ),
            {"k": key, "d": definition_text, "now": "2026-01-01T00:00:00+00:00"},
        )


def insert_audit(
    engine: Engine, before: object, after: object, changes: object, reason: str | None = None
) -> None:
    cast = json_cast(engine)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO audit_log (at, actor, action, target_type, target_key, before,"  # noqa: S608
                " after, changes, reason) VALUES (:at, 'user:old', 'flag.update', 'flag', 'old',"
                f" {cast.format('b')}, {cast.format('a')}, {cast.format('c')}, :r)"
            ),
            {
                "at": "2026-01-01T00:00:00+00:00",
                "b": as_stored(before),
                "a": as_stored(after),
                "c": as_stored(changes),
                "r": reason,
            },
        )


def stored(engine: Engine, statement: str) -> list[tuple[Any, ...]]:
    """Rows as stored text (`json` columns cast to text on PostgreSQL)."""
    if engine.dialect.name == "postgresql":
        statement = statement.replace("{json}", "::text")
    else:
        statement = statement.replace("{json}", "")
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(statement))]


# --- the reads ------------------------------------------------------------------------------


def reads(admin: httpx.Client, ui: httpx.Client, flag: str) -> dict[str, int]:
    return {
        "flag list": admin.get("/api/v1/flags").status_code,
        "flag": admin.get(f"/api/v1/flags/{flag}").status_code,
        "export": admin.get("/api/v1/state").status_code,
        "audit": admin.get("/api/v1/audit").status_code,
        "ui home": ui.get("/ui/").status_code,
        "ui flag": ui.get(f"/ui/flags/{flag}").status_code,
        "ui audit": ui.get("/ui/audit").status_code,
    }


ALL_ANSWER = dict.fromkeys(
    ("flag list", "flag", "export", "audit", "ui home", "ui flag", "ui audit"), 200
)


def viewer(url: str, admin: httpx.Client) -> httpx.Client:
    user = {"username": "reader", "password": PASSWORD, "role": "viewer"}
    assert admin.post("/api/v1/users", json=user).status_code == 201
    client = httpx.Client(base_url=url, timeout=15)
    assert sign_in(client, "reader").status_code == 303
    return client


@pytest.fixture
def admin_and_ui(server: LiveServer, admin: httpx.Client) -> Iterator[tuple[httpx.Client, ...]]:
    ui = viewer(server.url, admin)
    yield admin, ui
    ui.close()


def test_unrepaired_rows_read_back_with_invalid_text_sent_as_replacement_characters(
    server: LiveServer,
    admin_and_ui: tuple[httpx.Client, httpx.Client],
    database_url: str,
    settings: Settings,
) -> None:
    # Before this release, each of these reads answered 500 or dropped the connection:
    # the flag list, the flag, the export, the audit log, the UI home and flag pages.
    admin, ui = admin_and_ui
    assert admin.put("/api/v1/flags/old", json=boolean_flag()).status_code == 201
    engine = db.create_db_engine(settings)
    description = boolean_flag() | {"description": f"checkout {LONE}"}
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE flags SET definition = CAST(:d AS json) WHERE key = 'old'"),
            {"d": as_stored(description)},
        )
        connection.execute(text("UPDATE environments SET config_version = config_version + 1"))
    insert_audit(engine, {"description": LONE}, None, {"changes": []})
    insert_audit(engine, None, {"variants": {"on": nested(480)}}, {"changes": []})
    engine.dispose()

    assert reads(admin, ui, "old") == ALL_ANSWER
    assert admin.get("/api/v1/flags/old").json()["description"] == "checkout \ufffd"
    entries = admin.get("/api/v1/audit", params={"actor": "user:old"}).json()["entries"]
    # The deep value is served whole (json.dumps encodes what pydantic's JSON mode cannot).
    assert depth_of(entries[0]["after"]["variants"]["on"]) == 480
    assert entries[1]["before"] == {"description": "\ufffd"}

    # And a replica started on this database starts and is ready.
    restarted = LiveServer(settings).start()
    try:
        assert httpx.get(f"{restarted.url}/readyz", timeout=5).status_code == 200
    finally:
        restarted.stop()


def test_a_live_flag_nested_past_the_limit_reads_back_and_readyz_names_its_environment(
    server: LiveServer,
    admin_and_ui: tuple[httpx.Client, httpx.Client],
    database_url: str,
    settings: Settings,
) -> None:
    admin, ui = admin_and_ui
    assert admin.put("/api/v1/flags/deep", json=boolean_flag()).status_code == 201
    deep = boolean_flag() | {"variants": {"on": nested(100), "off": [False]}}
    engine = db.create_db_engine(settings)
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE flags SET definition = CAST(:d AS json), version = version + 1"
                " WHERE key = 'deep'"
            ),
            {"d": as_stored(deep)},
        )
        connection.execute(text("UPDATE environments SET config_version = config_version + 1"))
    engine.dispose()

    assert reads(admin, ui, "deep") == ALL_ANSWER
    assert depth_of(admin.get("/api/v1/flags/deep").json()["variants"]["on"]) == 100

    def not_ready() -> bool:
        return httpx.get(f"{server.url}/readyz", timeout=5).status_code == 503

    wait_until(not_ready, what="/readyz to report the flag nested too deep")
    configs = httpx.get(f"{server.url}/readyz", timeout=5).json()["checks"]["configs"]
    assert "production: version " in configs
    assert "nests deeper than" in configs

    restarted = LiveServer(settings).start()
    try:
        assert httpx.get(f"{restarted.url}/readyz", timeout=5).status_code == 503
    finally:
        restarted.stop()


# --- revision 0006 --------------------------------------------------------------------------


def engine_settings(url: str | None, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": url,
        "redis_url": None,
        "data_dir": tmp_path,
        "migrate_on_start": False,
        "bootstrap_admin_token": None,
        "log_level": "warning",
    }
    return Settings(**(values | overrides))


@pytest.fixture(params=["postgresql", "sqlite"])
def old_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A database at the revision before the repair, as earlier releases left it."""
    if request.param == "postgresql":
        with fresh_postgres_database() as url:
            engine = db.create_db_engine(engine_settings(url, tmp_path))
            db.migrate(engine, BEFORE_REPAIR)
            yield engine
            engine.dispose()
    else:
        engine = db.create_db_engine(engine_settings(None, tmp_path))
        db.migrate(engine, BEFORE_REPAIR)
        yield engine
        engine.dispose()


NORMAL = (
    '{"description": "caf\\u00e9 \\u2603", "variants": {"zulu": {"b": 1, "a": [2, 3]},'
    ' "alpha": {"y": 1}}, "off_variant": "alpha", "environments": {}}'
)
"""A flag as an earlier release stored it, spacing, escapes and key order included."""


def plant_old_rows(engine: Engine) -> None:
    insert_flag(engine, "normal", NORMAL)
    broken = {
        "description": f"a{LONE}b",
        "variants": {f"on{LONE}": "x", "off": "\x00"},
        "off_variant": "off",
        "environments": {},
    }
    insert_flag(engine, "broken", as_stored(broken))
    insert_flag(engine, "deep", as_stored({"variants": {"on": nested(480)}, "environments": {}}))
    change = {"path": "description", "before": LONE, "after": "fixed"}
    # PostgreSQL text cannot hold NUL; SQLite's TEXT can.
    reason = "why\x00" if engine.dialect.name == "sqlite" else "why"
    insert_audit(engine, {"description": LONE}, {"v": nested(480)}, {"changes": [change]}, reason)
    insert_audit(engine, {"a": 1}, {"a": 2}, {"changes": []}, reason="normal reason")


def flag_text(engine: Engine, key: str) -> tuple[str, int]:
    statement = f"SELECT definition{{json}}, version FROM flags WHERE key = '{key}'"  # noqa: S608
    rows = stored(engine, statement)
    text_, version = rows[0]
    return text_, version


def audit_texts(engine: Engine) -> list[tuple[str, str, str, str | None]]:
    return [
        (b, a, c, r)
        for b, a, c, r in stored(
            engine,
            "SELECT before{json}, after{json}, changes{json}, reason FROM audit_log ORDER BY id",
        )
    ]


def config_versions(engine: Engine) -> list[int]:
    rows = stored(engine, "SELECT config_version FROM environments ORDER BY key")
    return [row[0] for row in rows]


def test_the_repair_replaces_invalid_text_cuts_deep_audit_values_and_logs_each(
    old_database: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    engine = old_database
    plant_old_rows(engine)
    versions_before = config_versions(engine)
    deep_before = flag_text(engine, "deep")

    with caplog.at_level(logging.WARNING, logger="graylane.migrations.0006"):
        db.migrate(engine)

    broken_text, broken_version = flag_text(engine, "broken")
    assert json.loads(broken_text) == {
        "description": "a\ufffdb",
        "variants": {"on\ufffd": "x", "off": "\ufffd"},
        "off_variant": "off",
        "environments": {},
    }
    assert broken_version == 2
    # A live definition nested too deep is left for its owner to fix (docs/operations.md).
    assert flag_text(engine, "deep") == deep_before
    [repaired, normal] = audit_texts(engine)
    assert json.loads(repaired[0]) == {"description": "\ufffd"}
    assert json.loads(repaired[2])["changes"][0]["before"] == "\ufffd"
    assert repaired[3] == ("why\ufffd" if engine.dialect.name == "sqlite" else "why")
    after = json.loads(repaired[1])
    assert depth_of(after["v"]) == 63  # the list at level 64 is kept, the one below is not
    inner: Any = after["v"]
    while isinstance(inner, list):
        inner = inner[0]
    assert inner == REMOVED
    assert normal == ('{"a": 1}', '{"a": 2}', '{"changes": []}', "normal reason")
    assert config_versions(engine) == [v + 1 for v in versions_before]

    logged = [r.getMessage() for r in caplog.records]
    assert "repaired flags key=broken at definition.description: text replaced by U+FFFD" in (
        logged
    )
    assert "repaired flags key=broken at definition.variants.off: text replaced by U+FFFD" in (
        logged
    )
    assert any(
        m.startswith("repaired audit_log id=1 at after.v[0]") and "nested deeper than 64" in m
        for m in logged
    )
    assert not any("key=normal" in m or "id=2" in m or "key=deep" in m for m in logged)


def test_a_row_that_needs_no_repair_is_left_byte_for_byte(old_database: Engine) -> None:
    plant_old_rows(old_database)

    db.migrate(old_database)

    # Key order included: the order of variants is part of bucketing.
    assert flag_text(old_database, "normal") == (NORMAL, 1)


def test_the_repair_run_again_changes_nothing(
    old_database: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    plant_old_rows(old_database)
    db.migrate(old_database)
    flags = stored(old_database, "SELECT key, definition{json}, version FROM flags ORDER BY key")
    audit = audit_texts(old_database)
    versions = config_versions(old_database)

    # The downgrade does nothing, so upgrading again runs the repair on repaired rows.
    db.downgrade(old_database, BEFORE_REPAIR)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="graylane.migrations.0006"):
        db.migrate(old_database)

    assert stored(
        old_database, "SELECT key, definition{json}, version FROM flags ORDER BY key"
    ) == (flags)
    assert audit_texts(old_database) == audit
    assert config_versions(old_database) == versions
    assert [r for r in caplog.records if r.name == "graylane.migrations.0006"] == []


def test_after_the_repair_every_read_answers_with_the_repaired_text(
    tmp_path: Path, redis_url: str
) -> None:
    with fresh_postgres_database() as url:
        settings = engine_settings(
            url,
            tmp_path,
            redis_url=redis_url,
            bootstrap_admin_token=SecretStr(ADMIN_TOKEN),
        )
        engine = db.create_db_engine(settings)
        db.migrate(engine, BEFORE_REPAIR)
        plant_old_rows(engine)
        db.migrate(engine)
        engine.dispose()
        live = LiveServer(settings).start()
        try:
            with httpx.Client(
                base_url=live.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10
            ) as admin:
                ui = viewer(live.url, admin)
                assert reads(admin, ui, "broken") == ALL_ANSWER
                assert admin.get("/api/v1/flags/broken").json()["description"] == "a\ufffdb"
                old = admin.get("/api/v1/audit", params={"actor": "user:old"})
                [_, repaired] = old.json()["entries"]
                assert repaired["before"] == {"description": "\ufffd"}
                ui.close()
        finally:
            live.stop()


def repair_revision() -> Any:
    path = Path(__file__).parents[2] / "migrations/versions/2026_12_05_0006_repair_stored_text.py"
    spec = importlib.util.spec_from_file_location("repair_revision", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_keys_that_differ_only_in_invalid_text_stay_apart_in_their_order() -> None:
    revision = repair_revision()
    repair = revision.Repair([])
    value = json.loads(r'{"a\ud800": 1, "a\udc00": 2, "a\ufffd": 3, "b": 4}')

    fixed = revision.repaired_value(value, repair, cut_deep=False)

    assert list(fixed.items()) == [("a\ufffd (2)", 1), ("a\ufffd (3)", 2), ("a\ufffd", 3), ("b", 4)]
    assert [path for path, _ in repair.done] == ["a\ufffd (2)", "a\ufffd (3)"]
