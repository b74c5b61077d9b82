"""Probes of a running paymod that read the database: the queue backlog (gauges read when `/metrics`
is scraped) and readiness (the checks behind `GET /health/ready`).

They sit above `paymod.persistence`, unlike `paymod.observability` (logs, request ids, metrics), which
every layer may use and which therefore imports nothing of paymod but the domain.
"""
