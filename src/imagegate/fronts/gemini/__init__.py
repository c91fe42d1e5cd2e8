"""Google's Gemini wire format under ``/v1beta`` (generateContent, streaming, Imagen
predict, the model list), with Google's key variants and error envelope."""

from imagegate.fronts.gemini import routes
from imagegate.fronts.gemini.errors import gemini_error_body
from imagegate.fronts.http.front import Front

FRONT = Front(
    name="gemini",
    routers=(routes.router,),
    error_envelopes=(("/v1beta/", gemini_error_body),),
    credential_headers=("x-goog-api-key",),
)
