"""The metadata database: tables, migrations' source of truth, and queries.

What lives here: SQLAlchemy tables (tables.py), engines and transactions that
cooperate with gevent (engine.py), and the queries the service layer uses (store.py).
What it may import: SQLAlchemy, the standard library and ``bleepstore_app.config``;
never Flask, ``s3/`` or ``storage/``.
"""
