"""What operators see of a running paymod: logs, request ids, metrics.

- `context`: the request id, carried by a context variable (standard library only: the persistence
  layer reads it when it writes an event).
- `logs`: `configure_logging` (structlog over the standard library: JSON lines or readable lines),
  and the redaction every line goes through.
- `requests`: the ASGI middleware that logs and measures each request and returns its id.
- `metrics`: the Prometheus counters and histograms, and the hooks that move them.

Every layer may use it (the persistence layer stamps events with the request id, the provider registry
and the step engine count calls), so it imports nothing of paymod but the domain; the probes that read
the database (the backlog gauges, readiness) are `paymod.health`.

Import the submodule you need: this package imports nothing on its own, so that a command which
only touches the database does not load structlog or prometheus-client.
"""
