"""Migrations: from an empty database to head and back, on PostgreSQL and on the embedded
SQLite file; the models agree with what the migrations build; a server that may not
migrate refuses an outdated schema; `graylane-server migrate` does the job."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from pydantic import SecretStr
from sqlalchemy import Engine, inspect, select

from graylane_server import db
from graylane_server.models import Base, Environment
from graylane_server.runtime import Runtime, SchemaOutdated
from graylane_server.settings import Settings
from tests.support.servers import cli_env, run_cli
from tests.support.services import fresh_postgres_database

VERSION_TABLE = "alembic_version"
APPLICATION_TABLES = set(Base.metadata.tables)
DEFAULT_ENVIRONMENTS = {
    # key: (protected, config_version)
    "development": (False, 1),
    "staging": (False, 1),
    "production": (True, 1),
}


def settings_for(database_url: str | None, data_dir: Path, **overrides: object) -> Settings:
    """Settings as the server builds them, independent of GRAYLANE_* in the test's environment."""
    values: dict[str, object] = {
        "database_url": database_url,
        "redis_url": None,
        "data_dir": data_dir,
        "migrate_on_start": None,
        "bootstrap_admin_token": None,
        "log_level": "warning",
    }
    return Settings(**(values | overrides))


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A brand-new, empty PostgreSQL database."""
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture(params=["postgresql", "sqlite"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine, built the way the server builds it, on a database with nothing in it."""
    if request.param == "postgresql":
        with fresh_postgres_database() as url:
            engine = db.create_db_engine(settings_for(url, tmp_path))
            yield engine
            engine.dispose()
    else:
        engine = db.create_db_engine(settings_for(None, tmp_path))
        assert engine.url.database == str(tmp_path.resolve() / "graylane.db")
        yield engine
        engine.dispose()


def application_tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {VERSION_TABLE}


def environments(engine: Engine) -> dict[str, tuple[bool, int]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(Environment.key, Environment.protected, Environment.config_version)
        ).all()
    return {key: (protected, version) for key, protected, version in rows}


def revisions_from_base(engine: Engine) -> list[str]:
    script = ScriptDirectory.from_config(db.alembic_config(engine))
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def test_an_empty_database_is_migrated_from_scratch_to_head(empty_database: Engine) -> None:
    assert application_tables(empty_database) == set()
    assert db.schema_revisions(empty_database)[0] is None

    db.migrate(empty_database)

    current, head = db.schema_revisions(empty_database)
    assert head is not None
    assert current == head
    assert application_tables(empty_database) == APPLICATION_TABLES
    if empty_database.dialect.name == "sqlite":
        assert Path(str(empty_database.url.database)).is_file()


def test_every_revision_applies_and_reverts_one_step_at_a_time(empty_database: Engine) -> None:
    revisions = revisions_from_base(empty_database)
    assert revisions, "there are no migrations"
    for revision in revisions:
        db.migrate(empty_database, "+1")
        assert db.schema_revisions(empty_database)[0] == revision
    for revision in [*reversed(revisions[:-1]), None]:
        db.downgrade(empty_database, "-1")
        assert db.schema_revisions(empty_database)[0] == revision
    assert application_tables(empty_database) == set()


def test_a_new_database_starts_with_the_three_default_environments(
    empty_database: Engine,
) -> None:
    db.migrate(empty_database)
    assert environments(empty_database) == DEFAULT_ENVIRONMENTS


def test_migrating_an_up_to_date_database_again_changes_nothing(empty_database: Engine) -> None:
    db.migrate(empty_database)
    db.migrate(empty_database)
    current, head = db.schema_revisions(empty_database)
    assert current == head
    assert environments(empty_database) == DEFAULT_ENVIRONMENTS


