"""SQL implementations of the core's repository protocols, one module per aggregate.

Each class here takes the engine (and, for writes that join a caller's transaction, a
:class:`~imagegate.core.unit_of_work.UnitOfWork` per call, opened with
:func:`~imagegate.storage.group_commit.batch_of`) and returns the core's plain dataclasses.
Only the composition root (``services.py``, the CLI) constructs them.
"""
