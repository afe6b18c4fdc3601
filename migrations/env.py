"""Alembic environment: migrates the engine the server hands over (see db.migrate)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine, create_engine

from graylane_server.models import Base

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
        context.run_migrations()
    connection.commit()
