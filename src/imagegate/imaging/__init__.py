"""Image bytes in and out: decode, encode, convert, size limits and safe fetching of inputs.

Only encoding lives here so far (:mod:`imagegate.imaging.encode`). Everything in this package
is synchronous, CPU-bound Pillow work: callers on the event loop run it in a worker thread.
"""
