"""A fake Generative Language API: Gemini ``generateContent`` and Imagen ``predict``.

Routes: ``POST /v1beta/models/{model}:generateContent``, ``POST …:predict``, ``GET
/v1beta/models/{model}``. The key must come in ``x-goog-api-key``; a ``key=`` query parameter is
refused here (imagegate must never put keys in URLs). Answers use the real shapes: a thought
part first (a draft image marked ``"thought": true``), a text part, the image as
``inlineData``; ``usageMetadata`` with per-modality details; Google's error envelope with
``RetryInfo`` on 429; ``promptFeedback.blockReason`` or ``finishReason: IMAGE_SAFETY`` for
safety outcomes; ``raiFilteredReason`` for Imagen.
"""

from __future__ import annotations

from typing import Any

import pybase64
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from imagegate.providers.fakes.images import image_bytes
from imagegate.providers.fakes.script import FakeUpstream, Step, json_response

__all__ = ["GEMINI_SIZES", "FakeGemini"]

GEMINI_SIZES = {
    "1:1": (1024, 1024),
    "2:3": (832, 1248),
    "3:2": (1248, 832),
    "3:4": (864, 1184),
    "4:3": (1184, 864),
    "4:5": (896, 1152),
    "5:4": (1152, 896),
    "9:16": (768, 1344),
    "16:9": (1344, 768),
    "21:9": (1536, 672),
}
IMAGEN_SIZES = {
    "1:1": (1024, 1024),
    "3:4": (896, 1280),
    "4:3": (1280, 896),
    "9:16": (768, 1408),
    "16:9": (1408, 768),
}
_STATUS = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def _b64(data: bytes) -> str:
    return pybase64.b64encode(data).decode()


class FakeGemini(FakeUpstream):
    """See the module docstring; ``api_key`` is the only key accepted."""

    def __init__(self, api_key: str = "fake-gemini-key") -> None:
        self.api_key = api_key
        super().__init__()

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v1beta/models/{model}:generateContent", self._generate, methods=["POST"]),
            Route("/v1beta/models/{model}:predict", self._predict, methods=["POST"]),
            Route("/v1beta/models/{model}", self._model),
        ]

    def error(
        self, status: int, message: str, code: str | None, retry_after: float | None
    ) -> Response:
        error: dict[str, Any] = {
            "code": status,
            "message": message,
            "status": code or _STATUS.get(status, "UNKNOWN"),
        }
        if retry_after is not None:
            error["details"] = [
                {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
                {
                    "@type": "type.googleapis.com/google.rpc.RetryInfo",
                    "retryDelay": f"{retry_after:g}s",
                },
            ]
        return json_response({"error": error}, status)

    def blocked(self, route: str, request: Request, reason: str) -> Response:
        if route == "predict":
            filtered = {"raiFilteredReason": "The image was filtered for safety reasons."}
            return json_response({"predictions": [filtered]})
        if reason in ("", "SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "OTHER"):
            return json_response(
                {
                    "promptFeedback": {"blockReason": reason or "PROHIBITED_CONTENT"},
                    "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7},
                }
            )
        candidate = {"content": {"role": "model", "parts": []}, "finishReason": reason, "index": 0}
        return json_response({"candidates": [candidate]})

    def empty(self, route: str, request: Request) -> Response:
        if route == "predict":
            return json_response({})
        parts = [{"text": "I cannot draw that, but here is a description."}]
        candidate = {
            "content": {"role": "model", "parts": parts},
            "finishReason": "STOP",
            "index": 0,
        }
        return json_response({"candidates": [candidate]})

    def _denied(self, request: Request) -> Response | None:
        if "key" in request.query_params:
            return self.error(400, "API keys in URLs are refused by this fake", None, None)
        if request.headers.get("x-goog-api-key") != self.api_key:
            error = {
                "code": 400,
                "message": "API key not valid. Please pass a valid API key.",
                "status": "INVALID_ARGUMENT",
                "details": [
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID",
                    }
                ],
            }
            return json_response({"error": error}, 400)
        return None

    async def _generate(self, request: Request) -> Response:
        denied = self._denied(request)
        call = await self.record("generate", request)
        if denied is not None:
            return denied
        body: dict[str, Any] = call.json or {}

        async def success(step: Step) -> Response:
            config = body.get("generationConfig", {})
            ratio = config.get("imageConfig", {}).get("aspectRatio", "1:1")
            width, height = GEMINI_SIZES.get(ratio, (1024, 1024))
            images_in = sum(1 for part in body["contents"][-1]["parts"] if "inlineData" in part)
            parts = [
                {
                    "inlineData": {
                        "mimeType": "image/png",
                        "data": _b64(image_bytes(64, 64, "png", 3)),
                    },
                    "thought": True,
                },
                {"text": "Here is your picture."},
                {
                    "inlineData": {
                        "mimeType": "image/png",
                        "data": _b64(image_bytes(width, height, "png")),
                    }
                },
            ]
            return json_response(
                {
                    "candidates": [
                        {
                            "content": {"role": "model", "parts": parts},
                            "finishReason": "STOP",
                            "index": 0,
                        }
                    ],
                    "usageMetadata": {
                        "promptTokenCount": 12 + 258 * images_in,
                        "candidatesTokenCount": 1295,
                        "thoughtsTokenCount": 20,
                        "totalTokenCount": 1327 + 258 * images_in,
                        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 12}]
                        + (
                            [{"modality": "IMAGE", "tokenCount": 258 * images_in}]
                            if images_in
                            else []
                        ),
                        "candidatesTokensDetails": [
                            {"modality": "IMAGE", "tokenCount": 1290},
                            {"modality": "TEXT", "tokenCount": 5},
                        ],
                    },
                    "modelVersion": request.path_params["model"],
                    "responseId": "fake-response",
                }
            )

        return await self.play("generate", request, success)

    async def _predict(self, request: Request) -> Response:
        denied = self._denied(request)
        call = await self.record("predict", request)
        if denied is not None:
            return denied
        body: dict[str, Any] = call.json or {}

        async def success(step: Step) -> Response:
            parameters = body.get("parameters", {})
            width, height = IMAGEN_SIZES.get(parameters.get("aspectRatio", "1:1"), (1024, 1024))
            mime = parameters.get("outputOptions", {}).get("mimeType", "image/png")
            fmt = "jpeg" if mime == "image/jpeg" else "png"
            count = int(parameters.get("sampleCount", 4))
            predictions = [
                {"bytesBase64Encoded": _b64(image_bytes(width, height, fmt, i)), "mimeType": mime}
                for i in range(count)
            ]
            return json_response({"predictions": predictions})

        return await self.play("predict", request, success)

    async def _model(self, request: Request) -> Response:
        denied = self._denied(request)
        await self.record("model", request)
        if denied is not None:
            return denied
        name = request.path_params["model"]
        return json_response(
            {
                "name": f"models/{name}",
                "displayName": name,
                "supportedGenerationMethods": ["generateContent"],
            }
        )
