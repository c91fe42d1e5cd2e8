"""The Midjourney service, composed once by the composition root: the submits
(:class:`~.submissions.Submissions`) and the buttons (:class:`~.presses.Presses`) on the steps
they share (:class:`~.intake.Intake`), the relay that serves the model 1:1 when one does
(:class:`~.relay.MidjourneyRelay`), and the ``mj`` task handler."""

from __future__ import annotations

from dataclasses import dataclass

from imagegate.core.midjourney.handler import MidjourneyTaskHandler
from imagegate.core.midjourney.intake import Deps, Intake
from imagegate.core.midjourney.presses import Presses
from imagegate.core.midjourney.relay import MidjourneyRelay, default_model, relays
from imagegate.core.midjourney.submissions import Submissions

__all__ = ["MidjourneyService"]


@dataclass(frozen=True, slots=True)
class MidjourneyService:
    """Validates, plans and queues Midjourney tasks on one configured model, and runs them."""

    intake: Intake
    submissions: Submissions
    presses: Presses
    relay: MidjourneyRelay | None
    """Where the submits go when the model is served by a relay (then nothing above runs)."""
    handler: MidjourneyTaskHandler
    """Runs ``mj`` tasks: a plan on the model, or a relayed task polled on the relay (one made
    while a relay served the model is still polled after it no longer does)."""

    @classmethod
    def build(
        cls, deps: Deps, *, model: str | None, queue_limit: int, concurrency: int
    ) -> MidjourneyService:
        """The service on ``model`` (by default the relay's model when a relay is configured,
        else the built-in renderer)."""
        model = model or default_model(deps)
        intake = Intake(deps, model=model, queue_limit=queue_limit, concurrency=concurrency)
        submissions = Submissions(intake)
        relay = MidjourneyRelay(deps, model)
        return cls(
            intake=intake,
            submissions=submissions,
            presses=Presses(intake, submissions),
            relay=relay if relays(deps, model) else None,
            handler=MidjourneyTaskHandler(deps.images, deps.assets, relayed=relay.run),
        )
