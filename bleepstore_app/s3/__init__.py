"""The wire: HTTP in, S3 operation out.

What lives here: addressing (virtual host -> path), routing (table -> operation
name), handlers (one per AWS operation), request parsing and authentication glue,
XML, headers, and the one response renderer.
What it may import: Flask/Werkzeug, ``auth``, ``service``, ``errors`` and
``metadata.records`` (plain values); never SQLAlchemy or ``storage`` directly.
"""
