"""Persistence: the database (SQLAlchemy Core + Alembic migrations) and the blob stores that
implement the core's :class:`~imagegate.core.blobs.BlobStore` (a local directory, an
S3-compatible bucket; :mod:`imagegate.storage.stores` picks one from the storage URL).

storage/ knows tables, SQL and files; it knows nothing about HTTP, wire formats or providers.
Repositories take and return plain dataclasses from :mod:`imagegate.core`.
"""
