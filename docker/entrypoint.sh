#!/bin/sh
# Entrypoint of the Graylane image.
#
# With no arguments it starts the server:
#   graylane-server serve --host 0.0.0.0 --port "$PORT" --workers "${GRAYLANE_WORKERS:-1}"
# With arguments it runs them instead, e.g.
#   docker run --rm IMAGE graylane-server migrate
#   docker run --rm -it IMAGE graylane-server token create --role admin
#
# GRAYLANE_MIGRATE_ON_START: the server reads this setting too, and with it true each
# worker process applies the migrations as it starts, so with GRAYLANE_WORKERS above 1
# on PostgreSQL several processes would migrate at the same moment. The entrypoint takes
# the setting over instead: when it is true, the migrations run here, once, before the
# server starts, and the server is then started with GRAYLANE_MIGRATE_ON_START=false,
# which makes it check that the schema is current and refuse to start otherwise. Any
# other value goes to the server unchanged: false only checks; unset is the server's own
# default (migrate on SQLite, check on PostgreSQL).
# Several replicas of one PostgreSQL database should not migrate on start either: run
# `graylane-server migrate` once per release instead (see docs/operations.md).
set -eu

if [ "$#" -gt 0 ]; then
    exec "$@"
fi

case "$(printf '%s' "${GRAYLANE_MIGRATE_ON_START:-}" | tr '[:upper:]' '[:lower:]')" in
    1 | t | true | y | yes | on)
        graylane-server migrate
        GRAYLANE_MIGRATE_ON_START=false
        export GRAYLANE_MIGRATE_ON_START
        ;;
    *) ;;
esac

exec graylane-server serve \
    --host 0.0.0.0 \
    --port "${PORT:-8080}" \
    --workers "${GRAYLANE_WORKERS:-1}"
