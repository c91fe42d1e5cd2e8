"""Persistence: the database (SQLAlchemy Core + Alembic migrations) and the blob store.

storage/ knows tables, SQL and files; it knows nothing about HTTP, wire formats or providers.
Repositories take and return plain dataclasses from :mod:`imagegate.core`.
"""
