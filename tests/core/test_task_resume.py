"""Task upstreams across a restart: the runner polls the job an earlier run of the task kept
(never submitting, and paying for, it again), and submits afresh only when the upstream no
longer knows the job."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from imagegate.core.requests import ImageRequest
from imagegate.core.routing_jobs import TaskRunner
from imagegate.core.upstream import (
    JobStatus,
    ProviderContext,
    ScopedJournal,
    UpstreamJob,
    job_from_json,
    job_to_json,
)
from imagegate.errors import UpstreamError, UpstreamRejected
from tests.core.test_routing import Clock, Task, entry, router
from tests.providers.upstream_kit import request

SLOT = "test-model#0:t/0"


class Journal:
    """An in-memory :class:`~imagegate.core.upstream.JobJournal` (the task row's column)."""

    def __init__(self, jobs: dict[str, Any] | None = None, keeps: bool = False) -> None:
        self.jobs: dict[str, Any] = dict(jobs or {})
        self.keeps = keeps

    def known(self, slot: str) -> UpstreamJob | None:
        data = self.jobs.get(slot)
        return job_from_json(data) if data is not None else None

    async def accepted(self, slot: str, job: UpstreamJob) -> None:
        self.jobs[slot] = job_to_json(job)

    def forget(self, slot: str) -> None:
        self.jobs.pop(slot, None)

    def keeps_jobs(self) -> bool:
        return self.keeps


class Counting(Task):
    """:class:`Task` that records submits and the jobs it is polled for; ``gone`` jobs are
    answered 404."""

    def __init__(self, gone: frozenset[str] = frozenset(), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.submits = 0
        self.polled: list[str] = []
        self.gone = gone

    async def submit(self, request: ImageRequest, ctx: ProviderContext) -> UpstreamJob:
        self.submits += 1
        return UpstreamJob(f"job-{self.submits}", {"status": "https://up/1"}, poll_after=0.5)

    async def poll(self, job: UpstreamJob, ctx: ProviderContext) -> JobStatus:
        self.polled.append(job.id)
        if job.id in self.gone:
            raise UpstreamRejected("task answered 404", code="upstream_not_found")
        return await super().poll(job, ctx)


def runner(clock: Clock) -> TaskRunner:
    return TaskRunner(clock, clock.sleep, lambda: 3)


def ctx() -> ProviderContext:
    return ProviderContext(http=None, request_id="r", upstream_model="m")


async def test_the_runner_resumes_a_known_job_without_submitting() -> None:
    clock, upstream = Clock(), Counting(pending=0)
    kept = UpstreamJob("job-7", {"status": "https://up/7"}, poll_after=2.0)
    journal = Journal({SLOT: job_to_json(kept)})
    route = router(clock, {"t": upstream})
    result = await route.generate(entry({"provider": "t"}), request(), "r", journal)
    assert len(result.images) == 1
    assert upstream.submits == 0 and upstream.polled == ["job-7"]
    assert clock.slept[0] == 2.0  # the kept job's own poll interval


async def test_a_job_the_upstream_no_longer_knows_is_submitted_afresh() -> None:
    clock, upstream = Clock(), Counting(gone=frozenset({"job-7"}), pending=0)
    journal = Journal({SLOT: job_to_json(UpstreamJob("job-7"))})
    route = router(clock, {"t": upstream})
    result = await route.generate(entry({"provider": "t"}), request(), "r", journal)
    assert len(result.images) == 1
    assert upstream.submits == 1 and upstream.polled == ["job-7", "job-1"]
    assert journal.jobs[SLOT]["id"] == "job-1"  # the new job replaced the gone one


async def test_a_resumed_job_that_failed_is_not_submitted_again() -> None:
    class Failing(Counting):
        async def poll(self, job: UpstreamJob, ctx: ProviderContext) -> JobStatus:
            self.polled.append(job.id)
            raise UpstreamError("moderated", code="upstream_task_failed")

    clock, upstream = Clock(), Failing()
    journal = Journal({"slot": job_to_json(UpstreamJob("job-7"))})
    with pytest.raises(UpstreamError):
        await runner(clock).run(upstream, request(), ctx(), journal, "slot")
    assert upstream.submits == 0


async def test_an_accepted_job_is_kept_before_it_is_polled() -> None:
    clock, upstream = Clock(), Counting(pending=0)
    journal = Journal()
    seen: list[dict[str, Any]] = []

    async def poll(job: UpstreamJob, c: ProviderContext) -> JobStatus:
        seen.append(dict(journal.jobs))
        return await Counting.poll(upstream, job, c)

    upstream.poll = poll  # type: ignore[method-assign, assignment]
    await runner(clock).run(upstream, request(), ctx(), journal, "slot")
    assert seen[0] == {"slot": {"id": "job-1", "handles": {"status": "https://up/1"},
                                "poll_after": 0.5}}  # fmt: skip
    assert job_from_json(journal.jobs["slot"]) == UpstreamJob(
        "job-1", {"status": "https://up/1"}, 0.5
    )


@pytest.mark.parametrize(("keeps", "cancelled"), [(True, []), (False, ["job-1"])])
async def test_a_stopping_server_leaves_the_kept_job_running(
    keeps: bool, cancelled: list[str]
) -> None:
    clock, upstream = Clock(), Counting(hang=True)
    run = asyncio.ensure_future(
        runner(clock).run(upstream, request(), ctx(), Journal(keeps=keeps), "slot")
    )
    while not upstream.polled:
        await asyncio.sleep(0)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    await asyncio.sleep(0.01)
    assert upstream.cancelled == cancelled


async def test_without_a_journal_every_run_submits() -> None:
    clock, upstream = Clock(), Counting(pending=0)
    route = router(clock, {"t": upstream})
    await route.generate(entry({"provider": "t"}), request(), "r")
    await route.generate(entry({"provider": "t"}), request(), "r")
    assert upstream.submits == 2


async def test_scoped_journals_keep_several_requests_of_one_task_apart() -> None:
    """The Midjourney handler runs several requests for one task: each keeps its own job."""
    clock, upstream = Clock(), Counting(pending=0)
    journal = Journal()
    route = router(clock, {"t": upstream})
    for index in range(2):
        scoped = ScopedJournal(journal, f"{index}:")
        await route.generate(entry({"provider": "t"}), request(), "r", scoped)
    assert {slot: job["id"] for slot, job in journal.jobs.items()} == {
        f"0:{SLOT}": "job-1",
        f"1:{SLOT}": "job-2",
    }
    await route.generate(entry({"provider": "t"}), request(), "r", ScopedJournal(journal, "1:"))
    assert upstream.submits == 2 and upstream.polled[-1] == "job-2"


async def test_a_job_that_failed_is_forgotten_and_the_retry_submits_afresh() -> None:
    class FailsFirst(Counting):
        async def poll(self, job: UpstreamJob, ctx: ProviderContext) -> JobStatus:
            if job.id == "job-1":
                self.polled.append(job.id)
                raise UpstreamError("the upstream lost it", code="upstream_task_failed")
            return await super().poll(job, ctx)

    clock, upstream = Clock(), FailsFirst(pending=0)
    journal = Journal()
    route = router(clock, {"t": upstream})
    result = await route.generate(entry({"provider": "t"}), request(), "r", journal)
    assert len(result.images) == 1
    assert upstream.submits == 2 and upstream.polled == ["job-1", "job-2"]
    assert journal.jobs[SLOT]["id"] == "job-2"