def test_downgrading_to_base_removes_every_table_and_upgrading_again_works(
    empty_database: Engine,
) -> None:
    db.migrate(empty_database)

    db.downgrade(empty_database, "base")

    # Only Alembic's own bookkeeping table is left, and it names no revision.
    assert application_tables(empty_database) == set()
    assert db.schema_revisions(empty_database)[0] is None
    if empty_database.dialect.name == "postgresql":
        assert inspect(empty_database).get_sequence_names() == []

    db.migrate(empty_database)

    current, head = db.schema_revisions(empty_database)
    assert current == head
    assert application_tables(empty_database) == APPLICATION_TABLES
    assert environments(empty_database) == DEFAULT_ENVIRONMENTS


def test_the_models_and_the_migrated_schema_agree(empty_database: Engine) -> None:
    db.migrate(empty_database)
    with empty_database.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


@pytest.mark.parametrize(
    "migrate_on_start",
    [pytest.param(False, id="migrate-on-start-false"), pytest.param(None, id="unset")],
)
def test_a_server_that_may_not_migrate_refuses_an_unmigrated_postgres_database(
    postgres_url: str, tmp_path: Path, migrate_on_start: bool | None
) -> None:
    settings = settings_for(
        postgres_url,
        tmp_path,
        migrate_on_start=migrate_on_start,
        bootstrap_admin_token=SecretStr("gla_never-stored"),
    )
    runtime = Runtime.create(settings)
    try:
        with pytest.raises(SchemaOutdated, match="graylane-server migrate") as refused:
            asyncio.run(runtime.start())
        _, head = db.schema_revisions(runtime.engine)
        assert f"needs {head}" in str(refused.value)
        # It refused before touching anything: no tables, no bootstrap token.
        assert inspect(runtime.engine).get_table_names() == []
    finally:
        runtime.engine.dispose()


def run_migrate_command(database_url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_cli(cwd, "migrate", env=cli_env({"GRAYLANE_DATABASE_URL": database_url}))


def test_graylane_server_migrate_brings_an_empty_database_to_head_and_prints_it(
    postgres_url: str, tmp_path: Path
) -> None:
    result = run_migrate_command(postgres_url, tmp_path)

    assert result.returncode == 0, result.stderr
    engine = db.create_db_engine(settings_for(postgres_url, tmp_path))
    try:
        current, head = db.schema_revisions(engine)
        assert current == head
        assert head is not None
        assert head in result.stdout
        assert application_tables(engine) == APPLICATION_TABLES
        assert environments(engine) == DEFAULT_ENVIRONMENTS
    finally:
        engine.dispose()

    # Running it again is harmless and reports the same revision.
    again = run_migrate_command(postgres_url, tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout == result.stdout


def test_after_graylane_server_migrate_a_server_that_may_not_migrate_starts(
    postgres_url: str, tmp_path: Path
) -> None:
    assert run_migrate_command(postgres_url, tmp_path).returncode == 0
    runtime = Runtime.create(settings_for(postgres_url, tmp_path, migrate_on_start=False))

    async def start_and_stop() -> dict[str, int]:
        await runtime.start()
        try:
            return runtime.store.versions()
        finally:
            await runtime.stop()

    assert asyncio.run(start_and_stop()) == {
        key: version for key, (_, version) in DEFAULT_ENVIRONMENTS.items()
    }


def test_several_processes_migrating_one_database_at_once_all_succeed(
    postgres_url: str, tmp_path: Path
) -> None:
    # Replicas started together with GRAYLANE_MIGRATE_ON_START=true do exactly this.
    env = cli_env({"GRAYLANE_DATABASE_URL": postgres_url})
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "graylane_server", "migrate"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    errors = [p.communicate(timeout=120)[1] for p in processes]

    assert [p.returncode for p in processes] == [0, 0, 0, 0], errors
    engine = db.create_db_engine(settings_for(postgres_url, tmp_path))
    try:
        current, head = db.schema_revisions(engine)
        assert current == head
        assert environments(engine) == DEFAULT_ENVIRONMENTS
    finally:
        engine.dispose()
