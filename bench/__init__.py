"""Benchmark of journey's reports at 1M customers / 10M events (see bench/README.md)."""
