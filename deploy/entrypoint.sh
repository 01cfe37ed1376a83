#!/bin/sh
# BleepStore's container entrypoint (also usable on a plain host):
#   deploy/entrypoint.sh                  exec gunicorn -c gunicorn.conf.py wsgi:app
#   deploy/entrypoint.sh --workers 4      the same, with extra gunicorn options
#   deploy/entrypoint.sh flask db upgrade any other command, with the same environment
#
# Configuration comes from BLEEPSTORE_* environment variables (or a YAML file named
# by BLEEPSTORE_CONFIG). Secrets may be given as files instead (Docker/Compose
# secrets): BLEEPSTORE_AUTH_SECRET_KEY_FILE, BLEEPSTORE_METADATA_POSTGRESQL_URL_FILE.
set -eu

APP_DIR=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)
cd "$APP_DIR"

# VAR_FILE=path -> VAR=<the file's content, trailing newline removed>
for var in BLEEPSTORE_AUTH_SECRET_KEY BLEEPSTORE_METADATA_POSTGRESQL_URL; do
    file_var="${var}_FILE"
    eval "file=\${$file_var:-}"
    if [ -n "$file" ]; then
        if [ ! -r "$file" ]; then
            echo "entrypoint: $file_var names $file, which cannot be read" >&2
            exit 2
        fi
        value=$(cat "$file")
        export "$var=$value"
        unset "$file_var"
    fi
done

export FLASK_APP="${FLASK_APP:-bleepstore_app}"

if [ "$#" -gt 0 ] && [ "${1#-}" = "$1" ]; then
    exec "$@"
fi
# Start-up recovery (schema check or migration, temp-file and orphan sweep) runs in
# gunicorn's master before the workers fork; a schema that is behind stops it here
# with a message naming `flask db upgrade`.
exec gunicorn -c gunicorn.conf.py wsgi:app "$@"
