# BleepStore: gunicorn (gevent workers) serving the S3 API on port 9010.
# Build: docker build -t bleepstore .      Run: see docker-compose.yml and deploy/README.md
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 bleepstore \
    && useradd --system --uid 10001 --gid bleepstore --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin bleepstore

WORKDIR /app

COPY setup.cfg setup.py README.md gunicorn.conf.py wsgi.py ./
COPY bleepstore_app bleepstore_app
COPY migrations migrations
COPY deploy/entrypoint.sh deploy/migrate.sh deploy/
# Installed from the project's own setup.cfg, with the PostgreSQL driver and the
# gateway SDKs; the top-level migrations/ folder is installed inside the package
# (setup.py maps it to bleepstore_app/migrations).
RUN pip install '.[postgres,aws,gcp,azure]' \
    && chmod 0755 deploy/entrypoint.sh deploy/migrate.sh \
    && mkdir -p /var/lib/bleepstore/objects \
    && chown -R bleepstore:bleepstore /var/lib/bleepstore

# Settings: every key is an environment variable (bleepstore_app/config.py). Secrets
# (BLEEPSTORE_AUTH_SECRET_KEY, the database URL) come from the environment at run
# time, never from the image.
ENV BLEEPSTORE_SERVER_HOST=0.0.0.0 \
    BLEEPSTORE_SERVER_PORT=9010 \
    BLEEPSTORE_STORAGE_LOCAL_ROOT_DIR=/var/lib/bleepstore/objects \
    BLEEPSTORE_METADATA_SQLITE_PATH=/var/lib/bleepstore/metadata.db \
    FLASK_APP=bleepstore_app

USER bleepstore:bleepstore
VOLUME ["/var/lib/bleepstore"]
EXPOSE 9010

# Ready = start-up recovery done, metadata database and storage answering.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('BLEEPSTORE_SERVER_PORT', '9010'), timeout=4)" || exit 1

ENTRYPOINT ["/app/deploy/entrypoint.sh"]
