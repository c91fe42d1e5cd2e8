"""The core's transaction port.

A *unit of work* is one transaction as the core sees it: an opaque handle that the core passes
from one repository call to the next so that their writes commit together, or not at all. Only
``storage/`` looks inside it (a group-commit batch, or a connection). A :class:`Committer` runs
an operation of one unit of work and returns once it has committed; many callers' operations
may share one commit (``storage/group_commit``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

T = TypeVar("T")


class UnitOfWork(Protocol):
    """One transaction in progress; opaque to the core, read only by repositories."""


class Committer(Protocol):
    """Runs operations of one unit of work each and commits them."""

    async def run(self, operation: Callable[[UnitOfWork], Awaitable[T]]) -> T:
        """Run ``operation`` in a transaction; returns its result once committed."""
        ...
