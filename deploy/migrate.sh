#!/bin/sh
# Bring the metadata database schema up to date: `flask db upgrade`, once per
# deployment or upgrade, before servers started with
# BLEEPSTORE_METADATA_MIGRATE_ON_START=false. Idempotent, and safe to run
# concurrently (Alembic runs under a PostgreSQL advisory lock).
# Same environment as the server (BLEEPSTORE_* variables or BLEEPSTORE_CONFIG).
set -eu
here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
exec "$here/entrypoint.sh" flask db upgrade "$@"
