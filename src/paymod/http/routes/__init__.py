"""The routers: admin, store and hooks."""
