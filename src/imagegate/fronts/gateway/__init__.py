"""imagegate's own surfaces: the model catalogue (``/api/models``, ``/v1/models``), quotes and
usage (``/api/estimate``, ``/api/usage``), signed asset downloads (``/files/{id}``) and health."""

from imagegate.fronts.gateway import assets, billing, health, models
from imagegate.fronts.http.front import Front

FRONT = Front(name="gateway", routers=(models.router, billing.router, assets.router, health.router))
