"""Metrics: read the store, return report objects. They never format text."""
