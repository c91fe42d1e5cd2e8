"""The allocator thresholds ``imagegate serve`` fixes, for itself and its workers."""

from __future__ import annotations

import os

import pytest

from imagegate.imaging import budget


def test_thresholds_reach_the_workers_through_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "12345")  # the operator's own: kept
    budget.tune_allocator()

    assert os.environ["MALLOC_MMAP_THRESHOLD_"] == str(budget.MMAP_THRESHOLD)
    assert os.environ["MALLOC_TRIM_THRESHOLD_"] == "12345"
