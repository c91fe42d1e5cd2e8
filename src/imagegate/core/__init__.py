"""The domain: catalogue, requests and results, generation flow, keys, assets and usage.

core/ knows no HTTP framework, no wire format and no provider. Fronts translate their wire
format into the domain request (:mod:`imagegate.core.requests`) and render the domain result back;
provider adapters implement :mod:`imagegate.core.upstream` (the adapter protocol, the registry,
HTTP client and download interfaces the core has injected) and translate the same domain request
to their upstream. Import contracts in ``pyproject.toml`` keep the core free of fronts, providers
and the composition root.
"""
