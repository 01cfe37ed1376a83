"""Who is calling, and is the body what they signed.

What lives here: SigV4 verification (sigv4.py), self-verifying request bodies
(payload.py) and the aws-chunked decoder (chunked.py). Pure functions and readers.
What it may import: the standard library, checksum libraries and
``bleepstore_app.errors``; never Flask, ``s3/``, ``service/`` or the database.
"""
