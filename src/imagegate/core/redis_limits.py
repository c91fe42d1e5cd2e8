"""The shared :class:`~imagegate.core.limits.RateLimiter` for several replicas: the same token
buckets as in memory, kept in Redis and updated by one Lua script per hit (atomic)."""

from __future__ import annotations

from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from imagegate.core.limits import Decision

# KEYS[1] bucket; ARGV: amount, limit, window (s). Time comes from the Redis server, so replicas
# with skewed clocks agree. Returns {allowed, tokens left (string), seconds (string)}.
_BUCKET_SCRIPT = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local amount, limit, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local rate = limit / window
local state = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens = tonumber(state[1]) or limit
local updated = tonumber(state[2]) or now
tokens = math.min(limit, tokens + (now - updated) * rate)
local allowed = 0
local wait
if amount <= tokens then
  tokens = tokens - amount
  allowed = 1
  wait = (limit - tokens) / rate
elseif amount > limit then
  wait = window
else
  wait = (amount - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(window) + 1)
return {allowed, tostring(tokens), tostring(wait)}
"""


CONNECT_TIMEOUT_SECONDS = 0.25
COMMAND_TIMEOUT_SECONDS = 0.25


def redis_client(url: str) -> Redis:
    """A client that gives up quickly (a hung Redis used to cost 5 s per request) and does not
    retry on its own: :class:`~imagegate.core.rate_fallback.FallbackRateLimiter` decides."""
    return Redis.from_url(
        url,
        socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        socket_timeout=COMMAND_TIMEOUT_SECONDS,
        retry=Retry(NoBackoff(), 0),
    )


class RedisRateLimiter:
    """Token buckets in Redis under ``prefix``; every replica sees the same counts."""

    def __init__(self, client: Redis, prefix: str = "imagegate:rl:") -> None:
        self._client = client
        self._prefix = prefix
        self._script = client.register_script(_BUCKET_SCRIPT)

    async def hit(self, bucket: str, amount: float, limit: float, window: float) -> Decision:
        result = cast(
            list[Any],
            await self._script(keys=[self._prefix + bucket], args=[amount, limit, window]),
        )
        allowed, tokens, wait = result
        return Decision(bool(int(allowed)), limit, float(tokens), float(wait))

    async def close(self) -> None:
        await self._client.aclose()
