"""Midjourney-style tasks as domain logic: prompt flags, actions and their buttons, the plans a
task runs (one or four domain image requests, composed into a 2×2 grid or kept single) and
the task handler that runs them on the configured model.

Boundary: this package knows the task engine, the image service and the asset store; it knows
no HTTP, no JSON casing and no wire envelope (those live in ``imagegate.fronts.midjourney.routes``).
Pixel work here is only what the Midjourney flow itself adds (grids, crops, seamless tiling,
mask conversion); every picture is drawn by the model through :class:`ImageRequest`.
"""

from __future__ import annotations

from imagegate.core.midjourney.errors import ParameterError

__all__ = ["ParameterError"]
