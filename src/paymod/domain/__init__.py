"""Pure payment rules: money, statuses, ids and guards. Imports nothing from the rest of paymod."""
