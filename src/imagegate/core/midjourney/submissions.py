"""The submit routes' own logic: imagine, blend, describe, shorten, edits and uploads."""

from __future__ import annotations

import asyncio

from imagegate.core.assets import Asset, NewAsset
from imagegate.core.midjourney.errors import ParameterError
from imagegate.core.midjourney.flags import PromptFlags, parse_prompt
from imagegate.core.midjourney.intake import (
    Accepted,
    Caller,
    Intake,
    new_meta,
    pick_seed,
    seed_extras,
)
from imagegate.core.midjourney.plans import (
    Plan,
    grid_n,
    grid_requests,
    picture_size,
    quality_for,
)
from imagegate.core.midjourney.shorten import numbered, shorten
from imagegate.core.params import GenerationParams, ImageSource

DIMENSIONS = {"PORTRAIT": (2, 3), "SQUARE": (1, 1), "LANDSCAPE": (3, 2)}
MAX_UPLOADS = 10


class Submissions:
    """Tasks that start from what the client sends (not from another task's button)."""

    def __init__(self, intake: Intake) -> None:
        self._intake = intake

    async def imagine(
        self,
        caller: Caller,
        prompt: str,
        images: list[ImageSource],
        *,
        custom_id: str = "",
        parent_id: str | None = None,
    ) -> Accepted:
        """Four pictures of ``prompt`` (with image prompts: edits of them) as a grid."""
        parsed = parse_prompt(prompt)
        flags = parsed.flags
        model, spec = self._intake.model_spec(caller.key)
        urls = [ImageSource(f"prompt[{i}]", url) for i, url in enumerate(parsed.image_urls)]
        sources = [*images, *urls]
        code = await self._intake.queue_code(caller)
        seed = pick_seed(spec, flags.seed)
        params = GenerationParams(
            prompt=parsed.text,
            operation="edit" if sources else "generate",
            model=model,
            n=grid_n(spec),
            size=picture_size(spec, flags),
            quality=quality_for(spec, flags),
            strength=flags.stylize / 1000,
            extras=seed_extras(seed),
            images=sources,
        )
        prepared = await self._intake.prepare(caller, params)
        requests = grid_requests(prepared.validated.request, seed, flags.chaos)
        meta = new_meta(
            caller,
            "IMAGINE",
            prompt=prompt,
            prompt_en=parsed.text,
            final_prompt=parsed.final_prompt(seed),
            seed=seed,
            tile=flags.tile,
            chaos=flags.chaos,
            custom_id=custom_id,
            parent_id=parent_id,
            tier=flags.speed or caller.tier,
            bot_type="NIJI_JOURNEY" if flags.niji is not None else caller.bot_type,
        )
        plan = Plan("grid", requests, flags.tile)
        return await self._intake.submit(
            caller, plan, meta, code=code, prepared=prepared, parent_id=parent_id
        )

    async def blend(
        self, caller: Caller, images: list[ImageSource], dimensions: str | None
    ) -> Accepted:
        """2–5 images blended, four ways, as a grid."""
        if not 2 <= len(images) <= 5:
            raise ParameterError("base64Array must hold 2 to 5 images", param="base64Array")
        name = (dimensions or "SQUARE").upper()
        if name not in DIMENSIONS:
            raise ParameterError(
                "dimensions must be PORTRAIT, SQUARE or LANDSCAPE", param="dimensions"
            )
        model, spec = self._intake.model_spec(caller.key)
        code = await self._intake.queue_code(caller)
        seed = pick_seed(spec, None)
        params = GenerationParams(
            prompt="",
            operation="blend",
            model=model,
            n=grid_n(spec),
            size=picture_size(spec, PromptFlags(aspect=DIMENSIONS[name])),
            extras=seed_extras(seed),
            images=images,
        )
        prepared = await self._intake.prepare(caller, params)
        plan = Plan("grid", grid_requests(prepared.validated.request, seed))
        meta = new_meta(caller, "BLEND", final_prompt=f"/blend {name}", seed=seed)
        return await self._intake.submit(caller, plan, meta, code=code, prepared=prepared)

    async def describe(self, caller: Caller, image: ImageSource) -> Accepted:
        """Four prompts that would draw ``image``."""
        model, _ = self._intake.model_spec(caller.key)
        code = await self._intake.queue_code(caller)
        params = GenerationParams(prompt="", operation="describe", model=model, images=[image])
        prepared = await self._intake.prepare(caller, params)
        plan = Plan("describe", (prepared.validated.request,))
        meta = new_meta(caller, "DESCRIBE")
        return await self._intake.submit(caller, plan, meta, code=code, prepared=prepared)

    async def shorten(self, caller: Caller, prompt: str) -> Accepted:
        """Four shorter forms of ``prompt`` (worked out now; the task only reports them)."""
        parsed = parse_prompt(prompt)
        if not parsed.text:
            raise ParameterError("prompt is required", param="prompt")
        self._intake.model_spec(
            caller.key
        )  # worked out here, but the task stands on the model: its globs
        code = await self._intake.queue_code(caller)
        text = numbered(shorten(parsed.text))
        meta = new_meta(caller, "SHORTEN", prompt=prompt, prompt_en=text, final_prompt=parsed.text)
        return await self._intake.submit(caller, Plan("text", text=text), meta, code=code)

    async def edits(
        self, caller: Caller, image: ImageSource, prompt: str, mask: str | None
    ) -> Accepted:
        """``prompt`` applied to ``image`` (only in the mask's white area when there is one),
        four ways, as a grid."""
        parsed = parse_prompt(prompt)
        model, spec = self._intake.model_spec(caller.key)
        code = await self._intake.queue_code(caller)
        loaded = await self._intake.load(caller, image)
        mask_png = (
            await self._intake.mask(caller, mask, (loaded.width, loaded.height)) if mask else None
        )
        seed = pick_seed(spec, parsed.flags.seed)
        params = GenerationParams(
            prompt=parsed.text,
            operation="edit",
            model=model,
            n=grid_n(spec),
            images=[ImageSource(image.param, loaded.data)],
            mask=ImageSource("maskBase64", mask_png) if mask_png else None,
            extras=seed_extras(seed),
        )
        prepared = await self._intake.prepare(caller, params)
        plan = Plan("grid", grid_requests(prepared.validated.request, seed), parsed.flags.tile)
        meta = new_meta(
            caller,
            "EDIT",
            prompt=prompt,
            prompt_en=parsed.text,
            final_prompt=parsed.final_prompt(seed),
            seed=seed,
            tile=parsed.flags.tile,
        )
        return await self._intake.submit(caller, plan, meta, code=code, prepared=prepared)

    async def upload(self, caller: Caller, images: list[ImageSource]) -> list[Asset]:
        """Store images as the caller's assets (for image prompts and references)."""
        if not 1 <= len(images) <= MAX_UPLOADS:
            raise ParameterError(
                f"base64Array must hold 1 to {MAX_UPLOADS} images", param="base64Array"
            )
        loaded = await asyncio.gather(*(self._intake.load(caller, image) for image in images))
        items = [NewAsset(i.data, i.mime_type, i.width, i.height) for i in loaded]
        return await self._intake.store(caller, items)
