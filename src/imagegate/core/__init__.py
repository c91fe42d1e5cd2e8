"""The domain: catalogue, requests and results, generation flow, keys, assets and usage.

core/ knows no HTTP framework and no wire format. API modules translate their wire format into
the domain request (:mod:`imagegate.core.requests`) and render the domain result back; provider
adapters translate the same domain request to their upstream.
"""
