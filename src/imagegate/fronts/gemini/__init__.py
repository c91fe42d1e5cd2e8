"""Google's Gemini wire format under ``/v1beta`` (generateContent, streaming, Imagen
predict, the model list), Imagen predict on Vertex AI's paths (``/v1beta1/…``,
``/v1/publishers/…``, ``/v1/projects/…``), with Google's key variants and error envelope."""

from imagegate.fronts.gemini import routes
from imagegate.fronts.gemini.errors import gemini_error_body
from imagegate.fronts.http.front import Front

FRONT = Front(
    name="gemini",
    routers=(routes.router,),
    error_envelopes=tuple(
        (prefix, gemini_error_body)
        for prefix in ("/v1beta/", "/v1beta1/", "/v1/publishers/", "/v1/projects/")
    ),
    credential_headers=("x-goog-api-key",),
)
