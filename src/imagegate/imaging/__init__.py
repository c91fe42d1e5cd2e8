"""Image bytes in and out: decode, encode, convert, size limits and safe fetching of inputs.

* :mod:`~imagegate.imaging.encode`: Pillow images to PNG, JPEG or WebP bytes (outputs).
* The input pipeline every route taking images reuses: :mod:`~imagegate.imaging.limits` (what an
  input may be), :mod:`~imagegate.imaging.inspect` (format, size, bombs, corruption, metadata),
  :mod:`~imagegate.imaging.sources` (uploads, base64, data URIs and URLs to a checked
  :class:`~imagegate.imaging.image.InputImage`) and :mod:`~imagegate.imaging.fetch` (image URLs,
  through the SSRF guard in :mod:`imagegate.outbound`).

Pillow work here is synchronous and CPU-bound: callers on the event loop run it in a worker
thread (:func:`~imagegate.imaging.sources.load_image` does so itself). This package imports
nothing above it: no core, database, storage, billing or providers.
"""
