"""Benchmark harness for BleepStore and other S3 servers (see bench/README.md)."""
