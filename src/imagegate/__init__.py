"""imagegate: one API key and one base URL for every image model.

The package is split by boundary (ARCHITECTURE.md draws it): ``fronts/`` (one package per wire
format), ``core/`` (the domain and the interfaces it needs), ``providers/`` (upstream adapters and
the built-in renderer, implementing the core's adapter protocol), ``storage/`` (database and
blobs), ``imaging/`` (image bytes), ``cli/`` (the ``imagegate`` command); ``app.py`` and
``services.py`` are the composition root, the only modules that import all of them.
"""

from importlib.metadata import version

__version__ = version("imagegate")
