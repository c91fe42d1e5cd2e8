"""HTTP front ends: one module per wire format, plus small shared helpers (``_*.py``).

api/ alone knows paths, auth header variants, JSON casing and error envelopes. It turns each wire
format into core's domain calls and renders the domain results and errors back; it holds no
business rules and never talks to providers or the database directly.
"""
