"""Reproducible performance runs (see docs/performance.md)."""
