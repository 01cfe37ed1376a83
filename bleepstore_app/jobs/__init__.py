"""Background work: the blob sweeper, the multipart reaper and the lifecycle pass.

Each job runs in every worker on a timer, but does its work only while holding
its lease row in the metadata database (``leases``), so a cluster of nodes on one
PostgreSQL runs it once at a time, and a killed holder's lease simply expires.
The work itself is idempotent and its state lives in the database (garbage
records, upload rows), so a pass cut short by ``kill -9`` is finished by the next.

What it may import: ``config``, ``metadata``, ``storage`` and ``service``;
never Flask or ``s3/``.
"""
