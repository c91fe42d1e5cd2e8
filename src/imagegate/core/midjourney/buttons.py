"""Actions, the buttons each finished task offers, and the customIds that name them.

``<hash>`` is the task's id without dashes: a customId only works on the task it came from.

============================  =========================================================  ======
button                        customId                                                   makes
============================  =========================================================  ======
U1–U4 (on a grid)             ``MJ::JOB::upsample::<i>::<hash>``                         UPSCALE
V1–V4 (on a grid)             ``MJ::JOB::variation::<i>::<hash>``                        VARIATION
🔄 (on a grid)                ``MJ::JOB::reroll::0::<hash>::SOLO``                       REROLL
Upscale (Subtle)              ``MJ::JOB::upsample_v6_2x_subtle::1::<hash>::SOLO``        UPSCALE
Upscale (Creative)            ``MJ::JOB::upsample_v6_2x_creative::1::<hash>::SOLO``      UPSCALE
Vary (Subtle)                 ``MJ::JOB::low_variation::1::<hash>::SOLO``                VARIATION
Vary (Strong)                 ``MJ::JOB::high_variation::1::<hash>::SOLO``               VARIATION
Vary (Region) → MODAL         ``MJ::Inpaint::1::<hash>::SOLO``                           INPAINT
Zoom Out 2x                   ``MJ::Outpaint::50::1::<hash>::SOLO``                      ZOOM
Zoom Out 1.5x                 ``MJ::Outpaint::75::1::<hash>::SOLO``                      ZOOM
Custom Zoom → MODAL           ``MJ::CustomZoom::<hash>``                                 ZOOM
⬅️ ➡️ ⬆️ ⬇️                      ``MJ::JOB::pan_left::1::<hash>::SOLO`` (``pan_right`` …)   PAN
1–4 (on DESCRIBE)             ``MJ::Job::PicReader::<i>::<hash>``                        IMAGINE
1–4 (on SHORTEN)              ``MJ::Job::PromptAnalyzer::<i>::<hash>``                   IMAGINE
============================  =========================================================  ======

(UPSCALE buttons appear after an upscale; the grid buttons after IMAGINE, VARIATION, REROLL,
BLEND, ZOOM, PAN, INPAINT and EDIT.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from imagegate.core.midjourney.errors import ParameterError

Action = Literal[
    "IMAGINE",
    "UPSCALE",
    "VARIATION",
    "REROLL",
    "ZOOM",
    "PAN",
    "DESCRIBE",
    "BLEND",
    "SHORTEN",
    "INPAINT",
    "EDIT",
]
GRID_ACTIONS: frozenset[str] = frozenset(
    {"IMAGINE", "VARIATION", "REROLL", "BLEND", "ZOOM", "PAN", "INPAINT", "EDIT"}
)
PANS = ("left", "right", "up", "down")
_PAN_EMOJI = {"left": "⬅️", "right": "➡️", "up": "⬆️", "down": "⬇️"}


@dataclass(frozen=True, slots=True)
class Button:
    """One button of a task: what the client shows and the customId it sends back."""

    custom_id: str
    label: str
    emoji: str = ""
    style: int = 2

    def wire(self) -> dict[str, object]:
        return {
            "customId": self.custom_id,
            "emoji": self.emoji,
            "label": self.label,
            "type": 2,
            "style": self.style,
        }


@dataclass(frozen=True, slots=True)
class Press:
    """A parsed customId: which button, with which number (quadrant, suggestion, zoom …)."""

    kind: str
    """``upsample``, ``variation``, ``reroll``, ``upscale_subtle``, ``upscale_creative``,
    ``vary_subtle``, ``vary_strong``, ``inpaint``, ``zoom``, ``custom_zoom``, ``pan_<side>``,
    ``describe`` or ``shorten``."""
    index: int
    task_hash: str


def task_hash(task_id: str) -> str:
    return task_id.replace("-", "")


def buttons_for(action: str, task_id: str) -> list[Button]:
    """The buttons of a finished task that made ``action``."""
    h = task_hash(task_id)
    if action in GRID_ACTIONS:
        return [
            *(Button(f"MJ::JOB::upsample::{i}::{h}", f"U{i}") for i in range(1, 5)),
            Button(f"MJ::JOB::reroll::0::{h}::SOLO", "", "🔄"),
            *(Button(f"MJ::JOB::variation::{i}::{h}", f"V{i}") for i in range(1, 5)),
        ]
    if action == "UPSCALE":
        return _after_upscale(h)
    if action == "DESCRIBE":
        return [Button(f"MJ::Job::PicReader::{i}::{h}", str(i)) for i in range(1, 5)]
    if action == "SHORTEN":
        return [Button(f"MJ::Job::PromptAnalyzer::{i}::{h}", str(i)) for i in range(1, 5)]
    return []


def _after_upscale(h: str) -> list[Button]:
    return [
        Button(f"MJ::JOB::upsample_v6_2x_subtle::1::{h}::SOLO", "Upscale (Subtle)"),
        Button(f"MJ::JOB::upsample_v6_2x_creative::1::{h}::SOLO", "Upscale (Creative)"),
        Button(f"MJ::JOB::low_variation::1::{h}::SOLO", "Vary (Subtle)", "🪄"),
        Button(f"MJ::JOB::high_variation::1::{h}::SOLO", "Vary (Strong)", "🪄"),
        Button(f"MJ::Inpaint::1::{h}::SOLO", "Vary (Region)", "🖌️"),
        Button(f"MJ::Outpaint::50::1::{h}::SOLO", "Zoom Out 2x", "🔍"),
        Button(f"MJ::Outpaint::75::1::{h}::SOLO", "Zoom Out 1.5x", "🔍"),
        Button(f"MJ::CustomZoom::{h}", "Custom Zoom", "🔍"),
        *(Button(f"MJ::JOB::pan_{side}::1::{h}::SOLO", "", _PAN_EMOJI[side]) for side in PANS),
    ]


_H = r"(?P<hash>[0-9a-fA-F]{8,64})"
_FORMS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), kind)
    for pattern, kind in (
        (rf"MJ::JOB::upsample::(?P<i>[1-4])::{_H}", "upsample"),
        (rf"MJ::JOB::variation::(?P<i>[1-4])::{_H}", "variation"),
        (rf"MJ::JOB::reroll::0::{_H}::SOLO", "reroll"),
        (rf"MJ::JOB::upsample_v6_2x_subtle::1::{_H}::SOLO", "upscale_subtle"),
        (rf"MJ::JOB::upsample_v6_2x_creative::1::{_H}::SOLO", "upscale_creative"),
        (rf"MJ::JOB::low_variation::1::{_H}::SOLO", "vary_subtle"),
        (rf"MJ::JOB::high_variation::1::{_H}::SOLO", "vary_strong"),
        (rf"MJ::Inpaint::1::{_H}::SOLO", "inpaint"),
        (rf"MJ::Outpaint::(?P<i>50|75)::1::{_H}::SOLO", "zoom"),
        (rf"MJ::CustomZoom::{_H}", "custom_zoom"),
        (rf"MJ::JOB::pan_(?P<side>left|right|up|down)::1::{_H}::SOLO", "pan"),
        (rf"MJ::Job::PicReader::(?P<i>[1-4])::{_H}", "describe"),
        (rf"MJ::Job::PromptAnalyzer::(?P<i>[1-4])::{_H}", "shorten"),
    )
)


def parse_custom_id(custom_id: str, task_id: str) -> Press:
    """The button ``custom_id`` names on task ``task_id``; :class:`ParameterError` when it is
    not one of imagegate's forms or belongs to another task."""
    for pattern, kind in _FORMS:
        match = pattern.fullmatch(custom_id.strip())
        if match is None:
            continue
        if match.group("hash").lower() != task_hash(task_id).lower():
            raise ParameterError("customId belongs to another task", param="customId")
        groups = match.groupdict()
        if kind == "pan":
            kind = f"pan_{groups['side']}"
        return Press(kind, int(groups.get("i") or 0), match.group("hash"))
    raise ParameterError(f"unknown customId {custom_id[:200]!r}", param="customId")


def offered(custom_id: str, action: str, task_id: str) -> bool:
    """Whether a task that made ``action`` shows the button ``custom_id``."""
    return custom_id.strip() in {button.custom_id for button in buttons_for(action, task_id)}
