"""What operators see: /metrics, /healthz /readyz /health, /openapi.json, /docs,
and the per-request access log.

What lives here: the Prometheus metrics and request observation (metrics.py),
health probes (health.py), the OpenAPI document and Swagger UI (openapi.py), and
the rule that lets operator endpoints and buckets of the same name coexist
(endpoints.py). What it may import: Flask, prometheus-flask-exporter,
``s3.routing`` (the table the OpenAPI document is generated from) and
``service``; the S3 wire does not import ops, except to report a finished request.
"""
