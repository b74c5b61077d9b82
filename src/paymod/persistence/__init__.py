"""Persistence: SQLAlchemy Core tables, the database (transactions, locks) and repositories."""
