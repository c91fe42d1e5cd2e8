"""``x-should-retry``: the official SDK stops at once on refusals no retry can fix."""

from __future__ import annotations

import httpx
import openai
import pytest

from imagegate.errors import (
    Conflict,
    ContentPolicyViolation,
    ImagegateError,
    InvalidRequest,
    QuotaExceeded,
    RateLimited,
    ServerError,
    Unavailable,
)
from tests.conftest import LiveServer


def test_no_credentials_503_is_not_retried_by_the_openai_sdk(live_server: LiveServer) -> None:
    sent: list[httpx.Request] = []
    http = httpx.Client(event_hooks={"request": [sent.append]})
    sdk = openai.OpenAI(
        base_url=f"{live_server.base_url}/v1",
        api_key=live_server.key,
        max_retries=3,
        http_client=http,  # type: ignore[arg-type]  # openai accepts httpx.Client; its hint names httpx2
    )
    # gpt-image-1 is in the catalogue, but the test process has no OPENAI_API_KEY.
    with sdk, pytest.raises(openai.InternalServerError) as raised:
        sdk.images.generate(model="gpt-image-1", prompt="a red fox")
    assert raised.value.status_code == 503
    assert raised.value.response.headers["x-should-retry"] == "false"
    assert "OPENAI_API_KEY" in raised.value.message
    assert len(sent) == 1


def test_a_bad_request_says_do_not_retry(live_server: LiveServer) -> None:
    answer = httpx.post(
        f"{live_server.base_url}/v1/images/generations",
        json={"model": "sketch", "prompt": "x", "size": "3x3"},
        headers={"Authorization": f"Bearer {live_server.key}"},
    )
    assert answer.status_code == 400
    assert answer.headers["x-should-retry"] == "false"


@pytest.mark.parametrize(
    ("error", "retry"),
    [
        (Unavailable("no key", code="model_not_available"), False),
        (Unavailable("all cooling down", code="no_healthy_deployment", retry_after=3), True),
        (ContentPolicyViolation("refused"), False),
        (QuotaExceeded("no credit", retry_after=60), False),
        (RateLimited("slow down", retry_after=1), True),
        (ServerError("bug"), True),
        (InvalidRequest("bad size"), False),
        (Conflict("still running", retry_after=1), True),
    ],
)
def test_should_retry_by_kind(error: ImagegateError, retry: bool) -> None:
    assert error.should_retry is retry
