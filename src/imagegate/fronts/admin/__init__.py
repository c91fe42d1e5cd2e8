"""The admin API (``/admin/*``): keys, their limits, credit and revocation; admin keys only."""

from imagegate.fronts.admin import keys
from imagegate.fronts.http.front import Front

FRONT = Front(name="admin", routers=(keys.router,))
