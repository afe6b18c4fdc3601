"""End-to-end tests run on the server tests' fixtures: the run's fresh PostgreSQL database
(migrated once) and real Redis."""

from tests.server.conftest import *  # noqa: F403 - database_url, redis_url, reset_database
