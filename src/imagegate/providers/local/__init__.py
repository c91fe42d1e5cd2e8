"""The built-in ``local`` provider: model ``sketch``, a fast deterministic procedural renderer.

It is not an AI model. It parses the prompt for colour words, a small vocabulary of subjects
(sun, moon, stars, clouds, mountains, sea, trees, flowers, houses, shapes, …), moods and quoted
text (:mod:`.scene`), lays them out (:mod:`.layout`) and draws them with Pillow (:mod:`.draw`).
The same prompt, size, seed and image index always give the same bytes.

It also edits and varies images, keeping what the input shows: an edit with a mask
re-renders only the masked area, laid out on the picture's own horizon and faded in over a soft
edge (:mod:`.masked`); one without keeps the composition, recolours the sky or ground the prompt
names and draws the subjects it names over the input (:mod:`.overlay`, :mod:`.regions`);
further images act as references (:mod:`.references`); and a variation bends, re-tints and
re-textures the input a little, so subject and layout stay (:mod:`.variation`). Inputs are
decoded and fitted by :mod:`.inputs`; the same inputs, prompt, seed and index always give the
same bytes.

The editing tools work on pixels too (:mod:`.operations` maps each operation to its module):
``upscale`` (:mod:`.upscale`), ``outpaint`` (:mod:`.outpaint`), ``erase`` (:mod:`.erase`),
``remove_background`` and ``replace_background`` (:mod:`.matte`), ``enhance``
(:mod:`.enhance`) and ``blend`` (:mod:`.blend`); ``describe`` answers four prompt suggestions
(:mod:`.suggest`), and ``generate`` can write its composition as SVG (:mod:`.svg`).

Boundary: this package only turns an :class:`~imagegate.core.requests.ImageRequest` into an
:class:`~imagegate.core.requests.ImageResult`. It uses :mod:`imagegate.imaging` to encode and
knows nothing of HTTP, storage, billing or routing; it needs no network and no credentials.
"""

from imagegate.providers.local.provider import LocalProvider

__all__ = ["LocalProvider"]
