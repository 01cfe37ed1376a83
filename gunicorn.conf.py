"""gunicorn configuration: `gunicorn -c gunicorn.conf.py wsgi:app`.

The settings and hooks live in the package (bleepstore_app/gunicorn_conf.py) so
that `bleepstore serve` and this file are one configuration.
"""
from bleepstore_app.gunicorn_conf import *  # noqa: F401,F403  (patches gevent first)
from bleepstore_app.gunicorn_conf import child_exit, on_exit, on_starting  # noqa: F401
