"""Upstream adapters: each translates the domain request to one provider's API and back, and
implements the core's adapter protocol (:mod:`imagegate.core.upstream`); no front, storage or
composition module is imported here.

Adapters never touch the database, billing or storage; routing, retries and metering wrap them.
Built-in adapters register through the ``imagegate.providers`` entry-point group, exactly as a
third-party package would.
"""
