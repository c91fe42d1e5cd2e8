"""Prometheus multiprocess mode for ``imagegate serve --workers N``.

Each worker process keeps its series in memory-mapped files in one shared directory, named
by ``PROMETHEUS_MULTIPROC_DIR`` before the workers start (prometheus_client reads it when it
is imported); a scrape of any worker sums them. Files left by an earlier run would be summed
too, so the directory starts empty.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


@contextlib.contextmanager
def multiprocess_dir(workers: int) -> Iterator[Path | None]:
    """The operator's ``PROMETHEUS_MULTIPROC_DIR``, emptied of old series; else, for more
    than one worker, a new temporary directory named in the environment for the life of the
    block and removed afterwards; else ``None``: one worker serves its in-memory series."""
    chosen = os.environ.get(VARIABLE)
    if not chosen and workers <= 1:
        yield None
        return
    if chosen:
        directory = Path(chosen)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink(missing_ok=True)
        yield directory
        return
    directory = Path(tempfile.mkdtemp(prefix="imagegate-metrics-"))
    os.environ[VARIABLE] = str(directory)
    try:
        yield directory
    finally:
        os.environ.pop(VARIABLE, None)
        shutil.rmtree(directory, ignore_errors=True)


def worker_exited() -> None:
    """Drop this worker's live gauges (its counters stay: they are part of the totals)."""
    if VARIABLE not in os.environ:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
