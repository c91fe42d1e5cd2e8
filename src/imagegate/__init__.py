"""imagegate: one API key and one base URL for every image model.

The package is split by boundary: ``api/`` (wire formats), ``core/`` (the domain), ``providers/``
(upstream adapters and the built-in renderer), ``imaging/`` (image bytes), ``storage/`` (database
and blobs), ``cli/`` (the ``imagegate`` command).
"""

from importlib.metadata import version

__version__ = version("imagegate")
