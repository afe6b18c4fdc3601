"""Alembic environment: migrates the engine the server hands over (see db.migrate)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine, create_engine, text

from graylane_server.models import Base

# Replicas that migrate on start may do so at the same moment: on PostgreSQL the first
# takes this transaction-scoped lock and migrates, the others wait for it and then find
# the schema already at head. (SQLite's writer lock serialises them by itself.)
MIGRATION_LOCK = int.from_bytes(b"graylane")  # any fixed bigint; this one reads well

config = context.config
engine = config.attributes.get("engine")
if engine is None:  # run from the alembic command line
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
assert isinstance(engine, Engine)

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        context.run_migrations()
    connection.commit()
