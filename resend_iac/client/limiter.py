"""Client-side rate limiter: paces requests so the team's limit is never exceeded by us.

A GCRA (evenly spaced slots, no burst) that

- starts at the rate it is given (Resend's documented default: 5 req/s) but, until a
  response has told it the team's real limit, lets **one request at a time** through
  (the *probe*): a team allowed 2 req/s therefore never sees a 429 caused by our first
  burst;
- adapts to the ``ratelimit-limit`` / ``ratelimit-policy: N;w=S`` headers of every
  response (up or down), pacing at ``SAFETY`` x the advertised rate so that jitter in
  arrival times does not push a window over its limit;
- honours ``ratelimit-remaining: 0`` (block until ``ratelimit-reset``) and a 429's
  ``retry-after`` (block every request until then, not just the one that got it).

``RateLimiter(None)`` paces nothing and probes nothing, but still honours blocks
(a 429's ``retry-after``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager

SAFETY = 0.95  # pace at this share of the advertised rate


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value.strip())
    except ValueError:
        return None


def parse_policy(value: str | None) -> tuple[float, float] | None:
    """``"100;w=1"`` (first policy of a list) -> (100.0, 1.0); None if unparsable."""
    if not value:
        return None
    first = value.split(",")[0]
    parts = [p.strip() for p in first.split(";")]
    quota = _number(parts[0])
    window = 1.0
    for p in parts[1:]:
        if p.startswith("w="):
            window = _number(p[2:]) or 1.0
    if not quota or quota <= 0 or window <= 0:
        return None
    return quota, window


def advertised_rate(headers: Mapping[str, str]) -> float | None:
    """Requests per second the server allows, from ratelimit-* headers (None if absent)."""
    policy = parse_policy(headers.get("ratelimit-policy"))
    limit = _number(headers.get("ratelimit-limit"))
    if policy:
        quota, window = policy
        return (limit or quota) / window
    if limit and limit > 0:
        return limit  # draft-06 without a policy: the documented window is 1 s
    return None


class Slot:
    """One request's passage through the limiter; feed it the response headers."""

    __slots__ = ("_limiter", "probe", "answered")

    def __init__(self, limiter: "RateLimiter", probe: bool) -> None:
        self._limiter = limiter
        self.probe = probe
        self.answered = False

    def observe(self, status: int, headers: Mapping[str, str]) -> None:
        self.answered = True
        self._limiter.observe(status, headers)


class RateLimiter:
    def __init__(
        self,
        rate: float | None = 5.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.enabled = rate is not None and rate > 0
        self.rate: float = float(rate) if self.enabled else 0.0  # type: ignore[arg-type]
        self.calibrated = not self.enabled  # no probing when not limiting
        self.advertised: float | None = None  # last rate seen in headers
        self._clock = clock
        self._next = 0.0  # earliest time of the next slot (GCRA theoretical arrival time)
        self._last = -1e9  # when the last slot was handed out
        self._blocked_until = 0.0
        self._probe_done: asyncio.Event | None = None  # set while a probe is in flight
        self.inflight = 0

    def __repr__(self) -> str:
        state = f"{self.rate:g}/s" if self.enabled else "off"
        return f"RateLimiter({state}, calibrated={self.calibrated})"

    # -- adapting ---------------------------------------------------------------------

    def observe(self, status: int, headers: Mapping[str, str]) -> None:
        """Learn from a response's headers (any status)."""
        now = self._clock()
        rate = advertised_rate(headers)
        if rate is not None:
            self.advertised = rate
            if self.enabled:
                if rate * SAFETY != self.rate:
                    self.rate = rate * SAFETY
                    self._next = self._last + 1.0 / self.rate
                self.calibrated = True
        remaining = _number(headers.get("ratelimit-remaining"))
        reset = _number(headers.get("ratelimit-reset"))
        if remaining is not None and remaining <= 0 and status != 429:
            window = 1.0 / self.advertised if self.advertised else 1.0
            self.block(min(reset if reset is not None else 1.0, max(1.0, window)), now=now)

    def block(self, seconds: float, *, now: float | None = None) -> None:
        """Let no request through for ``seconds`` (a 429's retry-after, an empty window)."""
        now = self._clock() if now is None else now
        self._blocked_until = max(self._blocked_until, now + max(0.0, seconds))

    # -- passing ----------------------------------------------------------------------

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[Slot]:
        probe = False
        while not self.calibrated:
            if self._probe_done is None:
                self._probe_done = asyncio.Event()
                probe = True
                break
            await self._probe_done.wait()
        await self._wait_turn()
        slot = Slot(self, probe)
        self.inflight += 1
        try:
            yield slot
        finally:
            self.inflight -= 1
            if probe:
                if slot.answered and not self.calibrated:
                    # The server sent no ratelimit headers: keep the configured rate.
                    self.calibrated = True
                done, self._probe_done = self._probe_done, None
                if done is not None:
                    done.set()

    async def _wait_turn(self) -> None:
        while True:
            now = self._clock()
            start = max(now, self._blocked_until)
            if self.enabled:
                start = max(start, self._next)
            if start <= now:
                if self.enabled:
                    self._last = now
                    self._next = now + 1.0 / self.rate
                return
            # Reserve nothing while sleeping: the rate or a block may change meanwhile.
            await asyncio.sleep(start - now)
