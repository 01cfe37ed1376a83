"""WSGI entry point: `gunicorn -c gunicorn.conf.py wsgi:app`."""
from bleepstore_app import create_app

app = create_app()
