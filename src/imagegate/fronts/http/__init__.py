"""HTTP plumbing every front shares: request ids and body limits, auth dependencies, direct
(hot) routes, idempotency, error envelopes, body and multipart parsing, JSON responses.
Knows no wire format of its own."""
