"""Alembic migrations of the run store, applied automatically when a store opens."""
