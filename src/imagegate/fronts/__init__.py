"""The wire formats: one package per API that clients already speak, plus shared plumbing.

Each front package (``openai``, ``gemini``, ``midjourney``, ``flux``, ``bria``, ``replicate``,
``gateway`` for imagegate's own surfaces, ``admin``) alone knows its paths, auth header variants,
JSON casing, error envelope and task rendering. It turns its wire format into the core's domain
calls and renders domain results and errors back, and exposes one :class:`~imagegate.fronts.
http.front.Front` registration (``FRONT``) that :mod:`imagegate.app` collects.

Boundary: fronts import the core (and the shared ``http`` and ``common`` packages), never a
provider, the storage layer or another front; an import-linter contract in ``make check``
keeps it so.
"""
