"""Fake upstreams that speak each provider's real wire format, scriptable per request.

Used by the tests (in a thread on loopback: :func:`~.server.serve_in_thread`) and by
``bench/`` (as their own process: ``python -m imagegate.providers.fakes openai …``). Each fake
answers success in its provider's real shape and can be scripted, route by route, to fail the
way real upstreams do (:mod:`.script`): an error status, a 429 with the provider's retry hint,
slowness, a connection reset mid-body, truncated JSON, a 200 without an image, a safety block,
a result URL that has already expired.

Boundary: test infrastructure shipped with the package; the gateway never imports it at run
time, and nothing here talks to anything but its own clients.
"""

from imagegate.providers.fakes.ark import FakeArk, FakeXAI
from imagegate.providers.fakes.bria import FakeBria
from imagegate.providers.fakes.gemini import FakeGemini
from imagegate.providers.fakes.midjourney import FakeMidjourneyProxy
from imagegate.providers.fakes.openai import FakeOpenAI
from imagegate.providers.fakes.script import (
    Blocked,
    Call,
    Expired,
    Fail,
    FakeUpstream,
    NoImage,
    Ok,
    RateLimit,
    Reset,
    Slow,
    Step,
    Truncated,
)
from imagegate.providers.fakes.selfhosted import FakeA1111, FakeComfyUI
from imagegate.providers.fakes.server import RunningServer, serve_in_thread
from imagegate.providers.fakes.stability import FakeStability
from imagegate.providers.fakes.studios import FakeDashScope, FakeIdeogram, FakeKling, FakeRecraft
from imagegate.providers.fakes.tasks import FakeBFL, FakeFal, FakeReplicate

__all__ = [
    "Blocked",
    "Call",
    "Expired",
    "Fail",
    "FakeA1111",
    "FakeArk",
    "FakeBFL",
    "FakeBria",
    "FakeComfyUI",
    "FakeDashScope",
    "FakeFal",
    "FakeGemini",
    "FakeIdeogram",
    "FakeKling",
    "FakeMidjourneyProxy",
    "FakeOpenAI",
    "FakeRecraft",
    "FakeReplicate",
    "FakeStability",
    "FakeUpstream",
    "FakeXAI",
    "NoImage",
    "Ok",
    "RateLimit",
    "Reset",
    "RunningServer",
    "Slow",
    "Step",
    "Truncated",
    "serve_in_thread",
]
